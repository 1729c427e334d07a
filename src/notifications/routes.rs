//! The HTTP edge of change notifications, on the base host only:
//! `POST /api/entra/notifications`. Microsoft first proves the URL with a `validationToken`
//! handshake; after that every delivery is taken by `service::accept` and answered `202`
//! before any Graph call: the work is a reconcile run booked a moment later.

use super::receive::{Collection, Item, ResourceData};
use super::service;
use crate::server::client_ip::ClientIp;
use crate::server::host::Site;
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use serde::Deserialize;

/// Microsoft's validation tokens are a sentence and a GUID; anything far longer is not one.
const LONGEST_VALIDATION_TOKEN: usize = 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/entra/notifications", post(notifications))
        .route("/api/entra/lifecycle", post(lifecycle))
}

/// The two URLs Graph delivers to, for the OpenAPI document the mobile API serves (their
/// server is the base host's root, not the mobile API's).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(notifications, lifecycle),
    components(schemas(Collection, Item, ResourceData))
)]
pub struct NotificationsDoc;

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "validationToken")]
    validation_token: Option<String>,
}

/// Microsoft Graph delivers change notifications about the users of connected Entra tenants
/// here (`resource: users`, `changeType: updated,deleted`). Before a subscription is made,
/// Graph proves the URL with `?validationToken=…`, answered at once with the token as plain
/// text. Each notification must name a subscription of Gatehouse, carry its `clientState` and
/// the Entra tenant it watches; a genuine one books the tenant's reconciliation a moment
/// later and is answered 202 before any call to Microsoft.
#[utoipa::path(post, path = "/api/entra/notifications",
    params(("validationToken" = Option<String>, Query, description = "Graph's handshake")),
    request_body(content = Collection, description = "Absent in the handshake"),
    responses(
        (status = 200, content_type = "text/plain", description = "The handshake: the token, decoded"),
        (status = 202, description = "At least one notification was genuine; its run is booked"),
        (status = 400, description = "Not a notification collection, or an empty or oversized token"),
        (status = 403, description = "No notification belonged to a subscription of Gatehouse"),
        (status = 404, description = "Asked on a tenant's host, not the base host"),
        (status = 429, description = "This network's deliveries were refused too often this minute; not read"),
        (status = 503, description = "Could not be recorded; Graph delivers again")))]
async fn notifications(
    State(state): State<AppState>,
    Extension(site): Extension<Site>,
    Extension(client): Extension<ClientIp>,
    Query(handshake): Query<Handshake>,
    body: Bytes,
) -> Response {
    if !matches!(site, Site::Base) {
        return StatusCode::NOT_FOUND.into_response();
    }
    // Anyone may post here: a network whose deliveries keep being refused is not read again
    // until the minute is over. Genuine deliveries never count, so Microsoft is not held back.
    let network = client.network();
    let strikes = &state.throttles.refused_notifications;
    if let Err(held) = strikes.check(network) {
        metrics::counter!("gatehouse_rate_limited_total", "limit" => "refused_notifications_per_ip")
            .increment(1);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, held.retry_after.to_string())],
            "too many refused deliveries from this network; try again later",
        )
            .into_response();
    }
    let res = answer(&state, handshake, &body).await;
    let refused = matches!(
        res.status(),
        StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN
    );
    if refused && strikes.strike(network) {
        tracing::warn!(
            %network,
            "change-notification deliveries from one network were refused too often; its deliveries are answered 429 until the minute is over"
        );
    }
    res
}

/// A delivery's answer: the handshake, 202 when at least one notification was genuine, or
/// why not.
async fn answer(state: &AppState, handshake: Handshake, body: &[u8]) -> Response {
    if let Some(token) = handshake.validation_token {
        return validation_answer(token);
    }
    let Ok(collection) = serde_json::from_slice::<Collection>(body) else {
        service::count("malformed", 1);
        return (
            StatusCode::BAD_REQUEST,
            "not a change notification collection ({\"value\": [...]})",
        )
            .into_response();
    };
    match service::accept(&state.db, &state.bus, &collection).await {
        Ok(0) => (
            StatusCode::FORBIDDEN,
            "no notification in this delivery belongs to a subscription of Gatehouse",
        )
            .into_response(),
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(err) => {
            tracing::error!(error = ?err, "change notifications could not be recorded");
            // Microsoft delivers again when the answer is not 2xx.
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// Graph's lifecycle events for the subscriptions (for users, `reauthorizationRequired` only),
/// with the same handshake and checks as change notifications. A genuine one renews the
/// subscription at once and looks at the directory, since changes may have gone undelivered.
/// https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
#[utoipa::path(post, path = "/api/entra/lifecycle",
    params(("validationToken" = Option<String>, Query, description = "Graph's handshake")),
    request_body(content = Collection, description = "Items carry `lifecycleEvent`"),
    responses(
        (status = 200, content_type = "text/plain", description = "The handshake: the token, decoded"),
        (status = 202, description = "Genuine; the renewal and a run are under way"),
        (status = 400, description = "Not a notification collection"),
        (status = 403, description = "No item belonged to a subscription of Gatehouse"),
        (status = 404, description = "Asked on a tenant's host, not the base host"),
        (status = 429, description = "This network's deliveries were refused too often this minute; not read")))]
async fn lifecycle(
    state: State<AppState>,
    site: Extension<Site>,
    client: Extension<ClientIp>,
    handshake: Query<Handshake>,
    body: Bytes,
) -> Response {
    notifications(state, site, client, handshake, body).await
}

/// The handshake: the token back, as plain text, at once.
/// https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#notificationurl-validation
fn validation_answer(token: String) -> Response {
    if token.is_empty() || token.len() > LONGEST_VALIDATION_TOKEN {
        return (StatusCode::BAD_REQUEST, "not a validation token").into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        token,
    )
        .into_response()
}
