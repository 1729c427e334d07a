//! Change notifications on users: handshake, notifications with clientState, renewal,
//! deletion and lifecycle events, received by a small webhook server of the test's own.

use super::*;
use axum::extract::{Query, State};
use axum::routing::post;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Received {
    bodies: Arc<Mutex<Vec<Value>>>,
    handshakes: Arc<Mutex<usize>>,
    /// Notifications to answer `503` before accepting one (a hook that is briefly down).
    refuse: Arc<Mutex<usize>>,
}

/// Echoes `validationToken` (unless `echo` is false) and records notification bodies.
async fn webhook(echo: bool) -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                move |State(r): State<Received>,
                      Query(q): Query<HashMap<String, String>>,
                      body: String| async move {
                    if let Some(token) = q.get("validationToken") {
                        *r.handshakes.lock().unwrap() += 1;
                        return if echo {
                            (axum::http::StatusCode::OK, token.clone())
                        } else {
                            (axum::http::StatusCode::OK, "nope".to_string())
                        };
                    }
                    {
                        let mut refuse = r.refuse.lock().unwrap();
                        if *refuse > 0 {
                            *refuse -= 1;
                            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new());
                        }
                    }
                    r.bodies
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                    (axum::http::StatusCode::ACCEPTED, String::new())
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

async fn wait_for(received: &Received, n: usize) -> Vec<Value> {
    for _ in 0..40 {
        if received.bodies.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    received.bodies.lock().unwrap().clone()
}

fn in_minutes(m: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(m)).to_rfc3339()
}

async fn subscribe(emu: &Emu, token: &str, url: &str) -> reqwest::Response {
    emu.http
        .post(emu.url("/v1.0/subscriptions"))
        .bearer_auth(token)
        .json(&json!({
            "changeType": "updated,deleted",
            "notificationUrl": url,
            "lifecycleNotificationUrl": url,
            "resource": "users",
            "expirationDateTime": in_minutes(60),
            "clientState": "secret-client-state",
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_subscription_is_validated_then_notifies_changes_with_the_client_state() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (url, received) = webhook(true).await;
    let res = subscribe(&emu, &token, &url).await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        *received.handshakes.lock().unwrap(),
        2,
        "notification and lifecycle URLs are both checked"
    );
    let sub: Value = res.json().await.unwrap();
    let id = sub["id"].as_str().unwrap().to_string();
    assert_eq!(sub["resource"], "users");

    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{ALEX}/disable"),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let bodies = wait_for(&received, 1).await;
    let n = &bodies[0]["value"][0];
    assert_eq!(n["clientState"], "secret-client-state");
    assert_eq!(n["changeType"], "updated");
    assert_eq!(n["subscriptionId"], id.as_str());
    assert_eq!(n["resourceData"]["id"], ALEX);
    assert_eq!(n["tenantId"], CONTOSO_TENANT_ID);

    // Renew, then a lifecycle event, then delete: no more notifications afterwards.
    let res = emu
        .http
        .patch(emu.url(&format!("/v1.0/subscriptions/{id}")))
        .bearer_auth(&token)
        .json(&json!({"expirationDateTime": in_minutes(120)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/subscriptions/{id}/lifecycle"),
            Some(json!({"event": "reauthorizationRequired"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let bodies = wait_for(&received, 2).await;
    assert_eq!(
        bodies[1]["value"][0]["lifecycleEvent"],
        "reauthorizationRequired"
    );
    assert_eq!(bodies[1]["value"][0]["clientState"], "secret-client-state");

    let res = emu
        .http
        .delete(emu.url(&format!("/v1.0/subscriptions/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    emu.control(
        reqwest::Method::DELETE,
        &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{ALEX}"),
        None,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(received.bodies.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_subscription_is_refused_when_the_endpoint_does_not_echo_the_token() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (url, _) = webhook(false).await;
    let res = subscribe(&emu, &token, &url).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("validation request failed"));
}

#[tokio::test]
async fn a_subscription_cannot_outlive_the_users_limit() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (url, _) = webhook(true).await;
    let res = emu
        .http
        .post(emu.url("/v1.0/subscriptions"))
        .bearer_auth(&token)
        .json(&json!({
            "changeType": "updated", "notificationUrl": url, "resource": "users",
            "expirationDateTime": in_minutes(41_761 + 5),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// Microsoft sends users only `updated` and `deleted`: a creation and a soft deletion arrive
/// as `updated`, a permanent deletion as `deleted`; a subscription for `created` is refused,
/// and so is any lifecycle event but `reauthorizationRequired`.
#[tokio::test]
async fn users_get_updated_and_deleted_only() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (url, received) = webhook(true).await;
    let res = emu
        .http
        .post(emu.url("/v1.0/subscriptions"))
        .bearer_auth(&token)
        .json(&json!({
            "changeType": "created,updated", "notificationUrl": url, "resource": "users",
            "expirationDateTime": in_minutes(60),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "created is not a change type of users");

    let res = subscribe(&emu, &token, &url).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = |path: String| {
        let emu = &emu;
        async move {
            let method = if path.contains("DELETE ") {
                reqwest::Method::DELETE
            } else {
                reqwest::Method::POST
            };
            let path = path.trim_start_matches("DELETE ").to_string();
            let res = emu.control(method, &path, None).await;
            assert!(res.status().is_success(), "{path}: {}", res.status());
        }
    };
    let base = format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users");
    user(format!("DELETE {base}/{ALEX}")).await; // soft delete
    let bodies = wait_for(&received, 1).await;
    assert_eq!(bodies[0]["value"][0]["changeType"], "updated");
    user(format!("DELETE {base}/{ALEX}?permanent=true")).await;
    let bodies = wait_for(&received, 2).await;
    assert_eq!(bodies[1]["value"][0]["changeType"], "deleted");

    for event in ["subscriptionRemoved", "missed"] {
        let res = emu
            .control(
                reqwest::Method::POST,
                &format!("/_emulator/subscriptions/{id}/lifecycle"),
                Some(json!({ "event": event })),
            )
            .await;
        assert!(res.status().is_client_error(), "{event}: {}", res.status());
    }
}

/// A notification endpoint that does not answer 2xx gets the notification again.
#[tokio::test]
async fn a_refused_delivery_is_retried() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (url, received) = webhook(true).await;
    let res = subscribe(&emu, &token, &url).await;
    assert_eq!(res.status(), 201);
    *received.refuse.lock().unwrap() = 2;
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{ALEX}/disable"),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    for _ in 0..80 {
        if !received.bodies.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let bodies = received.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "delivered after two refusals");
    assert_eq!(bodies[0]["value"][0]["resourceData"]["id"], ALEX);
    assert_eq!(*received.refuse.lock().unwrap(), 0);
}
