//! Access that ends when it should, tried as the attacker or the careless operator would:
//! guessed codes, flooded inboxes, planted cookies, a lost phone, a refused stranger.

use crate::admin::{admin_browser, call, user_id};
use crate::helpers::*;
use serde_json::{json, Value};

async fn mails_to(app: &TestApp, email: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE to_addr = $1")
        .bind(email)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    n
}

async fn claims_of(app: &TestApp, email: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM email_claims WHERE email = $1")
        .bind(email)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    n
}

/// A registered phone that has asked for a code for `email` (not yet confirmed).
async fn phone_waiting_for_code(app: &TestApp, email: &str) -> Phone {
    let mut phone = Phone::new();
    phone.register(app).await;
    let res = phone.request_code(app, email).await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    phone
}

/// Any 6-digit code except `code`.
fn wrong(code: &str, n: u32) -> String {
    let c: u32 = code.parse().unwrap();
    format!("{:06}", (c + 1 + n % 999_998) % 1_000_000)
}

#[tokio::test]
async fn three_hundred_concurrent_wrong_codes_get_at_most_five_wrong_code_answers() {
    let app = spawn_app().await;
    let email = "victim@acme.com";
    let phone = phone_waiting_for_code(&app, email).await;
    let code = app.last_code(email).await;

    let guesses = (0..300u32).map(|n| {
        let jws = phone.sign(json!({
            "purpose": "confirm_email", "device_id": phone.id(), "email": email, "code": wrong(&code, n)
        }));
        let client = app.base_client();
        let url = app.api(&format!("/devices/{}/emails/confirm", phone.id()));
        async move {
            let res = client.post(url).json(&json!({ "jws": jws })).send().await.unwrap();
            error_code(res).await
        }
    });
    let answers = futures::future::join_all(guesses).await;
    let wrong_code = answers.iter().filter(|(_, c, _)| c == "wrong_code").count();
    assert!(
        wrong_code <= 5,
        "{wrong_code} guesses were told `wrong_code`"
    );
    assert!(
        answers.iter().all(|(s, c, _)| *s != 200 && c != "internal"),
        "every guess is refused with a typed error: {:?}",
        answers
            .iter()
            .find(|(s, c, _)| *s == 200 || c == "internal")
    );

    // The right code is of no use now, and nothing was verified.
    let res = phone.confirm(&app, email, &code).await;
    assert_eq!(res.status(), 429, "the right code after the guesses");
    assert_eq!(claims_of(&app, email).await, 0);
}

#[tokio::test]
async fn wrong_codes_across_phones_and_resends_lock_the_address() {
    let app = spawn_app().await;
    let email = "victim@acme.com";
    // Two attacker phones, each asking for fresh codes: ten wrong answers in all.
    for _ in 0..2 {
        let phone = phone_waiting_for_code(&app, email).await;
        let code = app.last_code(email).await;
        for n in 0..5 {
            let (status, c, _) =
                error_code(phone.confirm(&app, email, &wrong(&code, n)).await).await;
            assert!(status == 400 || status == 429, "{status} {c}");
        }
    }
    let actions = app.audit_actions().await;
    assert!(actions.contains(&"email.locked".to_string()), "{actions:?}");

    // The owner's own phone, with a fresh code and the right answer, must wait: a resend
    // does not restore the budget.
    let owner = phone_waiting_for_code(&app, email).await;
    let code = app.last_code(email).await;
    let res = owner.confirm(&app, email, &code).await;
    assert_eq!(res.status(), 429);
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    let (_, c, message) = error_code(res).await;
    assert_eq!(c, "email_locked");
    assert!(message.contains("too many wrong codes"), "{message}");
    assert_eq!(claims_of(&app, email).await, 0);
}

#[tokio::test]
async fn right_codes_do_not_count_against_the_address() {
    let app = spawn_app_with(|c| c.limits.code_mails_per_address = 20).await;
    // Twelve honest verifications of one address within the hour (twelve phones) all pass:
    // only wrong codes use up the address's budget of ten.
    for _ in 0..12 {
        let phone = phone_waiting_for_code(&app, "tech@acme.com").await;
        let code = app.last_code("tech@acme.com").await;
        assert_eq!(
            phone.confirm(&app, "tech@acme.com", &code).await.status(),
            200
        );
    }
    assert_eq!(claims_of(&app, "tech@acme.com").await, 12);
}

#[tokio::test]
async fn the_eleventh_code_mail_to_one_address_within_an_hour_is_refused_from_any_phone() {
    let app = spawn_app().await;
    let email = "inbox@acme.com";
    for _ in 0..10 {
        phone_waiting_for_code(&app, email).await;
    }
    let mut eleventh = Phone::new();
    eleventh.register(&app).await;
    let res = eleventh.request_code(&app, email).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let (_, code, message) = error_code(res).await;
    assert_eq!(code, "rate_limited");
    assert!(message.contains(email), "{message}");
    assert_eq!(mails_to(&app, email).await, 10, "the eleventh was not sent");
    // Another address is not affected.
    let res = eleventh.request_code(&app, "other@acme.com").await;
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn code_mails_from_one_network_are_limited() {
    let app = spawn_app_with(|c| c.limits.code_mails_per_ip = 3).await;
    let mut phone = Phone::new();
    phone.register(&app).await;
    for n in 0..3 {
        let res = phone.request_code(&app, &format!("a{n}@acme.com")).await;
        assert_eq!(res.status(), 202);
    }
    let res = phone.request_code(&app, "a9@acme.com").await;
    assert_eq!(res.status(), 429);
    assert_eq!(mails_to(&app, "a9@acme.com").await, 0);
}

/// A client without a cookie store: it sends exactly the cookies it is given.
fn bare_client(app: &TestApp) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("acme.localhost", app.addr)
        .build()
        .unwrap()
}

fn binding_set_by(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gatehouse_login_binding="))
        .and_then(|v| between(v, "gatehouse_login_binding=", ";"))
}

#[tokio::test]
async fn a_planted_binding_cookie_is_replaced_and_the_planter_cannot_finish_the_sign_in() {
    let app = spawn_acme().await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let planted = "p".repeat(43);
    let url = format!("http://acme.localhost:{}/", app.port());
    let cookie = |v: &str| format!("gatehouse_login_binding={v}");

    // The victim's browser arrives with the attacker's value.
    let victim = bare_client(&app);
    let res = victim
        .get(&url)
        .header("cookie", cookie(&planted))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let minted = binding_set_by(&res).expect("the server replaces the planted value");
    assert_ne!(minted, planted);
    let html = res.text().await.unwrap();
    let challenge = between(&html, "data-challenge=\"", "\"").unwrap();
    let number: i64 = between(&html, "id=\"match-number\"", "</strong>")
        .and_then(|s| s.rsplit('>').next().map(|n| n.trim().parse().unwrap()))
        .unwrap();
    let res = phone.approve(&app, "acme", &challenge, number).await;
    assert_eq!(res.status(), 200);

    // The attacker, holding the planted value, gains nothing.
    let attacker = bare_client(&app);
    let res = attacker
        .get(&url)
        .header("cookie", cookie(&planted))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "the attacker sees a login page of their own"
    );
    assert!(binding_set_by(&res).is_some());
    // The victim's browser, with the value the server minted, signs in.
    let res = victim
        .get(&url)
        .header("cookie", cookie(&minted))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}

/// The code and match number a login page shows.
fn code_on(html: &str) -> (String, i64) {
    let challenge = between(html, "data-challenge=\"", "\"").unwrap();
    let number: i64 = between(html, "id=\"match-number\"", "</strong>")
        .and_then(|s| s.rsplit('>').next().map(|n| n.trim().parse().unwrap()))
        .unwrap();
    (challenge, number)
}

/// Over plain http a cookie can be planted from a sibling host. A value the attacker fetched
/// from their own tenant's page is not adopted on the victim's; and a value that bound one
/// sign-in (say one the attacker fetched from the victim's tenant and planted) is replaced by
/// that sign-in, so it cannot finish the victim's next one.
#[tokio::test]
async fn a_binding_cookie_works_on_its_own_tenant_only_and_is_replaced_at_each_sign_in() {
    let app = spawn_acme().await;
    app.create_tenant("beta", "Beta MSP", "admin@beta.example")
        .await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let client = || {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve("acme.localhost", app.addr)
            .resolve("beta.localhost", app.addr)
            .build()
            .unwrap()
    };
    let page = |slug: &str| format!("http://{slug}.localhost:{}/", app.port());
    let cookie = |v: &str| format!("gatehouse_login_binding={v}");
    let load = |client: reqwest::Client, slug: &'static str, value: String| {
        let url = page(slug);
        async move {
            client
                .get(url)
                .header("cookie", cookie(&value))
                .send()
                .await
                .unwrap()
        }
    };

    // A value minted for Beta, the attacker's own tenant, is replaced on Acme's page.
    let res = client().get(page("beta")).send().await.unwrap();
    let from_beta = binding_set_by(&res).expect("Beta's page mints a value");
    let res = load(client(), "acme", from_beta.clone()).await;
    assert_eq!(res.status(), 200);
    let minted = binding_set_by(&res).expect("Acme does not adopt Beta's value");
    assert_ne!(minted, from_beta);

    // The victim signs in with the value Acme minted; the sign-in replaces it.
    let victim = client();
    let res = load(victim.clone(), "acme", minted.clone()).await;
    let (challenge, number) = code_on(&res.text().await.unwrap());
    let res = phone.approve(&app, "acme", &challenge, number).await;
    assert_eq!(res.status(), 200);
    let res = load(victim.clone(), "acme", minted.clone()).await;
    assert_eq!(res.status(), 303, "signed in");
    let next = binding_set_by(&res).expect("the sign-in replaces the value that bound it");
    assert_ne!(next, minted);

    // The victim's next sign-in, from a fresh browser session, is bound to the new value:
    // whoever held the old one gets a login page of their own, not the victim's session.
    let res = load(client(), "acme", next.clone()).await;
    let (challenge, number) = code_on(&res.text().await.unwrap());
    let res = phone.approve(&app, "acme", &challenge, number).await;
    assert_eq!(res.status(), 200);
    let res = load(client(), "acme", minted).await;
    assert_eq!(res.status(), 200, "the old value finishes nobody's sign-in");
    let res = load(client(), "acme", next).await;
    assert_eq!(res.status(), 303, "the new value finishes the victim's");
}

#[tokio::test]
async fn a_refused_sign_in_tells_the_browser_nothing_about_the_phone() {
    let app = spawn_acme().await;
    // Someone is shown Acme's QR code and scans it with their own phone.
    let stranger = app.phone_with_email("private.person@example.org").await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let res = stranger.approve_page(&app, "acme", &page).await;
    let (status, code, message) = error_code(res).await;
    assert_eq!((status, code.as_str()), (403, "no_account"));
    assert!(
        message.contains("private.person@example.org"),
        "the phone is told: {message}"
    );

    let next = browser.login_page("acme").await;
    assert!(
        next.html
            .contains("Sign-in refused: the sign-in was refused on the phone"),
        "the browser is told it was refused"
    );
    assert!(
        !next.html.contains("private.person"),
        "no address reaches the browser"
    );
    let stored: Vec<(Option<String>,)> = sqlx::query_as("SELECT reason FROM login_challenges")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|(r,)| !r.clone().unwrap_or_default().contains("private.person")),
        "nothing the browser's page or push can read names the phone's owner"
    );
    let detail = app.last_audit("acme", "login.denied").await;
    assert!(
        detail.contains("private.person@example.org"),
        "the audit log has the detail"
    );
}

/// The admin signed in, and Alex invited and signed in on a browser with a phone.
async fn admin_and_alex(app: &TestApp) -> (Browser, Browser, Phone, String) {
    let admin = admin_browser(app).await;
    app.add_user("acme", "Alex", "alex@acme.com").await;
    let phone = app.phone_with_email("alex@acme.com").await;
    let alex = app.browser(&["acme"]);
    assert_eq!(sign_in(app, &alex, &phone, "acme").await, "/home");
    let id = user_id(app, "alex@acme.com").await;
    (admin, alex, phone, id)
}

async fn approve_fresh_code(app: &TestApp, phone: &Phone) -> (u16, String, String, Browser) {
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let res = phone.approve_page(app, "acme", &page).await;
    let (status, code, message) = if res.status() == 200 {
        (200, String::new(), String::new())
    } else {
        error_code(res).await
    };
    (status, code, message, browser)
}

#[tokio::test]
async fn an_admin_revokes_a_lost_phone_and_it_can_approve_nothing_more() {
    let app = spawn_app().await;
    let (admin, alex, phone, id) = admin_and_alex(&app).await;

    let (s, body) = call(&admin, "devices/of_user", &[("user_id", &id)]).await;
    assert_eq!(s, 200, "{body}");
    let phones: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(phones.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(phones[0]["id"], phone.id());
    assert_eq!(phones[0]["emails"][0], "alex@acme.com");
    assert_eq!(phones[0]["signed_in_here"], true);
    assert!(phones[0]["last_used"].is_string(), "{body}");

    let (s, body) = call(
        &admin,
        "devices/revoke",
        &[("user_id", &id), ("device_id", phone.id())],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("1 session(s) it approved ended"), "{body}");
    assert_eq!(
        alex.get("acme", "/home").await.status(),
        303,
        "Alex's sign-in ended"
    );

    // The lost phone's next approval is refused, on the phone and on the screen.
    let (status, code, _, screen) = approve_fresh_code(&app, &phone).await;
    assert_eq!((status, code.as_str()), (403, "device_revoked"));
    let next = screen.login_page("acme").await;
    assert!(next.html.contains("Sign-in refused"), "the screen says so");
    assert_eq!(
        app.user_status("alex@acme.com").await,
        "active",
        "Alex is not disabled"
    );

    // A newly set-up phone signs Alex in again.
    let new_phone = app.phone_with_email("alex@acme.com").await;
    let browser = app.browser(&["acme"]);
    assert_eq!(sign_in(&app, &browser, &new_phone, "acme").await, "/home");
    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&"device.revoked".to_string()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn an_admin_cannot_revoke_a_phone_that_is_not_the_users() {
    let app = spawn_app().await;
    let (admin, _alex, _phone, id) = admin_and_alex(&app).await;
    let other = app.phone_with_email("someone@else.example").await;
    let (s, body) = call(
        &admin,
        "devices/revoke",
        &[("user_id", &id), ("device_id", other.id())],
    )
    .await;
    assert_ne!(s, 200);
    assert!(body.contains("no such phone"), "{body}");
    let res = other.request_code(&app, "someone2@else.example").await;
    assert_eq!(res.status(), 202, "the other phone still works");
}

#[tokio::test]
async fn a_technician_forgets_their_phone_and_it_can_do_nothing_after() {
    let app = spawn_app().await;
    let (_admin, alex, phone, _id) = admin_and_alex(&app).await;
    let id = phone.id().to_string();
    let jws = phone.sign(json!({ "purpose": "forget", "device_id": id }));
    let res = app
        .base_client()
        .delete(app.api(&format!("/devices/{id}")))
        .json(&json!({ "jws": jws }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        alex.get("acme", "/home").await.status(),
        303,
        "its sign-in ended"
    );
    assert_eq!(
        claims_of(&app, "alex@acme.com").await,
        0,
        "its emails are forgotten"
    );
    let (status, code, _) = error_code(phone.request_code(&app, "alex@acme.com").await).await;
    assert_eq!((status, code.as_str()), (403, "device_revoked"));
    let (status, code, _, _) = approve_fresh_code(&app, &phone).await;
    assert_eq!((status, code.as_str()), (403, "device_revoked"));
    // Registering the same key again does not bring it back.
    let jws = phone.sign(json!({ "purpose": "register" }));
    let res = app
        .base_client()
        .post(app.api("/devices"))
        .json(&json!({ "public_key": phone.jwk(), "jws": jws }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await.1, "device_revoked");
}

#[tokio::test]
async fn re_enabling_a_user_does_not_bring_back_their_phone() {
    let app = spawn_app().await;
    let (admin, alex, phone, id) = admin_and_alex(&app).await;
    let (s, body) = call(
        &admin,
        "users/act",
        &[("user_id", &id), ("action", "disable")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("1 phone(s) revoked"), "{body}");
    assert_eq!(alex.get("acme", "/home").await.status(), 303);
    let (s, _) = call(
        &admin,
        "users/act",
        &[("user_id", &id), ("action", "enable")],
    )
    .await;
    assert_eq!(s, 200);

    let (status, code, _, _) = approve_fresh_code(&app, &phone).await;
    assert_eq!(
        (status, code.as_str()),
        (403, "device_revoked"),
        "the old phone"
    );
    let new_phone = app.phone_with_email("alex@acme.com").await;
    let browser = app.browser(&["acme"]);
    assert_eq!(sign_in(&app, &browser, &new_phone, "acme").await, "/home");
}

#[tokio::test]
async fn a_phone_revoked_between_approval_and_the_browsers_return_signs_nobody_in() {
    let app = spawn_app().await;
    let (admin, _alex, phone, id) = admin_and_alex(&app).await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let res = phone.approve_page(&app, "acme", &page).await;
    assert_eq!(res.status(), 200);
    let (s, body) = call(
        &admin,
        "devices/revoke",
        &[("user_id", &id), ("device_id", phone.id())],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let res = browser.get("acme", "/").await;
    assert_ne!(res.status(), 303, "not signed in");
    assert_eq!(
        browser.get("acme", "/home").await.status(),
        303,
        "still signed out"
    );
}

#[tokio::test]
async fn an_expired_email_claim_asks_the_phone_to_verify_again() {
    let app = spawn_app().await;
    let (_admin, _alex, phone, _id) = admin_and_alex(&app).await;
    // 181 days later (the claim's expiry moved back instead of the clock forward).
    sqlx::query("UPDATE email_claims SET expires_at = $1 WHERE device_id = $2")
        .bind(now() - 24 * 3600)
        .bind(phone.id())
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let (status, code, message, _) = approve_fresh_code(&app, &phone).await;
    assert_eq!(
        (status, code.as_str()),
        (403, "email_unverified"),
        "{message}"
    );
    // Verifying again brings it back.
    let res = phone.request_code(&app, "alex@acme.com").await;
    assert_eq!(res.status(), 202);
    let code = app.last_code("alex@acme.com").await;
    assert_eq!(
        phone.confirm(&app, "alex@acme.com", &code).await.status(),
        200
    );
    let (status, _, message, _) = approve_fresh_code(&app, &phone).await;
    assert_eq!(status, 200, "{message}");
}

/// The open page of a revoked phone's sign-in leaves: whether it was listening when the
/// admin revoked the phone, or connected only afterwards (still loading at that moment).
#[tokio::test]
async fn the_open_page_of_a_revoked_phones_sign_in_is_told_even_if_it_connects_late() {
    let app = spawn_app().await;
    let (admin, alex, phone, id) = admin_and_alex(&app).await;
    let listening = alex.get("acme", "/session/events").await;
    assert_eq!(listening.status(), 200);
    let (s, body) = call(
        &admin,
        "devices/revoke",
        &[("user_id", &id), ("device_id", phone.id())],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    expect_event(listening, "signed_out").await;
    // A page that connects after the revocation is told at once, not left signed in.
    let late = alex.get("acme", "/session/events").await;
    assert_eq!(late.status(), 200);
    expect_event(late, "signed_out").await;
}
