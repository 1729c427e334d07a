//! The browser-binding cookie: its hash is stored with each QR code, so only the browser that
//! displayed a code can complete the sign-in it was approved for. The server mints every
//! value and signs it (HMAC-SHA256 with a key the replicas share through the database); a
//! value it did not mint is replaced, never adopted, so a cookie planted in a victim's
//! browser does not let the planter finish the victim's sign-in. A value is minted for one
//! tenant (the tenant's id is under the MAC) and replaced at every sign-in, so a value an
//! attacker fetched elsewhere is never adopted, and one they planted serves at most the one
//! sign-in it was planted for.

use crate::domain::TenantId;
use crate::server::db::Db;
use crate::server::util::{now, random_id};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Over https the `__Host-` prefix makes browsers refuse the cookie from any other host or
/// path and without `Secure`, so a sibling host cannot set it either.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-gatehouse_login_binding"
    } else {
        "gatehouse_login_binding"
    }
}

const KEY_NAME: &str = "binding_cookie_mac";

/// The MAC key of binding cookies.
#[derive(Clone)]
pub struct BindingKey(Vec<u8>);

impl std::fmt::Debug for BindingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BindingKey(redacted)")
    }
}

impl BindingKey {
    /// Reads the key every replica shares, making it on the first start.
    pub async fn load_or_create(db: &Db) -> anyhow::Result<Self> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(KEY_NAME)
        .bind(random_id(32))
        .bind(now())
        .execute(&db.pool)
        .await?;
        let (value,): (String,) =
            sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
                .bind(KEY_NAME)
                .fetch_one(&db.pool)
                .await?;
        Ok(Self(value.into_bytes()))
    }

    /// The MAC of `secret` on `tenant`'s pages.
    fn mac(&self, tenant: &TenantId, secret: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(tenant.as_str().as_bytes());
        // Neither a tenant id nor a secret holds a dot: the two cannot run into each other.
        mac.update(b".");
        mac.update(secret.as_bytes());
        mac
    }

    /// A new cookie value for `tenant`'s login page: a random secret and its MAC.
    pub fn mint(&self, tenant: &TenantId) -> String {
        let secret = random_id(32);
        let mac = self.mac(tenant, &secret);
        let tag =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{secret}.{tag}")
    }

    /// True when this server minted `value` for `tenant` (compared in constant time).
    pub fn is_minted(&self, value: &str, tenant: &TenantId) -> bool {
        let Some((secret, tag)) = value.split_once('.') else {
            return false;
        };
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        self.mac(tenant, secret).verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_minted_values_pass() {
        let key = BindingKey(b"k".to_vec());
        let acme = TenantId::from_outside("acme");
        let minted = key.mint(&acme);
        assert!(key.is_minted(&minted, &acme));
        assert!(
            !key.is_minted(&"a".repeat(43), &acme),
            "a long random value"
        );
        let (secret, _) = minted.split_once('.').unwrap();
        assert!(
            !key.is_minted(&format!("{secret}.AAAA"), &acme),
            "a forged tag"
        );
        assert!(
            !BindingKey(b"other".to_vec()).is_minted(&minted, &acme),
            "another key"
        );
        assert!(
            !key.is_minted(&minted, &TenantId::from_outside("beta")),
            "another tenant"
        );
        assert_eq!(format!("{key:?}"), "BindingKey(redacted)");
    }
}
