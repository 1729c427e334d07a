//! Users → User source: connecting Entra ID through sign-in, admin consent and a Graph
//! proof, then Save with its rules.

use crate::emulator::{entra_config, spawn_emulator, Emu, MEGAN};
use crate::helpers::*;
use gatehouse::domain::{EntraHealth, UserSource};
use gatehouse::server::config::EntraConfig;
use gatehouse_emulator::CONTOSO_TENANT_ID;
use serde_json::json;

/// Whether an authorization of Gatehouse in an Entra tenant is on record for `acme`.
async fn authorized(s: &Setup) -> bool {
    let tenant = s.app.tenant("acme").await;
    gatehouse::user_source::service::authorization(&s.app.state.db, &tenant.id)
        .await
        .unwrap()
        .is_some()
}

struct Setup {
    app: TestApp,
    emu: Emu,
    admin: Browser,
}

async fn setup() -> Setup {
    setup_with(|_, entra| entra).await
}

/// Like `setup`, with the Entra configuration changed by `change` (given the emulator).
async fn setup_with(change: impl FnOnce(&Emu, EntraConfig) -> EntraConfig) -> Setup {
    let emu = spawn_emulator().await;
    let entra = change(&emu, entra_config(&emu));
    let app = spawn_app_with(move |c| c.entra = entra).await;
    // Tests run on a random port; the app calls its tenant `http://acme.localhost`.
    for path in ["callback", "consent-callback"] {
        let res = emu
            .control(
                reqwest::Method::POST,
                &format!("/_emulator/apps/{}/redirect-uris", emu.app.client_id),
                Some(
                    json!({"uri": format!("http://acme.localhost/adminportal/user-source/{path}")}),
                ),
            )
            .await;
        assert!(res.status().is_success());
    }
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let admin = app.browser(&["acme"]);
    sign_in(&app, &admin, &phone, "acme").await;
    Setup { app, emu, admin }
}

fn query_of(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Follows Gatehouse's redirect to the callback on the tenant host.
async fn to_tenant(s: &Setup, location: &str) -> reqwest::Response {
    let url = url::Url::parse(location).unwrap();
    let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    s.admin.get("acme", &path).await
}

/// Authorize → sign in as Megan (a Contoso admin) → admin consent. Returns where the admin
/// lands at the end.
async fn authorize(s: &Setup, accept: bool) -> String {
    let res = s
        .admin
        .get("acme", "/adminportal/user-source/authorize")
        .await;
    assert_eq!(res.status(), 303);
    let to_microsoft = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to_microsoft.starts_with(&format!(
            "{}/organizations/oauth2/v2.0/authorize",
            s.emu.base
        )),
        "{to_microsoft}"
    );
    let params = query_of(&to_microsoft);
    for key in ["state", "nonce", "code_challenge"] {
        assert!(params.iter().any(|(k, _)| k == key), "{key} is sent");
    }
    // The emulator's sign-in page: pick Megan, then the consent screen.
    let url = to_microsoft.split('?').next().unwrap();
    let res = s.emu.pick_and_consent(url, &params, MEGAN).await;
    assert_eq!(res.status(), 302, "back to Gatehouse with a code");
    let callback = res.headers()["location"].to_str().unwrap().to_string();
    let res = to_tenant(s, &callback).await;
    assert_eq!(res.status(), 303);
    let consent = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        consent.contains(&format!("/{CONTOSO_TENANT_ID}/v2.0/adminconsent")),
        "{consent}"
    );
    // The admin consent page: Megan accepts (or cancels).
    let mut form = query_of(&consent);
    form.push(("account".into(), format!("{CONTOSO_TENANT_ID}/{MEGAN}")));
    form.push((
        "decision".into(),
        if accept { "accept" } else { "cancel" }.into(),
    ));
    let res = s
        .emu
        .http
        .post(consent.split('?').next().unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let back = res.headers()["location"].to_str().unwrap().to_string();
    let res = to_tenant(s, &back).await;
    told(s, &res).await
}

/// What the User source page says of the round trip that redirected to it with `res`: the
/// redirect names only the page, and the page tells it once ("" when it tells nothing).
async fn told(s: &Setup, res: &reqwest::Response) -> String {
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/adminportal/user-source",
        "the address carries no message"
    );
    let page = s.admin.get("acme", "/adminportal/user-source").await;
    round_trip_notice(&page.text().await.unwrap())
}

/// The round trip's notice on a User source page, as text ("" for none).
fn round_trip_notice(html: &str) -> String {
    between(html, "id=\"round-trip\"", "</p>")
        .and_then(|p| p.split_once('>').map(|(_, text)| text.to_string()))
        .map(|text| {
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#x27;", "'")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
        })
        .unwrap_or_default()
}

async fn save(s: &Setup, source: &str, domain: &str, prefix: &str) -> (u16, String) {
    let res = s
        .admin
        .client
        .post(s.admin.url("acme", "/api/user_source/save"))
        .header("accept", "application/json")
        .form(&[("source", source), ("domain", domain), ("prefix", prefix)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn an_admin_connects_contoso_and_saves_domain_and_prefix() {
    let s = setup().await;
    let message = authorize(&s, true).await;
    assert!(message.contains("Authorized in contoso.com"), "{message}");
    let page = s
        .admin
        .get("acme", "/adminportal/user-source")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("contoso.com") && page.contains("contoso.onmicrosoft.com"),
        "verified domains offered"
    );

    let (status, body) = save(&s, "azuread", "contoso.com", "msp-").await;
    assert_eq!(status, 200, "{body}");
    let acme = s.app.tenant("acme").await;
    assert_eq!(acme.user_source, UserSource::AzureAd);
    assert_eq!(
        acme.entra_tenant_id.as_ref().map(|t| t.as_str()),
        Some(CONTOSO_TENANT_ID)
    );
    assert_eq!(acme.entra_domain.as_deref(), Some("contoso.com"));
    assert_eq!(acme.jit_prefix, "msp-");
    let page = s
        .admin
        .get("acme", "/adminportal/user-source")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Connected") && page.contains(CONTOSO_TENANT_ID));
    let actions = s.app.audit_actions().await;
    assert!(
        actions.contains(&"user_source.authorized".to_string())
            && actions.contains(&"user_source.saved".to_string())
    );
}

#[tokio::test]
async fn save_refuses_an_unverified_domain_a_bad_prefix_and_more_than_one_onboarded_user() {
    let s = setup().await;
    let (status, body) = save(&s, "azuread", "contoso.com", "msp-").await;
    assert_ne!(status, 200);
    assert!(body.contains("Authorize"), "{body}");
    authorize(&s, true).await;
    for (domain, prefix, words) in [
        ("fabrikam.com", "msp-", "not a verified domain"),
        ("contoso.com", "", "may not be empty"),
        ("contoso.com", "MSP-", "JIT prefix"),
        ("contoso.com", "waytoolongprefix", "at most 10"),
    ] {
        let (status, body) = save(&s, "azuread", domain, prefix).await;
        assert_ne!(status, 200, "{domain} {prefix}");
        assert!(body.contains(words), "{domain} {prefix}: {body}");
    }
    // Bo signs in: two users (the admin and Bo) have onboarded.
    s.app.add_user("acme", "Bo", "bo@acme.com").await;
    s.app.onboard("acme", "bo@acme.com").await;
    let (status, body) = save(&s, "azuread", "contoso.com", "msp-").await;
    assert_ne!(status, 200);
    assert!(body.contains("at most one user is onboarded"), "{body}");
    assert_eq!(
        s.app.tenant("acme").await.user_source,
        UserSource::Local,
        "nothing changed"
    );
}

#[tokio::test]
async fn refused_consent_and_forged_callbacks_connect_nothing() {
    let s = setup().await;
    let message = authorize(&s, false).await;
    assert!(message.contains("Consent was not granted"), "{message}");

    // A consent answer with a state Gatehouse never issued.
    let res = s
        .admin
        .get(
            "acme",
            "/adminportal/user-source/consent-callback?admin_consent=True&tenant=x&state=forged",
        )
        .await;
    let message = told(&s, &res).await;
    assert!(
        message.contains("does not belong to an authorization you started"),
        "{message}"
    );
    assert!(!authorized(&s).await);
}

#[tokio::test]
async fn a_consent_answer_naming_another_tenant_is_refused() {
    let s = setup().await;
    // Sign in as Megan, then grant consent, but hand Gatehouse a forged `tenant`.
    let res = s
        .admin
        .get("acme", "/adminportal/user-source/authorize")
        .await;
    let to_microsoft = res.headers()["location"].to_str().unwrap().to_string();
    let url = to_microsoft.split('?').next().unwrap();
    let res = s
        .emu
        .pick_and_consent(url, &query_of(&to_microsoft), MEGAN)
        .await;
    let res = to_tenant(&s, res.headers()["location"].to_str().unwrap()).await;
    let consent = res.headers()["location"].to_str().unwrap().to_string();
    let state = query_of(&consent)
        .into_iter()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1;
    let forged = format!(
        "/adminportal/user-source/consent-callback?admin_consent=True&tenant=00000000-0000-0000-0000-000000000bad&state={state}"
    );
    let res = s.admin.get("acme", &forged).await;
    let message = told(&s, &res).await;
    assert!(message.contains("another Entra tenant"), "{message}");
    assert!(!authorized(&s).await, "nothing connected");
}

/// A link that puts words on the User source page: text in its address, or a made-up error
/// "from Microsoft" sent to the callbacks. The page says only what Gatehouse itself found,
/// and a genuine notice is told once.
#[tokio::test]
async fn a_link_cannot_put_words_on_the_user_source_page() {
    let s = setup().await;
    let lie = "Gatehouse was breached. Call 555-0100 and read out your code";
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("error", lie)
        .append_pair("ok", lie)
        .finish();
    let page = s
        .admin
        .get("acme", &format!("/adminportal/user-source?{q}"))
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("Gatehouse was breached"),
        "the address's text is not shown"
    );

    let forged = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("state", "made-up")
        .append_pair("error", "access_denied")
        .append_pair("error_description", lie)
        .finish();
    for step in ["callback", "consent-callback"] {
        let res = s
            .admin
            .get("acme", &format!("/adminportal/user-source/{step}?{forged}"))
            .await;
        let message = told(&s, &res).await;
        assert!(!message.contains("breached"), "{step}: {message}");
        assert!(
            message.contains("does not belong to an authorization you started"),
            "{step}: {message}"
        );
    }

    // Once told, a notice is not told again.
    let page = s.admin.get("acme", "/adminportal/user-source").await;
    assert_eq!(round_trip_notice(&page.text().await.unwrap()), "");
    // A real cancellation at Microsoft is told in Microsoft's words.
    let message = authorize(&s, false).await;
    assert!(message.contains("Consent was not granted"), "{message}");
    assert!(!authorized(&s).await);
}

/// Microsoft applies an admin consent `secs` after it is given (the emulator's setting).
async fn consent_takes(s: &Setup, secs: u64) {
    let res = s
        .emu
        .control(
            reqwest::Method::PUT,
            "/_emulator/settings",
            Some(json!({ "consentDelaySecs": secs })),
        )
        .await;
    assert!(res.status().is_success());
}

/// Right after admin consent Microsoft may take a while to apply it: tokens come without the
/// new roles and Graph refuses them. The connection waits, says so, and completes once
/// Microsoft has applied the consent; the admin does not start over.
#[tokio::test]
async fn the_first_connection_succeeds_while_microsoft_takes_20_seconds_to_apply_the_consent() {
    let s = setup().await;
    consent_takes(&s, 20).await;
    let message = authorize(&s, true).await;
    assert_eq!(message, "", "no error: the page waits for Microsoft");
    let page = s
        .admin
        .get("acme", "/adminportal/user-source")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Waiting for Microsoft to apply the consent"),
        "the page says what it waits for"
    );
    // The page asks again every few seconds, as its script does.
    let mut proven = false;
    for _ in 0..20 {
        let (status, body) = crate::admin::call(&s.admin, "user_source/prove", &[]).await;
        assert_eq!(status, 200, "{body}");
        if body.trim() == "true" {
            proven = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    assert!(proven, "the consent was proven once Microsoft applied it");
    let page = s
        .admin
        .get("acme", "/adminportal/user-source")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Waiting for Microsoft"));
    assert!(
        page.contains("contoso.onmicrosoft.com"),
        "verified domains offered"
    );
    let (status, body) = save(&s, "azuread", "contoso.com", "msp-").await;
    assert_eq!(status, 200, "{body}");
    let counts = s.emu.counts().await;
    assert!(
        counts["POST /{tenant}/oauth2/v2.0/token"].as_u64().unwrap() > 1,
        "a token without the roles is not kept: {counts}"
    );
}

/// A consent Microsoft never applies (the admin consented with an account that lacks the
/// right, or Microsoft is down): after two minutes of trying Gatehouse stops, shows
/// Microsoft's own refusal, records it, and connects nothing. Two minutes pass by moving the
/// recorded consent time back, as a clock would.
#[tokio::test]
async fn a_consent_microsoft_never_applies_gives_up_after_two_minutes_with_microsofts_error() {
    let s = setup().await;
    consent_takes(&s, 3600).await;
    assert_eq!(
        authorize(&s, true).await,
        "",
        "the page waits for Microsoft"
    );
    let (status, body) = crate::admin::call(&s.admin, "user_source/prove", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.trim(), "false", "still waiting within the two minutes");

    // Just under two minutes after consent: still waiting, nothing recorded as failed.
    let age = |secs: i64| {
        let pool = s.app.state.db.pool.clone();
        async move {
            sqlx::query("UPDATE entra_consent_pending SET consented_at = consented_at - $1")
                .bind(secs)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    age(118).await;
    let (status, body) = crate::admin::call(&s.admin, "user_source/prove", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.trim(),
        "false",
        "just under two minutes: still waiting"
    );
    assert!(s.app.audited("user_source.consent_failed").await == 0);

    // Past two minutes: Microsoft's error is the answer.
    age(5).await;
    let (status, body) = crate::admin::call(&s.admin, "user_source/prove", &[]).await;
    assert_ne!(status, 200, "the wait is over: {body}");
    assert!(
        body.contains("403") || body.contains("Authorization_RequestDenied"),
        "Microsoft's refusal is shown: {body}"
    );
    let page = s
        .admin
        .get("acme", "/adminportal/user-source")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Waiting for Microsoft"), "no more waiting");
    assert!(
        !page.contains("contoso.onmicrosoft.com"),
        "no domains offered: nothing was connected"
    );
    assert!(s.app.audited("user_source.consent_failed").await > 0);
    assert!(!authorized(&s).await, "nothing connected");
    let (status, body) = save(&s, "azuread", "contoso.com", "msp-").await;
    assert_ne!(
        status, 200,
        "cannot save a source that was never proven: {body}"
    );
}

/// Runs a reconciliation of `acme` with `client` (another process's view of Entra); the
/// report and the tenant's id.
async fn reconcile_with(
    s: &Setup,
    client: &gatehouse::entra::EntraClient,
) -> (
    gatehouse::reconciler::RunReport,
    gatehouse::domain::TenantId,
) {
    let tenant_id = s.app.tenant("acme").await.id;
    // Saving the connection made a run due at once: the scheduler's run ends first.
    s.app.until_runs_done(&tenant_id, 1).await;
    let r = gatehouse::reconciler::reconcile(
        &s.app.state.db,
        &s.app.state.bus,
        client,
        &tenant_id,
        gatehouse::reconciler::Trigger::Manual,
        false,
    )
    .await
    .unwrap();
    (r, tenant_id)
}

/// A self-signed RSA certificate and its key, as an operator would make with openssl.
pub(crate) fn certificate() -> (String, String) {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let key_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let pair =
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["gatehouse.test".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    (cert.pem(), key_pem)
}

/// Microsoft recommends certificates over client secrets: with only a certificate configured,
/// Gatehouse connects a tenant (sign-in, consent, proof) and reconciles it. A certificate the
/// app registration does not know is Gatehouse's own problem, and the page says so.
#[tokio::test]
async fn a_certificate_only_configuration_connects_and_reconciles() {
    let (cert_pem, key_pem) = certificate();
    let upload = cert_pem.clone();
    let s = setup_with(move |_, mut entra| {
        entra.client_secret = None;
        entra.client_certificate = Some(std::sync::Arc::new(
            gatehouse::entra::ClientCertificate::from_pem(&upload, &key_pem).unwrap(),
        ));
        entra
    })
    .await;
    // The certificate is uploaded to the app registration, as an operator does in Entra.
    let res = s
        .emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/apps/{}/certificates", s.emu.app.client_id),
            Some(json!({ "pem": cert_pem })),
        )
        .await;
    assert_eq!(res.status(), 204);
    let message = authorize(&s, true).await;
    assert!(message.contains("Authorized in contoso.com"), "{message}");
    let (status, body) = save(&s, "azuread", "contoso.com", "msp-").await;
    assert_eq!(status, 200, "{body}");
    // Saving made the first run due at once; Sync now is clicked once it has ended.
    let tenant_id = s.app.tenant("acme").await.id;
    s.app.until_runs_done(&tenant_id, 1).await;
    let (status, body) =
        crate::admin::call(&s.admin, "reconcile/sync", &[("dry_run", "false")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Synced"), "{body}");
    let (status, body) =
        crate::admin::call(&s.admin, "reconcile/sync", &[("dry_run", "true")]).await;
    assert_eq!(status, 200, "{body}");
    let asked: Vec<(String, String)> = s
        .app
        .audit("acme")
        .await
        .into_iter()
        .rev()
        .filter(|e| e.action.starts_with("reconcile."))
        .map(|e| (e.actor, e.action))
        .collect();
    let admin = s
        .app
        .users("acme")
        .await
        .into_iter()
        .find(|u| u.email == "admin@acme.com")
        .expect("the admin")
        .username;
    assert_eq!(
        asked,
        [
            (admin.clone(), "reconcile.requested".to_string()),
            (admin, "reconcile.previewed".to_string())
        ],
        "the admin's Sync now and preview are audited"
    );

    // Another key, never uploaded: Microsoft refuses Gatehouse itself (invalid_client).
    let (other_cert, other_key) = certificate();
    let stranger = gatehouse::entra::EntraClient::with_credential(
        &s.emu.base,
        &s.emu.base,
        &s.emu.app.client_id,
        gatehouse::entra::Credential::Certificate(std::sync::Arc::new(
            gatehouse::entra::ClientCertificate::from_pem(&other_cert, &other_key).unwrap(),
        )),
    );
    let (r, _) = reconcile_with(&s, &stranger).await;
    assert_eq!(r.outcome, gatehouse::reconciler::Outcome::Failed);
    assert!(r.error.unwrap_or_default().contains("invalid_client"));
    let page = s
        .admin
        .get("acme", "/adminportal/user-source")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Microsoft refused Gatehouse&#x27;s own credentials")
            || page.contains("Microsoft refused Gatehouse's own credentials"),
        "the page says whose problem it is"
    );
}

/// A client secret that expired (AADSTS7000222) is the operator's problem for every tenant,
/// not a reason to re-authorize one.
#[tokio::test]
async fn an_expired_client_secret_is_reported_as_gatehouses_own_credentials() {
    let s = setup().await;
    let message = authorize(&s, true).await;
    assert!(message.contains("Authorized"), "{message}");
    let (status, body) = save(&s, "azuread", "contoso.com", "msp-").await;
    assert_eq!(status, 200, "{body}");
    let res = s
        .emu
        .control(
            reqwest::Method::PUT,
            &format!("/_emulator/apps/{}/secret", s.emu.app.client_id),
            Some(json!({ "expiresAt": 1 })),
        )
        .await;
    assert_eq!(res.status(), 204);
    // A new process: no token cached.
    let fresh = gatehouse::entra::EntraClient::new(
        &s.emu.base,
        &s.emu.base,
        &s.emu.app.client_id,
        s.emu.app.secret.clone(),
    );
    let (r, tenant_id) = reconcile_with(&s, &fresh).await;
    assert_eq!(r.outcome, gatehouse::reconciler::Outcome::Failed);
    assert_eq!(
        s.app.entra_health(&tenant_id).await,
        Some(EntraHealth::AppCredentials)
    );
}
