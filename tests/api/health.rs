use crate::helpers::*;

#[tokio::test]
async fn probes_and_metrics_answer() {
    let app = spawn_app().await;
    let c = app.base_client();
    let base = format!("http://localhost:{}", app.port());
    assert_eq!(
        c.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(
        c.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gatehouse_http_requests_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unknown_tenant_host_is_not_found() {
    let app = spawn_app().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
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
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
}
