use super::config::Config;
use super::db::Db;
use super::mail::Mailer;
use crate::login::push::LoginHub;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What every handler and server function may use; passed, never global.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub mailer: Arc<Mailer>,
    pub hub: LoginHub,
    /// Signs the login page's browser-binding cookies.
    pub binding_key: crate::login::binding::BindingKey,
    /// The login page's QR codes, drawn once per challenge.
    pub qr_codes: Arc<crate::login::qr::QrCodes>,
    /// Tenants by host name, briefly remembered.
    pub tenants: Arc<crate::tenants::cache::TenantCache>,
    pub leptos_options: LeptosOptions,
    pub metrics: PrometheusHandle,
    /// The Entra app, when one is configured (or the demo's emulator).
    pub entra: Option<crate::entra::EntraClient>,
    /// Per-IP rates on the unauthenticated surface.
    pub throttles: Arc<super::throttle::Throttles>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// A tenant's settings changed: this instance reads them afresh on its next request, and
    /// the other instances when the push hub tells them.
    pub async fn tenant_changed(&self, tenant_id: &str) {
        self.tenants.forget(tenant_id);
        self.hub
            .publish(
                &self.db,
                crate::login::push::PushEvent::tenant_changed(tenant_id),
            )
            .await;
    }
}
