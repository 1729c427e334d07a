//! The HTTP edge of change notifications, on the base host only:
//! `POST /api/entra/notifications`. Microsoft first proves the URL with a `validationToken`
//! handshake; after that every delivery is checked (`receive::check`) and answered `202`
//! before any Graph call: the work is a reconcile run booked a moment later.

use super::receive::{check, Collection, Item, Refusal, ResourceData};
use super::store;
use crate::reconciler::scheduler::{DEBOUNCE_SECS, LONGEST_WAIT_SECS};
use crate::server::bus::Event;
use crate::server::host::Site;
use crate::server::state::AppState;
use crate::server::util::now;
use crate::tenants::service as tenants;
use crate::users::store as users;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};

/// A delivery names one subscription (Microsoft batches per subscription); a body naming
/// more than this many is not Microsoft's, and the rest is refused without a lookup.
const MOST_SUBSCRIPTIONS_LOOKED_UP: usize = 4;

/// Microsoft delivers at most a few hundred changes at once; beyond this many accounts in one
/// delivery the rest count as seen when the run finds them.
const MOST_ACCOUNTS_NOTED: usize = 1000;

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
        (status = 503, description = "Could not be recorded; Graph delivers again")))]
async fn notifications(
    State(state): State<AppState>,
    Extension(site): Extension<Site>,
    Query(handshake): Query<Handshake>,
    body: Bytes,
) -> Response {
    if !matches!(site, Site::Base) {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(token) = handshake.validation_token {
        return validation_answer(token);
    }
    let Ok(collection) = serde_json::from_slice::<Collection>(&body) else {
        count("malformed", 1);
        return (
            StatusCode::BAD_REQUEST,
            "not a change notification collection ({\"value\": [...]})",
        )
            .into_response();
    };
    match accept(&state, &collection).await {
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
        (status = 404, description = "Asked on a tenant's host, not the base host")))]
async fn lifecycle(
    state: State<AppState>,
    site: Extension<Site>,
    handshake: Query<Handshake>,
    body: Bytes,
) -> Response {
    notifications(state, site, handshake, body).await
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

/// Checks every item and books a run for each tenant that had a genuine one; how many
/// items were genuine.
async fn accept(state: &AppState, collection: &Collection) -> anyhow::Result<usize> {
    let ids: BTreeSet<&str> = collection
        .value
        .iter()
        .map(|i| i.subscription_id.as_str())
        .collect();
    let mut known = HashMap::new();
    for id in ids.into_iter().take(MOST_SUBSCRIPTIONS_LOOKED_UP) {
        if let Some(sub) = store::find(&state.db, id).await? {
            known.insert(id, sub);
        }
    }
    let at = now();
    let mut genuine = 0;
    let mut tenants_told = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    for item in &collection.value {
        let sub = known.get(item.subscription_id.as_str());
        match check(item, sub) {
            Ok(()) => {
                genuine += 1;
                if let Some(sub) = sub {
                    tenants_told.insert((sub.tenant_id.clone(), sub.subscription_id.clone()));
                    if let Some(oid) = item.account() {
                        accounts.insert((sub.tenant_id.as_str(), oid));
                    }
                    if item.lifecycle_event.is_some() {
                        // Renewed by the keeper, which wakes with the run's event below.
                        store::renewed(&state.db, &sub.subscription_id, 0).await?;
                    }
                }
            }
            Err(why) => refused(why, item.subscription_id.as_str()),
        }
    }
    // When each change was first seen, for the offboarding's timeline; the run decides
    // what the change was.
    for (tenant_id, oid) in accounts.into_iter().take(MOST_ACCOUNTS_NOTED) {
        users::note_change_seen(&state.db, tenant_id, oid, at).await?;
    }
    for (tenant_id, subscription_id) in &tenants_told {
        tenants::note_change(&state.db, tenant_id, at, DEBOUNCE_SECS, LONGEST_WAIT_SECS).await?;
        store::heard(&state.db, subscription_id, at).await?;
        state
            .bus
            .publish(Event::ChangeNotified {
                tenant_id: tenant_id.clone(),
            })
            .await;
    }
    count("accepted", genuine);
    Ok(genuine)
}

fn refused(why: Refusal, subscription_id: &str) {
    count(why.as_str(), 1);
    tracing::warn!(
        reason = why.as_str(),
        subscription = %subscription_id.chars().take(64).collect::<String>(),
        "a change notification was refused"
    );
}

fn count(outcome: &'static str, n: usize) {
    metrics::counter!("gatehouse_entra_notifications_total", "outcome" => outcome)
        .increment(n as u64);
}
