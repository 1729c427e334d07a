//! Microsoft Graph v1.0: making, changing and deleting users (`POST /v1.0/users`, `PATCH` and
//! `DELETE /v1.0/users/{id}`), as an app keeping accounts in a customer's directory does
//! (issue 29). Each rule below is Microsoft's, from the page
//! cited beside it; messages no page documents are marked as such in emulator/README.md.

use crate::caller::{directory_mut, live_user_id, Caller};
use crate::errors::GraphError;
use crate::graph::{user_json, DEFAULT_PROPS};
use crate::model::User;
use crate::roles;
use crate::secrets::password_hash;
use crate::state::Emulator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/v1.0/users", post(create_user))
        .route("/v1.0/users/{id}", patch(update_user).delete(delete_user))
        .route(
            "/v1.0/users/{id}/revokeSignInSessions",
            post(revoke_sign_in_sessions),
        )
}

/// Permissions that allow creating users (application).
/// https://learn.microsoft.com/en-us/graph/api/user-post-users#permissions
pub const CREATE_USERS: &[&str] = &[
    "User.Create",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// Permissions that allow changing users' ordinary properties (application). The page's
/// generated "least privileged" column names User.ManageIdentities.All, which covers only
/// `identities`.
/// https://learn.microsoft.com/en-us/graph/api/user-update#permissions
pub const UPDATE_USERS: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
/// Also allowed to change `accountEnabled`.
/// https://learn.microsoft.com/en-us/graph/api/user-update#permissions
pub const ENABLE_DISABLE_USERS: &[&str] = &[
    "User.EnableDisableAccount.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// Also allowed to set another user's password (`passwordProfile`).
/// https://learn.microsoft.com/en-us/graph/api/user-update#permissions
pub const RESET_PASSWORDS: &[&str] = &[
    "User-PasswordProfile.ReadWrite.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// Permissions that allow revoking a user's sign-in sessions (application). The page lists
/// only User.RevokeSessions.All now; its earlier version named Directory.ReadWrite.All.
/// https://learn.microsoft.com/en-us/graph/api/user-revokesigninsessions#permissions
pub const REVOKE_SESSIONS: &[&str] = &["User.RevokeSessions.All", "Directory.ReadWrite.All"];

/// Permissions that allow deleting users (application): not Directory.ReadWrite.All.
/// https://learn.microsoft.com/en-us/graph/api/user-delete#permissions
pub const DELETE_USERS: &[&str] = &["User.DeleteRestore.All", "User.ReadWrite.All"];

/// Properties whose change is a sensitive action: on a user who holds an admin role, only a
/// caller holding a role that reaches theirs may change them (deleting is one too).
/// https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/privileged-roles-permissions#who-can-perform-sensitive-actions
const SENSITIVE: &[&str] = &["accountEnabled", "passwordProfile", "userPrincipalName"];

/// The properties a PATCH may change here.
const PATCHABLE: &[&str] = &[
    "accountEnabled",
    "displayName",
    "givenName",
    "surname",
    "mailNickname",
    "passwordProfile",
    "userPrincipalName",
];

/// `POST /v1.0/users`: 201 with the new user; 400 `Request_BadRequest` for a missing required
/// property, a userPrincipalName outside the directory's verified domains or its character
/// and length rules, a password that fails the complexity rules, or a userPrincipalName
/// another object already has.
async fn create_user(
    State(em): State<Emulator>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), GraphError> {
    caller.require(CREATE_USERS)?;
    let bad = |message: String| {
        GraphError::new(
            &caller.ids,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            message,
        )
    };
    // Required: accountEnabled, displayName, mailNickname, passwordProfile, userPrincipalName.
    // https://learn.microsoft.com/en-us/graph/api/user-post-users#request-body
    let required = |name: &str| {
        bad(format!(
            "Invalid value specified for property '{name}' of resource 'User'."
        ))
    };
    let account_enabled = body["accountEnabled"]
        .as_bool()
        .ok_or_else(|| required("accountEnabled"))?;
    let display_name = text(&body["displayName"]).ok_or_else(|| required("displayName"))?;
    let mail_nickname = text(&body["mailNickname"]).ok_or_else(|| required("mailNickname"))?;
    let upn = text(&body["userPrincipalName"]).ok_or_else(|| required("userPrincipalName"))?;
    let password =
        text(&body["passwordProfile"]["password"]).ok_or_else(|| required("passwordProfile"))?;

    let mut world = em.write();
    let d = directory_mut(&mut world, &caller)?;
    if !valid_upn(upn, |domain| d.has_verified_domain(domain)) {
        return Err(bad("Property userPrincipalName is invalid.".into()));
    }
    if !complex_enough(password) {
        return Err(bad("The specified password does not comply with password complexity requirements. Please provide a different password.".into()));
    }
    let user = User {
        id: crate::ids::new_guid(),
        user_principal_name: upn.to_string(),
        display_name: display_name.to_string(),
        given_name: text(&body["givenName"]).map(str::to_string),
        surname: text(&body["surname"]).map(str::to_string),
        mail: None,
        proxy_addresses: Vec::new(),
        other_mails: Vec::new(),
        account_enabled,
        user_type: "Member".into(),
        is_admin: false,
        mail_nickname: Some(mail_nickname.to_string()),
        sign_in_sessions_valid_from: None,
        created_by_app: Some(caller.app_id.clone()),
    };
    let added = d.add_user(user).map_err(|_| {
        bad(
            "Another object with the same value for property userPrincipalName already exists."
                .into(),
        )
    })?;
    let id = added.id.clone();
    let props: Vec<String> = DEFAULT_PROPS.iter().map(|s| s.to_string()).collect();
    let mut out = user_json(added, &props);
    d.set_password(&id, &password_hash(password));
    out["@odata.context"] = json!(format!("{}/v1.0/$metadata#users/$entity", em.base_url()));
    Ok((StatusCode::CREATED, Json(out)))
}

/// `PATCH /v1.0/users/{id|upn}`: 204. Each property needs its permission (`accountEnabled`
/// and `passwordProfile` have their own); a value breaking the rules of `POST` is refused
/// with the same 400, and nothing changes.
async fn update_user(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<StatusCode, GraphError> {
    let bad = |message: String| {
        GraphError::new(
            &caller.ids,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            message,
        )
    };
    let Some(fields) = body.as_object() else {
        return Err(bad("A request body is required.".into()));
    };
    for name in fields.keys() {
        match name.as_str() {
            "accountEnabled" => caller.require(ENABLE_DISABLE_USERS)?,
            "passwordProfile" => caller.require(RESET_PASSWORDS)?,
            known if PATCHABLE.contains(&known) => caller.require(UPDATE_USERS)?,
            other => {
                return Err(bad(format!(
                    "Property '{other}' does not exist on type 'microsoft.graph.user' or cannot be changed here."
                )))
            }
        }
    }
    let invalid = |name: &str| {
        bad(format!(
            "Invalid value specified for property '{name}' of resource 'User'."
        ))
    };
    let enabled = match fields.get("accountEnabled") {
        None => None,
        Some(v) => Some(v.as_bool().ok_or_else(|| invalid("accountEnabled"))?),
    };
    let mut names = Vec::new();
    for name in ["displayName", "givenName", "surname", "mailNickname"] {
        if let Some(v) = fields.get(name) {
            names.push((name, text(v).ok_or_else(|| invalid(name))?.to_string()));
        }
    }
    let password = match fields.get("passwordProfile") {
        None => None,
        Some(p) => {
            let password = text(&p["password"]).ok_or_else(|| invalid("passwordProfile"))?;
            if !complex_enough(password) {
                return Err(bad("The specified password does not comply with password complexity requirements. Please provide a different password.".into()));
            }
            Some(password_hash(password))
        }
    };
    let mut world = em.write();
    let d = directory_mut(&mut world, &caller)?;
    let user_id = live_user_id(d, &caller, &id)?;
    if SENSITIVE.iter().any(|p| fields.contains_key(*p))
        && !roles::may_act_on(&d.roles_of(&caller.object_id), &d.roles_of(&user_id))
    {
        return Err(GraphError::denied(&caller.ids));
    }
    let upn = match fields.get("userPrincipalName") {
        None => None,
        Some(v) => {
            let upn = text(v).ok_or_else(|| invalid("userPrincipalName"))?;
            if !valid_upn(upn, |domain| d.has_verified_domain(domain)) {
                return Err(bad("Property userPrincipalName is invalid.".into()));
            }
            Some(upn.to_string())
        }
    };
    d.update_user(&user_id, |u| {
        if let Some(enabled) = enabled {
            u.account_enabled = enabled;
        }
        for (name, value) in names {
            match name {
                "displayName" => u.display_name = value,
                "givenName" => u.given_name = Some(value),
                "surname" => u.surname = Some(value),
                _ => u.mail_nickname = Some(value),
            }
        }
        if let Some(upn) = upn {
            u.user_principal_name = upn;
        }
    })
    .map_err(|_| {
        bad(
            "Another object with the same value for property userPrincipalName already exists."
                .into(),
        )
    })?;
    if let Some(hash) = password {
        d.set_password(&user_id, &hash);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1.0/users/{id|upn}`: 204; the user goes to the recycle bin (deleted items) for
/// 30 days, as Microsoft does.
async fn delete_user(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    caller.require(DELETE_USERS)?;
    let mut world = em.write();
    let d = directory_mut(&mut world, &caller)?;
    let user_id = live_user_id(d, &caller, &id)?;
    if !roles::may_act_on(&d.roles_of(&caller.object_id), &d.roles_of(&user_id)) {
        return Err(GraphError::denied(&caller.ids));
    }
    d.soft_delete(&user_id)
        .map_err(|_| GraphError::not_found(&caller.ids, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1.0/users/{id|upn}/revokeSignInSessions`: every refresh token and session
/// cookie the user holds stops working; `signInSessionsValidFromDateTime` becomes now.
/// 200 with `{"value": true}`.
async fn revoke_sign_in_sessions(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphError> {
    caller.require(REVOKE_SESSIONS)?;
    let mut world = em.write();
    let d = directory_mut(&mut world, &caller)?;
    let user_id = live_user_id(d, &caller, &id)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    d.update_user(&user_id, |u| u.sign_in_sessions_valid_from = Some(now))
        .map_err(|_| GraphError::not_found(&caller.ids, &id))?;
    Ok(Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#Edm.Boolean", em.base_url()),
        "value": true,
    })))
}

/// A non-empty string.
fn text(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.trim().is_empty())
}

/// Entra's username rules: `alias@domain` with the domain verified in the directory; the
/// alias of `A-Z a-z 0-9 ' . - _ ! # ^ ~`, at most 64 characters and not ending in a period;
/// the domain at most 48; the whole at most 113.
/// https://learn.microsoft.com/en-us/graph/api/user-post-users#request-body
/// https://learn.microsoft.com/en-us/entra/identity/authentication/concept-sspr-policy#username-policies
pub fn valid_upn(upn: &str, verified: impl Fn(&str) -> bool) -> bool {
    let Some((alias, domain)) = upn.split_once('@') else {
        return false;
    };
    !alias.is_empty()
        && alias.len() <= 64
        && domain.len() <= 48
        && upn.len() <= 113
        && !alias.ends_with('.')
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c))
        && verified(domain)
}

/// Entra's password rules: 8 to 256 characters, no characters outside ASCII, and three of
/// lowercase, uppercase, digits and symbols.
/// https://learn.microsoft.com/en-us/entra/identity/authentication/concept-sspr-policy#microsoft-entra-password-policies
pub fn complex_enough(password: &str) -> bool {
    let length = password.chars().count();
    if !(8..=256).contains(&length) || !password.is_ascii() {
        return false;
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password
            .chars()
            .any(|c| c.is_ascii_punctuation() || c == ' '),
    ];
    classes.iter().filter(|present| **present).count() >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_entras_rules() {
        let contoso = |d: &str| d == "contoso.com";
        assert!(valid_upn("msp-alex@contoso.com", contoso));
        assert!(valid_upn("o'brien.j_1!#^~@contoso.com", contoso));
        assert!(
            !valid_upn("msp-alex@fabrikam.com", contoso),
            "not verified here"
        );
        assert!(!valid_upn("alex.@contoso.com", contoso), "period before @");
        assert!(!valid_upn("alé@contoso.com", contoso), "accent");
        assert!(!valid_upn("a b@contoso.com", contoso));
        assert!(!valid_upn("@contoso.com", contoso));
        assert!(!valid_upn("alex", contoso));
        assert!(valid_upn(
            &format!("{}@contoso.com", "a".repeat(64)),
            contoso
        ));
        assert!(!valid_upn(
            &format!("{}@contoso.com", "a".repeat(65)),
            contoso
        ));
    }

    #[test]
    fn passwords_need_eight_characters_of_three_kinds() {
        assert!(complex_enough("xWwvJ]6NMw+bWH-d"));
        assert!(complex_enough("Abcdefg1"));
        assert!(!complex_enough("Abcdef1"), "seven");
        assert!(!complex_enough("abcdefgh1"), "two kinds");
        assert!(!complex_enough("Ab1éééééé"), "not ASCII");
        assert!(!complex_enough(&format!("Ab1{}", "x".repeat(254))), "257");
    }
}
