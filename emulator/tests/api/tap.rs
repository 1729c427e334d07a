//! Temporary Access Pass through Graph: made, shown once, usable under the policy, removed.

use super::*;
use serde_json::json;

async fn set_policy(emu: &Emu, policy: Value) {
    let res = emu
        .control(
            reqwest::Method::PUT,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/policies/temporary-access-pass"),
            Some(policy),
        )
        .await;
    assert_eq!(res.status(), 204);
}

async fn signs_in(emu: &Emu, id: &str, secret: &str) -> bool {
    emu.control(
        reqwest::Method::POST,
        &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{id}/sign-in"),
        Some(json!({ "password": secret })),
    )
    .await
    .status()
        == 204
}

#[tokio::test]
async fn a_pass_is_shown_once_signs_in_once_and_is_removed() {
    let emu = spawn_emulator().await;
    let alex = msp_alex(&emu, &emu.app_token_with(&["User.ReadWrite.All"]).await).await;
    set_policy(&emu, json!({"state": "enabled", "isUsableOnce": false})).await;
    let path = format!("/v1.0/users/{alex}/authentication/temporaryAccessPassMethods");
    let users = emu.app_token_with(&["User.ReadWrite.All"]).await;
    assert_eq!(
        send(&emu, &users, reqwest::Method::POST, &path, Some(json!({})))
            .await
            .0,
        403
    );

    let methods = emu
        .app_token_with(&[
            "UserAuthenticationMethod.ReadWrite.All",
            "Policy.Read.AuthenticationMethod",
        ])
        .await;
    let (status, policy, ) = send(&emu, &methods, reqwest::Method::GET,
        "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass", None).await;
    assert_eq!((status, policy["state"].as_str()), (200, Some("enabled")));
    assert_eq!(policy["maximumLifetimeInMinutes"], 480);
    for lifetime in [30, 481] {
        let (status, body) = send(
            &emu,
            &methods,
            reqwest::Method::POST,
            &path,
            Some(json!({"lifetimeInMinutes": lifetime})),
        )
        .await;
        assert_eq!(status, 400, "{lifetime}: {body}");
    }
    let (status, made) = send(
        &emu,
        &methods,
        reqwest::Method::POST,
        &path,
        Some(json!({"lifetimeInMinutes": 240, "isUsableOnce": true})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let pass = made["temporaryAccessPass"].as_str().unwrap().to_string();
    assert_eq!(pass.len(), 8);
    assert_eq!(
        (
            made["isUsable"].as_bool(),
            made["methodUsabilityReason"].as_str()
        ),
        (Some(true), Some("EnabledByPolicy"))
    );
    let (_, listed) = send(&emu, &methods, reqwest::Method::GET, &path, None).await;
    assert_eq!(
        listed["value"][0]["temporaryAccessPass"],
        Value::Null,
        "shown once"
    );

    assert!(!signs_in(&emu, &alex, "wrong-pass").await);
    assert!(signs_in(&emu, &alex, &pass).await);
    assert!(!signs_in(&emu, &alex, &pass).await, "usable once");
    let (_, listed) = send(&emu, &methods, reqwest::Method::GET, &path, None).await;
    assert_eq!(listed["value"][0]["methodUsabilityReason"], "OneTimeUsed");

    // A new pass replaces it; removing it leaves none.
    let (_, second) = send(
        &emu,
        &methods,
        reqwest::Method::POST,
        &path,
        Some(json!({})),
    )
    .await;
    let second_pass = second["temporaryAccessPass"].as_str().unwrap().to_string();
    assert_eq!(second["lifetimeInMinutes"], 60, "the policy's default");
    let method = format!("{path}/{}", second["id"].as_str().unwrap());
    assert_eq!(
        send(&emu, &methods, reqwest::Method::DELETE, &method, None)
            .await
            .0,
        204
    );
    assert!(!signs_in(&emu, &alex, &second_pass).await, "removed");
    let (_, listed) = send(&emu, &methods, reqwest::Method::GET, &path, None).await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn under_a_policy_that_is_off_a_pass_is_made_but_cannot_sign_in() {
    let emu = spawn_emulator().await;
    let alex = msp_alex(&emu, &emu.app_token_with(&["User.ReadWrite.All"]).await).await;
    let methods = emu
        .app_token_with(&["UserAuthenticationMethod.ReadWrite.All"])
        .await;
    let path = format!("/v1.0/users/{alex}/authentication/temporaryAccessPassMethods");
    let (status, made) = send(
        &emu,
        &methods,
        reqwest::Method::POST,
        &path,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (
            made["isUsable"].as_bool(),
            made["methodUsabilityReason"].as_str()
        ),
        (Some(false), Some("DisabledByPolicy"))
    );
    assert!(!signs_in(&emu, &alex, made["temporaryAccessPass"].as_str().unwrap()).await);
    // A policy of single-use passes refuses a reusable one.
    set_policy(&emu, json!({"state": "enabled", "isUsableOnce": true})).await;
    let (status, _) = send(
        &emu,
        &methods,
        reqwest::Method::POST,
        &path,
        Some(json!({"isUsableOnce": false})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_pass_for_a_role_holder_needs_a_privileged_authentication_administrator() {
    let emu = spawn_emulator().await;
    let alex = msp_alex(&emu, &emu.app_token_with(&["User.ReadWrite.All"]).await).await;
    set_policy(&emu, json!({"state": "enabled"})).await;
    let app = emu
        .app_token_with(&[
            "UserAuthenticationMethod.ReadWrite.All",
            "RoleManagement.ReadWrite.Directory",
        ])
        .await;
    let (status, _) = send(&emu, &app, reqwest::Method::POST, "/v1.0/roleManagement/directory/roleAssignments", Some(json!({
        "roleDefinitionId": "729827e3-9c14-49f7-bb1b-9608f156bbb8", "principalId": alex, "directoryScopeId": "/"
    }))).await;
    assert_eq!(status, 201);
    let path = format!("/v1.0/users/{alex}/authentication/temporaryAccessPassMethods");
    let (status, body) = send(&emu, &app, reqwest::Method::POST, &path, Some(json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied")),
        "a pass comes before the role"
    );
}
