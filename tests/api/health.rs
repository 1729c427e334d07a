use crate::helpers::*;
use gatehouse_emulator::testing::Fetch as _;

#[tokio::test]
async fn probes_and_metrics_answer() {
    let app = spawn_app().await;
    let c = app.base_client();
    let base = format!("http://localhost:{}", app.port());
    assert_eq!(c.get(format!("{base}/healthz")).text_body().await, "ok");
    assert_eq!(
        c.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = c.get(format!("{base}/metrics")).text_body().await;
    assert!(
        metrics.contains("gatehouse_http_requests_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unknown_tenant_host_is_not_found() {
    let app = spawn_acme().await;
    let browser = app.browser(&["acme", "nobody"]);
    assert_eq!(browser.get("nobody", "/").await.status(), 404);
    assert_eq!(browser.get("acme", "/").await.status(), 200);
}

#[tokio::test]
async fn the_openapi_document_describes_the_mobile_api() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .base_client()
        .get(app.api("/openapi.json"))
        .json_body()
        .await;
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/devices",
        "/devices/{id}/emails",
        "/devices/{id}/emails/confirm",
        "/challenges/{id}",
        "/challenges/{id}/approve",
        "/challenges/{id}/deny",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    // Graph's two delivery URLs live on the base host's root, not under the mobile API.
    for p in ["/api/entra/notifications", "/api/entra/lifecycle"] {
        assert_eq!(paths[p]["servers"][0]["url"], "/", "{p}: {}", paths[p]);
        assert!(
            paths[p]["post"]["responses"]["202"].is_object(),
            "{}",
            paths[p]
        );
    }
    assert!(doc["components"]["schemas"]["Collection"].is_object());
}

/// `/metrics` answers on the base domain only, and behind its token when one is set.
#[tokio::test]
async fn metrics_answer_on_the_base_domain_only_and_behind_their_token() {
    let app = spawn_app_with(|c| {
        c.metrics_token = Some(secrecy::SecretString::from("m3trics".to_string()))
    })
    .await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let base = format!("http://localhost:{}/metrics", app.port());
    let c = app.base_client();
    assert_eq!(c.get(&base).send().await.unwrap().status(), 401, "no token");
    let wrong = c.get(&base).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = c.get(&base).bearer_auth("m3trics").send().await.unwrap();
    assert_eq!(right.status(), 200);
    assert!(right
        .text()
        .await
        .unwrap()
        .contains("gatehouse_http_requests_total"));
    let tenant = app.browser(&["acme"]);
    let res = tenant
        .client
        .get(tenant.url("acme", "/metrics"))
        .bearer_auth("m3trics")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "not on a tenant's host");
}

/// Outside demo mode the dev outbox does not exist: nobody reads verification codes there.
#[tokio::test]
async fn the_dev_outbox_is_not_found_outside_demo_mode() {
    let app = spawn_app().await;
    let c = app.base_client();
    // A code mail sits in the outbox table (no SMTP in tests)...
    let _phone = app.phone_with_email("someone@acme.com").await;
    let res = c
        .get(format!("http://localhost:{}/_dev/outbox", app.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(!res.text().await.unwrap().contains("someone@acme.com"));

    let private = spawn_app_with(|c| c.dev_outbox = true).await;
    let _phone = private.phone_with_email("someone@acme.com").await;
    let res = private
        .base_client()
        .get(format!("http://localhost:{}/_dev/outbox", private.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "asked for with --dev-outbox");
}
