use crate::helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn a_phone_registers_its_key_once() {
    let app = spawn_app().await;
    let mut phone = Phone::new();
    assert_eq!(phone.register(&app).await, 201);
    let first = phone.id().to_string();
    assert_eq!(
        phone.register(&app).await,
        200,
        "the same key again is the same device"
    );
    assert_eq!(phone.id(), first);
}

/// `iat` is whatever number the phone signed: the ends of an i64 are stale like any other
/// time out of the window, never an overflow (in a debug build the check panicked; in a
/// release build `iat = i64::MIN + now` wrapped and passed it).
#[tokio::test]
async fn an_iat_at_either_end_of_the_clock_is_stale() {
    let app = spawn_app().await;
    let phone = Phone::new();
    for iat in [i64::MIN, i64::MIN + now(), i64::MAX] {
        let jws = phone.sign(json!({ "purpose": "register", "iat": iat }));
        let res = app
            .base_client()
            .post(app.api("/devices"))
            .json(&json!({ "public_key": phone.jwk(), "jws": jws }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("iat {iat}: no answer ({e})"));
        let (s, code, _) = error_code(res).await;
        assert_eq!((s, code.as_str()), (401, "stale_jws"), "iat {iat}");
    }
}

#[tokio::test]
async fn registration_refuses_bad_keys_and_signatures() {
    let app = spawn_app().await;
    let phone = Phone::new();
    let other = Phone::new();
    let c = app.base_client();
    let post = |body: serde_json::Value| c.post(app.api("/devices")).json(&body).send();

    let signed_by_other = other.sign(json!({ "purpose": "register" }));
    let (s, code, _) = error_code(
        post(json!({ "public_key": phone.jwk(), "jws": signed_by_other }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (401, "invalid_jws"));

    let mut private = phone.jwk();
    private["d"] = json!("AAAA");
    let (s, code, msg) = error_code(
        post(json!({ "public_key": private, "jws": phone.sign(json!({"purpose": "register"})) }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "invalid_public_key"));
    assert!(msg.contains("private"), "{msg}");

    let rsa = json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB" });
    let (s, code, _) = error_code(
        post(json!({ "public_key": rsa, "jws": phone.sign(json!({"purpose": "register"})) }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "invalid_public_key"));

    let stale = phone.sign(json!({ "purpose": "register", "iat": now() - 600 }));
    let (s, code, _) = error_code(
        post(json!({ "public_key": phone.jwk(), "jws": stale }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (401, "stale_jws"));

    let wrong = phone.sign(json!({ "purpose": "approve" }));
    let (s, code, _) = error_code(
        post(json!({ "public_key": phone.jwk(), "jws": wrong }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "wrong_purpose"));

    let res = c
        .post(app.api("/devices"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (s, code, _) = error_code(res).await;
    assert_eq!((s, code.as_str()), (400, "invalid_request"));

    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM devices")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "no refused request stored a device");
}

#[tokio::test]
async fn an_email_is_verified_with_the_mailed_code() {
    let app = spawn_app().await;
    let mut phone = Phone::new();
    phone.register(&app).await;
    assert_eq!(
        phone.request_code(&app, "Alex@Acme.com").await.status(),
        202
    );
    let code = app.last_code("alex@acme.com").await;
    let res = phone.confirm(&app, "alex@acme.com", &code).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["email"], "alex@acme.com");
    assert!(body["verified_at"].as_str().unwrap().ends_with('Z'));

    // The code is used up.
    let (s, code_name, _) = error_code(phone.confirm(&app, "alex@acme.com", &code).await).await;
    assert_eq!((s, code_name.as_str()), (404, "no_code"));

    // Codes are stored hashed, never as sent.
    let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM email_codes")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn codes_are_hashed_at_rest() {
    let app = spawn_app().await;
    let mut phone = Phone::new();
    phone.register(&app).await;
    phone.request_code(&app, "alex@acme.com").await;
    let code = app.last_code("alex@acme.com").await;
    let (hash,): (String,) = sqlx::query_as("SELECT code_hash FROM email_codes")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(!hash.contains(&code));
    assert_eq!(hash.len(), 64);
}

#[tokio::test]
async fn five_wrong_codes_use_up_the_code() {
    let app = spawn_app().await;
    let mut phone = Phone::new();
    phone.register(&app).await;
    phone.request_code(&app, "alex@acme.com").await;
    let right = app.last_code("alex@acme.com").await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for left in (1..=4).rev() {
        let (s, code, msg) = error_code(phone.confirm(&app, "alex@acme.com", wrong).await).await;
        assert_eq!((s, code.as_str()), (400, "wrong_code"));
        assert!(msg.contains(&format!("{left} attempt")), "{msg}");
    }
    let (s, code, _) = error_code(phone.confirm(&app, "alex@acme.com", wrong).await).await;
    assert_eq!((s, code.as_str()), (429, "too_many_attempts"));
    let (s, code, _) = error_code(phone.confirm(&app, "alex@acme.com", &right).await).await;
    assert_eq!(
        (s, code.as_str()),
        (429, "too_many_attempts"),
        "even the right code is refused now"
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    let mut phone = Phone::new();
    phone.register(&app).await;
    phone.request_code(&app, "alex@acme.com").await;
    let code = app.last_code("alex@acme.com").await;
    // Ten minutes pass.
    sqlx::query("UPDATE email_codes SET expires_at = $1")
        .bind(now() - 1)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let (s, name, _) = error_code(phone.confirm(&app, "alex@acme.com", &code).await).await;
    assert_eq!((s, name.as_str()), (410, "code_expired"));
}

#[tokio::test]
async fn email_requests_are_checked() {
    let app = spawn_app().await;
    let mut phone = Phone::new();
    phone.register(&app).await;
    let (s, code, _) = error_code(phone.request_code(&app, "not an email").await).await;
    assert_eq!((s, code.as_str()), (400, "invalid_email"));

    // Signed by this phone, but naming another device.
    let (s, code, _) = error_code(
        phone.post(&app, &format!("/devices/{}/emails", "someone-else"), json!({ "purpose": "verify_email", "device_id": phone.id(), "email": "a@acme.com" })).await,
    )
    .await;
    assert_eq!((s, code.as_str()), (404, "unknown_device"));

    let mut other = Phone::new();
    other.register(&app).await;
    let forged = other
        .post(
            &app,
            &format!("/devices/{}/emails", phone.id()),
            json!({ "purpose": "verify_email", "device_id": phone.id(), "email": "a@acme.com" }),
        )
        .await;
    let (s, code, _) = error_code(forged).await;
    assert_eq!(
        (s, code.as_str()),
        (401, "invalid_jws"),
        "another phone's key cannot act for this device"
    );

    assert_eq!(phone.request_code(&app, "a@acme.com").await.status(), 202);
    let (s, code, _) = error_code(phone.request_code(&app, "a@acme.com").await).await;
    assert_eq!((s, code.as_str()), (429, "too_soon"));
}

/// Anyone can register phone keys, a few per network a minute. Phones that never prove an
/// address are forgotten after a day, with the codes they asked for; a phone that proved one,
/// a day-old phone still on its way, and a revoked phone (whose key must stay refused) stay.
/// A forgotten phone is told to set itself up again.
#[tokio::test]
async fn phones_that_never_prove_an_address_are_forgotten_after_a_day() {
    let app = spawn_acme().await;
    let db = &app.state.db;
    let mut idle = Vec::new();
    for _ in 0..5 {
        let mut phone = Phone::new();
        phone.register(&app).await;
        idle.push(phone);
    }
    // One of them asked for a code and never typed it.
    let res = idle[0].request_code(&app, "someone@acme.com").await;
    assert_eq!(res.status(), 202);
    let verified = app.phone_with_email("admin@acme.com").await;
    let mut revoked = Phone::new();
    revoked.register(&app).await;
    let jws = revoked.sign(json!({ "purpose": "forget", "device_id": revoked.id() }));
    let res = app
        .base_client()
        .delete(app.api(&format!("/devices/{}", revoked.id())))
        .json(&json!({ "jws": jws }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    // All of that was 25 hours ago; one more phone registered a moment ago.
    sqlx::query("UPDATE devices SET created_at = created_at - 90000")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut newcomer = Phone::new();
    newcomer.register(&app).await;

    let swept = gatehouse::housekeeping::sweep(db, gatehouse::server::util::now())
        .await
        .unwrap();
    assert_eq!(swept.unverified_phones, 5, "{swept:?}");
    for phone in &idle {
        let res = phone.request_code(&app, "someone@acme.com").await;
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unknown_device");
    }
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM email_codes")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "their codes went with them");
    assert_eq!(
        newcomer.request_code(&app, "new@acme.com").await.status(),
        202,
        "a phone on its way stays"
    );
    let browser = app.browser(&["acme"]);
    sign_in(&app, &browser, &verified, "acme").await;
    // The revoked key is still refused rather than registered as new.
    let res = app
        .base_client()
        .post(app.api("/devices"))
        .json(&json!({ "public_key": revoked.jwk(), "jws": revoked.sign(json!({ "purpose": "register" })) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "{}", res.text().await.unwrap());
}
