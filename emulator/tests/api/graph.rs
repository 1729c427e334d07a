//! Graph v1.0 reads with token checks, Graph-shaped errors, `$filter`, `$select` and paging.

use super::*;
use serde_json::json;

#[tokio::test]
async fn graph_refuses_a_missing_or_foreign_token_in_its_error_shape() {
    let emu = spawn_emulator().await;
    let res = emu
        .http
        .get(emu.url("/v1.0/users"))
        .header("client-request-id", "my-client-id")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["client-request-id"], "my-client-id");
    let request_id = res.headers()["request-id"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        body["error"]["innerError"]["request-id"],
        request_id.as_str()
    );
    assert_eq!(
        body["error"]["innerError"]["client-request-id"],
        "my-client-id"
    );
    assert!(body["error"]["innerError"]["date"].is_string());

    // A token signed by another emulator (another key) is not accepted.
    let other = spawn_emulator().await;
    let foreign = other.app_token().await;
    let (status, _, body) = emu.graph(&foreign, "/v1.0/users").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
}

#[tokio::test]
async fn a_token_without_the_needed_role_is_denied() {
    let emu = spawn_emulator().await;
    let res = emu
        .control(
            reqwest::Method::PUT,
            &format!(
                "/_emulator/directories/{CONTOSO_TENANT_ID}/consents/{}",
                emu.app.client_id
            ),
            Some(json!({"roles": ["Domain.Read.All"]})),
        )
        .await;
    assert_eq!(res.status(), 204);
    let res = emu
        .client_credentials(CONTOSO_TENANT_ID, &emu.secret())
        .await;
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, body) = emu.graph(&token, "/v1.0/users").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    let (status, _, body) = emu.graph(&token, "/v1.0/domains").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["contoso.com", "contoso.onmicrosoft.com"]);
    assert_eq!(body["value"][0]["isDefault"], true);
    assert_eq!(body["value"][1]["isInitial"], true);
}

#[tokio::test]
async fn account_enabled_appears_only_when_selected() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (status, _, body) = emu.graph(&token, "/v1.0/users").await;
    assert_eq!(status, 200);
    assert_eq!(body["value"].as_array().unwrap().len(), 7);
    assert!(body["value"][0].get("accountEnabled").is_none());
    assert!(body["value"][0].get("userPrincipalName").is_some());

    let (_, _, body) = emu
        .graph(
            &token,
            "/v1.0/users?$select=id,accountEnabled,userPrincipalName,mail",
        )
        .await;
    let diego = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userPrincipalName"] == "diego@contoso.com")
        .unwrap();
    assert_eq!(diego["accountEnabled"], false);
    assert!(diego.get("displayName").is_none());
}

#[tokio::test]
async fn users_are_found_by_upn_mail_alias_and_other_mails() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let find = |filter: &str| {
        format!(
            "/v1.0/users?$filter={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        )
    };
    let cases = [
        (
            "userPrincipalName eq 'ALEX@contoso.com'",
            vec!["alex@contoso.com"],
        ),
        (
            "mail eq 'adele@fabrikam.com'",
            vec!["adele_fabrikam.com#EXT#@contoso.onmicrosoft.com"],
        ),
        (
            "proxyAddresses/any(p:p eq 'smtp:patti.fernandez@contoso.com')",
            vec!["pattif@contoso.com"],
        ),
        (
            "otherMails/any(m:m eq 'adele@fabrikam.com')",
            vec!["adele_fabrikam.com#EXT#@contoso.onmicrosoft.com"],
        ),
        (
            "startsWith(userPrincipalName,'me')",
            vec!["megan@contoso.com"],
        ),
        (
            "mail eq 'alex@contoso.com' or mail eq 'isaiah@contoso.com'",
            vec!["alex@contoso.com", "isaiah@contoso.com"],
        ),
        ("mail eq 'patti.fernandez@contoso.com'", vec![]),
    ];
    for (filter, expected) in cases {
        let (status, _, body) = emu.graph(&token, &find(filter)).await;
        assert_eq!(status, 200, "{filter}: {body}");
        let upns: Vec<&str> = body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userPrincipalName"].as_str().unwrap())
            .collect();
        assert_eq!(upns, expected, "{filter}");
    }
    let (status, _, body) = emu
        .graph(&token, &find("endsWith(mail,'@contoso.com')"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
}

#[tokio::test]
async fn a_user_is_read_by_id_or_upn_and_a_missing_one_is_404() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (status, _, by_upn) = emu.graph(&token, "/v1.0/users/alex@contoso.com").await;
    assert_eq!(status, 200);
    assert_eq!(by_upn["id"], ALEX);
    let (_, _, by_id) = emu
        .graph(
            &token,
            &format!("/v1.0/users/{ALEX}?$select=accountEnabled"),
        )
        .await;
    assert_eq!(by_id["accountEnabled"], true);
    let (status, _, body) = emu.graph(&token, "/v1.0/users/nobody@contoso.com").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
}

#[tokio::test]
async fn pages_follow_next_links_to_the_end() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/generate"),
            Some(json!({"count": 243})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (_, _, first) = emu.graph(&token, "/v1.0/users").await;
    assert_eq!(
        first["value"].as_array().unwrap().len(),
        100,
        "the default page is 100"
    );
    let mut next = Some("/v1.0/users?$top=999&$select=id".to_string());
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    while let Some(url) = next {
        let (status, _, body) = emu.graph(&token, &url).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for u in body["value"].as_array().unwrap() {
            assert!(seen.insert(u["id"].as_str().unwrap().to_string()));
        }
        next = body["@odata.nextLink"].as_str().map(String::from);
        if pages == 1 {
            next = Some("/v1.0/users?$top=50&$select=id".into());
            seen.clear();
        } else if let Some(n) = &next {
            assert!(n.contains("$top=50"), "{n}");
        }
    }
    assert_eq!(seen.len(), 250);
    assert_eq!(pages, 1 + 5);
    let (status, _, body) = emu.graph(&token, "/v1.0/users?$top=1000").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
}

#[tokio::test]
async fn a_batch_answers_each_request_and_refuses_more_than_twenty() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users/alex@contoso.com"},
        {"id": "2", "method": "GET", "url": "/users/nobody@contoso.com"},
        {"id": "3", "method": "GET", "url": "/domains"},
    ]});
    let res = emu
        .http
        .post(emu.url("/v1.0/$batch"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let by_id = |id: &str| {
        out["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("1")["status"], 200);
    assert_eq!(by_id("1")["body"]["id"], ALEX);
    assert_eq!(by_id("2")["status"], 404);
    assert_eq!(
        by_id("2")["body"]["error"]["code"],
        "Request_ResourceNotFound"
    );
    assert_eq!(by_id("3")["status"], 200);

    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/domains"}))
        .collect();
    let res = emu
        .http
        .post(emu.url("/v1.0/$batch"))
        .bearer_auth(&token)
        .json(&json!({"requests": many}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn an_expired_token_is_refused_with_invalid_authentication_token() {
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    let res = emu
        .control(
            reqwest::Method::POST,
            "/_emulator/tokens",
            Some(json!({"tenantId": CONTOSO_TENANT_ID, "clientId": emu.app.client_id, "expiresIn": -120})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, body) = emu.graph(&token, "/v1.0/users").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[tokio::test]
async fn a_throttled_request_inside_a_batch_carries_its_own_retry_after() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    emu.control(
        reqwest::Method::POST,
        "/_emulator/faults",
        Some(json!({"route": "GET /v1.0/users/{id}", "status": 429, "retryAfter": 3})),
    )
    .await;
    let body = json!({"requests": [
        {"id": "a", "method": "GET", "url": "/users/alex@contoso.com"},
        {"id": "b", "method": "GET", "url": "/users/megan@contoso.com"},
    ]});
    let res = emu
        .http
        .post(emu.url("/v1.0/$batch"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the batch itself succeeds");
    let out: Value = res.json().await.unwrap();
    let responses = out["responses"].as_array().unwrap();
    assert_eq!(responses[0]["status"], 429);
    assert_eq!(responses[0]["headers"]["retry-after"], "3");
    assert_eq!(responses[1]["status"], 200);
    let counts = emu.counts().await;
    assert_eq!(
        counts["GET /v1.0/users/{id}"], 2,
        "each inner request counts"
    );
    assert_eq!(counts["POST /v1.0/$batch"], 1);
}

/// Microsoft refuses a batch whose request ids repeat, and answers a request whose
/// dependency failed `424 Failed Dependency` without running it.
/// https://learn.microsoft.com/en-us/graph/json-batching
#[tokio::test]
async fn a_batch_refuses_duplicate_ids_and_fails_the_dependents_of_a_failed_request() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let post = |body: Value| {
        let token = token.clone();
        let http = emu.http.clone();
        let url = emu.url("/v1.0/$batch");
        async move {
            http.post(url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let res = post(json!({"requests": [
        {"id": "1", "method": "GET", "url": "/domains"},
        {"id": "1", "method": "GET", "url": "/users/alex@contoso.com"},
    ]}))
    .await;
    assert_eq!(res.status(), 400);

    let res = post(json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users/nobody@contoso.com"},
        {"id": "2", "method": "GET", "url": "/domains", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/users/alex@contoso.com"},
        {"id": "4", "method": "GET", "url": "/domains", "dependsOn": ["3"]},
    ]}))
    .await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let status = |id: &str| {
        out["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("1"), 404);
    assert_eq!(status("2"), 424, "its dependency failed");
    assert_eq!(status("3"), 200);
    assert_eq!(status("4"), 200);
    let counts = emu.counts().await;
    assert_eq!(
        counts["GET /v1.0/domains"], 1,
        "the failed dependent never ran"
    );

    let res = post(json!({"requests": [
        {"id": "1", "method": "GET", "url": "/domains", "dependsOn": ["9"]},
    ]}))
    .await;
    assert_eq!(res.status(), 400, "a dependency must be an earlier request");
}
