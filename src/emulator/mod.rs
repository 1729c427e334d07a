//! The Entra emulator: Microsoft's identity platform (v2.0) and Graph v1.0, as Gatehouse uses
//! them, in memory and offline. One router serves both, so `ENTRA_AUTHORITY_URL` and
//! `GRAPH_BASE_URL` point at the same address.
//!
//! # Endpoints
//! `{tenant}` is a tenant id, a verified domain, `organizations` or `common`.
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration`, `GET /{tenant}/discovery/v2.0/keys`
//! - `GET|POST /{tenant}/oauth2/v2.0/authorize`: an account picker, then a consent screen. The
//!   pages post back the original parameters plus `step` (`pick` | `consent`), `account`
//!   (`{tenant id}/{user id}`) and `decision` (`accept` | `cancel`); a test may post those
//!   fields directly.
//! - `POST /{tenant}/oauth2/v2.0/token`: `authorization_code` (+ PKCE) and
//!   `client_credentials`; `client_secret_post` or `client_secret_basic`.
//! - `GET|POST /{tenant}/v2.0/adminconsent`: lists the directory's admins (`isAdmin`); the post
//!   takes `account` and `decision` like the authorize page.
//! - Graph: `GET /v1.0/organization`, `/v1.0/domains`, `/v1.0/users`, `/v1.0/users/{id|upn}`,
//!   `/v1.0/users/delta`, `POST /v1.0/$batch`, `/v1.0/subscriptions` (+ `/{id}`).
//!
//! # Control API
//! Every route needs `Authorization: Bearer {control token}`; JSON in and out.
//! - `GET /_emulator/state`: directories (user counts, consents) and apps (no secrets).
//! - `POST /_emulator/directories` (a directory of the seed format) → `{"tenantId"}`.
//! - `POST /_emulator/apps` (an app of the seed format) → `{"clientId","secret","redirectUris"}`.
//! - `POST /_emulator/apps/{clientId}/redirect-uris` `{"uri"}`.
//! - `POST /_emulator/directories/{tid}/users` (a user of the seed format) → the user.
//! - `PATCH /_emulator/directories/{tid}/users/{id|upn}` (any user fields) → the user.
//! - `POST …/users/{id}/disable`, `…/enable`, `…/restore`; `DELETE …/users/{id}` (soft delete),
//!   `DELETE …/users/{id}?permanent=true` (hard delete).
//! - `POST /_emulator/directories/{tid}/users/generate` `{"count", "domain"?}`: synthetic users.
//! - `PUT|DELETE /_emulator/directories/{tid}/consents/{clientId}` (`{"roles": [...]}` optional):
//!   grant or revoke admin consent without the pages.
//! - `POST /_emulator/tokens` `{"tenantId","clientId","roles"?,"expiresIn"?}` → an app-only
//!   Graph token minted directly (negative `expiresIn`: already expired).
//! - `POST /_emulator/directories/{tid}/expire-delta-tokens`: the directory's sync state is
//!   reset (Microsoft's tenant maintenance): every delta token so far → `410 Gone` + `Location`.
//! - `PUT /_emulator/settings` `{"deltaLinkLifetimeSecs": n}`: delta links older than this
//!   (default seven days) → `400 syncStateNotFound`; `{"consentDelaySecs": n}`: app-only
//!   tokens issued within n seconds of a consent carry no roles.
//! - `POST /_emulator/faults` (one or a list of [`FaultSpec`]: `route`, `count`, `status`,
//!   `retryAfter`, `latencyMs`, `dropValue`, `dropDeltaLink`); `DELETE` clears them.
//! - `GET /_emulator/requests`: counts per route, keyed `"GET /v1.0/users/delta"`,
//!   `"POST /{tenant}/oauth2/v2.0/token"` (the route pattern); `DELETE` resets them.
//! - `POST /_emulator/subscriptions/{id}/lifecycle` `{"event"}`: `reauthorizationRequired`
//!   (the only lifecycle event Microsoft sends for users).
//! - `GET /_emulator/ui?token=…`: the control page (then a cookie); disable, enable, delete,
//!   restore or purge users by hand.
//!
//! # Known differences from Microsoft
//! - No browser session: every authorize request shows the picker; `prompt=none` always
//!   answers `login_required`. Only `response_type=code` and `response_mode=query`.
//! - No refresh tokens, no `private_key_jwt`, no v1.0 endpoints, no personal accounts.
//! - Access tokens are RS256 JWTs signed with the same key as id_tokens (Graph's own are
//!   not meant to be validated by clients); the key rotates on every start.
//! - Graph: `$filter` supports `eq`, `startsWith`, `any()` on `proxyAddresses`/`otherMails`,
//!   `and`, `or`; no advanced queries (`$count`, `$search`, `$orderby`, `ne`, `endsWith`).
//!   Changed users in delta come back with all selected properties. Delta pages hold 100
//!   items unless `Prefer: odata.maxpagesize` says otherwise.
//! - Subscriptions accept `http://` URLs, do not retry failed deliveries, and cover `users`
//!   only.

mod control;
mod errors;
mod faults;
pub mod filter;
mod graph;
mod html;
mod identity;
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
        Self::with_control_token(seed, crate::server::util::random_id(24))
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
                secret: app
                    .secret
                    .unwrap_or_else(|| crate::server::util::random_id(30)),
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

    /// Registers one more redirect URI on an app (e.g. Gatehouse on another port in demo mode).
    pub fn add_redirect_uri(&self, client_id: &str, uri: &str) -> Result<(), model::ModelError> {
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

/// Starts a Contoso emulator in this process (demo mode of `gatehouse serve`) and returns the
/// address it listens on with its handle (for [`Emulator::demo_app`] and the control token).
pub async fn spawn_in_process(listen: SocketAddr) -> anyhow::Result<(SocketAddr, Emulator)> {
    let emulator = Emulator::new(Seed::contoso())?;
    let addr = emulator.spawn(listen).await?;
    Ok((addr, emulator))
}

/// The lock kept for counters is a plain mutex: short sections, no awaits inside.
pub(crate) type Counter = Mutex<std::collections::HashMap<String, u64>>;
