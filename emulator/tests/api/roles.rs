//! Directory roles through Graph, and what a role changes: a user who holds an admin role
//! can be disabled or deleted only by a caller whose role reaches theirs.

use super::*;
use serde_json::json;

const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

async fn assign(emu: &Emu, token: &str, role: &str, principal: &str) -> (u16, Value) {
    send(
        emu,
        token,
        reqwest::Method::POST,
        "/v1.0/roleManagement/directory/roleAssignments",
        Some(json!({
            "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
            "roleDefinitionId": role, "principalId": principal, "directoryScopeId": "/"
        })),
    )
    .await
}

/// The object id (`oid`) in a token: the app's service principal.
fn object_id(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["oid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn role_definitions_are_read_with_a_role_permission() {
    let emu = spawn_emulator().await;
    let users_only = emu.app_token_with(&["User.Read.All"]).await;
    let (status, _, body) = emu
        .graph(
            &users_only,
            "/v1.0/roleManagement/directory/roleDefinitions",
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
    let reader = emu.app_token_with(&["RoleManagement.Read.Directory"]).await;
    let (status, _, body) = emu
        .graph(&reader, "/v1.0/roleManagement/directory/roleDefinitions")
        .await;
    assert_eq!(status, 200);
    let helpdesk = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["displayName"] == "Helpdesk Administrator")
        .unwrap();
    assert_eq!(helpdesk["id"], HELPDESK);
    assert_eq!(helpdesk["templateId"], HELPDESK);
    assert_eq!(helpdesk["isBuiltIn"], true);
}

#[tokio::test]
async fn a_role_is_assigned_listed_and_removed_with_the_one_permission_that_allows_it() {
    let emu = spawn_emulator().await;
    let maker = emu
        .app_token_with(&["User.ReadWrite.All", "Directory.ReadWrite.All"])
        .await;
    let alex = msp_alex(&emu, &maker).await;
    let (status, _) = assign(&emu, &maker, HELPDESK, &alex).await;
    assert_eq!(status, 403, "Directory.ReadWrite.All does not assign roles");

    let roles = emu
        .app_token_with(&["RoleManagement.ReadWrite.Directory"])
        .await;
    let (status, made) = assign(&emu, &roles, HELPDESK, &alex).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["principalId"], alex.as_str());
    assert_eq!(made["directoryScopeId"], "/");
    let (status, again) = assign(&emu, &roles, HELPDESK, &alex).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (400, Some("Request_BadRequest")),
        "held already"
    );
    let (status, _) = assign(&emu, &roles, "00000000-0000-0000-0000-000000000000", &alex).await;
    assert_eq!(status, 400, "no such role");
    let (status, _) = send(&emu, &roles, reqwest::Method::POST, "/v1.0/roleManagement/directory/roleAssignments",
        Some(json!({"roleDefinitionId": HELPDESK, "principalId": alex, "directoryScopeId": "/administrativeUnits/x"}))).await;
    assert_eq!(status, 400, "tenant-wide only");

    let filter =
        format!("/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{alex}'");
    let (status, _, list) = emu.graph(&roles, &filter).await;
    assert_eq!(status, 200);
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["roleDefinitionId"], HELPDESK);
    let id = made["id"].as_str().unwrap();
    let path = format!("/v1.0/roleManagement/directory/roleAssignments/{id}");
    assert_eq!(
        send(&emu, &roles, reqwest::Method::DELETE, &path, None)
            .await
            .0,
        204
    );
    assert_eq!(
        send(&emu, &roles, reqwest::Method::DELETE, &path, None)
            .await
            .0,
        404
    );
    let (_, _, list) = emu.graph(&roles, &filter).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 0);
}

/// What Gatehouse must mind when it ends an account: while the account holds Helpdesk
/// Administrator, an app with only permissions may not disable or delete it; once the role
/// is removed, it may. An app holding User Administrator may do both at any time.
#[tokio::test]
async fn a_role_holder_is_disabled_only_after_the_role_is_removed_or_by_an_app_above_it() {
    let emu = spawn_emulator().await;
    let app = emu
        .app_token_with(&["User.ReadWrite.All", "RoleManagement.ReadWrite.Directory"])
        .await;
    let alex = msp_alex(&emu, &app).await;
    let (_, held) = assign(&emu, &app, HELPDESK, &alex).await;
    let user = format!("/v1.0/users/{alex}");
    let patch = reqwest::Method::PATCH;

    let (status, body) = send(
        &emu,
        &app,
        patch.clone(),
        &user,
        Some(json!({"accountEnabled": false})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
    let (status, _) = send(
        &emu,
        &app,
        patch.clone(),
        &user,
        Some(json!({"passwordProfile": {"password": "N3w-Secret!"}})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        send(&emu, &app, reqwest::Method::DELETE, &user, None)
            .await
            .0,
        403
    );
    let (status, _) = send(
        &emu,
        &app,
        patch.clone(),
        &user,
        Some(json!({"displayName": "Alex (MSP, ending)"})),
    )
    .await;
    assert_eq!(status, 204, "not a sensitive property");

    // The role goes first; then the account may be disabled.
    let path = format!(
        "/v1.0/roleManagement/directory/roleAssignments/{}",
        held["id"].as_str().unwrap()
    );
    assert_eq!(
        send(&emu, &app, reqwest::Method::DELETE, &path, None)
            .await
            .0,
        204
    );
    let (status, _) = send(
        &emu,
        &app,
        patch.clone(),
        &user,
        Some(json!({"accountEnabled": false})),
    )
    .await;
    assert_eq!(status, 204);

    // An app that holds User Administrator reaches a Helpdesk Administrator.
    assign(&emu, &app, HELPDESK, &alex).await;
    let (status, _) = assign(&emu, &app, USER_ADMIN, &object_id(&app)).await;
    assert_eq!(status, 201);
    let (status, _) = send(
        &emu,
        &app,
        patch,
        &user,
        Some(json!({"accountEnabled": true})),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        send(&emu, &app, reqwest::Method::DELETE, &user, None)
            .await
            .0,
        204
    );
}
