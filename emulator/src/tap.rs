//! Temporary Access Pass: the directory's policy, a user's pass made and removed through
//! Graph, and whether a pass signs its user in now.
//!
//! https://learn.microsoft.com/en-us/graph/api/resources/temporaryaccesspassauthenticationmethod
//! https://learn.microsoft.com/en-us/graph/api/authentication-post-temporaryaccesspassmethods
//! https://learn.microsoft.com/en-us/graph/api/resources/temporaryaccesspassauthenticationmethodconfiguration
//! https://learn.microsoft.com/en-us/entra/identity/authentication/howto-authentication-temporary-access-pass

use crate::caller::{directory, directory_mut, live_user_id, Caller};
use crate::errors::GraphError;
use crate::roles;
use crate::state::Emulator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Permission to make and remove other users' passes (application).
/// https://learn.microsoft.com/en-us/graph/api/authentication-post-temporaryaccesspassmethods#permissions
pub const MANAGE_METHODS: &[&str] = &["UserAuthenticationMethod.ReadWrite.All"];
/// Permissions to read the policy (application); the page's earlier version named Policy.Read.All.
/// https://learn.microsoft.com/en-us/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get#permissions
pub const READ_POLICY: &[&str] = &[
    "Policy.Read.AuthenticationMethod",
    "Policy.ReadWrite.AuthenticationMethod",
    "Policy.Read.All",
];

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

    fn json(&self, policy: &TapPolicy, shown: Option<&str>) -> Value {
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

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route(
            "/v1.0/users/{id}/authentication/temporaryAccessPassMethods",
            get(list).post(create),
        )
        .route(
            "/v1.0/users/{id}/authentication/temporaryAccessPassMethods/{method}",
            delete(remove),
        )
        .route(
            "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass",
            get(policy),
        )
}

/// Whether a caller holding `caller` roles may manage the sign-in methods of a user holding
/// `target`: Authentication Administrators those of members, Privileged Authentication and
/// Global Administrators anyone's; a user without a role needs no role.
fn may_manage(caller: &[String], target: &[String]) -> bool {
    let holds = |role: &str| caller.iter().any(|c| c.eq_ignore_ascii_case(role));
    target.is_empty()
        || holds(roles::GLOBAL_ADMINISTRATOR)
        || holds(roles::PRIVILEGED_AUTHENTICATION_ADMINISTRATOR)
}

/// Makes the user's pass (replacing one they had): 201, the pass shown this once. The
/// lifetime must be within the policy's bounds; a pass for many sign-ins only where the
/// policy allows it. Made under a policy that is off, it cannot sign in (`isUsable` false,
/// `DisabledByPolicy`), as Microsoft documents.
async fn create(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Result<(StatusCode, Json<Value>), GraphError> {
    caller.require(MANAGE_METHODS)?;
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let bad = |message: String| {
        GraphError::new(
            &caller.ids,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            message,
        )
    };
    let mut world = em.write();
    let d = directory_mut(&mut world, &caller)?;
    let user_id = live_user_id(d, &caller, &id)?;
    if !may_manage(&d.roles_of(&caller.object_id), &d.roles_of(&user_id)) {
        return Err(GraphError::denied(&caller.ids));
    }
    let policy = d.tap_policy.clone();
    let lifetime = match &body["lifetimeInMinutes"] {
        Value::Null => policy.default_lifetime_in_minutes,
        v => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad("lifetimeInMinutes must be a number of minutes.".into()))?,
    };
    if lifetime < policy.minimum_lifetime_in_minutes.max(10)
        || lifetime > policy.maximum_lifetime_in_minutes.min(43_200)
    {
        return Err(bad(format!(
            "lifetimeInMinutes must be between {} and {} under the tenant's policy.",
            policy.minimum_lifetime_in_minutes, policy.maximum_lifetime_in_minutes
        )));
    }
    let once = body["isUsableOnce"]
        .as_bool()
        .unwrap_or(policy.is_usable_once);
    if policy.is_usable_once && !once {
        return Err(bad(
            "The tenant's policy allows only passes usable once.".into()
        ));
    }
    let value = crate::ids::random_id(32)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(policy.default_length.clamp(8, 48) as usize)
        .collect::<String>();
    let pass = Pass {
        id: crate::ids::new_guid(),
        hash: crate::graph_users_write::password_hash(&value),
        created: Utc::now(),
        lifetime_in_minutes: lifetime,
        is_usable_once: once,
        used: false,
    };
    let out = pass.json(&policy, Some(&value));
    d.passes.insert(user_id, pass);
    Ok((StatusCode::CREATED, Json(out)))
}

/// The user's pass, if any; its value is never shown again.
async fn list(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphError> {
    caller.require(&["UserAuthenticationMethod.Read.All", MANAGE_METHODS[0]])?;
    let world = em.read();
    let d = directory(&world, &caller)?;
    let user = d
        .live(&id)
        .ok_or_else(|| GraphError::not_found(&caller.ids, &id))?;
    let value: Vec<Value> = d
        .passes
        .get(&user.id)
        .map(|p| p.json(&d.tap_policy, None))
        .into_iter()
        .collect();
    Ok(Json(json!({ "value": value })))
}

/// Removes the user's pass: 204.
async fn remove(
    State(em): State<Emulator>,
    caller: Caller,
    Path((id, method)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    caller.require(MANAGE_METHODS)?;
    let mut world = em.write();
    let d = directory_mut(&mut world, &caller)?;
    let user_id = live_user_id(d, &caller, &id)?;
    if !may_manage(&d.roles_of(&caller.object_id), &d.roles_of(&user_id)) {
        return Err(GraphError::denied(&caller.ids));
    }
    match d.passes.get(&user_id) {
        Some(p) if p.id == method => {
            d.passes.remove(&user_id);
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(GraphError::not_found(&caller.ids, &method)),
    }
}

/// The directory's policy.
async fn policy(State(em): State<Emulator>, caller: Caller) -> Result<Json<Value>, GraphError> {
    caller.require(READ_POLICY)?;
    let world = em.read();
    let d = directory(&world, &caller)?;
    let mut out = serde_json::to_value(&d.tap_policy).unwrap_or_default();
    out["@odata.type"] =
        json!("#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration");
    out["id"] = json!("TemporaryAccessPass");
    out["includeTargets"] =
        json!([{ "targetType": "group", "id": "all_users", "isRegistrationRequired": false }]);
    out["excludeTargets"] = json!([]);
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

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
