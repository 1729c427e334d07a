//! The public surface, tried as an attacker on the internet would: framing the phone's
//! approve page, posting from another site, forging the client address, flooding.

use crate::admin::admin_browser;
use crate::helpers::*;
use gatehouse_emulator::testing::Fetch as _;
use serde_json::json;

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Every `nonce="…"` on the page.
fn script_nonces(html: &str) -> Vec<String> {
    html.split("nonce=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_string))
        .collect()
}

fn policy_nonce(csp: &str) -> String {
    between(csp, "'nonce-", "'").expect("the policy names a nonce")
}

#[tokio::test]
async fn no_page_can_be_framed_and_scripts_need_this_answers_nonce() {
    let app = spawn_acme().await;
    let browser = app.browser(&["acme"]);
    let client = app.base_client();
    let pages = [
        browser.get("acme", "/").await,
        client
            .get(format!(
                "http://localhost:{}/app/scan?tenant=acme&challenge=x",
                app.port()
            ))
            .send()
            .await
            .unwrap(),
        client
            .get(format!("http://localhost:{}/", app.port()))
            .send()
            .await
            .unwrap(),
        client
            .get(app.api("/challenges/nope?tenant=acme"))
            .send()
            .await
            .unwrap(),
    ];
    for res in &pages {
        let url = res.url().to_string();
        let csp = header(res, "content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{url}: {csp}");
        assert!(
            !csp.contains("unsafe-eval'") || csp.contains("wasm-unsafe-eval"),
            "{url}: {csp}"
        );
        assert_eq!(header(res, "x-frame-options"), "DENY", "{url}");
        assert_eq!(header(res, "x-content-type-options"), "nosniff", "{url}");
        assert_eq!(header(res, "referrer-policy"), "no-referrer", "{url}");
        assert!(
            header(res, "permissions-policy").contains("camera=(self)"),
            "{url}: the phone app may use the camera"
        );
        // Served over plain http here: HSTS would be a lie.
        assert!(
            res.headers().get("strict-transport-security").is_none(),
            "{url}"
        );
    }
    // The login page's scripts carry exactly the nonce its policy names, and a second load
    // (answered from memory) has another nonce, filled in everywhere.
    let first = browser.get("acme", "/").await;
    let first_nonce = policy_nonce(header(&first, "content-security-policy"));
    let html = first.text().await.unwrap();
    let nonces = script_nonces(&html);
    assert!(!nonces.is_empty(), "the hydration scripts carry a nonce");
    assert!(
        nonces.iter().all(|n| *n == first_nonce),
        "{nonces:?} vs {first_nonce}"
    );
    let served_before = app.state.pages.served_from_memory();
    let again = browser.get("acme", "/").await;
    assert!(
        app.state.pages.served_from_memory() > served_before,
        "kept page served"
    );
    let again_nonce = policy_nonce(header(&again, "content-security-policy"));
    assert_ne!(again_nonce, first_nonce, "a kept page repeated its nonce");
    let html = again.text().await.unwrap();
    assert!(!html.contains(&first_nonce));
    assert!(script_nonces(&html).iter().all(|n| *n == again_nonce));
}

#[tokio::test]
async fn behind_https_browsers_are_told_to_stay_on_https() {
    let app = spawn_app_with(|c| c.public_url = "https://localhost".into()).await;
    let res = app
        .base_client()
        .get(format!("http://localhost:{}/healthz", app.port()))
        .send()
        .await
        .unwrap();
    assert!(
        header(&res, "strict-transport-security").starts_with("max-age="),
        "HSTS when the public URL is https"
    );
}

#[tokio::test]
async fn a_post_from_another_site_or_a_sibling_tenant_changes_nothing() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    app.create_tenant("evil", "Evil Corp", "mallory@evil.test")
        .await;
    let add_user = |origin: String| {
        admin
            .client
            .post(admin.url("acme", "/api/users/add"))
            .header("origin", origin)
            .header("accept", "application/json")
            .form(&[
                ("first_name", "Eve"),
                ("last_name", "Planted"),
                ("email", "eve@planted.test"),
                ("username", "planted-admin"),
            ])
            .send()
    };
    for origin in [
        "https://evil.example".to_string(),
        format!("http://evil.localhost:{}", app.port()),
        "null".to_string(),
    ] {
        let res = add_user(origin.clone()).await.unwrap();
        assert_eq!(res.status(), 403, "{origin}");
        let planted = app.users("acme").await;
        assert!(
            planted.iter().all(|u| u.email != "eve@planted.test"),
            "{origin}: nothing was added"
        );
    }
    // A cross-site form that signs the admin out is refused too.
    let res = admin
        .client
        .post(admin.url("acme", "/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = admin.get("acme", "/adminportal/users").await;
    assert_eq!(res.status(), 200, "still signed in");
    // The page's own origin is fine.
    let res = add_user(format!("http://acme.localhost:{}", app.port()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // The mobile API answers in its own error shape.
    let res = app
        .base_client()
        .post(app.api("/devices"))
        .header("origin", "https://evil.example")
        .json(&json!({ "public_key": {}, "jws": "x" }))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(res).await;
    assert_eq!((status, code.as_str()), (403, "cross_site_request"));
}

/// The address the phone is shown for the browser that loaded `slug`'s login page with
/// `forwarded_for` in its X-Forwarded-For header.
async fn ip_shown_on_the_phone(
    app: &TestApp,
    slug: &str,
    forwarded_for: &str,
) -> serde_json::Value {
    ip_shown_with_headers(app, slug, &[("x-forwarded-for", forwarded_for)]).await
}

/// The address the phone is shown for the browser that loaded `slug`'s login page with
/// these request headers.
async fn ip_shown_with_headers(
    app: &TestApp,
    slug: &str,
    headers: &[(&str, &str)],
) -> serde_json::Value {
    let browser = app.browser(&[slug]);
    let mut req = browser.client.get(browser.url(slug, "/"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    let html = res.text().await.unwrap();
    let challenge = between(&html, "data-challenge=\"", "\"").unwrap();
    app.base_client()
        .get(app.api(&format!("/challenges/{challenge}?tenant={slug}")))
        .json_body()
        .await
}

#[tokio::test]
async fn a_forged_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_acme().await;
    let info = ip_shown_on_the_phone(&app, "acme", "203.0.113.50").await;
    assert_eq!(info["requester_ip"], "127.0.0.1", "{info}");
    assert_eq!(info["tenant_name"], "Acme MSP");
    assert_eq!(info["tenant_host"], "acme.localhost", "{info}");
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    // The client itself sent a made-up first hop; the proxy appended what it saw.
    let info = ip_shown_on_the_phone(&app, "acme", "10.9.9.9, 203.0.113.50").await;
    assert_eq!(info["requester_ip"], "203.0.113.50", "{info}");
}

/// The operator's proxy sets X-Forwarded-For (the usual default) and passes other headers
/// through: a `Forwarded` the client wrote itself must not choose the address every per-IP
/// limit counts and the phone shows. An operator whose proxy writes `Forwarded` says so, and
/// then a client's own X-Forwarded-For counts for nothing.
#[tokio::test]
async fn only_the_header_the_proxy_sets_names_the_client() {
    let forged = [
        ("x-forwarded-for", "203.0.113.50"),
        ("forwarded", "for=198.51.100.66"),
    ];
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let info = ip_shown_with_headers(&app, "acme", &forged).await;
    assert_eq!(info["requester_ip"], "203.0.113.50", "{info}");

    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.client_ip_header = gatehouse::server::client_ip::ProxyHeader::Forwarded;
    })
    .await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let info = ip_shown_with_headers(&app, "acme", &forged).await;
    assert_eq!(info["requester_ip"], "198.51.100.66", "{info}");
}

/// `browser` loads acme's login page through the proxy, which names `ip` as the client.
async fn login_from(browser: &Browser, ip: &str) -> reqwest::Response {
    browser
        .client
        .get(browser.url("acme", "/"))
        .header("x-forwarded-for", ip)
        .send()
        .await
        .unwrap()
}

async fn challenge_count(app: &TestApp) -> i64 {
    sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM login_challenges")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_flood_of_new_browsers_from_one_network_is_held_and_others_still_sign_in() {
    let app = spawn_app_with(|c| {
        c.limits.login_codes_per_ip = 5;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let browsers: Vec<Browser> = (0..12).map(|_| app.browser(&["acme"])).collect();
    let answers =
        futures::future::join_all(browsers.iter().map(|b| login_from(b, "198.51.100.66"))).await;
    let shown = answers.iter().filter(|r| r.status() == 200).count();
    let held: Vec<_> = answers.iter().filter(|r| r.status() == 429).collect();
    assert_eq!(shown, 5, "the flood got only its rate");
    assert_eq!(held.len(), 7);
    for res in &held {
        let wait: u64 = header(res, "retry-after")
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&wait), "{wait}");
    }
    assert_eq!(
        challenge_count(&app).await,
        5,
        "nothing was written for the held loads"
    );
    // Someone else, elsewhere, signs in as usual.
    let browser = app.browser(&["acme"]);
    let res = login_from(&browser, "203.0.113.7").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let challenge = between(&html, "data-challenge=\"", "\"").unwrap();
    let number: i64 = between(&html, "id=\"match-number\"", "</strong>")
        .and_then(|s| s.rsplit('>').next().map(|s| s.trim().parse().unwrap()))
        .unwrap();
    let res = phone.approve(&app, "acme", &challenge, number).await;
    assert_eq!(res.status(), 200);
    let res = login_from(&browser, "203.0.113.7").await;
    assert_eq!(res.status(), 303, "signed in");
    let metrics = app.state.metrics.render();
    assert!(
        metrics.contains("gatehouse_rate_limited_total{limit=\"login_codes_per_ip\"} 7"),
        "{metrics}"
    );
}

/// One IPv6 client holds a whole /64: counted address by address, it could register phones
/// (and draw login codes) without end. Behind a trusted proxy, three phones from three
/// addresses of one /64 meet the limit of two; another /64 is not held back by them.
#[tokio::test]
async fn an_ipv6_network_is_limited_as_one_client() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.limits.device_registrations_per_ip = 2;
    })
    .await;
    let register_from = |ip: &'static str| {
        let phone = Phone::new();
        let jws = phone.sign(json!({ "purpose": "register" }));
        app.base_client()
            .post(app.api("/devices"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "public_key": phone.jwk(), "jws": jws }))
            .send()
    };
    for ip in ["2001:db8:7:1::1", "2001:db8:7:1:ffff::2"] {
        assert_eq!(register_from(ip).await.unwrap().status(), 201, "{ip}");
    }
    let (status, code, _) = error_code(register_from("2001:db8:7:1:abcd::3").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert_eq!(
        register_from("2001:db8:7:2::1").await.unwrap().status(),
        201
    );
}

#[tokio::test]
async fn registering_phones_and_acting_on_sign_ins_are_limited_per_network() {
    let app = spawn_app_with(|c| {
        c.limits.device_registrations_per_ip = 2;
        c.limits.phone_actions_per_ip = 3;
    })
    .await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let mut phones = [Phone::new(), Phone::new()];
    for p in phones.iter_mut() {
        p.register(&app).await;
    }
    let third = Phone::new();
    let res = app
        .base_client()
        .post(app.api("/devices"))
        .json(&json!({ "public_key": third.jwk(), "jws": third.sign(json!({ "purpose": "register" })) }))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("retry-after").is_some());
    let (status, code, message) = error_code(res).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"), "{message}");
    let devices: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM devices")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(devices.0, 2, "the third phone was not registered");

    // Probing sign-ins: three look-ups pass, the approval after them is refused before
    // anything is read.
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    for _ in 0..3 {
        let res = app
            .base_client()
            .get(app.api(&format!("/challenges/{}?tenant=acme", page.challenge)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = phones[0].approve_page(&app, "acme", &page).await;
    let (status, code, _) = error_code(res).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    let again = browser.login_page("acme").await;
    assert_eq!(
        again.challenge, page.challenge,
        "the held approval did nothing: the browser still waits on its code"
    );
}

#[tokio::test]
async fn a_tenant_session_planted_on_another_tenants_host_is_sent_to_sign_in() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    app.create_tenant("other", "Other MSP", "boss@other.test")
        .await;
    let planted = admin.cookies("acme");
    assert!(planted.contains("gatehouse_session"), "{planted}");
    let client = app.base_client();
    let other = |path: &str| format!("http://other.localhost:{}{path}", app.port());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("other.localhost", app.addr)
        .build()
        .unwrap_or(client);
    let res = client
        .get(other("/adminportal/users"))
        .header("cookie", &planted)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "a page sends the browser to sign in");
    assert_eq!(header(&res, "location"), "/");
    let res = client
        .post(other("/api/users/list"))
        .header("cookie", &planted)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "a server function says: not signed in here"
    );
}

#[tokio::test]
async fn phones_enrolling_verifying_and_browsers_signing_out_leave_an_audit_trail() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    let events: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, action, subject FROM audit_events \
         WHERE action IN ('device.registered', 'email.verified') ORDER BY id",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let (device_actor, registered, device) = &events[0];
    assert_eq!(registered, "device.registered");
    assert_eq!(device_actor, &format!("device {device}"));
    assert_eq!(
        events[1],
        (
            device_actor.clone(),
            "email.verified".into(),
            "admin@acme.com".into()
        )
    );

    let res = admin
        .client
        .post(admin.url("acme", "/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let actions = app.audit_actions().await;
    assert_eq!(
        actions.last().map(String::as_str),
        Some("login.signed_out"),
        "{actions:?}"
    );
    // Signing out twice records nothing more: the second one ended nothing.
    let _ = admin
        .client
        .post(admin.url("acme", "/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(app.audit_actions().await.len(), actions.len());
}

/// Pages go out compressed as the browser asks, and stay out of shared caches; a page's event
/// stream is never compressed (a compressor would hold pushes back until its buffer fills).
#[tokio::test]
async fn pages_are_compressed_and_private_and_event_streams_are_not_held_back() {
    let app = spawn_acme().await;
    let browser = app.browser(&["acme"]);
    for encoding in ["br", "gzip"] {
        let res = browser
            .client
            .get(browser.url("acme", "/"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "content-encoding"), encoding);
        let compressed = res.bytes().await.unwrap().len();
        assert!(compressed < 5_000, "{encoding}: {compressed} bytes");
    }
    let plain = browser.get("acme", "/").await;
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(plain.text().await.unwrap().contains("login-qr"));

    let page = browser.login_page("acme").await;
    let res = browser
        .client
        .get(browser.url(
            "acme",
            &format!("/login/events?challenge={}", page.challenge),
        ))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-type"), "text/event-stream");
    assert!(
        res.headers().get("content-encoding").is_none(),
        "the event stream is sent as it is"
    );

    let res = app
        .base_client()
        .get(format!("http://localhost:{}/", app.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "cache-control"), "private, no-cache");
}

/// The page anyone on the internet can load is small: the login page's only script is
/// `/login.js`, never the portal's WebAssembly; a signed-in portal page hydrates.
#[tokio::test]
async fn the_login_page_loads_no_webassembly_and_the_portal_does() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    let visitor = app.browser(&["acme"]);
    let login = visitor.login_page("acme").await.html;
    assert!(
        login.contains("src=\"/login.js\""),
        "the login page's script"
    );
    assert!(
        !login.contains(".wasm") && !login.contains("/pkg/gatehouse.js"),
        "no hydration"
    );
    let portal = admin
        .get("acme", "/adminportal/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        portal.contains(".wasm") || portal.contains("gatehouse_bg"),
        "the portal hydrates"
    );
    assert!(!portal.contains("/login.js"));
    // The login page may not compile WebAssembly at all; the portal may.
    let csp = |res: &reqwest::Response| header(res, "content-security-policy").to_string();
    let login = visitor.get("acme", "/").await;
    assert!(!csp(&login).contains("wasm-unsafe-eval"), "{}", csp(&login));
    let portal = admin.get("acme", "/adminportal/users").await;
    assert!(
        csp(&portal).contains("'wasm-unsafe-eval'"),
        "{}",
        csp(&portal)
    );
}

/// Every answer names its request, so an operator can find it in the logs; the id is drawn
/// by Gatehouse, and one a client sends is not taken (it could point the logs elsewhere).
#[tokio::test]
async fn every_answer_carries_its_own_request_id() {
    let app = spawn_acme().await;
    let browser = app.browser(&["acme"]);
    let mut seen = std::collections::HashSet::new();
    for path in ["/", "/", "/adminportal/users", "/no-such-page"] {
        let res = browser
            .client
            .get(browser.url("acme", path))
            .header("x-request-id", "chosen-by-the-client")
            .send()
            .await
            .unwrap();
        let id = header(&res, "x-request-id").to_string();
        assert!(id.len() >= 12, "{path}: {id:?}");
        assert_ne!(id, "chosen-by-the-client");
        assert!(seen.insert(id), "each request its own id");
    }
}

/// An operator handed an audit event can find its request in the logs: the approval's
/// `login.approved` event names the request id the phone was answered with, and the
/// completion's event the id of the browser's request. Each event its own request.
#[tokio::test]
async fn audit_events_name_the_request_that_made_them() {
    let app = spawn_app().await;
    let phone = app.acme_with_alex().await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let approved = phone.approve_page(&app, "acme", &page).await;
    assert_eq!(approved.status(), 200);
    let approved_id = header(&approved, "x-request-id").to_string();
    let completed = browser.get("acme", "/").await;
    assert_eq!(completed.status(), 303);
    let completed_id = header(&completed, "x-request-id").to_string();

    let tenant = gatehouse::tenants::store::find_by_slug(&app.state.db, "acme")
        .await
        .unwrap()
        .unwrap();
    let events = gatehouse::audit::service::list(&app.state.db, &tenant.id, 50)
        .await
        .unwrap();
    let request_of = |action: &str| {
        events
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("{action} in {events:?}"))
            .request
            .clone()
    };
    assert_eq!(request_of("login.approved"), Some(approved_id));
    assert_eq!(request_of("login.completed"), Some(completed_id));
}

/// A fault on Gatehouse's side tells the person who met it which request to quote: the
/// login page's error and a server function's error both name the id the answer carries.
#[tokio::test]
async fn a_fault_names_its_request() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    // The fault: the store loses the tables the login page and the audit log read.
    for table in ["login_challenges", "audit_events"] {
        sqlx::query(&format!("ALTER TABLE {table} RENAME TO {table}_gone"))
            .execute(&app.state.db.pool)
            .await
            .unwrap();
    }
    let res = app.browser(&["acme"]).get("acme", "/").await;
    assert_eq!(res.status(), 500);
    let id = header(&res, "x-request-id").to_string();
    let body = res.text().await.unwrap();
    assert!(body.contains(&format!("(request {id})")), "{body}");

    let res = admin
        .client
        .post(admin.url("acme", "/api/audit/list"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let id = header(&res, "x-request-id").to_string();
    let body = res.text().await.unwrap();
    assert!(body.contains(&format!("(request {id})")), "{body}");
}
