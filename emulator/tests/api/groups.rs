//! Groups as Graph v1.0 documents them: finding one by name, everyone in it through nested
//! groups, and which of a few groups a user belongs to.

use super::*;
use serde_json::json;

const GROUP_READER: &[&str] = &["User.Read.All", "Domain.Read.All", "GroupMember.Read.All"];

fn names(body: &Value) -> Vec<String> {
    body["value"]
        .as_array()
        .expect("a value array")
        .iter()
        .map(|v| v["displayName"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn groups_are_found_by_the_start_of_their_name_or_a_word_in_it() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    let (status, _, body) = emu
        .graph(&token, "/v1.0/groups?$filter=startswith(displayName,'msp')")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["MSP Technicians", "MSP Admins"]);
    assert_eq!(body["value"][0]["securityEnabled"], true);
    assert_eq!(body["value"][0]["groupTypes"], json!([]));

    let (_, _, body) = emu
        .graph(&token, "/v1.0/groups?$filter=displayName eq 'tier 2'")
        .await;
    assert_eq!(names(&body), ["Tier 2"]);

    // $search is an advanced query: without ConsistencyLevel: eventual Graph refuses it.
    let (status, _, body) = emu
        .graph(&token, "/v1.0/groups?$search=\"displayName:tech\"")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    let body: Value = emu
        .http
        .get(emu.url("/v1.0/groups?$search=\"displayName:tech\"&$count=true"))
        .bearer_auth(&token)
        .header("ConsistencyLevel", "eventual")
        .json_body()
        .await;
    assert_eq!(names(&body), ["MSP Technicians"]);
    assert_eq!(body["@odata.count"], 1);

    // A Microsoft 365 group says so in groupTypes; made without a visibility, it is public
    // (anyone in the organization may join), a security group private.
    let (_, _, body) = emu
        .graph(&token, "/v1.0/groups?$filter=displayName eq 'Sales'")
        .await;
    assert_eq!(body["value"][0]["groupTypes"], json!(["Unified"]));
    assert_eq!(body["value"][0]["visibility"], "Public");
    let (_, _, body) = emu
        .graph(
            &token,
            "/v1.0/groups?$filter=displayName eq 'MSP Admins'&$select=id,visibility",
        )
        .await;
    assert_eq!(body["value"][0]["visibility"], "Private");
}

#[tokio::test]
async fn a_group_list_pages_and_keeps_its_filter() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    let (status, _, first) = emu
        .graph(&token, "/v1.0/groups?$top=1&$select=id,displayName")
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(names(&first), ["MSP Technicians"]);
    assert_eq!(
        first["value"][0].as_object().unwrap().len(),
        2,
        "only the selected properties: {first}"
    );
    let mut all = names(&first);
    let mut next = first["@odata.nextLink"].as_str().map(str::to_string);
    while let Some(link) = next {
        let (status, _, page) = emu.graph(&token, &link).await;
        assert_eq!(status, 200, "{page}");
        all.extend(names(&page));
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(all, ["MSP Technicians", "Tier 2", "MSP Admins", "Sales"]);
    let (status, _, body) = emu.graph(&token, "/v1.0/groups?$top=1000").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("Request_UnsupportedQuery"))
    );
}

#[tokio::test]
async fn transitive_members_reach_through_nested_groups() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    let path = format!("/v1.0/groups/{MSP_TECHNICIANS}/transitiveMembers");
    let (status, _, body) = emu.graph(&token, &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        names(&body),
        ["Alex Wilber", "Isaiah Langer", "Tier 2", "Patti Fernandez"]
    );
    assert_eq!(body["value"][0]["@odata.type"], "#microsoft.graph.user");
    assert_eq!(body["value"][2]["@odata.type"], "#microsoft.graph.group");

    // Cast to users only, two a page.
    let (_, _, page) = emu
        .graph(
            &token,
            &format!("{path}/microsoft.graph.user?$top=2&$select=id,mail"),
        )
        .await;
    assert_eq!(page["value"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(page["value"][0]["id"], ALEX);
    let (_, _, rest) = emu
        .graph(
            &token,
            page["@odata.nextLink"].as_str().expect("a next page"),
        )
        .await;
    assert_eq!(rest["value"][0]["id"], PATTI, "{rest}");
    assert!(rest["@odata.nextLink"].is_null());

    // Patti leaves Tier 2; Isaiah is deleted (restorable): neither is in the group any more.
    emu.remove_from_group(TIER_2, PATTI).await;
    emu.remove_in_entra(ISAIAH).await;
    let (_, _, body) = emu.graph(&token, &path).await;
    assert_eq!(names(&body), ["Alex Wilber", "Tier 2"]);
    // Restored, Isaiah is back in the groups he was in.
    emu.restore_in_entra(ISAIAH).await;
    let (_, _, body) = emu.graph(&token, &path).await;
    assert_eq!(names(&body), ["Alex Wilber", "Isaiah Langer", "Tier 2"]);
}

#[tokio::test]
async fn a_deleted_group_is_not_found() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    emu.delete_group(TIER_2).await;
    let (status, _, body) = emu
        .graph(&token, &format!("/v1.0/groups/{TIER_2}/transitiveMembers"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
    let (_, _, body) = emu
        .graph(
            &token,
            &format!("/v1.0/groups/{MSP_TECHNICIANS}/transitiveMembers"),
        )
        .await;
    assert_eq!(
        names(&body),
        ["Alex Wilber", "Isaiah Langer"],
        "Patti went with Tier 2"
    );
}

#[tokio::test]
async fn check_member_groups_answers_which_of_the_groups_hold_the_user() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    let ask = |user: &str, groups: Vec<&str>| {
        emu.http
            .post(emu.url(&format!("/v1.0/users/{user}/checkMemberGroups")))
            .bearer_auth(&token)
            .json(&json!({ "groupIds": groups }))
            .send()
    };
    let res = ask(PATTI, vec![MSP_TECHNICIANS, MSP_ADMINS, TIER_2])
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["value"],
        json!([MSP_TECHNICIANS, TIER_2]),
        "through Tier 2"
    );
    let body: Value = ask(MEGAN, vec![MSP_TECHNICIANS, MSP_ADMINS])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"], json!([MSP_ADMINS]));
    let too_many = vec![MSP_ADMINS; 21];
    assert_eq!(ask(MEGAN, too_many).await.unwrap().status(), 400);
}

#[tokio::test]
async fn reading_groups_needs_a_group_permission() {
    let emu = spawn_emulator().await;
    let token = emu
        .app_token_with(&["User.Read.All", "Domain.Read.All"])
        .await;
    for path in [
        "/v1.0/groups".to_string(),
        format!("/v1.0/groups/{MSP_TECHNICIANS}/transitiveMembers"),
    ] {
        let (status, _, body) = emu.graph(&token, &path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    }
}

#[tokio::test]
async fn nesting_follows_entras_rules() {
    let emu = spawn_emulator().await;
    let emu = &emu;
    let add = |group: &str, member: &str| {
        let path = format!("/_emulator/directories/{CONTOSO_TENANT_ID}/groups/{group}/members");
        let body = json!({ "id": member });
        async move {
            emu.control(reqwest::Method::POST, &path, Some(body))
                .await
                .status()
        }
    };
    // A Microsoft 365 group holds users only; no group may end up inside itself.
    assert_eq!(add(SALES, TIER_2).await, 400);
    assert_eq!(add(TIER_2, MSP_TECHNICIANS).await, 400);
    assert_eq!(add(SALES, "alex@contoso.com").await, 204);
}

/// Counting is an advanced query: the user count of a group, nested groups included, comes
/// back as plain text with `ConsistencyLevel: eventual`, and is refused without it.
#[tokio::test]
async fn a_groups_users_are_counted_only_as_an_advanced_query() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    let path =
        format!("/v1.0/groups/{MSP_TECHNICIANS}/transitiveMembers/microsoft.graph.user/$count");
    let (status, _, body) = emu.graph(&token, &path).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    let count = || {
        emu.http
            .get(emu.url(&path))
            .bearer_auth(&token)
            .header("ConsistencyLevel", "eventual")
            .text_body()
    };
    assert_eq!(count().await, "3", "Alex, Isaiah, and Patti through Tier 2");
    emu.remove_from_group(TIER_2, PATTI).await;
    assert_eq!(count().await, "2");
}
