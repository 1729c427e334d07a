//! A corpus of malformed requests sent to every route, as a scanner on the internet would:
//! wrong types, unknown fields, invalid UTF-8, huge bodies, odd ids, bad Host headers. Each
//! gets a 4xx (the mobile API's in its documented error shape), and the database is the
//! same afterwards, row for row.

use crate::admin::admin_browser;
use crate::helpers::*;
use reqwest::header::{HeaderValue, CONTENT_TYPE, HOST};
use reqwest::Method;
use sqlx::{Column, Row};

/// Every row of every table, as text, sorted: what "the database did not change" means.
/// The session store's own table is left out: reading a page may refresh a signed-in
/// session's expiry, which is its bookkeeping, not a change anyone made. Gatehouse's sign-ins
/// (`user_sessions`) are compared like everything else, but for when each was last used.
async fn everything(app: &TestApp) -> Vec<String> {
    let pool = &app.state.db.pool;
    let tables: Vec<(String,)> = if on_postgres() {
        sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()")
            .fetch_all(pool)
            .await
            .unwrap()
    } else {
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(pool)
            .await
            .unwrap()
    };
    let mut out = Vec::new();
    for (table,) in tables {
        if table == "tower_sessions" || table.starts_with("_sqlx") || table.starts_with("sqlite_") {
            continue;
        }
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(pool)
            .await
            .unwrap();
        for row in rows {
            let cells: Vec<String> = (0..row.columns().len())
                .filter(|i| !matches!(row.columns()[*i].name(), "last_seen_at" | "last_used_at"))
                .map(|i| {
                    let name = row.columns()[i].name().to_string();
                    let value = row
                        .try_get::<Option<String>, _>(i)
                        .map(|v| format!("{v:?}"))
                        .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                        .or_else(|_| row.try_get::<Option<f64>, _>(i).map(|v| format!("{v:?}")))
                        .or_else(|_| {
                            row.try_get::<Option<Vec<u8>>, _>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .unwrap_or_else(|_| "?".into());
                    format!("{name}={value}")
                })
                .collect();
            out.push(format!("{table}: {}", cells.join(", ")));
        }
    }
    out.sort();
    out
}

/// A body in the mobile API's documented error shape: `{"error": {"code", "message"}}`.
async fn documented_error(res: reqwest::Response, what: &str) {
    let status = res.status().as_u16();
    assert!(
        (400..500).contains(&status),
        "{what}: answered {status}, not a 4xx"
    );
    let text = res.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{what}: the error body is not JSON: {text:.200}"));
    assert!(
        body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
        "{what}: not the documented error shape: {text:.200}"
    );
}

/// Bodies no route should take: each (content type, bytes, what it is).
fn bad_bodies() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let huge = format!("{{\"jws\":\"{}\"}}", "A".repeat(3 * 1024 * 1024)).into_bytes();
    vec![
        ("application/json", b"{".to_vec(), "truncated JSON"),
        ("application/json", b"[]".to_vec(), "an array"),
        ("application/json", b"null".to_vec(), "null"),
        (
            "application/json",
            br#"{"jws": 42}"#.to_vec(),
            "a number for a string",
        ),
        (
            "application/json",
            br#"{"jws": ["a"]}"#.to_vec(),
            "an array for a string",
        ),
        (
            "application/json",
            br#"{"jws": "a.b.c", "admin": true, "role": "admin"}"#.to_vec(),
            "unknown fields",
        ),
        (
            "application/json",
            br#"{"public_key": "not-a-key", "name": 7}"#.to_vec(),
            "wrong types",
        ),
        (
            "application/json",
            vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'],
            "invalid UTF-8",
        ),
        (
            "application/json",
            br#"{"jws": "a\u0000b", "email": "a\u0000@acme.com"}"#.to_vec(),
            "a NUL in JSON",
        ),
        (
            "application/x-www-form-urlencoded",
            b"first_name=A%00n&last_name=B&email=a%00%40acme.com&username=x%00".to_vec(),
            "a NUL in a form",
        ),
        (
            "text/plain",
            b"jws=a.b.c".to_vec(),
            "the wrong content type",
        ),
        (
            "application/x-www-form-urlencoded",
            b"run_id=abc&dry_run=maybe&approve=perhaps&id=%ff%fe&status=%00".to_vec(),
            "wrong types in a form",
        ),
        (
            "application/x-www-form-urlencoded",
            vec![b'e', b'm', b'a', b'i', b'l', b'=', 0xff, 0xc3, 0x28],
            "invalid UTF-8 in a form",
        ),
        ("application/json", huge, "a 3 MB body"),
    ]
}

/// The mobile API: every route, every bad body, odd ids.
#[tokio::test]
async fn malformed_mobile_api_requests_get_the_documented_error_and_change_nothing() {
    let app = spawn_acme().await;
    // A real phone and a real pending challenge, so the odd requests have something to hit.
    let phone = app.phone_with_email("admin@acme.com").await;
    let browser = app.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let before = everything(&app).await;
    let client = app.base_client();
    let device = phone.id().to_string();
    let challenge = page.challenge.clone();

    let routes = [
        (Method::POST, "/devices".to_string()),
        (Method::DELETE, format!("/devices/{device}")),
        (Method::POST, format!("/devices/{device}/emails")),
        (Method::POST, format!("/devices/{device}/emails/confirm")),
        (
            Method::POST,
            format!("/challenges/{challenge}/approve?tenant=acme"),
        ),
        (
            Method::POST,
            format!("/challenges/{challenge}/deny?tenant=acme"),
        ),
    ];
    for (method, path) in &routes {
        for (content_type, body, what) in bad_bodies() {
            let res = client
                .request(method.clone(), app.api(path))
                .header(CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            documented_error(res, &format!("{method} {path} with {what}")).await;
        }
    }

    // Odd ids and queries, on every route that takes one.
    let odd_ids = [
        "x".repeat(10_000),
        "%00".into(),
        "%ff%fe".into(),
        "..%2F..%2Fetc%2Fpasswd".into(),
        "%E2%80%AE%F0%9F%92%A9".into(),
        "'%20OR%201=1--".into(),
    ];
    for id in &odd_ids {
        let short = &id[..id.len().min(24)];
        for (method, path) in [
            (Method::GET, format!("/challenges/{id}?tenant=acme")),
            (Method::GET, format!("/challenges/{challenge}?tenant={id}")),
            (
                Method::POST,
                format!("/challenges/{id}/approve?tenant=acme"),
            ),
            (Method::POST, format!("/devices/{id}/emails")),
            (Method::DELETE, format!("/devices/{id}")),
        ] {
            let res = client
                .request(method.clone(), app.api(&path))
                .json(&serde_json::json!({ "jws": phone.sign(serde_json::json!({"purpose": "approve"})) }))
                .send()
                .await
                .unwrap();
            documented_error(res, &format!("{method} with the id {short}…")).await;
        }
    }
    // A NUL inside a JWS, where the door cannot see it: in the device id a request names
    // before its signature is checked, and in every field of a properly signed request.
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let unsigned = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"ES256"}"#),
        b64(r#"{"device_id":"a\u0000b","purpose":"approve","iat":0}"#)
    );
    let nul = "a\u{0}b";
    for (path, payload) in [
        (
            format!("/devices/{device}/emails"),
            serde_json::json!({"purpose": "verify_email", "device_id": device, "email": format!("x{nul}@acme.com")}),
        ),
        (
            format!("/challenges/{challenge}/approve?tenant=acme"),
            serde_json::json!({"purpose": "approve", "device_id": device, "tenant": nul, "challenge": nul, "number": 1}),
        ),
        (
            format!("/challenges/{challenge}/deny?tenant=acme"),
            serde_json::json!({"purpose": "deny", "device_id": device, "tenant": "acme", "challenge": nul}),
        ),
    ] {
        for jws in [unsigned.clone(), phone.sign(payload.clone())] {
            let res = client
                .post(app.api(&path))
                .json(&serde_json::json!({ "jws": jws }))
                .send()
                .await
                .unwrap();
            documented_error(res, &format!("{path} with a NUL inside its JWS")).await;
        }
    }
    let res = client.get(app.api("/no/such/route")).send().await.unwrap();
    documented_error(res, "an unknown route").await;

    assert_eq!(everything(&app).await, before, "the database is unchanged");
    // The challenge the corpus aimed at still works for its owner.
    let res = phone
        .approve(&app, "acme", &challenge, page.match_number)
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// The admin portal's server functions and pages, called by a signed-in admin with bodies
/// they do not expect, and every route with Host headers that name no tenant.
#[tokio::test]
async fn malformed_portal_requests_and_bad_hosts_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = admin_browser(&app).await;
    let before = everything(&app).await;

    let functions = [
        "users/list",
        "users/suggest_username",
        "users/add",
        "users/act",
        "users/sessions",
        "users/revoke_session",
        "audit/list",
        "reconcile/view",
        "reconcile/sync",
        "reconcile/decide",
        "me",
        "user_source/get",
        "user_source/prove",
        "user_source/preview",
        "user_source/save",
        "user_source/schedule",
        "devices/of_user",
        "devices/revoke",
        "customers/get",
        "customers/notice",
        "customers/prove",
        "customers/save",
        "customers/grant",
        "customers/withdraw",
    ];
    for function in functions {
        for (content_type, body, what) in bad_bodies() {
            let res = admin
                .client
                .post(admin.url("acme", &format!("/api/{function}")))
                .header(CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            // Functions without arguments may ignore a body; any answer but a 4xx must then
            // be the ordinary one, and must not have changed anything (checked below).
            assert!(
                (400..500).contains(&status) || status == 200,
                "{function} with {what}: {status} {}",
                res.text().await.unwrap_or_default()
            );
        }
        // Unknown fields beside no real ones: refused or ignored, never acted on.
        let res = admin
            .client
            .post(admin.url("acme", &format!("/api/{function}")))
            .form(&[
                ("role", "admin"),
                ("tenant_id", "other"),
                ("__proto__", "x"),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(
            (400..500).contains(&status) || status == 200,
            "{function} with unknown fields: {status}"
        );
    }

    // Host headers that name no tenant, or are not host names at all, on every kind of route.
    let client = app.base_client();
    let long_host = format!("{}.localhost", "a".repeat(300));
    let hosts: Vec<HeaderValue> = vec![
        HeaderValue::from_static("evil.example"),
        HeaderValue::from_static("nosuch.localhost"),
        HeaderValue::from_static("acme..localhost"),
        HeaderValue::from_static("acme.localhost:notaport"),
        HeaderValue::from_static("-acme.localhost"),
        HeaderValue::from_static("ACME_.localhost"),
        HeaderValue::from_str(&long_host).unwrap(),
        HeaderValue::from_bytes(b"acme\xff.localhost").unwrap(),
    ];
    let paths = [
        (Method::GET, "/"),
        (Method::GET, "/adminportal/users"),
        (Method::GET, "/login/events"),
        (Method::POST, "/logout"),
        (Method::POST, "/api/users/add"),
        (Method::GET, "/adminportal/user-source/authorize"),
        (
            Method::GET,
            "/adminportal/user-source/callback?code=x&state=y",
        ),
    ];
    for host in &hosts {
        for (method, path) in &paths {
            let res = client
                .request(
                    method.clone(),
                    format!("http://localhost:{}{path}", app.port()),
                )
                .header(HOST, host.clone())
                .header("cookie", admin.cookies("acme"))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{method} {path} on host {:?}: {status}",
                String::from_utf8_lossy(host.as_bytes())
            );
        }
    }

    assert_eq!(everything(&app).await, before, "the database is unchanged");
    // The admin is still signed in and the portal still answers.
    let res = admin.get("acme", "/adminportal/users").await;
    assert_eq!(res.status(), 200);
}
