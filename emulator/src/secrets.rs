//! How the emulator keeps the secrets of accounts made through Graph: a password's and a
//! Temporary Access Pass's SHA-256 only, and the directory's pass policy.
//!
//! https://learn.microsoft.com/en-us/graph/api/resources/temporaryaccesspassauthenticationmethod
//! https://learn.microsoft.com/en-us/graph/api/resources/temporaryaccesspassauthenticationmethodconfiguration

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How the emulator keeps a password or a pass: its SHA-256, never the secret.
pub fn password_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The directory's Temporary Access Pass policy. Off in a new tenant; the other values are
/// the portal's defaults (one hour, between one and eight, eight characters, reusable).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapPolicy {
    #[serde(default)]
    pub state: PolicyState,
    #[serde(default = "sixty")]
    pub default_lifetime_in_minutes: u32,
    #[serde(default = "sixty")]
    pub minimum_lifetime_in_minutes: u32,
    #[serde(default = "eight_hours")]
    pub maximum_lifetime_in_minutes: u32,
    #[serde(default)]
    pub is_usable_once: bool,
    #[serde(default = "eight")]
    pub default_length: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyState {
    Enabled,
    #[default]
    Disabled,
}

fn sixty() -> u32 {
    60
}
fn eight_hours() -> u32 {
    480
}
fn eight() -> u32 {
    8
}

impl Default for TapPolicy {
    fn default() -> Self {
        serde_json::from_value(json!({})).expect("defaults")
    }
}

/// A user's pass: only its hash is kept.
#[derive(Clone, Debug)]
pub struct Pass {
    pub id: String,
    pub hash: String,
    pub created: DateTime<Utc>,
    pub lifetime_in_minutes: u32,
    pub is_usable_once: bool,
    pub used: bool,
}

impl Pass {
    fn ends(&self) -> DateTime<Utc> {
        self.created + chrono::Duration::minutes(i64::from(self.lifetime_in_minutes))
    }

    /// Why the pass can or cannot sign in now, in Graph's words.
    pub fn usability(&self, policy: &TapPolicy, now: DateTime<Utc>) -> &'static str {
        if policy.state == PolicyState::Disabled {
            "DisabledByPolicy"
        } else if self.used {
            "OneTimeUsed"
        } else if now >= self.ends() {
            "Expired"
        } else {
            "EnabledByPolicy"
        }
    }

    /// The pass as Graph shows it; its value only when `shown` (at creation).
    pub fn json(&self, policy: &TapPolicy, shown: Option<&str>) -> Value {
        let reason = self.usability(policy, Utc::now());
        json!({
            "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
            "id": self.id,
            "temporaryAccessPass": shown,
            "createdDateTime": self.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "startDateTime": self.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "lifetimeInMinutes": self.lifetime_in_minutes,
            "isUsableOnce": self.is_usable_once,
            "isUsable": reason == "EnabledByPolicy",
            "methodUsabilityReason": reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn a_pass_is_usable_only_under_an_enabled_policy_within_its_lifetime_and_once_if_so() {
        let mut policy = TapPolicy::default();
        assert_eq!(policy.state, PolicyState::Disabled, "off in a new tenant");
        let now = Utc::now();
        let mut pass = Pass {
            id: "p".into(),
            hash: String::new(),
            created: now,
            lifetime_in_minutes: 60,
            is_usable_once: true,
            used: false,
        };
        assert_eq!(pass.usability(&policy, now), "DisabledByPolicy");
        policy.state = PolicyState::Enabled;
        assert_eq!(pass.usability(&policy, now), "EnabledByPolicy");
        assert_eq!(
            pass.usability(&policy, now + chrono::Duration::minutes(60)),
            "Expired"
        );
        pass.used = true;
        assert_eq!(pass.usability(&policy, now), "OneTimeUsed");
    }
}
