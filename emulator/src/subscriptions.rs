//! Change notifications on `users`: `/v1.0/subscriptions` (create, list, get, renew, delete),
//! the `validationToken` handshake, notifications with `clientState`, and lifecycle events
//! that the control API triggers.
//!
//! https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
//! https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
//!
//! Differences from Microsoft: plain `http://` notification URLs are accepted (demo and tests
//! run without TLS), and changes are read from the directory's change log every quarter
//! second. A failed delivery is retried with backoff for four hours, as Microsoft does.

use crate::caller::{directory, Caller, READ_USERS};
use crate::errors::GraphError;
use crate::ids::new_guid;
use crate::model::{ChangeKind, Subscription};
use crate::state::Emulator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Longest lifetime of a subscription on users: 41 760 minutes (29 days).
/// https://learn.microsoft.com/en-us/graph/api/resources/subscription#subscription-lifetime
const MAX_MINUTES: i64 = 41_760;

/// A subscription as Graph prints it.
fn to_json(sub: &Subscription, base: &str) -> Value {
    json!({
        "@odata.context": format!("{base}/v1.0/$metadata#subscriptions/$entity"),
        "id": sub.id,
        "resource": "users",
        "applicationId": sub.application_id,
        "changeType": sub.change_types.join(","),
        "clientState": sub.client_state,
        "notificationUrl": sub.notification_url,
        "lifecycleNotificationUrl": sub.lifecycle_url,
        "expirationDateTime": stamp(sub.expiration),
        "creatorId": sub.application_id,
        "includeResourceData": false,
        "latestSupportedTlsVersion": "v1_2",
        "encryptionCertificate": null,
        "notificationUrlAppId": null,
    })
}

/// Graph writes seven fractional digits; chrono offers six, so a zero completes them.
fn stamp(t: DateTime<Utc>) -> String {
    format!("{}0Z", t.format("%Y-%m-%dT%H:%M:%S%.6f"))
}

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/v1.0/subscriptions", get(list).post(create))
        .route(
            "/v1.0/subscriptions/{id}",
            get(read).patch(renew).delete(remove),
        )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewSubscription {
    change_type: String,
    notification_url: String,
    #[serde(default)]
    lifecycle_notification_url: Option<String>,
    resource: String,
    expiration_date_time: String,
    #[serde(default)]
    client_state: Option<String>,
}

fn bad(caller: &Caller, message: impl Into<String>) -> GraphError {
    GraphError::new(
        &caller.ids,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
        message,
    )
}

fn expiration(caller: &Caller, raw: &str) -> Result<DateTime<Utc>, GraphError> {
    let t = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| bad(caller, format!("Invalid expirationDateTime '{raw}'.")))?
        .with_timezone(&Utc);
    let now = Utc::now();
    if t <= now {
        return Err(bad(
            caller,
            "Subscription expiration can only be in the future.",
        ));
    }
    if t > now + chrono::Duration::minutes(MAX_MINUTES) {
        return Err(bad(
            caller,
            format!("Subscription expiration can only be {MAX_MINUTES} minutes in the future."),
        ));
    }
    Ok(t)
}

/// The handshake: Graph POSTs `?validationToken=…` and wants it back as text within 10 s.
async fn validate(em: &Emulator, url: &str) -> bool {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        new_guid()
    );
    let mut target = match url::Url::parse(url) {
        Ok(u) => u,
        Err(_) => return false,
    };
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let res = em
        .http()
        .post(target)
        .header("content-type", "text/plain; charset=utf-8")
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match res {
        Ok(r) if r.status() == 200 => r.text().await.map(|t| t == token).unwrap_or(false),
        _ => false,
    }
}

async fn create(
    State(em): State<Emulator>,
    caller: Caller,
    Json(body): Json<NewSubscription>,
) -> Result<(StatusCode, Json<Value>), GraphError> {
    caller.require(READ_USERS)?;
    if !matches!(
        body.resource
            .trim_start_matches('/')
            .to_ascii_lowercase()
            .as_str(),
        "users"
    ) {
        return Err(bad(
            &caller,
            format!(
                "The emulator supports subscriptions on 'users' only, not '{}'.",
                body.resource
            ),
        ));
    }
    let change_types: Vec<String> = body
        .change_type
        .split(',')
        .map(|c| c.trim().to_string())
        .collect();
    // Users support `updated` and `deleted` only: creation and soft deletion arrive as
    // `updated`, `deleted` is the permanent deletion.
    // https://learn.microsoft.com/en-us/graph/api/resources/subscription?view=graph-rest-1.0
    if change_types
        .iter()
        .any(|c| !matches!(c.as_str(), "updated" | "deleted"))
    {
        return Err(bad(
            &caller,
            format!(
                "Invalid changeType '{}': the users resource supports updated and deleted.",
                body.change_type
            ),
        ));
    }
    if body.client_state.as_ref().is_some_and(|c| c.len() > 128) {
        return Err(bad(&caller, "clientState must be at most 128 characters."));
    }
    let expires = expiration(&caller, &body.expiration_date_time)?;
    for url in std::iter::once(&body.notification_url).chain(body.lifecycle_notification_url.iter())
    {
        if !validate(&em, url).await {
            return Err(bad(
                &caller,
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
            ));
        }
    }
    let sub = {
        let mut world = em.write();
        let position = directory(&world, &caller)?.seq();
        let sub = Subscription {
            id: new_guid(),
            tenant_id: caller.tenant_id.clone(),
            application_id: caller.app_id.clone(),
            change_types,
            notification_url: body.notification_url,
            lifecycle_url: body.lifecycle_notification_url,
            client_state: body.client_state,
            expiration: expires,
            position,
        };
        world.subscriptions.insert(sub.id.clone(), sub.clone());
        sub
    };
    tokio::spawn(deliver(em.clone(), sub.id.clone()));
    Ok((StatusCode::CREATED, Json(to_json(&sub, &em.base_url()))))
}

fn find(em: &Emulator, caller: &Caller, id: &str) -> Result<Subscription, GraphError> {
    em.read()
        .subscriptions
        .get(id)
        .filter(|s| s.tenant_id == caller.tenant_id && s.application_id == caller.app_id)
        .cloned()
        .ok_or_else(|| GraphError::not_found(&caller.ids, id))
}

async fn list(State(em): State<Emulator>, caller: Caller) -> Result<Json<Value>, GraphError> {
    caller.require(READ_USERS)?;
    let base = em.base_url();
    let value: Vec<Value> = em
        .read()
        .subscriptions
        .values()
        .filter(|s| s.tenant_id == caller.tenant_id && s.application_id == caller.app_id)
        .map(|s| to_json(s, &base))
        .collect();
    Ok(Json(json!({
        "@odata.context": format!("{base}/v1.0/$metadata#subscriptions"),
        "value": value,
    })))
}

async fn read(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_USERS)?;
    Ok(Json(to_json(&find(&em, &caller, &id)?, &em.base_url())))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Renewal {
    expiration_date_time: String,
}

async fn renew(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Renewal>,
) -> Result<Json<Value>, GraphError> {
    caller.require(READ_USERS)?;
    find(&em, &caller, &id)?;
    let expires = expiration(&caller, &body.expiration_date_time)?;
    let mut world = em.write();
    let sub = world
        .subscriptions
        .get_mut(&id)
        .ok_or_else(|| GraphError::not_found(&caller.ids, &id))?;
    sub.expiration = expires;
    Ok(Json(to_json(sub, &em.base_url())))
}

async fn remove(
    State(em): State<Emulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    caller.require(READ_USERS)?;
    find(&em, &caller, &id)?;
    em.write().subscriptions.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// What Microsoft calls a change of a user: everything but a permanent deletion is `updated`.
fn change_type(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created
        | ChangeKind::Updated
        | ChangeKind::Restored
        | ChangeKind::SoftDeleted => "updated",
        ChangeKind::HardDeleted => "deleted",
    }
}

/// A notification endpoint must answer with a 2xx within three seconds; Microsoft retries
/// a failed delivery for up to four hours.
/// https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);
const RETRY_FOR: Duration = Duration::from_secs(4 * 3600);

/// Sends the subscription's notifications until it is deleted or expires.
async fn deliver(em: Emulator, id: String) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let (sub, items) = {
            let mut world = em.write();
            let Some(sub) = world.subscriptions.get(&id).cloned() else {
                return;
            };
            if sub.expiration <= Utc::now() {
                return;
            }
            let Ok(d) = world.directory(&sub.tenant_id) else {
                return;
            };
            let seq = d.seq();
            if seq == sub.position {
                continue;
            }
            let items: Vec<Value> = d
                .changes(sub.position, seq)
                .iter()
                .filter(|c| sub.change_types.iter().any(|t| t == change_type(c.kind)))
                .map(|c| {
                    json!({
                        "id": new_guid(),
                        "subscriptionId": sub.id,
                        "subscriptionExpirationDateTime": stamp(sub.expiration),
                        "clientState": sub.client_state,
                        "changeType": change_type(c.kind),
                        "resource": format!("Users/{}", c.id),
                        "tenantId": sub.tenant_id,
                        "resourceData": {
                            "@odata.type": "#Microsoft.Graph.User",
                            "@odata.id": format!("Users/{}", c.id),
                            "id": c.id,
                            "organizationId": sub.tenant_id,
                        },
                    })
                })
                .collect();
            if let Some(s) = world.subscriptions.get_mut(&id) {
                s.position = seq;
            }
            (sub, items)
        };
        for chunk in items.chunks(100) {
            let body = json!({ "value": chunk });
            let first = tokio::time::Instant::now();
            let mut wait = Duration::from_secs(1);
            loop {
                let res = em
                    .http()
                    .post(&sub.notification_url)
                    .timeout(DELIVERY_TIMEOUT)
                    .json(&body)
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => break,
                    other => {
                        tracing::debug!(
                            "emulator notification to {} not accepted ({:?}); retrying",
                            sub.notification_url,
                            other.map(|r| r.status())
                        );
                    }
                }
                if first.elapsed() + wait > RETRY_FOR || !em.read().subscriptions.contains_key(&id)
                {
                    break;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(300));
            }
        }
    }
}

/// Why a lifecycle event could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("no subscription {0}")]
    Unknown(String),
    #[error("subscription {0} has no lifecycleNotificationUrl")]
    NoUrl(String),
    #[error(
        "lifecycle event {0} is not sent for users; Microsoft sends them reauthorizationRequired only"
    )]
    UnknownEvent(String),
    #[error("the lifecycle endpoint did not answer: {0}")]
    Delivery(String),
}

/// Sends a lifecycle event (for users: `reauthorizationRequired`).
pub async fn send_lifecycle(em: &Emulator, id: &str, event: &str) -> Result<u16, LifecycleError> {
    // Users get `reauthorizationRequired` only; `subscriptionRemoved` and `missed` are sent
    // for Outlook and Teams resources.
    // https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
    if event != "reauthorizationRequired" {
        return Err(LifecycleError::UnknownEvent(event.to_string()));
    }
    let sub = em
        .read()
        .subscriptions
        .get(id)
        .cloned()
        .ok_or_else(|| LifecycleError::Unknown(id.to_string()))?;
    let url = sub
        .lifecycle_url
        .clone()
        .ok_or_else(|| LifecycleError::NoUrl(id.to_string()))?;
    let body = json!({ "value": [{
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": stamp(sub.expiration),
        "tenantId": sub.tenant_id,
        "clientState": sub.client_state,
        "lifecycleEvent": event,
    }]});
    em.http()
        .post(&url)
        .json(&body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| LifecycleError::Delivery(e.to_string()))
}
