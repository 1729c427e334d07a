//! The control API under `/_emulator/…` (bearer control token) and the small HTML control page
//! `/_emulator/ui` (same token, via `?token=` once, then a cookie).

use crate::faults::FaultSpec;
use crate::html::{esc, page};
use crate::ids::new_guid;
use crate::membership::GroupError;
use crate::model::{AppCertificate, Consent, ModelError, User};
use crate::seed::{AppSeed, DirectorySeed, Seed};
use crate::state::Emulator;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const COOKIE: &str = "gatehouse_emulator_control";

pub fn routes(em: Emulator) -> Router<Emulator> {
    Router::new()
        .route("/_emulator/state", get(state))
        .route("/_emulator/directories", post(create_directory))
        .route("/_emulator/apps", post(create_app))
        .route(
            "/_emulator/apps/{client_id}/redirect-uris",
            post(add_redirect_uri),
        )
        .route(
            "/_emulator/apps/{client_id}/certificates",
            post(add_certificate),
        )
        .route("/_emulator/apps/{client_id}/secret", put(set_secret))
        .route("/_emulator/directories/{tid}/users", post(add_user))
        .route(
            "/_emulator/directories/{tid}/users/generate",
            post(generate),
        )
        .route(
            "/_emulator/directories/{tid}/users/{id}",
            axum::routing::patch(update_user).delete(delete_user),
        )
        .route(
            "/_emulator/directories/{tid}/users/{id}/disable",
            post(disable),
        )
        .route(
            "/_emulator/directories/{tid}/users/{id}/enable",
            post(enable),
        )
        .route(
            "/_emulator/directories/{tid}/users/{id}/restore",
            post(restore),
        )
        .route(
            "/_emulator/directories/{tid}/users/{id}/sign-in",
            post(sign_in),
        )
        .route(
            "/_emulator/directories/{tid}/policies/temporary-access-pass",
            put(set_tap_policy),
        )
        .route("/_emulator/directories/{tid}/groups", post(add_group))
        .route(
            "/_emulator/directories/{tid}/groups/{id}",
            axum::routing::delete(delete_group),
        )
        .route(
            "/_emulator/directories/{tid}/groups/{id}/members",
            post(add_member),
        )
        .route(
            "/_emulator/directories/{tid}/groups/{id}/members/{member}",
            axum::routing::delete(remove_member),
        )
        .route(
            "/_emulator/directories/{tid}/consents/{client_id}",
            put(grant_consent).delete(revoke_consent),
        )
        .route(
            "/_emulator/directories/{tid}/expire-delta-tokens",
            post(expire_delta_tokens),
        )
        .route("/_emulator/tokens", post(mint_token))
        .route("/_emulator/faults", post(add_faults).delete(clear_faults))
        .route("/_emulator/settings", put(put_settings))
        .route("/_emulator/requests", get(requests).delete(reset_requests))
        .route("/_emulator/subscriptions/{id}/lifecycle", post(lifecycle))
        .route("/_emulator/ui", get(ui).post(ui_action))
        .route_layer(axum::middleware::from_fn_with_state(
            em,
            require_control_token,
        ))
}

/// What went wrong with a control request.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    BadRequest(String),
}

impl From<GroupError> for ControlError {
    fn from(e: GroupError) -> Self {
        ControlError::Model(e.into())
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match &self {
            ControlError::Model(ModelError::Duplicate(_) | ModelError::NotDeleted(_)) => {
                StatusCode::CONFLICT
            }
            ControlError::Model(ModelError::Group(GroupError::Duplicate(_))) => {
                StatusCode::CONFLICT
            }
            ControlError::Model(ModelError::Group(GroupError::NotAllowed(_))) => {
                StatusCode::BAD_REQUEST
            }
            ControlError::Model(_) => StatusCode::NOT_FOUND,
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

fn same(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

async fn require_control_token(State(em): State<Emulator>, req: Request, next: Next) -> Response {
    let expected = em.control_token();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let query = (req.uri().path() == "/_emulator/ui")
        .then(|| {
            url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        })
        .flatten();
    let from_query = query.as_deref().is_some_and(|t| same(t, expected));
    let ok = from_query
        || bearer.as_deref().is_some_and(|t| same(t, expected))
        || cookie_token(req.headers()).is_some_and(|t| same(&t, expected));
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "the control token is missing or wrong" })),
        )
            .into_response();
    }
    let mut res = next.run(req).await;
    if from_query {
        // Keep the token out of later URLs (and so out of history and referrers).
        if let Ok(v) =
            format!("{COOKIE}={expected}; Path=/_emulator; HttpOnly; SameSite=Strict").parse()
        {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    res
}

async fn state(State(em): State<Emulator>) -> Json<Value> {
    let world = em.read();
    let directories: Vec<Value> = world
        .sorted_directories()
        .iter()
        .map(|d| json!({
            "tenantId": d.tenant_id, "displayName": d.display_name, "domains": d.domains,
            "users": d.live_count(), "changeSequence": d.seq(),
            "consents": d.consents.iter().map(|(c, x)| json!({"clientId": c, "roles": x.roles})).collect::<Vec<_>>(),
        }))
        .collect();
    let apps: Vec<Value> = world
        .apps
        .values()
        .map(|a| json!({
            "clientId": a.client_id, "displayName": a.display_name, "redirectUris": a.redirect_uris,
            "applicationPermissions": a.application_permissions,
        }))
        .collect();
    Json(json!({ "directories": directories, "apps": apps }))
}

async fn create_directory(
    State(em): State<Emulator>,
    Json(d): Json<DirectorySeed>,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let tenant_id = d.tenant_id.to_ascii_lowercase();
    if em.read().directories.contains_key(&tenant_id) {
        return Err(ModelError::Duplicate(tenant_id).into());
    }
    em.load(Seed {
        directories: vec![d],
        apps: vec![],
    })
    .map_err(|e| ControlError::BadRequest(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(json!({ "tenantId": tenant_id }))))
}

async fn create_app(
    State(em): State<Emulator>,
    Json(app): Json<AppSeed>,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let client_id = app.client_id.to_ascii_lowercase();
    em.load(Seed {
        directories: vec![],
        apps: vec![app],
    })
    .map_err(|e| ControlError::BadRequest(e.to_string()))?;
    let world = em.read();
    let a = world
        .apps
        .get(&client_id)
        .ok_or_else(|| ModelError::UnknownApp(client_id.clone()))?;
    // The caller created this app and needs its secret once, like the portal shows it once.
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "clientId": a.client_id, "secret": a.secret, "redirectUris": a.redirect_uris }),
        ),
    ))
}

#[derive(Deserialize)]
struct RedirectUri {
    uri: String,
}

async fn add_redirect_uri(
    State(em): State<Emulator>,
    Path(client_id): Path<String>,
    Json(body): Json<RedirectUri>,
) -> Result<StatusCode, ControlError> {
    url::Url::parse(&body.uri).map_err(|e| ControlError::BadRequest(format!("not a URL: {e}")))?;
    em.register_redirect_uri(&client_id, &body.uri)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct CertificateUpload {
    pem: String,
}

/// Uploads a certificate to an app registration (the public part only).
async fn add_certificate(
    State(em): State<Emulator>,
    Path(client_id): Path<String>,
    Json(body): Json<CertificateUpload>,
) -> Result<StatusCode, ControlError> {
    let cert = AppCertificate::from_pem(&body.pem)
        .map_err(|e| ControlError::BadRequest(format!("not a certificate: {e}")))?;
    let mut world = em.write();
    let app = world
        .apps
        .get_mut(&client_id.to_ascii_lowercase())
        .ok_or_else(|| ModelError::UnknownApp(client_id.clone()))?;
    app.certificates.push(cert);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SecretSettings {
    /// Unix seconds; in the past: the secret has expired.
    expires_at: Option<i64>,
}

/// Sets when the app's client secret expires.
async fn set_secret(
    State(em): State<Emulator>,
    Path(client_id): Path<String>,
    Json(body): Json<SecretSettings>,
) -> Result<StatusCode, ControlError> {
    let mut world = em.write();
    let app = world
        .apps
        .get_mut(&client_id.to_ascii_lowercase())
        .ok_or_else(|| ModelError::UnknownApp(client_id.clone()))?;
    app.secret_expires_at = body.expires_at;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_user(
    State(em): State<Emulator>,
    Path(tid): Path<String>,
    Json(user): Json<User>,
) -> Result<(StatusCode, Json<User>), ControlError> {
    let mut world = em.write();
    let added = world.directory_mut(&tid)?.add_user(user)?.clone();
    Ok((StatusCode::CREATED, Json(added)))
}

/// Fields of a user a PATCH may change; absent ones stay.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserPatch {
    user_principal_name: Option<String>,
    display_name: Option<String>,
    given_name: Option<String>,
    surname: Option<String>,
    mail: Option<String>,
    proxy_addresses: Option<Vec<String>>,
    other_mails: Option<Vec<String>>,
    account_enabled: Option<bool>,
    user_type: Option<String>,
    is_admin: Option<bool>,
}

async fn update_user(
    State(em): State<Emulator>,
    Path((tid, id)): Path<(String, String)>,
    Json(p): Json<UserPatch>,
) -> Result<Json<User>, ControlError> {
    let mut world = em.write();
    let user = world.directory_mut(&tid)?.update_user(&id, |u| {
        if let Some(v) = p.user_principal_name {
            u.user_principal_name = v;
        }
        if let Some(v) = p.display_name {
            u.display_name = v;
        }
        if p.given_name.is_some() {
            u.given_name = p.given_name;
        }
        if p.surname.is_some() {
            u.surname = p.surname;
        }
        if p.mail.is_some() {
            u.mail = p.mail;
        }
        if let Some(v) = p.proxy_addresses {
            u.proxy_addresses = v;
        }
        if let Some(v) = p.other_mails {
            u.other_mails = v;
        }
        if let Some(v) = p.account_enabled {
            u.account_enabled = v;
        }
        if let Some(v) = p.user_type {
            u.user_type = v;
        }
        if let Some(v) = p.is_admin {
            u.is_admin = v;
        }
    })?;
    Ok(Json(user))
}

fn set_enabled(
    em: &Emulator,
    tid: &str,
    id: &str,
    enabled: bool,
) -> Result<Json<User>, ControlError> {
    let mut world = em.write();
    let user = world
        .directory_mut(tid)?
        .update_user(id, |u| u.account_enabled = enabled)?;
    Ok(Json(user))
}

async fn disable(
    State(em): State<Emulator>,
    Path((tid, id)): Path<(String, String)>,
) -> Result<Json<User>, ControlError> {
    set_enabled(&em, &tid, &id, false)
}

async fn enable(
    State(em): State<Emulator>,
    Path((tid, id)): Path<(String, String)>,
) -> Result<Json<User>, ControlError> {
    set_enabled(&em, &tid, &id, true)
}

#[derive(Deserialize)]
struct SignIn {
    password: String,
}

/// Signs the user in with `password` (their password, or their Temporary Access Pass) as
/// the sign-in page does (`/{tenant}/signin`): 204, or 401.
async fn sign_in(
    State(em): State<Emulator>,
    Path((tid, id)): Path<(String, String)>,
    Json(body): Json<SignIn>,
) -> Result<StatusCode, ControlError> {
    let mut world = em.write();
    Ok(
        match world.directory_mut(&tid)?.sign_in(&id, &body.password) {
            Ok(_) => StatusCode::NO_CONTENT,
            Err(_) => StatusCode::UNAUTHORIZED,
        },
    )
}

/// Sets the directory's Temporary Access Pass policy (fields as Graph names them; absent
/// ones take Microsoft's defaults).
async fn set_tap_policy(
    State(em): State<Emulator>,
    Path(tid): Path<String>,
    Json(policy): Json<crate::secrets::TapPolicy>,
) -> Result<StatusCode, ControlError> {
    em.write().directory_mut(&tid)?.tap_policy = policy;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a group (`members` as in a seed file: users by id or sign-in name, groups by id or
/// display name).
async fn add_group(
    State(em): State<Emulator>,
    Path(tid): Path<String>,
    Json(group): Json<crate::membership::Group>,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let id = group.id.clone();
    em.write().directory_mut(&tid)?.add_groups(vec![group])?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// Deletes a group; it leaves the groups it was in.
async fn delete_group(
    State(em): State<Emulator>,
    Path((tid, id)): Path<(String, String)>,
) -> Result<StatusCode, ControlError> {
    em.write().directory_mut(&tid)?.groups.delete(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Member {
    id: String,
}

/// Adds a user (by id or sign-in name) or a group (by id or display name) to a group.
async fn add_member(
    State(em): State<Emulator>,
    Path((tid, id)): Path<(String, String)>,
    Json(m): Json<Member>,
) -> Result<StatusCode, ControlError> {
    let mut world = em.write();
    let d = world.directory_mut(&tid)?;
    let member = d.member_id(&m.id)?;
    d.groups.add_member(&id, &member)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(em): State<Emulator>,
    Path((tid, id, member)): Path<(String, String, String)>,
) -> Result<StatusCode, ControlError> {
    let mut world = em.write();
    let d = world.directory_mut(&tid)?;
    let member = d.member_id(&member)?;
    d.groups.remove_member(&id, &member)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    permanent: bool,
}

/// Soft delete (to the recycle bin), or `?permanent=true` for a hard delete.
async fn delete_user(
    State(em): State<Emulator>,
    Path((tid, id)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ControlError> {
    let mut world = em.write();
    let d = world.directory_mut(&tid)?;
    if q.permanent {
        d.hard_delete(&id)?;
    } else {
        d.soft_delete(&id)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn restore(
    State(em): State<Emulator>,
    Path((tid, id)): Path<(String, String)>,
) -> Result<StatusCode, ControlError> {
    em.write().directory_mut(&tid)?.restore(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Generate {
    count: usize,
    #[serde(default)]
    domain: Option<String>,
}

/// Adds `count` synthetic members `userN@domain` in one go.
async fn generate(
    State(em): State<Emulator>,
    Path(tid): Path<String>,
    Json(g): Json<Generate>,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    if g.count > 1_000_000 {
        return Err(ControlError::BadRequest(
            "at most 1 000 000 users at once".into(),
        ));
    }
    let started = std::time::Instant::now();
    let mut world = em.write();
    let d = world.directory_mut(&tid)?;
    let domain = g.domain.unwrap_or_else(|| d.default_domain());
    let mut n = d.seq();
    let mut added = 0;
    while added < g.count {
        n += 1;
        let upn = format!("user{n}@{domain}");
        if d.find(&upn).is_some() {
            continue;
        }
        d.add_user(User {
            id: new_guid(),
            user_principal_name: upn.clone(),
            display_name: format!("Synthetic User {n}"),
            given_name: Some("Synthetic".into()),
            surname: Some(format!("User{n}")),
            mail: Some(upn.clone()),
            proxy_addresses: vec![format!("SMTP:{upn}")],
            other_mails: vec![],
            account_enabled: true,
            user_type: "Member".into(),
            is_admin: false,
            mail_nickname: None,
            sign_in_sessions_valid_from: None,
            created_by_app: None,
        })?;
        added += 1;
    }
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "added": added, "users": d.live_count(), "millis": started.elapsed().as_millis() as u64 }),
        ),
    ))
}

#[derive(Deserialize, Default)]
struct ConsentBody {
    #[serde(default)]
    roles: Option<Vec<String>>,
}

/// Grants admin consent without the pages (roles default to the app's application permissions).
async fn grant_consent(
    State(em): State<Emulator>,
    Path((tid, client_id)): Path<(String, String)>,
    body: Option<Json<ConsentBody>>,
) -> Result<StatusCode, ControlError> {
    let client_id = client_id.to_ascii_lowercase();
    let mut world = em.write();
    let app_roles = world
        .apps
        .get(&client_id)
        .map(|a| a.application_permissions.clone())
        .ok_or_else(|| ModelError::UnknownApp(client_id.clone()))?;
    let roles = body.and_then(|Json(b)| b.roles).unwrap_or(app_roles);
    let d = world.directory_mut(&tid)?;
    let sp = d
        .consents
        .get(&client_id)
        .map(|c| c.service_principal_id.clone())
        .unwrap_or_else(new_guid);
    d.consents.insert(
        client_id,
        Consent {
            service_principal_id: sp,
            roles,
            granted_at: chrono::Utc::now().timestamp(),
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_consent(
    State(em): State<Emulator>,
    Path((tid, client_id)): Path<(String, String)>,
) -> Result<StatusCode, ControlError> {
    let mut world = em.write();
    let d = world.directory_mut(&tid)?;
    d.consents.remove(&client_id.to_ascii_lowercase());
    Ok(StatusCode::NO_CONTENT)
}

async fn expire_delta_tokens(
    State(em): State<Emulator>,
    Path(tid): Path<String>,
) -> Result<StatusCode, ControlError> {
    em.write().directory_mut(&tid)?.expire_delta_tokens();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRequest {
    tenant_id: String,
    client_id: String,
    #[serde(default)]
    roles: Option<Vec<String>>,
    /// Seconds from now; negative gives an already expired token.
    #[serde(default = "default_lifetime")]
    expires_in: i64,
}

fn default_lifetime() -> i64 {
    3599
}

/// Mints an app-only Graph token directly (e.g. an expired one, or one with other roles).
async fn mint_token(
    State(em): State<Emulator>,
    Json(t): Json<TokenRequest>,
) -> Result<Json<Value>, ControlError> {
    let claims = {
        let world = em.read();
        let client_id = t.client_id.to_ascii_lowercase();
        if !world.apps.contains_key(&client_id) {
            return Err(ModelError::UnknownApp(client_id).into());
        }
        let d = world.directory(&t.tenant_id)?;
        let mut consent = d.consents.get(&client_id).cloned().unwrap_or(Consent {
            service_principal_id: new_guid(),
            roles: vec![],
            granted_at: 0,
        });
        if let Some(roles) = t.roles {
            consent.roles = roles;
        }
        crate::identity::app_only_claims(&d.tenant_id, &client_id, &consent, t.expires_in)
    };
    let token = em
        .keys()
        .sign(&claims)
        .map_err(|e| ControlError::BadRequest(e.to_string()))?;
    Ok(Json(json!({ "access_token": token })))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(FaultSpec),
    Many(Vec<FaultSpec>),
}

async fn add_faults(State(em): State<Emulator>, Json(body): Json<OneOrMany>) -> StatusCode {
    let specs = match body {
        OneOrMany::One(f) => vec![f],
        OneOrMany::Many(v) => v,
    };
    for spec in specs {
        em.faults().add(spec);
    }
    StatusCode::NO_CONTENT
}

/// Emulator-wide settings a test may change: `{"deltaLinkLifetimeSecs": 2}`,
/// `{"consentDelaySecs": 20}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Settings {
    delta_link_lifetime_secs: Option<i64>,
    consent_delay_secs: Option<i64>,
}

async fn put_settings(State(em): State<Emulator>, Json(s): Json<Settings>) -> StatusCode {
    if let Some(secs) = s.delta_link_lifetime_secs {
        em.set_delta_link_lifetime_secs(secs);
    }
    if let Some(secs) = s.consent_delay_secs {
        em.set_consent_delay_secs(secs);
    }
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(em): State<Emulator>) -> StatusCode {
    em.faults().clear();
    StatusCode::NO_CONTENT
}

async fn requests(State(em): State<Emulator>) -> Json<HashMap<String, u64>> {
    Json(em.faults().counts())
}

async fn reset_requests(State(em): State<Emulator>) -> StatusCode {
    em.faults().reset_counts();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct LifecycleEvent {
    event: String,
}

/// Sends a lifecycle event (`reauthorizationRequired`, the only one Microsoft sends for users).
async fn lifecycle(
    State(em): State<Emulator>,
    Path(id): Path<String>,
    Json(body): Json<LifecycleEvent>,
) -> Result<Json<Value>, ControlError> {
    let status = crate::subscriptions::send_lifecycle(&em, &id, &body.event)
        .await
        .map_err(|e| ControlError::BadRequest(e.to_string()))?;
    Ok(Json(json!({ "deliveredStatus": status })))
}

/// How many users per directory the page lists.
const UI_ROWS: usize = 200;

async fn ui(State(em): State<Emulator>, Query(q): Query<HashMap<String, String>>) -> Response {
    let needle = q
        .get("q")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    let world = em.read();
    let mut body = format!(
        r#"<p>Disable or delete directory users by hand; Gatehouse sees the change on its next sync.</p><form method="get"><label>Find users <input name="q" value="{}"></label><button type="submit">Search</button></form>"#,
        esc(&needle)
    );
    for d in world.sorted_directories() {
        body.push_str(&format!(
            "<h2>{} <small>{}</small></h2><table class=\"users\"><tr><th>User</th><th>State</th><th></th></tr>",
            esc(&d.display_name),
            esc(&d.tenant_id)
        ));
        let matching = d.all().filter(|s| {
            needle.is_empty()
                || s.user.user_principal_name.to_lowercase().contains(&needle)
                || s.user.display_name.to_lowercase().contains(&needle)
        });
        for s in matching.take(UI_ROWS) {
            let u = &s.user;
            let state = if s.deleted {
                "deleted"
            } else if u.account_enabled {
                "enabled"
            } else {
                "disabled"
            };
            let actions: &[(&str, &str)] = if s.deleted {
                &[("restore", "Restore"), ("purge", "Delete permanently")]
            } else if u.account_enabled {
                &[("disable", "Disable"), ("delete", "Delete")]
            } else {
                &[("enable", "Enable"), ("delete", "Delete")]
            };
            let mut buttons = String::new();
            for (action, label) in actions {
                buttons.push_str(&format!(
                    r#"<button type="submit" name="action" value="{action}">{label}</button>"#
                ));
            }
            body.push_str(&format!(
                r#"<tr><td>{name} &lt;{upn}&gt;</td><td>{state}</td><td><form method="post"><input type="hidden" name="tenant" value="{tid}"><input type="hidden" name="user" value="{id}">{buttons}</form></td></tr>"#,
                name = esc(&u.display_name),
                upn = esc(&u.user_principal_name),
                tid = esc(&d.tenant_id),
                id = esc(&u.id),
            ));
        }
        body.push_str("</table>");
        // A search is for users; the groups show on the unfiltered page.
        if needle.is_empty() {
            body.push_str(&groups_table(d));
        }
    }
    page("Entra emulator: directories", &body).into_response()
}

/// A directory's groups on the control page: each with its direct members (users and nested
/// groups), a button to take one out, and a form to add someone.
fn groups_table(d: &crate::model::Directory) -> String {
    let mut out = String::from(
        "<h3>Groups</h3><table class=\"groups\"><tr><th>Group</th><th>Direct members</th><th>Add</th></tr>",
    );
    for (_, g) in d.groups.list_after(0) {
        let kind = if g.is_unified() {
            "Microsoft 365"
        } else {
            "security"
        };
        let hidden = |member: &str| {
            format!(
                r#"<input type="hidden" name="tenant" value="{}"><input type="hidden" name="group" value="{}"><input type="hidden" name="user" value="{}">"#,
                esc(&d.tenant_id),
                esc(&g.id),
                esc(member)
            )
        };
        let mut members = String::new();
        for m in &g.members {
            let name = match (d.find(m), d.groups.get(m)) {
                (Some(u), _) => format!(
                    "{} &lt;{}&gt;",
                    esc(&u.user.display_name),
                    esc(&u.user.user_principal_name)
                ),
                (None, Some(n)) => format!("group {}", esc(&n.display_name)),
                _ => esc(m),
            };
            members.push_str(&format!(
                r#"<form method="post" class="member">{name} {}<button type="submit" name="action" value="leave">Remove from group</button></form>"#,
                hidden(m)
            ));
        }
        out.push_str(&format!(
            r#"<tr data-group="{name}"><td>{name} <small>({kind})</small></td><td>{members}</td><td><form method="post"><input type="hidden" name="tenant" value="{tid}"><input type="hidden" name="group" value="{gid}"><input name="user" placeholder="sign-in name or group" aria-label="Member to add to {name}"><button type="submit" name="action" value="join">Add</button></form></td></tr>"#,
            name = esc(&g.display_name),
            tid = esc(&d.tenant_id),
            gid = esc(&g.id),
        ));
    }
    out.push_str("</table>");
    out
}

#[derive(Deserialize)]
struct UiAction {
    tenant: String,
    user: String,
    action: String,
    /// For `join` and `leave`: the group.
    #[serde(default)]
    group: String,
}

async fn ui_action(
    State(em): State<Emulator>,
    Form(a): Form<UiAction>,
) -> Result<Response, ControlError> {
    {
        let mut world = em.write();
        let d = world.directory_mut(&a.tenant)?;
        match a.action.as_str() {
            "disable" => d
                .update_user(&a.user, |u| u.account_enabled = false)
                .map(|_| ())?,
            "enable" => d
                .update_user(&a.user, |u| u.account_enabled = true)
                .map(|_| ())?,
            "delete" => d.soft_delete(&a.user)?,
            "restore" => d.restore(&a.user)?,
            "purge" => d.hard_delete(&a.user)?,
            "join" => {
                let member = d.member_id(a.user.trim())?;
                d.groups.add_member(&a.group, &member)?
            }
            "leave" => d.groups.remove_member(&a.group, &a.user)?,
            other => return Err(ControlError::BadRequest(format!("unknown action {other}"))),
        }
    }
    // Post/redirect/get, so a reload does not repeat the action.
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/_emulator/ui")]).into_response())
}
