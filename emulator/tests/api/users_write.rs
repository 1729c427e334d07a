//! Making users through Graph (`POST /v1.0/users`), as Microsoft documents it.

use super::*;
use serde_json::json;

/// Posts `body` to `/v1.0/users` with `token`: the status and the answer.
async fn create(emu: &Emu, token: &str, body: Value) -> (u16, Value) {
    send(emu, token, reqwest::Method::POST, "/v1.0/users", Some(body)).await
}

fn msp_alex_body() -> Value {
    json!({
        "accountEnabled": true,
        "displayName": "Alex Wilber (MSP)",
        "mailNickname": "msp-alex",
        "userPrincipalName": "msp-alex@contoso.com",
        "passwordProfile": { "forceChangePasswordNextSignIn": false, "password": "xWwvJ]6NMw+bWH-d" }
    })
}

#[tokio::test]
async fn an_app_without_a_write_permission_cannot_make_users() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(&["User.Read.All"]).await;
    let (status, body) = create(&emu, &token, msp_alex_body()).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    let (status, _, _) = emu.graph(&token, "/v1.0/users/msp-alex@contoso.com").await;
    assert_eq!(status, 404, "nothing was made");
}

#[tokio::test]
async fn a_user_made_through_graph_is_read_back_and_signs_in_with_its_password() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(&["User.ReadWrite.All"]).await;
    let (status, made) = create(&emu, &token, msp_alex_body()).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["userPrincipalName"], "msp-alex@contoso.com");
    assert!(made["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#users/$entity"));
    assert!(
        made.get("passwordProfile").is_none(),
        "the password never comes back"
    );
    let id = made["id"].as_str().unwrap();
    let (status, _, read) = emu.graph(&token, &format!("/v1.0/users/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["displayName"], "Alex Wilber (MSP)");

    let sign_in = |password: &'static str| {
        let emu = &emu;
        async move {
            emu.control(
                reqwest::Method::POST,
                &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{id}/sign-in"),
                Some(json!({ "password": password })),
            )
            .await
            .status()
            .as_u16()
        }
    };
    assert_eq!(sign_in("xWwvJ]6NMw+bWH-d").await, 204);
    assert_eq!(sign_in("xWwvJ]6NMw+bWH-D").await, 401);
    emu.disable_in_entra(id).await;
    assert_eq!(sign_in("xWwvJ]6NMw+bWH-d").await, 401, "disabled");
}

#[tokio::test]
async fn a_taken_name_a_bad_name_a_weak_password_or_a_missing_property_makes_nothing() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(&["User.ReadWrite.All"]).await;
    assert_eq!(create(&emu, &token, msp_alex_body()).await.0, 201);

    let mut cases = vec![(
        msp_alex_body(),
        "Another object with the same value for property userPrincipalName already exists.",
    )];
    // Alex Wilber's own account: the same name in another case.
    let mut same = msp_alex_body();
    same["userPrincipalName"] = json!("ALEX@contoso.com");
    cases.push((
        same,
        "Another object with the same value for property userPrincipalName already exists.",
    ));
    for upn in [
        "msp-alex@fabrikam.com",
        "msp-alex.@contoso.com",
        "msp-alé@contoso.com",
        "msp alex@contoso.com",
    ] {
        let mut bad = msp_alex_body();
        bad["userPrincipalName"] = json!(upn);
        cases.push((bad, "Property userPrincipalName is invalid."));
    }
    let mut long = msp_alex_body();
    long["userPrincipalName"] = json!(format!("{}@contoso.com", "a".repeat(65)));
    cases.push((long, "Property userPrincipalName is invalid."));
    let mut weak = msp_alex_body();
    weak["userPrincipalName"] = json!("msp-megan@contoso.com");
    weak["passwordProfile"]["password"] = json!("password1");
    cases.push((weak, "The specified password does not comply with password complexity requirements. Please provide a different password."));
    for missing in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "passwordProfile",
    ] {
        let mut incomplete = msp_alex_body();
        incomplete["userPrincipalName"] = json!("msp-isaiah@contoso.com");
        incomplete.as_object_mut().unwrap().remove(missing);
        cases.push((incomplete, ""));
    }
    for (body, message) in cases {
        let (status, answer) = create(&emu, &token, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "Request_BadRequest");
        if !message.is_empty() {
            assert_eq!(answer["error"]["message"], message, "{body}");
        } else {
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Invalid value specified for property"),
                "{answer}"
            );
        }
    }
    let (status, _, list) = emu.graph(&token, "/v1.0/users?$top=999").await;
    assert_eq!(status, 200);
    let made: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["userPrincipalName"].as_str())
        .filter(|u| u.starts_with("msp-") || u.starts_with("aaaa"))
        .collect();
    assert_eq!(made, ["msp-alex@contoso.com"], "only the first was made");
}

/// Sends `method` to `/v1.0/users/{id}` with `token`: the status and the answer.
async fn on_user(
    emu: &Emu,
    token: &str,
    method: reqwest::Method,
    id: &str,
    body: Option<Value>,
) -> (u16, Value) {
    send(emu, token, method, &format!("/v1.0/users/{id}"), body).await
}

async fn signs_in(emu: &Emu, id: &str, password: &str) -> bool {
    emu.control(
        reqwest::Method::POST,
        &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{id}/sign-in"),
        Some(json!({ "password": password })),
    )
    .await
    .status()
        == 204
}

#[tokio::test]
async fn each_change_needs_its_permission_and_a_bad_value_changes_nothing() {
    let emu = spawn_emulator().await;
    let maker = emu.app_token_with(&["User.ReadWrite.All"]).await;
    let (_, made) = create(&emu, &maker, msp_alex_body()).await;
    let id = made["id"].as_str().unwrap().to_string();

    // Enabling and disabling has a permission of its own, which allows nothing else.
    let switch = emu.app_token_with(&["User.EnableDisableAccount.All"]).await;
    let patch = reqwest::Method::PATCH;
    let (status, body) = on_user(
        &emu,
        &switch,
        patch.clone(),
        &id,
        Some(json!({"displayName": "X"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
    let (status, _) = on_user(
        &emu,
        &switch,
        patch.clone(),
        &id,
        Some(json!({"accountEnabled": false})),
    )
    .await;
    assert_eq!(status, 204);
    assert!(!signs_in(&emu, &id, "xWwvJ]6NMw+bWH-d").await, "disabled");

    // A new password, with the password permission; a weak one changes nothing.
    let reset = emu
        .app_token_with(&["User-PasswordProfile.ReadWrite.All"])
        .await;
    let (status, body) = on_user(
        &emu,
        &reset,
        patch.clone(),
        &id,
        Some(json!({"accountEnabled": true})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = on_user(
        &emu,
        &reset,
        patch.clone(),
        &id,
        Some(json!({"passwordProfile": {"password": "weakweak"}})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = on_user(
        &emu,
        &reset,
        patch.clone(),
        &id,
        Some(json!({"passwordProfile": {"password": "N3w-Secret!"}})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = on_user(
        &emu,
        &switch,
        patch.clone(),
        &id,
        Some(json!({"accountEnabled": true})),
    )
    .await;
    assert_eq!(status, 204);
    assert!(signs_in(&emu, &id, "N3w-Secret!").await);
    assert!(
        !signs_in(&emu, &id, "xWwvJ]6NMw+bWH-d").await,
        "the old password is gone"
    );

    // A taken name, or one outside the verified domains, is refused.
    for (upn, says) in [
        ("alex@contoso.com", "already exists"),
        ("msp-alex@fabrikam.com", "is invalid"),
    ] {
        let (status, body) = on_user(
            &emu,
            &maker,
            patch.clone(),
            &id,
            Some(json!({"userPrincipalName": upn})),
        )
        .await;
        assert_eq!(status, 400, "{upn}: {body}");
        assert_eq!(body["error"]["code"], "Request_BadRequest");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
    let (_, _, read) = emu.graph(&maker, &format!("/v1.0/users/{id}")).await;
    assert_eq!(read["userPrincipalName"], "msp-alex@contoso.com");
    assert_eq!(read["displayName"], "Alex Wilber (MSP)");
    let (status, _) = on_user(
        &emu,
        &maker,
        patch,
        "no-such-user",
        Some(json!({"displayName": "X"})),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn deleting_a_user_needs_a_user_permission_not_the_directory_one() {
    let emu = spawn_emulator().await;
    let maker = emu.app_token_with(&["User.ReadWrite.All"]).await;
    let (_, made) = create(&emu, &maker, msp_alex_body()).await;
    let id = made["id"].as_str().unwrap().to_string();
    let directory = emu.app_token_with(&["Directory.ReadWrite.All"]).await;
    let (status, _) = on_user(&emu, &directory, reqwest::Method::DELETE, &id, None).await;
    assert_eq!(status, 403, "Directory.ReadWrite.All does not delete users");
    let deleter = emu.app_token_with(&["User.ReadWrite.All"]).await;
    let (status, _) = on_user(&emu, &deleter, reqwest::Method::DELETE, &id, None).await;
    assert_eq!(status, 204);
    let (status, _, _) = emu.graph(&deleter, &format!("/v1.0/users/{id}")).await;
    assert_eq!(status, 404);
    assert!(!signs_in(&emu, &id, "xWwvJ]6NMw+bWH-d").await, "deleted");
    let (status, _) = on_user(&emu, &deleter, reqwest::Method::DELETE, &id, None).await;
    assert_eq!(status, 404, "already in the recycle bin");
}

#[tokio::test]
async fn revoking_sign_in_sessions_needs_its_permission_and_dates_them() {
    let emu = spawn_emulator().await;
    let maker = emu.app_token_with(&["User.ReadWrite.All"]).await;
    let (_, made) = create(&emu, &maker, msp_alex_body()).await;
    let id = made["id"].as_str().unwrap().to_string();
    let path = format!("/v1.0/users/{id}/revokeSignInSessions");
    let post = |token: String| {
        let (emu, path) = (&emu, &path);
        async move {
            let res = emu
                .http
                .post(emu.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    assert_eq!(
        post(maker.clone()).await.0,
        403,
        "User.ReadWrite.All does not revoke sessions"
    );
    let revoker = emu.app_token_with(&["User.RevokeSessions.All"]).await;
    let (status, body) = post(revoker).await;
    assert_eq!((status, &body["value"]), (200, &json!(true)), "{body}");
    let reader = emu.app_token_with(&["User.Read.All"]).await;
    let (_, _, read) = emu
        .graph(
            &reader,
            &format!("/v1.0/users/{id}?$select=signInSessionsValidFromDateTime"),
        )
        .await;
    let since = read["signInSessionsValidFromDateTime"].as_str().unwrap();
    assert!(since.ends_with('Z') && since.starts_with("20"), "{since}");
}

#[tokio::test]
async fn the_organisations_sign_in_page_takes_the_password_of_an_account_made_through_graph() {
    let emu = spawn_emulator().await;
    let token = emu.app_token_with(&["User.ReadWrite.All"]).await;
    let (_, made) = create(&emu, &token, msp_alex_body()).await;
    let id = made["id"].as_str().unwrap().to_string();
    let page = emu
        .http
        .get(emu.url("/contoso.com/signin"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sign in to Contoso"));
    let sign_in = |password: &'static str| {
        let emu = &emu;
        async move {
            let res = emu
                .http
                .post(emu.url("/contoso.com/signin"))
                .form(&[("username", "msp-alex@contoso.com"), ("password", password)])
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, html) = sign_in("xWwvJ]6NMw+bWH-d").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Signed in to Contoso as <strong>msp-alex@contoso.com</strong>"),
        "{html}"
    );
    assert!(html.contains("no admin role"));
    // A refusal is the form again with Microsoft's words, on a page like any other (200), as
    // Microsoft's sign-in page answers it.
    let (status, html) = sign_in("guess").await;
    assert_eq!(status, 200);
    assert!(html.contains("Your account or password is incorrect."));
    assert!(!html.contains("Signed in to"));
    emu.disable_in_entra(&id).await;
    let (status, html) = sign_in("xWwvJ]6NMw+bWH-d").await;
    assert_eq!(status, 200);
    assert!(html.contains("Your account has been locked."), "{html}");
}
