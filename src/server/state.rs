use super::bus::Bus;
use super::config::Config;
use super::db::Db;
use super::mail::Mailer;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What every handler and server function may use; passed, never global. The edge (routes,
/// server functions) takes it apart: services take only what they need.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub mailer: Arc<Mailer>,
    pub bus: Bus,
    /// The login pages of waiting codes, served from memory; the bus keeps them true.
    pub pages: Arc<crate::login::page_cache::PageCache>,
    /// Signs the login page's browser-binding cookies.
    pub binding_key: crate::login::binding::BindingKey,
    /// The login page's QR codes, drawn once per challenge.
    pub qr_codes: Arc<crate::login::qr::QrCodes>,
    /// Tenants by host name, briefly remembered; the bus keeps them true.
    pub tenants: Arc<crate::tenants::cache::TenantCache>,
    pub leptos_options: LeptosOptions,
    pub metrics: PrometheusHandle,
    /// The Entra app, when one is configured (or the demo's emulator).
    pub entra: Option<crate::entra::EntraClient>,
    /// The customers' app registration (JIT accounts in customers' tenants), when configured.
    pub customers_entra: Option<crate::entra::EntraClient>,
    /// Per-IP rates on the unauthenticated surface.
    pub throttles: Arc<super::throttle::Throttles>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
