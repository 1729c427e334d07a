use crate::helpers::*;
use futures::StreamExt;
use gatehouse::domain::UserStatus;
use gatehouse::login::view::countdown_text;
use gatehouse::server::startup::Application;
use gatehouse::users::service::Action;
use gatehouse_emulator::testing::Fetch as _;

/// Changes a user's status in the store and nothing else.
async fn set_status(app: &TestApp, email: &str, status: UserStatus) {
    sqlx::query("UPDATE users SET status = $1 WHERE email = $2")
        .bind(status.as_str())
        .bind(email)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
}

/// The app with tenant `acme`, its technician Alex (invited), and Alex's phone with the
/// email verified.
async fn acme_with_alex() -> (TestApp, Phone) {
    let app = spawn_app().await;
    let phone = app.acme_with_alex().await;
    (app, phone)
}

#[tokio::test]
async fn an_invited_technician_signs_in_by_qr_and_lands_on_home() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);

    let page = browser.login_page("acme").await;
    assert!(page.html.contains("<svg"), "the QR code is inline SVG");
    let drawing = between(&page.html, "<path fill=\"#111827\" d=\"", "\"").unwrap();
    assert_eq!(
        page.html.matches(&drawing[..40]).count(),
        1,
        "the QR code is sent once, not again in the hydration data"
    );
    assert!(page.html.contains("Sign in to Acme MSP"));

    let info: serde_json::Value = app
        .base_client()
        .get(app.api(&format!("/challenges/{}?tenant=acme", page.challenge)))
        .json_body()
        .await;
    assert_eq!(info["tenant_name"], "Acme MSP");
    assert_eq!(info["requester_ip"], "127.0.0.1");
    assert!(info["user_agent"].as_str().unwrap().contains("TestBrowser"));
    let numbers: Vec<i64> = info["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_i64().unwrap())
        .collect();
    assert_eq!(numbers.len(), 3);
    assert!(numbers.contains(&page.match_number));

    let res = phone.approve_page(&app, "acme", &page).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["user"]["username"], "msp-alex");
    assert_eq!(body["user"]["status"], "active");

    let res = browser.get("acme", "/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/home");
    let home = browser.get("acme", "/home").await.text().await.unwrap();
    assert!(home.contains("msp-alex"), "home shows the JIT account name");
    assert_eq!(app.user_status("alex@acme.com").await, "active");
    let actions = app.audit_actions().await;
    for a in ["user.onboarded", "login.approved", "login.completed"] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn the_browser_is_told_of_the_approval_by_push() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let res = browser
        .get(
            "acme",
            &format!("/login/events?challenge={}", page.challenge),
        )
        .await;
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let approve = phone.approve_page(&app, "acme", &page);
    assert_eq!(approve.await.status(), 200);
    let mut seen = String::new();
    while let Some(chunk) = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5 s")
    {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if seen.contains("event: approved") {
            break;
        }
    }
    assert!(seen.contains("event: approved"), "{seen}");
}

#[tokio::test]
async fn another_browser_cannot_use_the_approval() {
    let (app, phone) = acme_with_alex().await;
    let victim = app.browser(&["acme"]);
    let attacker = app.browser(&["acme"]);
    let page = victim.login_page("acme").await;
    assert_eq!(phone.approve_page(&app, "acme", &page).await.status(), 200);

    // The attacker knows the challenge id but not the victim's binding cookie.
    let res = attacker.get("acme", "/").await;
    assert_eq!(
        res.status(),
        200,
        "the attacker just gets a login page of their own"
    );
    assert_eq!(attacker.get("acme", "/home").await.status(), 303);
    let res = attacker
        .get(
            "acme",
            &format!("/login/events?challenge={}", page.challenge),
        )
        .await;
    assert_eq!(res.status(), 404);

    // The rightful browser still completes, once.
    assert_eq!(victim.get("acme", "/").await.status(), 303);
}

#[tokio::test]
async fn an_approval_cannot_be_replayed() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let res = phone.approve_page(&app, "acme", &page).await;
    assert_eq!(res.status(), 200);
    assert_eq!(browser.get("acme", "/").await.status(), 303, "signed in");
    // The same signed approval, sent again after the browser used it.
    let (s, code, _) = error_code(phone.approve_page(&app, "acme", &page).await).await;
    assert_eq!((s, code.as_str()), (409, "challenge_used"));
}

#[tokio::test]
async fn a_wrong_number_cancels_the_request() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let wrong = if page.match_number == 99 {
        98
    } else {
        page.match_number + 1
    };
    let (s, code, _) = error_code(phone.approve(&app, "acme", &page.challenge, wrong).await).await;
    assert_eq!((s, code.as_str()), (403, "wrong_number"));
    // A second guess is refused: the request is gone.
    let (s, code, _) = error_code(phone.approve_page(&app, "acme", &page).await).await;
    assert_eq!((s, code.as_str()), (409, "challenge_used"));
    let next = browser.login_page("acme").await;
    assert_ne!(
        next.challenge, page.challenge,
        "the browser gets a new QR code"
    );
    assert!(
        next.html
            .contains("Sign-in refused: the wrong number was picked on the phone"),
        "the new code says why the last one was refused, also without JavaScript"
    );
}

#[tokio::test]
async fn an_expired_request_cannot_be_approved() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    sqlx::query("UPDATE login_challenges SET expires_at = $1")
        .bind(now() - 1)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    // Two minutes passed for the database only; the app's memory of the page (it ends with
    // the code's own time) goes as it would have.
    app.state.pages.forget_all();
    let (s, code, _) = error_code(phone.approve_page(&app, "acme", &page).await).await;
    assert_eq!((s, code.as_str()), (410, "challenge_expired"));
    let next = browser.login_page("acme").await;
    assert_ne!(
        next.challenge, page.challenge,
        "an expired code is replaced"
    );
    assert!(
        !next.html.contains("Sign-in refused"),
        "an expired code was not refused"
    );
}

#[tokio::test]
async fn reloading_the_login_page_keeps_the_same_code() {
    let app = spawn_acme().await;
    let browser = app.browser(&["acme"]);
    let a = browser.login_page("acme").await;
    let b = browser.login_page("acme").await;
    assert_eq!(a.challenge, b.challenge);
    assert_eq!(a.match_number, b.match_number);
}

/// The countdown a page shows, in seconds.
fn countdown_secs(html: &str) -> i64 {
    let shown = between(html, "id=\"countdown\">", "<").expect("a countdown on the page");
    let (m, s) = shown.split_once(':').expect("m:ss");
    m.parse::<i64>().unwrap() * 60 + s.parse::<i64>().unwrap()
}

#[tokio::test]
async fn a_reload_is_answered_from_memory_and_shows_the_time_left() {
    let app = spawn_acme().await;
    let browser = app.browser(&["acme"]);
    let first = browser.login_page("acme").await;
    let (expires_at,): (i64,) =
        sqlx::query_as("SELECT expires_at FROM login_challenges WHERE id = $1")
            .bind(&first.challenge)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    let pages = &app.state.pages;
    let from_memory = pages.served_from_memory();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let again = browser.login_page("acme").await;
    assert_eq!(
        pages.served_from_memory(),
        from_memory + 1,
        "the reload was answered from memory"
    );
    assert_eq!(again.challenge, first.challenge);
    assert_eq!(again.match_number, first.match_number);
    let left = expires_at - now();
    let shown = countdown_secs(&again.html);
    assert!(
        (shown - left).abs() <= 1 && shown < countdown_secs(&first.html),
        "the countdown shows {shown} s, {left} s are left"
    );
    // The countdown is the only time the page tells (public/login.js counts it down): the
    // page carries no data of its own that could tell another.
    assert!(
        !again.html.contains("expires_in_secs"),
        "the page carries no second copy of the time left"
    );
    let was = countdown_secs(&first.html);
    // Each answer has its own script nonce (the Content-Security-Policy names it).
    let nonce = |html: &str| between(html, "nonce=\"", "\"").expect("scripts carry a nonce");
    assert_ne!(nonce(&first.html), nonce(&again.html));
    // Only the countdown itself: "1:58" also stands in a clock time such as 22:01:58 that
    // the page shows for browsers without JavaScript.
    let countdown = |s: i64| format!("id=\"countdown\">{}<", countdown_text(s));
    assert_eq!(
        first
            .html
            .replace(&countdown(was), &countdown(shown))
            .replace(&nonce(&first.html), &nonce(&again.html)),
        again.html,
        "apart from the time left and the nonce, the same page"
    );
}

#[tokio::test]
async fn approving_a_code_shown_from_memory_signs_in_on_the_next_load() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    browser.login_page("acme").await;
    let page = browser.login_page("acme").await;
    assert_eq!(app.state.pages.served_from_memory(), 1);
    let res = phone.approve_page(&app, "acme", &page).await;
    assert_eq!(res.status(), 200);
    // Without JavaScript: the page's next refresh.
    let res = browser.get("acme", "/").await;
    assert_eq!(
        res.status(),
        303,
        "signed in on the first load after approval"
    );
    assert_eq!(res.headers()["location"], "/home");
}

#[tokio::test]
async fn denying_a_code_shown_from_memory_brings_a_new_code_that_says_why() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    browser.login_page("acme").await;
    let page = browser.login_page("acme").await;
    assert_eq!(
        phone.deny(&app, "acme", &page.challenge).await.status(),
        200
    );
    let next = browser.login_page("acme").await;
    assert_ne!(next.challenge, page.challenge, "a new code");
    assert!(
        next.html.contains("Sign-in refused: denied on the phone"),
        "the new code says why"
    );
    let after = browser.login_page("acme").await;
    assert_eq!(after.challenge, next.challenge);
    assert!(!after.html.contains("Sign-in refused"), "said once");
}

#[tokio::test]
async fn an_approval_on_one_instance_signs_in_a_browser_whose_page_another_kept() {
    let app = spawn_app().await;
    // Started first: a new instance forgets its pages once its push listener is up.
    let replica = app.replica().await;
    let phone = app.acme_with_alex().await;
    let on_replica = replica.browser(&["acme"]);
    on_replica.login_page("acme").await;
    let page = on_replica.login_page("acme").await;
    assert_eq!(replica.state.pages.served_from_memory(), 1);
    let res = phone.approve_page(&app, "acme", &page).await;
    assert_eq!(res.status(), 200);

    // PostgreSQL tells the other instance at once; SQLite runs one instance, and a second
    // one on the same file stops trusting its memory of the page within seconds.
    let patience = if on_postgres() {
        2
    } else {
        gatehouse::login::page_cache::TRUST_FOR.as_secs() + 2
    };
    let started = std::time::Instant::now();
    loop {
        let res = on_replica.get("acme", "/").await;
        if res.status() == 303 {
            assert_eq!(res.headers()["location"], "/home");
            break;
        }
        assert!(
            started.elapsed().as_secs() < patience,
            "the other instance still shows the approved code"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn approving_a_code_the_page_has_just_replaced_still_signs_the_browser_in() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    let old = browser.login_page("acme").await;
    // The code is seconds from expiry: the next load shows a fresh one, while the phone
    // still holds the old one and approves it.
    sqlx::query("UPDATE login_challenges SET expires_at = $1 WHERE id = $2")
        .bind(now() + 3)
        .bind(&old.challenge)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    app.state.pages.forget_all();
    let new = browser.login_page("acme").await;
    assert_ne!(new.challenge, old.challenge, "a fresh code near expiry");
    let res = phone.approve_page(&app, "acme", &old).await;
    assert_eq!(res.status(), 200);
    let res = browser.get("acme", "/").await;
    assert_eq!(res.status(), 303, "the approval of the old code signs in");
    assert_eq!(res.headers()["location"], "/home");
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in() {
    let app = spawn_app().await;
    let phone = app.acme_with_alex().await;
    app.admin_does("acme", Action::Disable, "alex@acme.com")
        .await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let (s, code, msg) = error_code(phone.approve_page(&app, "acme", &page).await).await;
    assert_eq!((s, code.as_str()), (403, "account_disabled"));
    assert!(msg.contains("disabled"), "{msg}");
    assert_eq!(
        browser.get("acme", "/").await.status(),
        200,
        "the browser is not signed in"
    );
}

/// The same through the Users page: the admin's Disable revokes the approval the browser
/// has not collected yet, with everything else Alex had.
#[tokio::test]
async fn an_approval_waiting_for_its_browser_ends_when_an_admin_disables_the_user() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let res = phone.approve_page(&app, "acme", &page).await;
    assert_eq!(res.status(), 200);
    app.admin_does("acme", Action::Disable, "alex@acme.com")
        .await;
    let res = browser.get("acme", "/").await;
    let landed = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    assert_ne!(landed.as_deref(), Some("/home"), "not signed in");
    let next = browser.login_page("acme").await;
    assert_ne!(next.challenge, page.challenge, "the approved code is gone");
    assert_eq!(browser.get("acme", "/home").await.status(), 303);
    let alex = app.user("acme", "alex@acme.com").await;
    assert_eq!(app.session_count("acme", &alex.id).await, 0);
}

#[tokio::test]
async fn a_user_disabled_after_approving_is_not_signed_in_and_the_approval_is_spent() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let res = phone.approve_page(&app, "acme", &page).await;
    assert_eq!(res.status(), 200);
    // Alex is disabled before the browser comes back for its session, in a way that leaves
    // the approval standing (written past the product's own revocation, which would cancel
    // it): the browser's return must check the account again, not trust the approval.
    set_status(&app, "alex@acme.com", UserStatus::Disabled).await;

    let res = browser.get("acme", "/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/", "back to the login page");
    let next = browser.login_page("acme").await;
    assert_ne!(
        next.challenge, page.challenge,
        "the spent code is not shown again"
    );
    assert!(
        next.html.contains(
            "Sign-in refused: access ended after the phone approved (the account was disabled or removed, or the phone revoked)"
        ),
        "the fresh code says why the approval did not sign in"
    );
    let again = browser.login_page("acme").await;
    assert_eq!(again.challenge, next.challenge);
    assert!(
        !again.html.contains("Sign-in refused"),
        "the reason is shown once"
    );
    let home = browser.get("acme", "/home").await;
    assert_eq!(home.status(), 303, "no session was made");
    assert_eq!(home.headers()["location"], "/");
    let actions = app.audit_actions().await;
    assert!(
        !actions.contains(&"login.completed".to_string()),
        "{actions:?}"
    );
    // Re-enabling Alex does not revive the spent approval.
    set_status(&app, "alex@acme.com", UserStatus::Active).await;
    assert_eq!(browser.get("acme", "/").await.status(), 200);
}

#[tokio::test]
async fn a_stranger_or_an_unverified_phone_is_refused_with_the_reason() {
    let app = spawn_acme().await;
    let stranger = app.phone_with_email("eve@evil.com").await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let (s, code, msg) = error_code(stranger.approve_page(&app, "acme", &page).await).await;
    assert_eq!((s, code.as_str()), (403, "no_account"));
    assert!(
        msg.contains("eve@evil.com") && msg.contains("Acme MSP"),
        "{msg}"
    );

    let mut fresh = Phone::new();
    fresh.register(&app).await;
    let page = browser.login_page("acme").await;
    let (s, code, _) = error_code(fresh.approve_page(&app, "acme", &page).await).await;
    assert_eq!((s, code.as_str()), (403, "email_not_verified"));
}

#[tokio::test]
async fn denying_on_the_phone_tells_the_browser() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    assert_eq!(
        phone.deny(&app, "acme", &page.challenge).await.status(),
        200
    );
    let res = browser
        .get(
            "acme",
            &format!("/login/events?challenge={}", page.challenge),
        )
        .await;
    let text = tokio::time::timeout(std::time::Duration::from_secs(5), res.text())
        .await
        .unwrap()
        .unwrap();
    assert!(
        text.contains("event: denied") && text.contains("denied on the phone"),
        "{text}"
    );
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let (app, phone) = acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    sign_in(&app, &browser, &phone, "acme").await;
    assert_eq!(browser.get("acme", "/home").await.status(), 200);
    let res = browser
        .client
        .post(browser.url("acme", "/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        browser.get("acme", "/home").await.status(),
        303,
        "signed out"
    );
    let alex = app.user("acme", "alex@acme.com").await;
    assert_eq!(app.session_count("acme", &alex.id).await, 0);
}

#[tokio::test]
async fn a_session_does_not_carry_over_to_another_tenant() {
    let app = spawn_app().await;
    let phone = app.acme_with_alex().await;
    app.create_tenant("beta", "Beta IT", "admin@beta.com").await;
    let browser = app.browser(&["acme", "beta"]);
    sign_in(&app, &browser, &phone, "acme").await;
    assert_eq!(browser.get("beta", "/home").await.status(), 303);
    // Beta's portal functions answer "not signed in" (401), not an error of the server.
    let res = browser
        .client
        .post(browser.url("beta", "/api/users/list"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("NotSignedIn"));
    let page = browser.login_page("beta").await;
    let (s, code, _) = error_code(phone.approve_page(&app, "beta", &page).await).await;
    assert_eq!((s, code.as_str()), (403, "no_account"));
}

#[tokio::test]
async fn the_login_page_answers_while_another_server_starts_in_the_same_process() {
    let app = spawn_acme().await;
    // Another server starts over and over beside this one, as the tests' servers do (and
    // replicas of one process would).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let starter = {
        let stop = stop.clone();
        let url = app.state.config.database_url.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut started = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let config = gatehouse::server::config::Config::for_tests(url.clone());
                    let other = Application::build(config).await.expect("another server");
                    other.state().db.close().await;
                    started += 1;
                }
                started
            })
        })
    };
    for load in 0..100 {
        // A new browser each time: its page is rendered, not served from memory.
        let browser = app.browser(&["acme"]);
        let page = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            browser.login_page("acme"),
        )
        .await;
        assert!(page.is_ok(), "load {load} of the login page never answered");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let started = starter.join().unwrap();
    assert!(started > 0, "no other server started alongside");
}
