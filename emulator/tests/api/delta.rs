//! `/users/delta`: initial sync, delta links, `@removed`, `latest`, and `410` resync.

use super::*;
use serde_json::json;

/// Follows next links to the delta link; returns every item and the delta link.
async fn walk(emu: &Emu, token: &str, start: &str) -> (Vec<Value>, String, usize) {
    let mut items = Vec::new();
    let mut url = start.to_string();
    let mut pages = 0;
    loop {
        let (status, _, body) = emu.graph(token, &url).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        items.extend(
            body["value"]
                .as_array()
                .expect("a page has value")
                .iter()
                .cloned(),
        );
        if let Some(next) = body["@odata.nextLink"].as_str() {
            url = next.to_string();
        } else {
            let delta = body["@odata.deltaLink"]
                .as_str()
                .expect("the last page has a deltaLink");
            return (items, delta.to_string(), pages);
        }
    }
}

async fn control(emu: &Emu, method: reqwest::Method, path: &str) -> u16 {
    emu.control(
        method,
        &format!("/_emulator/directories/{CONTOSO_TENANT_ID}{path}"),
        None,
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn delta_reports_a_soft_delete_a_restore_and_a_hard_delete() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (items, link, _) = walk(
        &emu,
        &token,
        "/v1.0/users/delta?$select=id,accountEnabled,userPrincipalName,mail",
    )
    .await;
    assert_eq!(items.len(), 7);
    assert!(items.iter().all(|u| u.get("accountEnabled").is_some()));

    // Nothing changed: one request, nothing in it.
    let (items, link, pages) = walk(&emu, &token, &link).await;
    assert_eq!((items.len(), pages), (0, 1));

    assert_eq!(
        control(&emu, reqwest::Method::DELETE, &format!("/users/{ALEX}")).await,
        204
    );
    let (items, link, _) = walk(&emu, &token, &link).await;
    assert_eq!(
        items,
        vec![json!({"id": ALEX, "@removed": {"reason": "changed"}})]
    );

    assert_eq!(
        control(
            &emu,
            reqwest::Method::POST,
            &format!("/users/{ALEX}/restore")
        )
        .await,
        204
    );
    let (items, link, _) = walk(&emu, &token, &link).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["userPrincipalName"], "alex@contoso.com");
    assert_eq!(
        items[0]["accountEnabled"], true,
        "the selection carries over to later links"
    );

    assert_eq!(
        control(
            &emu,
            reqwest::Method::POST,
            &format!("/users/{ALEX}/disable")
        )
        .await,
        200
    );
    let (items, link, _) = walk(&emu, &token, &link).await;
    assert_eq!(items[0]["accountEnabled"], false);

    assert_eq!(
        control(
            &emu,
            reqwest::Method::DELETE,
            &format!("/users/{ALEX}?permanent=true")
        )
        .await,
        204
    );
    let (items, _, _) = walk(&emu, &token, &link).await;
    assert_eq!(
        items,
        vec![json!({"id": ALEX, "@removed": {"reason": "deleted"}})]
    );
}

#[tokio::test]
async fn latest_skips_the_initial_sync() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (status, _, body) = emu
        .graph(
            &token,
            "/v1.0/users/delta?$deltatoken=latest&$select=id,mail",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["value"], json!([]));
    let link = body["@odata.deltaLink"].as_str().unwrap().to_string();
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users"),
            Some(json!({"userPrincipalName": "new@contoso.com", "displayName": "New Person", "mail": "new@contoso.com"})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (items, _, _) = walk(&emu, &token, &link).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["mail"], "new@contoso.com");
    assert!(items[0].get("displayName").is_none());
}

#[tokio::test]
async fn a_reset_sync_state_is_410_with_a_fresh_start() {
    // https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (_, link, _) = walk(&emu, &token, "/v1.0/users/delta?$select=id").await;
    assert_eq!(
        control(&emu, reqwest::Method::POST, "/expire-delta-tokens").await,
        204
    );
    let (status, headers, body) = emu.graph(&token, &link).await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["code"], "resyncRequired");
    let restart = headers["location"].to_str().unwrap();
    assert!(
        restart.ends_with("/v1.0/users/delta?$select=id"),
        "{restart}"
    );
    let (items, _, _) = walk(&emu, &token, restart).await;
    assert_eq!(items.len(), 7, "a resync starts over");
}

/// Delta links for directory objects last seven days; an older one (or one Graph cannot
/// read) is `400 BadRequest` with `syncStateNotFound` and no `Location`.
/// https://devblogs.microsoft.com/microsoft365dev/duration-of-change-tracking-tokens-for-identity-and-education-resources/
#[tokio::test]
async fn an_expired_or_unknown_delta_link_is_400_sync_state_not_found() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let (_, link, _) = walk(&emu, &token, "/v1.0/users/delta?$select=id").await;
    let (status, _, _) = emu.graph(&token, &link).await;
    assert_eq!(status, 200, "a fresh link works");
    emu.delta_links_last(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, headers, body) = emu.graph(&token, &link).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "syncStateNotFound");
    assert!(headers.get("location").is_none());

    let (status, _, body) = emu
        .graph(&token, "/v1.0/users/delta?$deltatoken=garbage")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn a_large_directory_pages_and_a_change_costs_one_page() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/generate"),
            Some(json!({"count": 1000})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (items, link, pages) =
        walk(&emu, &token, "/v1.0/users/delta?$select=id,accountEnabled").await;
    assert_eq!(items.len(), 1007);
    assert_eq!(pages, 11);
    let res = emu
        .control(
            reqwest::Method::PATCH,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{MEGAN}"),
            Some(json!({"mail": "megan.bowen@contoso.com"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (items, _, pages) = walk(&emu, &token, &link).await;
    assert_eq!((items.len(), pages), (1, 1));
    assert_eq!(items[0]["id"], MEGAN);
}

#[tokio::test]
async fn a_user_changed_during_the_initial_sync_comes_again_in_the_next_round() {
    let emu = spawn_emulator().await;
    let token = emu.app_token().await;
    let first = emu
        .http
        .get(emu.url("/v1.0/users/delta?$select=id,accountEnabled"))
        .bearer_auth(&token)
        .header("Prefer", "odata.maxpagesize=2")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(first["value"].as_array().unwrap().len(), 2);
    let seen = first["value"][0]["id"].as_str().unwrap().to_string();
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{seen}/disable"),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let (rest, link, _) = walk(&emu, &token, first["@odata.nextLink"].as_str().unwrap()).await;
    assert_eq!(rest.len(), 5);
    // Microsoft warns that an object may come back more than once; the client must cope.
    let (again, _, _) = walk(&emu, &token, &link).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["id"], seen.as_str());
    assert_eq!(again[0]["accountEnabled"], false);
}
