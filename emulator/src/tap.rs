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
use crate::secrets::{password_hash, Pass};
use crate::state::Emulator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::Utc;
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
        hash: password_hash(&value),
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
