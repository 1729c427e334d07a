//! QR sign-in on a tenant whose user source is Entra ID: onboarding decided by Graph.

use crate::emulator::{
    connect_contoso, reconcile_now, spawn_app_with_entra, Emu, ALEX, ISAIAH, PATTI,
};
use crate::helpers::*;
use gatehouse::domain::{UserSource, UserStatus};
use serde_json::json;

/// `acme`, connected to Contoso.
async fn entra_tenant() -> (TestApp, Emu) {
    let (app, emu) = spawn_app_with_entra().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    connect_contoso(&app, "acme").await;
    (app, emu)
}

/// How many users came from Entra ID.
async fn entra_users(app: &TestApp) -> usize {
    app.users("acme")
        .await
        .iter()
        .filter(|u| u.source == UserSource::AzureAd)
        .count()
}

/// Approves a fresh login page of `acme` with `phone`.
async fn approve(app: &TestApp, phone: &Phone) -> reqwest::Response {
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    phone.approve_page(app, "acme", &page).await
}

#[tokio::test]
async fn a_technician_in_the_directory_onboards_on_first_scan() {
    let (app, emu) = entra_tenant().await;
    let phone = app.phone_with_email("alex@contoso.com").await;
    let browser = app.browser(&["acme"]);
    let landed = sign_in(&app, &browser, &phone, "acme").await;
    assert_eq!(landed, "/home");
    let home = browser.get("acme", "/home").await.text().await.unwrap();
    assert!(home.contains("msp-alex"));
    let alex = &users_with_email(&app, "alex@contoso.com").await[0];
    assert_eq!(
        (
            alex.source,
            alex.entra_oid.as_ref().map(|o| o.as_str()),
            alex.status
        ),
        (UserSource::AzureAd, Some(ALEX), UserStatus::Active)
    );
    // The lookup (UPN, mail, proxy addresses, other mails) went out as one JSON batch.
    let counts: serde_json::Value = emu
        .control(reqwest::Method::GET, "/_emulator/requests", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(counts["POST /v1.0/$batch"], 1, "{counts}");
    // The next sign-in checks Graph again and passes.
    assert_eq!(approve(&app, &phone).await.status(), 200);
}

#[tokio::test]
async fn an_alias_in_proxy_addresses_is_found() {
    let (app, _emu) = entra_tenant().await;
    let phone = app.phone_with_email("patti.fernandez@contoso.com").await;
    let res = approve(&app, &phone).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn every_refusal_names_its_reason_and_onboards_nobody() {
    let (app, emu) = entra_tenant().await;
    // Someone else's address matching Isaiah too makes Isaiah ambiguous.
    emu.contoso(
        reqwest::Method::POST,
        "",
        Some(json!({"userPrincipalName": "twin@contoso.com", "displayName": "Twin", "otherMails": ["isaiah@contoso.com"]})),
    )
    .await;
    let cases = [
        ("nobody@contoso.com", 403, "no_account", "not an account"),
        ("diego@contoso.com", 403, "account_disabled", "disabled"),
        ("adele@fabrikam.com", 403, "other_domain", "@contoso.com"),
        (
            "isaiah@contoso.com",
            403,
            "ambiguous_account",
            "more than one",
        ),
    ];
    for (email, status, code, words) in cases {
        let phone = app.phone_with_email(email).await;
        let (s, c, msg) = error_code(approve(&app, &phone).await).await;
        assert_eq!((s, c.as_str()), (status, code), "{email}: {msg}");
        assert!(msg.contains(words), "{email}: {msg}");
    }
    assert_eq!(entra_users(&app).await, 0, "nobody was onboarded");
    let denied = app.audited("login.denied").await;
    assert_eq!(denied, 4, "every refusal is audited");
}

#[tokio::test]
async fn when_entra_cannot_be_reached_nobody_signs_in() {
    let (app, emu) = entra_tenant().await;
    let phone = app.phone_with_email("alex@contoso.com").await;
    emu.fault(json!({"route": "GET /v1.0/users", "status": 500, "count": 50}))
        .await;
    let (s, code, msg) = error_code(approve(&app, &phone).await).await;
    assert_eq!((s, code.as_str()), (503, "entra_unavailable"), "{msg}");
    assert_eq!(entra_users(&app).await, 0, "nobody was onboarded");
}

#[tokio::test]
async fn a_user_deleted_in_entra_is_refused_at_the_next_sign_in_and_can_return_when_restored() {
    let (app, emu) = entra_tenant().await;
    let phone = app.phone_with_email("alex@contoso.com").await;
    assert_eq!(approve(&app, &phone).await.status(), 200);
    emu.remove_in_entra(ALEX).await;
    let (s, code, _) = error_code(approve(&app, &phone).await).await;
    assert_eq!((s, code.as_str()), (403, "no_account"));
    // Offboarded by the reconciler (which revokes the phone), restored in Entra: the same
    // record comes back at the next first scan.
    let report = reconcile_now(&app, "acme").await;
    assert_eq!(report.offboarded.len(), 1, "{report:?}");
    emu.restore_in_entra(ALEX).await;
    let phone = app.phone_with_email("alex@contoso.com").await;
    let res = approve(&app, &phone).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let records = users_with_email(&app, "alex@contoso.com").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (
            records[0].entra_oid.as_ref().map(|o| o.as_str()),
            records[0].status
        ),
        (Some(ALEX), UserStatus::Active)
    );
}

#[tokio::test]
async fn the_local_admin_who_connected_entra_still_signs_in() {
    let (app, _emu) = entra_tenant().await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let res = approve(&app, &phone).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn an_open_page_is_told_when_the_reconciler_offboards_its_user() {
    let (app, emu) = entra_tenant().await;
    let phone = app.phone_with_email("alex@contoso.com").await;
    let browser = app.browser(&["acme"]);
    sign_in(&app, &browser, &phone, "acme").await;
    let events = browser.get("acme", "/session/events").await;
    assert_eq!(events.status(), 200);
    emu.remove_in_entra(ALEX).await;
    // The first run lists everyone: Alex is gone from the directory.
    let r = reconcile_now(&app, "acme").await;
    assert_eq!(r.offboarded.len(), 1, "{r:?}");
    expect_event(events, "signed_out").await;
    assert_eq!(
        browser.get("acme", "/home").await.status(),
        303,
        "and the session is gone"
    );
}

#[tokio::test]
async fn one_entra_account_is_one_record_whatever_address_signs_in() {
    let (app, _emu) = entra_tenant().await;
    let first = app.phone_with_email("pattif@contoso.com").await;
    assert_eq!(approve(&app, &first).await.status(), 200);
    let alias = app.phone_with_email("patti.fernandez@contoso.com").await;
    let res = approve(&app, &alias).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["user"]["username"], "msp-pattif",
        "the same account as before"
    );
    assert_eq!(entra_users(&app).await, 1);
}

/// The tenant's records holding `email`, oldest first.
async fn users_with_email(app: &TestApp, email: &str) -> Vec<User> {
    let mut records: Vec<User> = app
        .users("acme")
        .await
        .into_iter()
        .filter(|u| u.email == email)
        .collect();
    records.sort_by_key(|u| u.created_at);
    records
}

#[tokio::test]
async fn an_alias_moved_to_another_person_does_not_sign_them_in_as_its_old_owner() {
    let (app, emu) = entra_tenant().await;
    let alias = "patti.fernandez@contoso.com";
    let pattis_phone = app.phone_with_email(alias).await;
    assert_eq!(approve(&app, &pattis_phone).await.status(), 200);

    // An Exchange admin moves the alias from Patti to Isaiah.
    emu.patch_in_entra(
        PATTI,
        json!({ "proxyAddresses": ["SMTP:pattif@contoso.com"] }),
    )
    .await;
    emu.patch_in_entra(
        ISAIAH,
        json!({ "proxyAddresses": ["SMTP:isaiah@contoso.com", format!("smtp:{alias}")] }),
    )
    .await;

    // Isaiah verifies the alias (it is his mailbox now) and scans: refused, not Patti.
    let isaiahs_phone = app.phone_with_email(alias).await;
    let (status, code, message) = error_code(approve(&app, &isaiahs_phone).await).await;
    assert_eq!((status, code.as_str()), (403, "address_moved"), "{message}");
    let records = users_with_email(&app, alias).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].entra_oid.as_ref().map(|o| o.as_str()),
        Some(PATTI),
        "the record is still Patti's"
    );
    let detail = app.last_audit("acme", "login.denied").await;
    assert!(
        detail.contains("another Entra ID account"),
        "audited: {detail}"
    );

    // Patti's phone, holding an address Entra now lists for Isaiah, is refused too: an
    // address signs in only the account that holds it now.
    let (status, code, _) = error_code(approve(&app, &pattis_phone).await).await;
    assert_eq!((status, code.as_str()), (403, "address_moved"));
}

#[tokio::test]
async fn a_rehire_behind_an_old_address_onboards_as_a_new_user() {
    let (app, emu) = entra_tenant().await;
    let old_phone = app.phone_with_email("alex@contoso.com").await;
    assert_eq!(approve(&app, &old_phone).await.status(), 200);

    // Alex leaves: deleted in Entra and offboarded by the reconciler.
    emu.purge_in_entra(ALEX).await;
    let report = reconcile_now(&app, "acme").await;
    assert_eq!(report.offboarded.len(), 1, "{report:?}");

    // Months later Alex is hired again: a new Entra account with the same address.
    let new_oid = emu.add_in_entra("alex@contoso.com", "Alex Wilber").await;

    // The old phone was revoked with the old account; a new phone onboards the new account.
    let (status, code, _) = error_code(approve(&app, &old_phone).await).await;
    assert_eq!((status, code.as_str()), (403, "device_revoked"));
    let new_phone = app.phone_with_email("alex@contoso.com").await;
    let res = approve(&app, &new_phone).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let records = users_with_email(&app, "alex@contoso.com").await;
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        (
            records[0].username.as_str(),
            records[0].entra_oid.as_ref().map(|o| o.as_str()),
            records[0].status
        ),
        ("msp-alex", Some(ALEX), UserStatus::Offboarded),
        "the old record stays offboarded"
    );
    assert_eq!(
        records[1].entra_oid.as_ref().map(|o| o.as_str()),
        Some(new_oid.as_str())
    );
    assert_eq!(records[1].status, UserStatus::Active);
    assert_ne!(
        records[1].username, "msp-alex",
        "its own username by the collision rule"
    );
}

/// A newcomer's phone and tablet, and a double tap on each, approve their very first sign-ins
/// at the same moment. Every approval signs in; Gatehouse holds one record and one onboarding
/// for them, never a refusal saying their own address "moved". Twelve approvals are more
/// than the store has connections: none may hold one while it waits for another.
#[tokio::test]
async fn simultaneous_first_approvals_make_one_record_and_refuse_none() {
    let (app, _emu) = entra_tenant().await;
    let phones = [
        app.phone_with_email("megan@contoso.com").await,
        app.phone_with_email("megan@contoso.com").await,
        app.phone_with_email("megan@contoso.com").await,
    ];
    let answers = futures::future::join_all((0..12).map(|i| approve(&app, &phones[i % 3]))).await;
    let mut refused = Vec::new();
    for a in answers {
        if a.status() != 200 {
            refused.push(error_code(a).await);
        }
    }
    assert!(refused.is_empty(), "refused: {refused:?}");
    let records = users_with_email(&app, "megan@contoso.com").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(app.audited("user.onboarded").await, 1);
}

/// The same for a technician who comes back: offboarded, restored in Entra, and approving
/// on several browsers at once. One record comes back, once.
#[tokio::test]
async fn simultaneous_approvals_of_a_returning_technician_revive_one_record_once() {
    let (app, emu) = entra_tenant().await;
    app.onboard("acme", "alex@contoso.com").await;
    emu.remove_in_entra(ALEX).await;
    let report = reconcile_now(&app, "acme").await;
    assert_eq!(report.offboarded.len(), 1, "{report:?}");
    emu.restore_in_entra(ALEX).await;

    let phone = app.phone_with_email("alex@contoso.com").await;
    let answers = futures::future::join_all((0..6).map(|_| approve(&app, &phone))).await;
    let mut refused = Vec::new();
    for a in answers {
        if a.status() != 200 {
            refused.push(error_code(a).await);
        }
    }
    assert!(refused.is_empty(), "refused: {refused:?}");
    let records = users_with_email(&app, "alex@contoso.com").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, UserStatus::Active);
    assert_eq!(
        app.audited("user.onboarded").await,
        2,
        "the first time and the return"
    );
}

/// App-only tokens last an hour or more at Microsoft: sign-ins share one instead of asking
/// the token endpoint every time.
#[tokio::test]
async fn one_token_request_serves_many_approvals() {
    let (app, emu) = entra_tenant().await;
    let phone = app.phone_with_email("alex@contoso.com").await;
    for _ in 0..5 {
        assert_eq!(approve(&app, &phone).await.status(), 200);
    }
    // Five more phones at once: still the one token.
    let emails: Vec<String> = ["megan", "patti.fernandez", "isaiah", "alex", "megan"]
        .iter()
        .map(|n| format!("{n}@contoso.com"))
        .collect();
    // Set up one after another (each reads its own code from the outbox), approve at once.
    let mut phones = Vec::new();
    for e in &emails {
        phones.push(app.phone_with_email(e).await);
    }
    let answers = futures::future::join_all(phones.iter().map(|p| approve(&app, p))).await;
    let mut statuses = Vec::new();
    for a in answers {
        statuses.push((a.status().as_u16(), a.text().await.unwrap_or_default()));
    }
    assert!(statuses.iter().all(|(s, _)| *s == 200), "{statuses:?}");
    let counts = emu.counts().await;
    assert_eq!(
        counts["POST /{tenant}/oauth2/v2.0/token"], 1,
        "one token for ten approvals: {counts}"
    );
}

/// Graph may refuse a token before its time (a `401`); Gatehouse fetches a new one once and
/// carries on, rather than refusing the technician.
#[tokio::test]
async fn a_token_refused_early_is_renewed_once() {
    let (app, emu) = entra_tenant().await;
    let phone = app.phone_with_email("alex@contoso.com").await;
    assert_eq!(approve(&app, &phone).await.status(), 200);
    emu.fault(json!({"route": "POST /v1.0/$batch", "status": 401}))
        .await;
    assert_eq!(approve(&app, &phone).await.status(), 200);
    let counts = emu.counts().await;
    assert_eq!(counts["POST /{tenant}/oauth2/v2.0/token"], 2, "{counts}");
}

/// Graph meters each request of a `$batch` on its own: a busy tenant answers one lookup
/// `429` inside a `200` batch. That item is asked again after its `Retry-After`, and the
/// technician onboards.
#[tokio::test]
async fn a_batch_with_one_throttled_item_still_onboards_the_user() {
    let (app, emu) = entra_tenant().await;
    let phone = app.phone_with_email("alex@contoso.com").await;
    emu.fault(json!({"route": "GET /v1.0/users", "status": 429, "retryAfter": 1}))
        .await;
    let res = approve(&app, &phone).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let counts = emu.counts().await;
    assert_eq!(
        counts["POST /v1.0/$batch"], 2,
        "the throttled item went again: {counts}"
    );
    assert_eq!(
        counts["GET /v1.0/users"], 6,
        "five lookups, one of them twice: {counts}"
    );
}

/// A phone approval does not hang on a slow Microsoft: after a few seconds the phone is told
/// to try again, and nobody is onboarded.
#[tokio::test]
async fn a_slow_microsoft_makes_the_phone_try_again_instead_of_hanging() {
    let (app, emu) = entra_tenant().await;
    let phone = app.phone_with_email("alex@contoso.com").await;
    emu.fault(json!({"route": "POST /v1.0/$batch", "latencyMs": 30000}))
        .await;
    let (s, code, msg) = error_code(approve(&app, &phone).await).await;
    assert_eq!((s, code.as_str()), (503, "entra_unavailable"), "{msg}");
    assert!(msg.contains("did not answer within 8 seconds"), "{msg}");
    assert!(msg.contains("try again"), "{msg}");
    assert_eq!(entra_users(&app).await, 0, "nobody was onboarded");
}
