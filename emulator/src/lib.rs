//! The Entra emulator: Microsoft's identity platform (v2.0) and Graph v1.0, as Gatehouse uses
//! them, in memory and offline. One router serves both, so `ENTRA_AUTHORITY_URL` and
//! `GRAPH_BASE_URL` point at the same address.
//!
//! Its endpoints, control API, seed file format, the behaviours copied from Microsoft (with
//! their sources) and the known differences are in this crate's README.md.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use gatehouse_emulator::{Emulator, Seed};
//! let emulator = Emulator::new(Seed::contoso())?;
//! let addr = emulator.spawn("127.0.0.1:0".parse()?).await?;
//! let app = emulator.demo_app().expect("Contoso has the demo app");
//! println!("authority and Graph at http://{addr}, client id {}", app.client_id);
//! # Ok(())
//! # }
//! ```

mod control;
mod errors;
mod faults;
pub mod filter;
mod graph;
mod html;
mod identity;
mod ids;
mod keys;
pub mod model;
pub mod seed;
mod subscriptions;

pub use faults::FaultSpec;
pub use seed::{Seed, SeedError, CONTOSO_TENANT_ID, DEMO_CLIENT_ID};

use anyhow::Context;
use axum::Router;
use model::{App, Directory, World};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A handle on one emulator; clones share the same world.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

struct Inner {
    world: RwLock<World>,
    keys: keys::SigningKeys,
    control_token: String,
    /// Set once the emulator knows its address (or the operator's public URL).
    base_url: RwLock<Option<String>>,
    faults: faults::Faults,
    /// How long a delta link stays usable, in seconds.
    delta_link_lifetime: std::sync::atomic::AtomicI64,
    /// How long a new admin consent takes to apply, in seconds.
    consent_delay: std::sync::atomic::AtomicI64,
    /// Outbound calls: subscription handshakes and notifications.
    http: reqwest::Client,
}

/// The credentials of an app registration, for an operator or a test.
#[derive(Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub secret: SecretString,
    pub redirect_uris: Vec<String>,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("client_id", &self.client_id)
            .field("secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

/// Microsoft keeps a directory delta link for seven days.
/// https://learn.microsoft.com/en-us/graph/delta-query-overview#token-duration
pub const DELTA_LINK_LIFETIME_SECS: i64 = 7 * 24 * 3600;

impl Emulator {
    /// How long a delta link stays usable.
    pub fn delta_link_lifetime_secs(&self) -> i64 {
        self.inner
            .delta_link_lifetime
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Shortens (or restores) the delta link lifetime, for tests that cannot wait a week.
    pub fn set_delta_link_lifetime_secs(&self, secs: i64) {
        self.inner
            .delta_link_lifetime
            .store(secs.max(0), std::sync::atomic::Ordering::Relaxed);
    }

    /// How long a new admin consent takes to apply: app-only tokens issued meanwhile carry no
    /// roles, and Graph refuses them. Microsoft documents no figure; admins report seconds to
    /// minutes. 0 (the default) applies a consent at once.
    pub fn consent_delay_secs(&self) -> i64 {
        self.inner
            .consent_delay
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_consent_delay_secs(&self, secs: i64) {
        self.inner
            .consent_delay
            .store(secs.max(0), std::sync::atomic::Ordering::Relaxed);
    }

    /// An emulator loaded with `seed` and a random control token.
    pub fn new(seed: Seed) -> anyhow::Result<Self> {
        Self::with_control_token(seed, crate::ids::random_id(24))
    }

    /// An emulator with a control token of the caller's choosing (tests).
    pub fn with_control_token(seed: Seed, control_token: String) -> anyhow::Result<Self> {
        let keys = keys::SigningKeys::generate().context("generate the RS256 signing key")?;
        let emulator = Self {
            inner: Arc::new(Inner {
                world: RwLock::new(World::default()),
                keys,
                control_token,
                base_url: RwLock::new(None),
                faults: faults::Faults::default(),
                delta_link_lifetime: std::sync::atomic::AtomicI64::new(DELTA_LINK_LIFETIME_SECS),
                consent_delay: std::sync::atomic::AtomicI64::new(0),
                http: reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .context("build the emulator's HTTP client")?,
            }),
        };
        emulator.load(seed)?;
        Ok(emulator)
    }

    /// Adds a seed's directories and apps to the world.
    pub fn load(&self, seed: Seed) -> Result<(), SeedError> {
        let mut world = self.write();
        for app in seed.apps {
            let app = App {
                client_id: app.client_id.to_ascii_lowercase(),
                display_name: app.display_name,
                secret: app.secret.unwrap_or_else(|| crate::ids::random_id(30)),
                redirect_uris: app.redirect_uris,
                application_permissions: app.application_permissions,
                delegated_permissions: app.delegated_permissions,
                secret_expires_at: None,
                certificates: Vec::new(),
            };
            world.apps.insert(app.client_id.clone(), app);
        }
        for d in seed.directories {
            let tenant_id = d.tenant_id.to_ascii_lowercase();
            let mut dir = Directory::new(tenant_id.clone(), d.display_name, d.domains);
            for user in d.users {
                dir.add_user(user)?;
            }
            for c in d.consents {
                let client_id = c.client_id.to_ascii_lowercase();
                let roles = match c.roles {
                    Some(r) => r,
                    None => world
                        .apps
                        .get(&client_id)
                        .map(|a| a.application_permissions.clone())
                        .unwrap_or_default(),
                };
                dir.consents.insert(
                    client_id,
                    model::Consent {
                        service_principal_id: model::new_guid(),
                        roles,
                        granted_at: 0,
                    },
                );
            }
            world.directories.insert(tenant_id, dir);
        }
        Ok(())
    }

    /// The router serving the identity platform, Graph and the control API.
    pub fn router(&self) -> Router {
        let observed = Router::new()
            .merge(identity::routes())
            .merge(graph::routes())
            .merge(subscriptions::routes())
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                faults::observe,
            ));
        observed
            .merge(control::routes(self.clone()))
            .with_state(self.clone())
    }

    /// Binds `listen`, takes `http://{bound address}` as its base URL (unless one was set) and
    /// serves in a background task. Returns the bound address.
    pub async fn spawn(&self, listen: SocketAddr) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("bind the emulator to {listen}"))?;
        let addr = listener.local_addr()?;
        self.default_base_url(addr);
        let router = self.router();
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!("the Entra emulator stopped: {err}");
            }
        });
        Ok(addr)
    }

    /// Like [`Emulator::spawn`], but the background server stops when `shutdown` completes;
    /// the handle resolves once it has stopped (for a `select!` beside the main server).
    pub async fn spawn_until(
        &self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("bind the emulator to {listen}"))?;
        let addr = listener.local_addr()?;
        self.default_base_url(addr);
        let router = self.router();
        let handle = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("the Entra emulator stopped: {err}");
            }
        });
        Ok((addr, handle))
    }

    /// Serves on `listen` until `shutdown` completes.
    pub async fn serve(
        &self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("bind the emulator to {listen}"))?;
        let addr = listener.local_addr()?;
        self.default_base_url(addr);
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .context("serve the Entra emulator")
    }

    /// The URL the emulator calls itself by (issuer, links); both authority and Graph base.
    pub fn base_url(&self) -> String {
        self.inner
            .base_url
            .read()
            .ok()
            .and_then(|u| u.clone())
            .unwrap_or_else(|| "http://localhost".into())
    }

    /// Sets the public base URL, e.g. when the emulator sits behind another name.
    pub fn set_base_url(&self, url: &str) {
        if let Ok(mut u) = self.inner.base_url.write() {
            *u = Some(url.trim_end_matches('/').to_string());
        }
    }

    /// `http://{bound address}` unless a base URL was set (0.0.0.0 becomes localhost).
    fn default_base_url(&self, addr: SocketAddr) {
        if let Ok(mut u) = self.inner.base_url.write() {
            if u.is_none() {
                let host = if addr.ip().is_unspecified() {
                    format!("localhost:{}", addr.port())
                } else {
                    addr.to_string()
                };
                *u = Some(format!("http://{host}"));
            }
        }
    }

    /// The bearer token of the control API.
    pub fn control_token(&self) -> &str {
        &self.inner.control_token
    }

    /// Credentials of the demo app, when the seed has it.
    pub fn demo_app(&self) -> Option<AppCredentials> {
        self.app(DEMO_CLIENT_ID)
    }

    /// Credentials of an app registration.
    pub fn app(&self, client_id: &str) -> Option<AppCredentials> {
        self.read()
            .apps
            .get(&client_id.to_ascii_lowercase())
            .map(|a| AppCredentials {
                client_id: a.client_id.clone(),
                secret: SecretString::from(a.secret.clone()),
                redirect_uris: a.redirect_uris.clone(),
            })
    }

    /// Registers one more redirect URI on an app (e.g. Gatehouse on another port in demo mode);
    /// one already registered stays once.
    pub fn register_redirect_uri(
        &self,
        client_id: &str,
        uri: &str,
    ) -> Result<(), model::ModelError> {
        let mut world = self.write();
        let app = world
            .apps
            .get_mut(&client_id.to_ascii_lowercase())
            .ok_or_else(|| model::ModelError::UnknownApp(client_id.to_string()))?;
        if !app.redirect_uris.iter().any(|r| r == uri) {
            app.redirect_uris.push(uri.to_string());
        }
        Ok(())
    }

    /// Records admin consent of an app in a directory, as the consent page would.
    pub fn grant_admin_consent(
        &self,
        tenant_id: &str,
        client_id: &str,
    ) -> Result<(), model::ModelError> {
        let mut world = self.write();
        let client_id = client_id.to_ascii_lowercase();
        let roles = world
            .apps
            .get(&client_id)
            .map(|a| a.application_permissions.clone())
            .ok_or_else(|| model::ModelError::UnknownApp(client_id.clone()))?;
        let directory = world.directory_mut(tenant_id)?;
        let service_principal_id = directory
            .consents
            .get(&client_id)
            .map(|c| c.service_principal_id.clone())
            .unwrap_or_else(model::new_guid);
        directory.consents.insert(
            client_id,
            model::Consent {
                service_principal_id,
                roles,
                granted_at: chrono::Utc::now().timestamp(),
            },
        );
        Ok(())
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, World> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner
            .world
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, World> {
        self.inner
            .world
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn keys(&self) -> &keys::SigningKeys {
        &self.inner.keys
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn faults(&self) -> &faults::Faults {
        &self.inner.faults
    }
}

/// The lock kept for counters is a plain mutex: short sections, no awaits inside.
pub(crate) type Counter = Mutex<std::collections::HashMap<String, u64>>;
