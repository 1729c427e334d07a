//! App-only Graph tokens, one per Entra tenant, kept until shortly before they expire.
//! Microsoft issues them for 60–90 minutes (75 on average), so a phone approval or a
//! reconciliation run rarely needs the token endpoint.
//! https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#token-lifetime

use crate::domain::EntraTenantId;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A token is renewed this long before Microsoft says it expires: a walk that starts with it
/// should not run into its end.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// Assumed lifetime when the token response has no `expires_in` (Microsoft's shortest).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60 * 60);

#[derive(Clone)]
pub(super) struct Cached {
    pub token: SecretString,
    renew_at: Instant,
}

impl Cached {
    pub fn new(token: SecretString, expires_in: Option<Duration>) -> Self {
        let lifetime = expires_in.unwrap_or(DEFAULT_LIFETIME);
        // A very short lifetime is used for what it is worth, never cached past its end.
        let keep = lifetime.checked_sub(RENEW_BEFORE).unwrap_or(lifetime / 2);
        Self {
            token,
            renew_at: Instant::now() + keep,
        }
    }

    fn fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }
}

/// One slot per Entra tenant; a slot's lock is held while its token is fetched, so many
/// approvals arriving at once ask the token endpoint once, and tenants never wait on each other.
#[derive(Default)]
pub(super) struct TokenCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl TokenCache {
    pub fn slot(&self, tid: &EntraTenantId) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry(tid.as_str().to_ascii_lowercase())
            .or_default()
            .clone()
    }

    /// The cached token of `tid` if it is still fresh.
    pub fn fresh(slot: &Option<Cached>) -> Option<SecretString> {
        slot.as_ref().filter(|c| c.fresh()).map(|c| c.token.clone())
    }

    /// Forgets `tid`'s token (Graph refused it before its time).
    pub async fn forget(&self, tid: &EntraTenantId) {
        let slot = self.slot(tid);
        *slot.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_until_five_minutes_before_it_expires() {
        let c = Cached::new(SecretString::from("t"), Some(Duration::from_secs(3600)));
        assert!(c.fresh());
        let left = c.renew_at - Instant::now();
        assert!(left <= Duration::from_secs(55 * 60) && left > Duration::from_secs(54 * 60));
    }

    #[test]
    fn a_token_shorter_than_the_margin_is_kept_for_half_its_life() {
        let c = Cached::new(SecretString::from("t"), Some(Duration::from_secs(60)));
        assert!(c.renew_at - Instant::now() <= Duration::from_secs(30));
        let gone = Cached::new(SecretString::from("t"), Some(Duration::ZERO));
        assert!(!gone.fresh());
    }
}
