//! The control API: faults, request counts, synthetic users, the control page.

use super::*;
use gatehouse_emulator::testing::Fetch as _;
use serde_json::json;

#[tokio::test]
async fn the_control_api_needs_the_control_token() {
    let emu = spawn_emulator().await;
    let res = emu
        .http
        .get(emu.url("/_emulator/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = emu
        .http
        .get(emu.url("/_emulator/requests"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn an_injected_429_carries_retry_after_and_then_passes() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let res = emu
        .control(
            reqwest::Method::POST,
            "/_emulator/faults",
            Some(json!({"route": "GET /v1.0/users/delta", "count": 2, "status": 429, "retryAfter": 7})),
        )
        .await;
    assert_eq!(res.status(), 204);
    for _ in 0..2 {
        let (status, headers, body) = emu.graph(&token, "/v1.0/users/delta").await;
        assert_eq!(status, 429);
        assert_eq!(headers["retry-after"], "7");
        assert_eq!(body["error"]["code"], "TooManyRequests");
    }
    let (status, _, _) = emu.graph(&token, "/v1.0/users/delta").await;
    assert_eq!(status, 200);
    let counts = emu.counts().await;
    assert_eq!(counts["GET /v1.0/users/delta"], 3);
    assert_eq!(counts["POST /{tenant}/oauth2/v2.0/token"], 1);
}

#[tokio::test]
async fn a_page_without_value_and_a_chain_without_delta_link_can_be_injected() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    emu.control(
        reqwest::Method::POST,
        "/_emulator/faults",
        Some(json!([
            {"route": "GET /v1.0/users", "dropValue": true},
            {"route": "GET /v1.0/users/delta", "dropDeltaLink": true},
        ])),
    )
    .await;
    let (status, _, body) = emu.graph(&token, "/v1.0/users").await;
    assert_eq!(status, 200);
    assert!(body.get("value").is_none());
    let (status, _, body) = emu.graph(&token, "/v1.0/users/delta").await;
    assert_eq!(status, 200);
    assert!(body.get("@odata.deltaLink").is_none());
    assert!(body.get("@odata.nextLink").is_none());
    let (_, _, body) = emu.graph(&token, "/v1.0/users/delta").await;
    assert!(
        body.get("@odata.deltaLink").is_some(),
        "the fault was for one request"
    );
}

#[tokio::test]
async fn latency_is_injected_on_the_token_endpoint() {
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    emu.control(
        reqwest::Method::POST,
        "/_emulator/faults",
        Some(json!({"route": "POST /{tenant}/oauth2/v2.0/token", "latencyMs": 300})),
    )
    .await;
    let started = std::time::Instant::now();
    assert_eq!(
        emu.client_credentials(CONTOSO_TENANT_ID, &emu.secret())
            .await
            .status(),
        200
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn a_hundred_thousand_users_are_generated_in_seconds() {
    let emu = spawn_emulator().await;
    let started = std::time::Instant::now();
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/generate"),
            Some(json!({"count": 100_000})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["users"], 100_007);
    // Generous for an unoptimised test build on a small machine; release is far faster.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_new_directory_and_app_work_end_to_end() {
    let emu = spawn_emulator().await;
    let res = emu
        .control(
            reqwest::Method::POST,
            "/_emulator/directories",
            Some(json!({
                "displayName": "Tailspin Toys",
                "domains": [{"name": "tailspintoys.com", "isDefault": true}],
                "users": [{"userPrincipalName": "ann@tailspintoys.com", "displayName": "Ann", "mail": "ann@tailspintoys.com"}],
            })),
        )
        .await;
    assert_eq!(res.status(), 201);
    let tid = res.json::<Value>().await.unwrap()["tenantId"]
        .as_str()
        .unwrap()
        .to_string();
    let res = emu
        .control(
            reqwest::Method::POST,
            "/_emulator/apps",
            Some(json!({"displayName": "Other", "redirectUris": ["http://x.example/cb"]})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let app: Value = res.json().await.unwrap();
    let client_id = app["clientId"].as_str().unwrap();
    let res = emu
        .control(
            reqwest::Method::PUT,
            &format!("/_emulator/directories/{tid}/consents/{client_id}"),
            None,
        )
        .await;
    assert_eq!(res.status(), 204);
    let res = emu
        .http
        .post(emu.url("/tailspintoys.com/oauth2/v2.0/token"))
        .form(&[
            ("client_id", client_id),
            ("client_secret", app["secret"].as_str().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, body) = emu.graph(&token, "/v1.0/users").await;
    let upns: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap())
        .collect();
    assert_eq!(
        upns,
        ["ann@tailspintoys.com"],
        "each token sees its own tenant only"
    );
}

#[tokio::test]
async fn the_control_page_disables_a_user_by_hand() {
    let emu = spawn_emulator().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = browser.get(emu.url("/_emulator/ui")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = browser
        .get(emu.url(&format!("/_emulator/ui?token={CONTROL_TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("alex@contoso.com"));
    let found = browser
        .get(emu.url("/_emulator/ui?q=megan"))
        .text_body()
        .await;
    assert!(found.contains("megan@contoso.com") && !found.contains("alex@contoso.com"));
    let res = browser
        .post(emu.url("/_emulator/ui"))
        .form(&[
            ("tenant", CONTOSO_TENANT_ID),
            ("user", ALEX),
            ("action", "disable"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        303,
        "the cookie from the first visit authorises the form"
    );
    let token = emu.app_token().await;
    let (_, _, body) = emu
        .graph(
            &token,
            &format!("/v1.0/users/{ALEX}?$select=accountEnabled"),
        )
        .await;
    assert_eq!(body["accountEnabled"], false);
}

#[tokio::test]
async fn the_control_page_takes_a_user_out_of_a_group_and_back() {
    let emu = spawn_emulator().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(emu.url(&format!("/_emulator/ui?token={CONTROL_TOKEN}")))
        .text_body()
        .await;
    assert!(
        page.contains("MSP Technicians") && page.contains("group Tier 2"),
        "{page}"
    );
    let act = |action: &'static str, user: &'static str| {
        browser
            .post(emu.url("/_emulator/ui"))
            .form(&[
                ("tenant", CONTOSO_TENANT_ID),
                ("group", MSP_TECHNICIANS),
                ("user", user),
                ("action", action),
            ])
            .send()
    };
    let token = emu
        .app_token_with(&["User.Read.All", "GroupMember.Read.All"])
        .await;
    let members = || async {
        let (_, _, body) = emu
            .graph(
                &token,
                &format!("/v1.0/groups/{MSP_TECHNICIANS}/transitiveMembers"),
            )
            .await;
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(act("leave", ALEX).await.unwrap().status(), 303);
    assert!(!members().await.contains(&ALEX.to_string()));
    assert_eq!(act("join", "alex@contoso.com").await.unwrap().status(), 303);
    assert!(members().await.contains(&ALEX.to_string()));
    assert_eq!(
        act("join", "nobody@contoso.com").await.unwrap().status(),
        404,
        "an unknown member is refused"
    );
}
