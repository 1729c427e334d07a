use crate::helpers::*;
use gatehouse_emulator::testing::Fetch as _;

/// An admin of `acme`, signed in.
pub(crate) async fn admin_browser(app: &TestApp) -> Browser {
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let browser = app.browser(&["acme"]);
    let landed = sign_in(app, &browser, &phone, "acme").await;
    assert_eq!(
        landed, "/adminportal/users",
        "admins land on the admin portal"
    );
    browser
}

pub(crate) async fn call(browser: &Browser, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = browser
        .client
        .post(browser.url("acme", &format!("/api/{path}")))
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The id of `acme`'s user holding `email`.
pub(crate) async fn user_id(app: &TestApp, email: &str) -> String {
    app.user("acme", email).await.id.to_string()
}

#[tokio::test]
async fn the_admin_portal_shows_user_management() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    let html = admin
        .get("acme", "/adminportal/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("User management")
            && html.contains("User source")
            && html.contains("Audit log")
    );
    assert!(
        html.contains("admin@acme.com"),
        "the user list is rendered on the server"
    );
    let html = admin
        .get("acme", "/adminportal/user-source")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Local directory"));
}

#[tokio::test]
async fn an_admin_invites_users_with_jit_names() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    let (s, body) = call(
        &admin,
        "users/add",
        &[
            ("first_name", "Alex"),
            ("last_name", "Doe"),
            ("email", "Alex@Acme.com"),
            ("username", ""),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("msp-alex"), "{body}");
    // Same local part, other domain: the name is taken, so a suffix is added.
    let (s, body) = call(
        &admin,
        "users/add",
        &[
            ("first_name", "Alex"),
            ("last_name", "Other"),
            ("email", "alex@other.com"),
            ("username", ""),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("msp-alex2"), "{body}");
    // A typed username is kept.
    let (s, body) = call(
        &admin,
        "users/add",
        &[
            ("first_name", "Bo"),
            ("last_name", "Li"),
            ("email", "bo@acme.com"),
            ("username", "bo-admin"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(app.user_status("bo@acme.com").await, "invited");
    let list = admin
        .get("acme", "/adminportal/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("bo-admin") && list.contains("msp-alex2"));
}

#[tokio::test]
async fn bad_input_is_refused_with_a_reason_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    let before = app.users("acme").await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("email", "nope"),
                ("username", ""),
            ],
            "Email",
        ),
        (
            &[
                ("first_name", ""),
                ("last_name", "B"),
                ("email", "a@acme.com"),
                ("username", ""),
            ],
            "first name",
        ),
        (
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("email", "a@acme.com"),
                ("username", "Bad Name"),
            ],
            "Username",
        ),
        (
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("email", "admin@acme.com"),
                ("username", ""),
            ],
            "already has an account",
        ),
        (
            &[
                ("first_name", "A"),
                ("last_name", "B"),
                ("email", "x@acme.com"),
                ("username", "msp-admin"),
            ],
            "already taken",
        ),
    ];
    for (form, expected) in cases {
        let (s, body) = call(&admin, "users/add", form).await;
        assert_eq!(
            s, 400,
            "{form:?}: refused input is the client's error, not a fault"
        );
        assert!(body.contains(expected), "{form:?}: {body}");
    }
    assert_eq!(before, app.users("acme").await);
}

#[tokio::test]
async fn disabling_a_user_signs_them_out_everywhere() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    app.add_user("acme", "Alex", "alex@acme.com").await;
    let phone = app.phone_with_email("alex@acme.com").await;
    let tech = app.browser(&["acme"]);
    sign_in(&app, &tech, &phone, "acme").await;
    assert_eq!(tech.get("acme", "/home").await.status(), 200);

    let id = user_id(&app, "alex@acme.com").await;
    let (s, body) = call(
        &admin,
        "users/act",
        &[("user_id", &id), ("action", "disable")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("1 session"), "{body}");
    assert_eq!(
        tech.get("acme", "/home").await.status(),
        303,
        "out on the next request"
    );

    // Delete only once disabled; re-enable works.
    let (s, _) = call(
        &admin,
        "users/act",
        &[("user_id", &id), ("action", "enable")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(app.user_status("alex@acme.com").await, "active");
    let (s, body) = call(
        &admin,
        "users/act",
        &[("user_id", &id), ("action", "delete")],
    )
    .await;
    assert_ne!(s, 200);
    assert!(body.contains("Disable"), "{body}");
    call(
        &admin,
        "users/act",
        &[("user_id", &id), ("action", "disable")],
    )
    .await;
    let (s, body) = call(
        &admin,
        "users/act",
        &[("user_id", &id), ("action", "delete")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(app
        .users("acme")
        .await
        .iter()
        .all(|u| u.email != "alex@acme.com"));
    let actions = app.audit_actions().await;
    for a in [
        "user.invited",
        "user.disabled",
        "user.enabled",
        "user.deleted",
    ] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
}

/// The tenant's admin signed in, and Alex added and signed in on another browser: the
/// admin's browser, Alex's browser and Alex's user id.
async fn admin_and_signed_in_alex(app: &TestApp) -> (Browser, Browser, String) {
    let admin = admin_browser(app).await;
    app.add_user("acme", "Alex", "alex@acme.com").await;
    let phone = app.phone_with_email("alex@acme.com").await;
    let tech = app.browser(&["acme"]);
    sign_in(app, &tech, &phone, "acme").await;
    let id = user_id(app, "alex@acme.com").await;
    (admin, tech, id)
}

#[tokio::test]
async fn an_admin_sees_and_revokes_a_users_sessions() {
    let app = spawn_app().await;
    let (admin, tech, id) = admin_and_signed_in_alex(&app).await;
    let (s, body) = call(&admin, "users/sessions", &[("user_id", &id)]).await;
    assert_eq!(s, 200);
    let sessions: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert!(sessions[0]["user_agent"]
        .as_str()
        .unwrap()
        .contains("TestBrowser"));
    let sid = sessions[0]["id"].as_str().unwrap().to_string();
    let (s, _) = call(&admin, "users/revoke_session", &[("session_id", &sid)]).await;
    assert_eq!(s, 200);
    assert_eq!(tech.get("acme", "/home").await.status(), 303);
    assert!(app.audited("session.revoked").await > 0);
}

#[tokio::test]
async fn ended_sign_ins_are_not_listed_and_housekeeping_forgets_what_has_run_its_course() {
    let app = spawn_app().await;
    let (admin, _, id) = admin_and_signed_in_alex(&app).await;
    let listed = |body: String| {
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    let (_, body) = call(&admin, "users/sessions", &[("user_id", &id)]).await;
    assert_eq!(listed(body), 1);

    // Alex signed in thirteen hours ago: that sign-in has ended (a sign-in lasts twelve).
    let db = &app.state.db;
    sqlx::query("UPDATE user_sessions SET created_at = created_at - 46800 WHERE user_id = $1")
        .bind(&id)
        .execute(&db.pool)
        .await
        .unwrap();
    let (_, body) = call(&admin, "users/sessions", &[("user_id", &id)]).await;
    assert_eq!(
        listed(body),
        0,
        "an ended sign-in is not shown as a session"
    );

    // Alex's QR code expired two days ago; a browser waiting right now has a live one.
    sqlx::query("UPDATE login_challenges SET expires_at = expires_at - 172800 WHERE user_id = $1")
        .bind(&id)
        .execute(&db.pool)
        .await
        .unwrap();
    let waiting = app.browser(&["acme"]);
    let shown = waiting.login_page("acme").await.challenge;

    let swept = gatehouse::housekeeping::sweep(db, gatehouse::server::util::now())
        .await
        .unwrap();
    assert_eq!((swept.challenges, swept.sign_ins), (1, 1), "{swept:?}");
    let count = |sql: &'static str| async move {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&db.pool).await.unwrap();
        n
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM user_sessions WHERE user_id IN (SELECT id FROM users WHERE email = 'alex@acme.com')").await,
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM user_sessions").await,
        1,
        "the admin's own sign-in stays"
    );
    assert_eq!(
        waiting.login_page("acme").await.challenge,
        shown,
        "a live QR code stays"
    );
    let (s, _) = call(&admin, "users/sessions", &[("user_id", &id)]).await;
    assert_eq!(s, 200, "the admin is still signed in");
}

#[tokio::test]
async fn an_admin_makes_another_user_admin_but_cannot_lock_themselves_out() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    app.add_user("acme", "Alex", "alex@acme.com").await;
    let id = user_id(&app, "alex@acme.com").await;
    let (s, body) = call(
        &admin,
        "users/act",
        &[("user_id", &id), ("action", "make_admin")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let me = user_id(&app, "admin@acme.com").await;
    let (s, body) = call(
        &admin,
        "users/act",
        &[("user_id", &me), ("action", "disable")],
    )
    .await;
    assert_ne!(s, 200);
    assert!(body.contains("your own account"), "{body}");
}

/// Two admins demote each other at the same moment: each request passed the admin check
/// before the other landed, and only one may win; the tenant always keeps an admin. First
/// in sequence (the loser's request was checked before the winner's landed), then as ten
/// rounds of two requests at once through the portal.
#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_the_tenant_an_admin() {
    let app = spawn_app().await;
    let first = admin_browser(&app).await;
    app.add_user("acme", "Bea", "bea@acme.com").await;
    let bea_id = user_id(&app, "bea@acme.com").await;
    let (s, body) = call(
        &first,
        "users/act",
        &[("user_id", &bea_id), ("action", "make_admin")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let bea_phone = app.phone_with_email("bea@acme.com").await;
    let bea = app.browser(&["acme"]);
    assert_eq!(
        sign_in(&app, &bea, &bea_phone, "acme").await,
        "/adminportal/users"
    );
    let admin_id = user_id(&app, "admin@acme.com").await;
    let admins = || async {
        app.users("acme")
            .await
            .into_iter()
            .filter(|u| u.role == gatehouse::domain::Role::Admin)
            .map(|u| u.email)
            .collect::<Vec<_>>()
    };

    let tenant = app.tenant("acme").await;
    let bea_checked = app.user("acme", "bea@acme.com").await;
    let (s, body) = call(
        &first,
        "users/act",
        &[("user_id", &bea_id), ("action", "make_technician")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let late = gatehouse::users::service::act(
        &app.state.db,
        &app.state.bus,
        &tenant,
        &bea_checked,
        &gatehouse::domain::UserId::from_outside(admin_id.clone()),
        gatehouse::users::service::Action::MakeTechnician,
    )
    .await
    .expect_err("Bea is no longer an admin when her request lands");
    assert!(late.to_string().contains("no longer an admin"), "{late}");
    assert_eq!(admins().await, vec!["admin@acme.com".to_string()]);

    for round in 0..10 {
        let (s, body) = call(
            &first,
            "users/act",
            &[("user_id", &bea_id), ("action", "make_admin")],
        )
        .await;
        assert_eq!(s, 200, "round {round}: {body}");
        let demote_bea = [("user_id", bea_id.as_str()), ("action", "make_technician")];
        let demote_first = [
            ("user_id", admin_id.as_str()),
            ("action", "make_technician"),
        ];
        let (a, b) = tokio::join!(
            call(&first, "users/act", &demote_bea),
            call(&bea, "users/act", &demote_first),
        );
        let left = admins().await;
        assert_eq!(
            left.len(),
            1,
            "round {round}: {left:?}, answers {a:?} {b:?}"
        );
        assert!(
            a.0 == 200 || b.0 == 200,
            "round {round}: one of them won: {a:?} {b:?}"
        );
        if left == ["bea@acme.com"] {
            // Bea won this round; she makes the first admin an admin again.
            let (s, body) = call(
                &bea,
                "users/act",
                &[("user_id", &admin_id), ("action", "make_admin")],
            )
            .await;
            assert_eq!(s, 200, "round {round}: {body}");
            let (s, body) = call(
                &first,
                "users/act",
                &[("user_id", &bea_id), ("action", "make_technician")],
            )
            .await;
            assert_eq!(s, 200, "round {round}: {body}");
        }
    }
}

#[tokio::test]
async fn technicians_and_strangers_cannot_use_the_admin_portal() {
    let app = spawn_app().await;
    let phone = app.acme_with_alex().await;
    let tech = app.browser(&["acme"]);
    sign_in(&app, &tech, &phone, "acme").await;
    let res = tech.get("acme", "/adminportal/users").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/home");
    let (s, body) = call(&tech, "users/list", &[]).await;
    assert_ne!(s, 200);
    assert!(body.contains("Forbidden"), "{body}");

    let stranger = app.browser(&["acme"]);
    let (s, body) = call(
        &stranger,
        "users/add",
        &[
            ("first_name", "E"),
            ("last_name", "V"),
            ("email", "eve@acme.com"),
            ("username", ""),
        ],
    )
    .await;
    assert_ne!(s, 200);
    assert!(body.contains("NotSignedIn"), "{body}");
}

#[tokio::test]
async fn a_setting_saved_on_one_instance_reaches_the_others() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let on_app = app.browser(&["acme"]);
    sign_in(&app, &on_app, &phone, "acme").await;
    let on_replica = replica.browser(&["acme"]);
    sign_in(&replica, &on_replica, &phone, "acme").await;
    let page = |b: &Browser| {
        let b = b.client.clone();
        let url = on_replica.url("acme", "/adminportal/user-source");
        async move { b.get(url).text_body().await }
    };
    assert!(page(&on_replica).await.contains("value=\"msp-\""));

    let res = on_app
        .client
        .post(on_app.url("acme", "/api/user_source/save"))
        .header("accept", "application/json")
        .form(&[("source", "local"), ("domain", ""), ("prefix", "it-")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // PostgreSQL tells the other instance at once; SQLite runs one instance, and a second
    // one on the same file rereads its tenants within seconds.
    let patience = if on_postgres() { 2 } else { 8 };
    let started = std::time::Instant::now();
    loop {
        if page(&on_replica).await.contains("value=\"it-\"") {
            break;
        }
        assert!(
            started.elapsed().as_secs() < patience,
            "the replica still shows the old prefix"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
