//! The emulator's shared state, the handle every route takes: the world behind one lock, the
//! signing key, the control token, the settings a test may change and the injected faults.

use crate::faults::Faults;
use crate::ids::{new_guid, random_id};
use crate::keys::SigningKeys;
use crate::model::{App, Consent, Directory, ModelError, World};
use crate::seed::{Seed, SeedError, DEMO_CLIENT_ID, DEMO_CUSTOMERS_CLIENT_ID};
use anyhow::Context;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A handle on one emulator; clones share the same world. Serving it (`spawn`, `serve`) is in
/// the crate root; the world, the apps and the settings are here.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

struct Inner {
    world: RwLock<World>,
    keys: SigningKeys,
    control_token: String,
    /// Set once the emulator knows its address (or the operator's public URL).
    base_url: RwLock<Option<String>>,
    /// Shared with the middleware that counts requests and injects faults.
    faults: Arc<Faults>,
    /// How long a delta link stays usable, in seconds.
    delta_link_lifetime: AtomicI64,
    /// How long a new admin consent takes to apply, in seconds.
    consent_delay: AtomicI64,
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
const DELTA_LINK_LIFETIME_SECS: i64 = 7 * 24 * 3600;

impl Emulator {
    /// How long a delta link stays usable.
    pub(crate) fn delta_link_lifetime_secs(&self) -> i64 {
        self.inner.delta_link_lifetime.load(Ordering::Relaxed)
    }

    /// Shortens (or restores) the delta link lifetime, for tests that cannot wait a week.
    pub(crate) fn set_delta_link_lifetime_secs(&self, secs: i64) {
        self.inner
            .delta_link_lifetime
            .store(secs.max(0), Ordering::Relaxed);
    }

    /// How long a new admin consent takes to apply: app-only tokens issued meanwhile carry no
    /// roles, and Graph refuses them. Microsoft documents no figure; admins report seconds to
    /// minutes. 0 (the default) applies a consent at once.
    pub(crate) fn consent_delay_secs(&self) -> i64 {
        self.inner.consent_delay.load(Ordering::Relaxed)
    }

    pub(crate) fn set_consent_delay_secs(&self, secs: i64) {
        self.inner
            .consent_delay
            .store(secs.max(0), Ordering::Relaxed);
    }

    /// An emulator loaded with `seed` and a random control token.
    pub fn new(seed: Seed) -> anyhow::Result<Self> {
        Self::with_control_token(seed, random_id(24))
    }

    /// An emulator with a control token of the caller's choosing (tests).
    pub fn with_control_token(seed: Seed, control_token: String) -> anyhow::Result<Self> {
        let keys = SigningKeys::generate().context("generate the RS256 signing key")?;
        let emulator = Self {
            inner: Arc::new(Inner {
                world: RwLock::new(World::default()),
                keys,
                control_token,
                base_url: RwLock::new(None),
                faults: Arc::default(),
                delta_link_lifetime: AtomicI64::new(DELTA_LINK_LIFETIME_SECS),
                consent_delay: AtomicI64::new(0),
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
    pub(crate) fn load(&self, seed: Seed) -> Result<(), SeedError> {
        let mut world = self.write();
        for app in seed.apps {
            let app = App {
                client_id: app.client_id.to_ascii_lowercase(),
                display_name: app.display_name,
                secret: app.secret.unwrap_or_else(|| random_id(30)),
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
            dir.add_groups(d.groups)?;
            if let Some(policy) = d.temporary_access_pass {
                dir.tap_policy = policy;
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
                    Consent {
                        service_principal_id: new_guid(),
                        roles,
                        granted_at: 0,
                    },
                );
            }
            world.directories.insert(tenant_id, dir);
        }
        Ok(())
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
    pub(crate) fn default_base_url(&self, addr: SocketAddr) {
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

    /// Credentials of the demo's customers app (the one customers consent to), when the seed
    /// has it.
    pub fn customers_app(&self) -> Option<AppCredentials> {
        self.app(DEMO_CUSTOMERS_CLIENT_ID)
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
    pub fn register_redirect_uri(&self, client_id: &str, uri: &str) -> Result<(), ModelError> {
        let mut world = self.write();
        let app = world
            .apps
            .get_mut(&client_id.to_ascii_lowercase())
            .ok_or_else(|| ModelError::UnknownApp(client_id.to_string()))?;
        if !app.redirect_uris.iter().any(|r| r == uri) {
            app.redirect_uris.push(uri.to_string());
        }
        Ok(())
    }

    /// Records admin consent of an app in a directory, as the consent page would.
    pub fn grant_admin_consent(&self, tenant_id: &str, client_id: &str) -> Result<(), ModelError> {
        let mut world = self.write();
        let client_id = client_id.to_ascii_lowercase();
        let roles = world
            .apps
            .get(&client_id)
            .map(|a| a.application_permissions.clone())
            .ok_or_else(|| ModelError::UnknownApp(client_id.clone()))?;
        let directory = world.directory_mut(tenant_id)?;
        let service_principal_id = directory
            .consents
            .get(&client_id)
            .map(|c| c.service_principal_id.clone())
            .unwrap_or_else(new_guid);
        directory.consents.insert(
            client_id,
            Consent {
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

    pub(crate) fn keys(&self) -> &SigningKeys {
        &self.inner.keys
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn faults(&self) -> &Arc<Faults> {
        &self.inner.faults
    }
}
