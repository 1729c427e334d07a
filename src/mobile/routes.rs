//! HTTP edge of the mobile API, and the mobile web app's files. Handlers only translate.

use super::error::{ApiError, ErrorBody};
use super::service;
use crate::domain::DeviceId;
use crate::server::client_ip::ClientIp;
use crate::server::state::AppState;
use crate::server::throttle::Action;
use crate::server::util::format_time;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse mobile API",
        version = "1",
        description = "Used by the Gatehouse phone app. State-changing requests carry a compact \
            JWS (ES256) signed by the device key in the body field `jws`; its payload names \
            `device_id` (except at registration), `purpose`, the object acted on, and `iat` \
            (Unix seconds, within 5 minutes of the server's clock)."
    ),
    servers((url = "/api/mobile/v1")),
    paths(register_device, forget_device, request_code, confirm_code, challenge_info, approve, deny),
    components(schemas(RegisterDevice, DeviceCreated, SignedRequest, EmailVerified, ChallengeInfo, AccessAsked, Approved, ApprovedUser, ErrorBody))
)]
pub struct MobileApiDoc;

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/devices", post(register_device))
        .route("/devices/{id}", delete(forget_device))
        .route("/devices/{id}/emails", post(request_code))
        .route("/devices/{id}/emails/confirm", post(confirm_code))
        .route("/challenges/{id}", get(challenge_info))
        .route("/challenges/{id}/approve", post(approve))
        .route("/challenges/{id}/deny", post(deny))
        .fallback(|| async {
            ApiError::InvalidRequest("there is no such endpoint in the mobile API".into())
        })
        .layer(axum::middleware::map_response(documented));
    Router::new()
        .nest("/api/mobile/v1", api)
        .route("/app", get(app_page))
        .route("/app/", get(app_page))
        .route("/app/scan", get(app_page))
        .route(
            "/app/app.js",
            get(|| asset("text/javascript", include_str!("app/app.js"))),
        )
        .route(
            "/app/app.css",
            get(|| asset("text/css", include_str!("app/app.css"))),
        )
        .route(
            "/app/icon.svg",
            get(|| asset("image/svg+xml", include_str!("app/icon.svg"))),
        )
        .route(
            "/app/manifest.webmanifest",
            get(|| {
                asset(
                    "application/manifest+json",
                    include_str!("app/manifest.webmanifest"),
                )
            }),
        )
}

/// The mobile API, and the two URLs Microsoft Graph delivers change notifications to (on
/// the base host's root: each names its own server).
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = MobileApiDoc::openapi();
    let graph = crate::notifications::routes::NotificationsDoc::openapi();
    for (path, mut item) in graph.paths.paths {
        item.servers = Some(vec![utoipa::openapi::server::Server::new("/")]);
        doc.paths.paths.insert(path, item);
    }
    if let (Some(ours), Some(theirs)) = (doc.components.as_mut(), graph.components) {
        ours.schemas.extend(theirs.schemas);
    }
    Json(doc)
}

async fn app_page() -> Response {
    asset("text/html; charset=utf-8", include_str!("app/index.html")).await
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Refuses a request over its client's rate before anything is read or written.
fn throttle(state: &AppState, action: Action, client: ClientIp) -> Result<(), ApiError> {
    state
        .throttles
        .check(action, client.network())
        .map_err(|t| {
            let what = match action {
                Action::DeviceRegistration => {
                    "too many phones were registered from this network this hour"
                }
                Action::LoginCode | Action::PhoneAction => {
                    "too many sign-in requests came from this network this minute"
                }
            };
            ApiError::RateLimited {
                what: what.into(),
                retry_after: i64::try_from(t.retry_after).unwrap_or(i64::MAX),
            }
        })
}

/// axum answers what no handler sees (an address it cannot decode, a method a route does
/// not take, a body over the limit) in plain text; the mobile API answers every refusal in
/// its documented shape, with axum's sentence as the message.
async fn documented(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        s if s.is_server_error() => "internal",
        _ => "invalid_request",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_string()
    } else {
        text
    };
    let body = serde_json::to_vec(&ErrorBody {
        error: super::error::ErrorDetail {
            code: code.into(),
            message,
        },
    })
    .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Turns a body that is not the expected JSON into a specific `invalid_request`.
fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(|e| {
        ApiError::InvalidRequest(format!(
            "the body is not the expected JSON: {}",
            e.body_text()
        ))
    })
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterDevice {
    /// The device's public key as a JWK (kty EC, crv P-256, x, y).
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
    /// Compact JWS signed by that key, payload `{"purpose":"register","iat":…}`.
    pub jws: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceCreated {
    pub device_id: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SignedRequest {
    /// Compact JWS signed by the device key.
    pub jws: String,
}

#[derive(Serialize, ToSchema)]
pub struct EmailVerified {
    pub email: String,
    /// RFC 3339 time.
    pub verified_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChallengeInfo {
    pub tenant_name: String,
    /// The tenant's host the code was shown on, e.g. `acme.gatehouse.example`.
    pub tenant_host: String,
    /// The browser's address as Gatehouse saw it (through trusted proxies).
    pub requester_ip: String,
    pub user_agent: String,
    /// Three numbers; the one the browser shows is among them.
    pub numbers: Vec<u8>,
    /// RFC 3339 time.
    pub expires_at: String,
    /// Present when the request is not a sign-in but a request for access at a customer:
    /// the phone names the customer, the account and the roles before the technician approves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessAsked>,
}

/// What an access request opens, as the phone shows it.
#[derive(Serialize, ToSchema)]
pub struct AccessAsked {
    /// The customer's name, e.g. `Fabrikam`.
    pub customer: String,
    /// The account opened there, e.g. `msp-alex@fabrikam.com`.
    pub account: String,
    /// The Microsoft Entra roles it will hold, by name.
    pub roles: Vec<String>,
    /// How long it stays open.
    pub window_minutes: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Approved {
    pub user: ApprovedUser,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovedUser {
    pub username: String,
    pub status: String,
}

fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format_time(ts))
}

/// Register a device key.
#[utoipa::path(post, path = "/devices", request_body = RegisterDevice,
    responses((status = 201, body = DeviceCreated, description = "New device"),
              (status = 200, body = DeviceCreated, description = "This key was registered before"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn register_device(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    b: Result<Json<RegisterDevice>, JsonRejection>,
) -> Result<Response, ApiError> {
    throttle(&state, Action::DeviceRegistration, client)?;
    let req = body(b)?;
    let (device_id, created) = service::register(&state, &req.public_key, &req.jws).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(DeviceCreated {
            device_id: device_id.to_string(),
        }),
    )
        .into_response())
}

/// Forget this phone (purpose `forget`): it is revoked everywhere, its verified emails are
/// dropped, and the sign-ins it approved end. The app makes a new key to enroll again.
#[utoipa::path(delete, path = "/devices/{id}", request_body = SignedRequest,
    params(("id" = String, Path, description = "Device id")),
    responses((status = 204, description = "Forgotten"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "device_revoked: already forgotten or revoked"),
              (status = 404, body = ErrorBody)))]
async fn forget_device(
    State(state): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<SignedRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let req = body(b)?;
    service::forget(&state, &DeviceId::from_outside(id), &req.jws).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mail a verification code (purpose `verify_email`, payload `email`).
#[utoipa::path(post, path = "/devices/{id}/emails", request_body = SignedRequest,
    params(("id" = String, Path, description = "Device id")),
    responses((status = 202, description = "Code mailed"), (status = 400, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "too_soon, or rate_limited: too many mails to this address or from this network this hour (Retry-After)")))]
async fn request_code(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    Path(id): Path<String>,
    b: Result<Json<SignedRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let req = body(b)?;
    service::request_code(
        &state,
        &DeviceId::from_outside(id),
        &req.jws,
        &client.network().to_string(),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Confirm a code (purpose `confirm_email`, payload `email`, `code`).
#[utoipa::path(post, path = "/devices/{id}/emails/confirm", request_body = SignedRequest,
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = EmailVerified), (status = 400, body = ErrorBody),
              (status = 410, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "too_many_attempts for this code, or email_locked: too many wrong codes for this address this hour (Retry-After)")))]
async fn confirm_code(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    Path(id): Path<String>,
    b: Result<Json<SignedRequest>, JsonRejection>,
) -> Result<Json<EmailVerified>, ApiError> {
    throttle(&state, Action::PhoneAction, client)?;
    let req = body(b)?;
    let (email, at) = service::confirm_code(&state, &DeviceId::from_outside(id), &req.jws).await?;
    Ok(Json(EmailVerified {
        email: email.to_string(),
        verified_at: rfc3339(at),
    }))
}

#[derive(Deserialize)]
struct TenantQuery {
    tenant: Option<String>,
}

/// What the phone shows about a sign-in request, or a request for access at a customer.
#[utoipa::path(get, path = "/challenges/{id}",
    params(("id" = String, Path, description = "Challenge id from the QR code"),
           ("tenant" = String, Query, description = "Tenant slug from the QR code")),
    responses((status = 200, body = ChallengeInfo), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn challenge_info(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<ChallengeInfo>, ApiError> {
    throttle(&state, Action::PhoneAction, client)?;
    let slug = q
        .tenant
        .ok_or_else(|| ApiError::InvalidRequest("tenant: the query must name the tenant".into()))?;
    let info = service::challenge_info(&state, &id, &slug).await?;
    Ok(Json(ChallengeInfo {
        tenant_name: info.tenant_name,
        tenant_host: info.tenant_host,
        requester_ip: info.requester_ip,
        user_agent: info.user_agent,
        numbers: info.numbers,
        expires_at: rfc3339(info.expires_at),
        access: info.access.map(|a| AccessAsked {
            customer: a.customer,
            account: a.account,
            roles: a.roles,
            window_minutes: a.window_minutes,
        }),
    }))
}

/// Approve (purpose `approve`, payload `device_id`, `tenant`, `challenge`, `number`).
#[utoipa::path(post, path = "/challenges/{id}/approve", request_body = SignedRequest,
    params(("id" = String, Path, description = "Challenge id")),
    responses((status = 200, body = Approved), (status = 403, body = ErrorBody, description = "wrong_number, no_account, account_disabled, email_not_verified, email_unverified (the verified email expired), device_revoked, not_requester (an access request approved by a phone not the requester's)"),
              (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn approve(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    Path(id): Path<String>,
    b: Result<Json<SignedRequest>, JsonRejection>,
) -> Result<Json<Approved>, ApiError> {
    throttle(&state, Action::PhoneAction, client)?;
    let req = body(b)?;
    let user = service::approve(&state, &id, &req.jws).await?;
    Ok(Json(Approved {
        user: ApprovedUser {
            username: user.username,
            status: user.status.as_str().to_string(),
        },
    }))
}

/// Deny (purpose `deny`, payload `device_id`, `challenge`, `tenant`).
#[utoipa::path(post, path = "/challenges/{id}/deny", request_body = SignedRequest,
    params(("id" = String, Path, description = "Challenge id")),
    responses((status = 200, description = "Denied"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn deny(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
    b: Result<Json<SignedRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    throttle(&state, Action::PhoneAction, client)?;
    let req = body(b)?;
    service::deny(&state, &id, q.tenant.as_deref(), &req.jws).await?;
    Ok(Json(
        serde_json::json!({ "status": crate::domain::ChallengeStatus::Denied.as_str() }),
    ))
}
