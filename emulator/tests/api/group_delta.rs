//! `/groups/delta` with `members@delta`, as Microsoft documents it: a first round with each
//! group's direct members (a large group over several pages), then only what changed, with
//! members that left marked `@removed`; and `checkMemberObjects`.
//! https://learn.microsoft.com/en-us/graph/delta-query-groups

use super::*;
use serde_json::json;

const GROUP_READER: &[&str] = &["User.Read.All", "Domain.Read.All", "GroupMember.Read.All"];

/// Every page of a round, followed to its delta link, with the page count.
async fn round(
    emu: &Emu,
    token: &str,
    start: &str,
    prefer: Option<&str>,
) -> (Vec<Value>, String, usize) {
    let mut items = Vec::new();
    let mut url = start.to_string();
    let mut pages = 0;
    loop {
        let mut req = emu.http.get(emu.url(&url)).bearer_auth(token);
        if let Some(p) = prefer {
            req = req.header("Prefer", p);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let body: Value = res.json().await.unwrap();
        pages += 1;
        items.extend(
            body["value"]
                .as_array()
                .expect("a value array")
                .iter()
                .cloned(),
        );
        if let Some(next) = body["@odata.nextLink"].as_str() {
            url = next.strip_prefix(&emu.url("")).unwrap_or(next).to_string();
        } else {
            let link = body["@odata.deltaLink"].as_str().expect("a delta link");
            return (
                items,
                link.strip_prefix(&emu.url("")).unwrap_or(link).to_string(),
                pages,
            );
        }
    }
}

/// `(member id, removed?)` of every `members@delta` entry for `group`, over all pages.
fn members_of(items: &[Value], group: &str) -> Vec<(String, bool)> {
    items
        .iter()
        .filter(|g| g["id"] == group)
        .flat_map(|g| g["members@delta"].as_array().cloned().unwrap_or_default())
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m.get("@removed").is_some(),
            )
        })
        .collect()
}

fn filter(ids: &[&str]) -> String {
    ids.iter()
        .map(|id| format!("id eq '{id}'"))
        .collect::<Vec<_>>()
        .join(" or ")
}

#[tokio::test]
async fn a_round_lists_direct_members_then_only_what_changed() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    let start = format!(
        "/v1.0/groups/delta?$select=displayName,members&$filter={}",
        filter(&[MSP_TECHNICIANS, MSP_ADMINS, TIER_2])
    );
    let (items, link, _) = round(&emu, &token, &start, None).await;
    assert_eq!(items.len(), 3, "only the filtered groups: {items:?}");
    assert_eq!(items[0]["displayName"], "MSP Technicians");
    // Direct members only: Patti is in Tier 2, and Tier 2 is listed as a group.
    assert_eq!(
        members_of(&items, MSP_TECHNICIANS),
        [
            (ALEX.into(), false),
            (ISAIAH.into(), false),
            (TIER_2.into(), false)
        ]
    );
    let tier2 =
        items.iter().find(|g| g["id"] == MSP_TECHNICIANS).unwrap()["members@delta"][2].clone();
    assert_eq!(tier2["@odata.type"], "#microsoft.graph.group");
    assert_eq!(members_of(&items, TIER_2), [(PATTI.into(), false)]);
    assert_eq!(members_of(&items, MSP_ADMINS), [(MEGAN.into(), false)]);

    // Nothing changed: an empty page and a new link.
    let (items, link, pages) = round(&emu, &token, &link, None).await;
    assert_eq!((items.len(), pages), (0, 1), "{items:?}");

    // A change to a group outside the filter is not reported.
    emu.add_to_group(SALES, ALEX).await;
    let (items, link, _) = round(&emu, &token, &link, None).await;
    assert!(items.is_empty(), "{items:?}");

    // Alex leaves, Megan joins the technicians; Isaiah is deleted (restorable).
    emu.remove_from_group(MSP_TECHNICIANS, ALEX).await;
    emu.add_to_group(MSP_TECHNICIANS, MEGAN).await;
    emu.remove_in_entra(ISAIAH).await;
    let (items, link, _) = round(&emu, &token, &link, None).await;
    assert_eq!(items.len(), 1, "only the technicians changed: {items:?}");
    assert_eq!(
        items[0]["displayName"], "MSP Technicians",
        "selected properties come back"
    );
    assert_eq!(
        members_of(&items, MSP_TECHNICIANS),
        [
            (ALEX.into(), true),
            (MEGAN.into(), false),
            (ISAIAH.into(), true)
        ]
    );
    assert_eq!(
        items[0]["members@delta"][0]["@removed"]["reason"],
        "deleted"
    );

    // Restored, Isaiah is a member again; Tier 2 deleted is `@removed` itself and leaves
    // the technicians.
    emu.restore_in_entra(ISAIAH).await;
    emu.delete_group(TIER_2).await;
    let (items, _, _) = round(&emu, &token, &link, None).await;
    assert_eq!(
        members_of(&items, MSP_TECHNICIANS),
        [(ISAIAH.into(), false), (TIER_2.into(), true)]
    );
    let gone = items
        .iter()
        .find(|g| g["id"] == TIER_2)
        .expect("Tier 2 reported");
    assert_eq!(gone["@removed"]["reason"], "deleted", "{gone}");
}

/// "For groups with many members it is possible that all members cannot fit into a single
/// response": the same group comes back on the next page with the next members.
#[tokio::test]
async fn a_large_groups_members_span_pages() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    let start = format!(
        "/v1.0/groups/delta?$select=members&$filter={}",
        filter(&[MSP_TECHNICIANS])
    );
    let (items, _, pages) = round(&emu, &token, &start, Some("odata.maxpagesize=2")).await;
    assert_eq!(pages, 2, "{items:?}");
    assert_eq!(items.len(), 2, "the group once per page");
    assert_eq!(items[0]["id"], items[1]["id"]);
    assert_eq!(
        members_of(&items, MSP_TECHNICIANS),
        [
            (ALEX.into(), false),
            (ISAIAH.into(), false),
            (TIER_2.into(), false)
        ]
    );

    // Alex leaves between the two pages: the second still brings everyone after Isaiah.
    let start = format!(
        "/v1.0/groups/delta?$select=members&$filter={}",
        filter(&[MSP_TECHNICIANS])
    );
    let first: Value = emu
        .http
        .get(emu.url(&start))
        .bearer_auth(&token)
        .header("Prefer", "odata.maxpagesize=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    emu.remove_from_group(MSP_TECHNICIANS, ALEX).await;
    let next = first["@odata.nextLink"].as_str().expect("a second page");
    let (rest, _, _) = round(
        &emu,
        &token,
        next.strip_prefix(&emu.url("")).unwrap_or(next),
        Some("odata.maxpagesize=2"),
    )
    .await;
    let mut seen = members_of(&[first], MSP_TECHNICIANS);
    seen.extend(members_of(&rest, MSP_TECHNICIANS));
    assert!(
        seen.contains(&(TIER_2.into(), false)),
        "no member is skipped: {seen:?}"
    );

    // Without a filter, every group comes back, members or not.
    let (items, _, _) = round(&emu, &token, "/v1.0/groups/delta", None).await;
    assert_eq!(items.len(), 4, "{items:?}");
    assert!(items.iter().all(|g| g.get("displayName").is_some()));
}

#[tokio::test]
async fn the_filter_and_the_tokens_follow_microsofts_limits() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    let many: Vec<String> = (0..51)
        .map(|i| format!("00000000-0000-0000-0000-{i:012}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let (status, _, body) = emu
        .graph(
            &token,
            &format!("/v1.0/groups/delta?$filter={}", filter(&many)),
        )
        .await;
    assert_eq!(status, 400, "more than 50 ids: {body}");
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    let (status, _, _) = emu
        .graph(&token, "/v1.0/groups/delta?$filter=displayName eq 'Sales'")
        .await;
    assert_eq!(status, 400, "only id eq is supported");

    // Without the group permission: 403.
    let weak = emu.app_token_with(&["User.Read.All"]).await;
    let (status, _, _) = emu.graph(&weak, "/v1.0/groups/delta").await;
    assert_eq!(status, 403);

    // A reset sync state is 410 with where to start over; an old link is syncStateNotFound.
    let (_, link, _) = round(&emu, &token, "/v1.0/groups/delta?$select=members", None).await;
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/expire-delta-tokens"),
            None,
        )
        .await;
    assert_eq!(res.status(), 204);
    let (status, headers, body) = emu.graph(&token, &link).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "resyncRequired");
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .ends_with("/v1.0/groups/delta?$select=members"));
    let (_, link, _) = round(&emu, &token, "/v1.0/groups/delta?$select=members", None).await;
    emu.delta_links_last(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, body) = emu.graph(&token, &link).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn check_member_objects_answers_for_users_and_groups_transitively() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(GROUP_READER).await;
    let ask = |path: String, ids: Vec<&str>| {
        emu.http
            .post(emu.url(&path))
            .bearer_auth(&token)
            .json(&json!({ "ids": ids }))
            .send()
    };
    let body: Value = ask(
        format!("/v1.0/users/{PATTI}/checkMemberObjects"),
        vec![MSP_TECHNICIANS, MSP_ADMINS, TIER_2],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["value"], json!([MSP_TECHNICIANS, TIER_2]));
    let body: Value = ask(
        format!("/v1.0/groups/{TIER_2}/checkMemberObjects"),
        vec![MSP_TECHNICIANS, MSP_ADMINS],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        body["value"],
        json!([MSP_TECHNICIANS]),
        "a group nested in another"
    );
    let res = ask(
        format!("/v1.0/directoryObjects/{MEGAN}/checkMemberObjects"),
        vec![MSP_ADMINS; 21],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400, "at most 20 ids");
    let res = ask(format!("/v1.0/users/{MEGAN}/checkMemberObjects"), vec![])
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
