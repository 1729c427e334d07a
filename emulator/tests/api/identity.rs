//! Sign-in, consent, code exchange and client credentials, as the identity platform documents.

use super::*;
use gatehouse_emulator::testing::Fetch as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;
use std::collections::HashMap;

/// Parameters of an authorization request, as Gatehouse sends them.
fn authorize_params(emu: &Emu, challenge: &str) -> Vec<(String, String)> {
    [
        ("client_id", emu.app.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("response_mode", "query"),
        ("scope", "openid profile email"),
        ("state", "state-123"),
        ("nonce", "nonce-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Picks `user` on the sign-in page and accepts the consent screen; returns the redirect.
async fn sign_in(
    emu: &Emu,
    tenant: &str,
    params: &[(String, String)],
    user: &str,
) -> reqwest::Response {
    let url = emu.url(&format!("/{tenant}/oauth2/v2.0/authorize"));
    let page = emu.http.get(&url).query(params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("alex@contoso.com"),
        "the picker lists directory users"
    );
    let mut form = params.to_vec();
    form.push(("step".into(), "pick".into()));
    form.push(("account".into(), format!("{CONTOSO_TENANT_ID}/{user}")));
    form.push(("decision".into(), "accept".into()));
    let consent = emu.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(consent.status(), 200, "a first sign-in asks for consent");
    let html = consent.text().await.unwrap();
    assert!(html.contains("Permissions requested"));
    assert!(html.contains("View your email address"));
    let form: Vec<(String, String)> = form
        .into_iter()
        .map(|(k, v)| {
            if k == "step" {
                (k, "consent".into())
            } else {
                (k, v)
            }
        })
        .collect();
    emu.http.post(&url).form(&form).send().await.unwrap()
}

async fn redeem(
    emu: &Emu,
    tenant: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> reqwest::Response {
    emu.http
        .post(emu.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .form(&[
            ("client_id", emu.app.client_id.as_str()),
            ("client_secret", &emu.secret()),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

async fn code_for_alex(emu: &Emu) -> (String, String) {
    let (verifier, challenge) = pkce();
    let res = sign_in(
        emu,
        "organizations",
        &authorize_params(emu, &challenge),
        ALEX,
    )
    .await;
    assert_eq!(res.status(), 302);
    let (_, q) = location_query(&res);
    (q["code"].clone(), verifier)
}

async fn aad_error(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn a_signed_in_admin_comes_back_with_an_id_token_that_validates_against_the_jwks() {
    let emu = spawn_emulator().await;
    let (verifier, challenge) = pkce();
    let res = sign_in(
        &emu,
        "organizations",
        &authorize_params(&emu, &challenge),
        ALEX,
    )
    .await;
    assert_eq!(res.status(), 302);
    let (target, q) = location_query(&res);
    assert_eq!(target, CALLBACK);
    assert_eq!(q["state"], "state-123");

    let res = redeem(&emu, "organizations", &q["code"], CALLBACK, &verifier).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    let id_token = tokens["id_token"].as_str().unwrap();

    // Validate like a client: discovery of the multi-tenant authority, then its JWKS.
    let config: Value = emu
        .http
        .get(emu.url("/organizations/v2.0/.well-known/openid-configuration"))
        .json_body()
        .await;
    let template = config["issuer"].as_str().unwrap();
    assert_eq!(
        emu.emulator.base_url(),
        emu.base,
        "the issuer uses the bound address"
    );
    assert_eq!(template, format!("{}/{{tenantid}}/v2.0", emu.base));
    let jwks: JwkSet = serde_json::from_value(
        emu.http
            .get(config["jwks_uri"].as_str().unwrap())
            .json_body()
            .await,
    )
    .expect("a JSON Web Key Set");
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid is published");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&emu.app.client_id]);
    validation.set_issuer(&[template.replace("{tenantid}", CONTOSO_TENANT_ID)]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the id_token validates")
            .claims;
    assert_eq!(claims["tid"], CONTOSO_TENANT_ID);
    assert_eq!(claims["oid"], ALEX);
    assert_eq!(claims["preferred_username"], "alex@contoso.com");
    assert_eq!(claims["name"], "Alex Wilber");
    assert_eq!(claims["nonce"], "nonce-456");
    assert!(claims["sub"]
        .as_str()
        .is_some_and(|s| !s.is_empty() && s != ALEX));
    assert!(claims["iat"].is_i64() && claims["nbf"].is_i64() && claims["exp"].is_i64());
}

#[tokio::test]
async fn a_domain_names_the_same_tenant_as_its_id() {
    let emu = spawn_emulator().await;
    let config: Value = emu
        .http
        .get(emu.url("/contoso.com/v2.0/.well-known/openid-configuration"))
        .json_body()
        .await;
    assert_eq!(
        config["issuer"],
        format!("{}/{CONTOSO_TENANT_ID}/v2.0", emu.base)
    );
    let res = emu
        .http
        .get(emu.url("/tailspintoys.com/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    let (status, body) = aad_error(res).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([90002]));
}

#[tokio::test]
async fn a_code_is_refused_with_the_wrong_verifier_and_cannot_be_reused() {
    let emu = spawn_emulator().await;
    let (code, verifier) = code_for_alex(&emu).await;
    let (status, body) =
        aad_error(redeem(&emu, "organizations", &code, CALLBACK, "not-the-verifier").await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_codes"], json!([501481]));
    for key in [
        "error_description",
        "timestamp",
        "trace_id",
        "correlation_id",
    ] {
        assert!(body[key].is_string(), "{key} in {body}");
    }

    // The right verifier is too late: the code was spent by the failed attempt.
    let (status, body) =
        aad_error(redeem(&emu, "organizations", &code, CALLBACK, &verifier).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([54005]));
}

#[tokio::test]
async fn a_redeemed_code_cannot_be_redeemed_again() {
    let emu = spawn_emulator().await;
    let (code, verifier) = code_for_alex(&emu).await;
    assert_eq!(
        redeem(&emu, "organizations", &code, CALLBACK, &verifier)
            .await
            .status(),
        200
    );
    let (status, body) =
        aad_error(redeem(&emu, "organizations", &code, CALLBACK, &verifier).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS54005:"));
}

#[tokio::test]
async fn a_code_is_refused_for_another_redirect_uri() {
    let emu = spawn_emulator().await;
    let (code, verifier) = code_for_alex(&emu).await;
    let (status, body) =
        aad_error(redeem(&emu, "organizations", &code, CONSENT_CALLBACK, &verifier).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_codes"], json!([500112]));
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let emu = spawn_emulator().await;
    let (code, verifier) = code_for_alex(&emu).await;
    let res = emu
        .http
        .post(emu.url("/organizations/oauth2/v2.0/token"))
        .form(&[
            ("client_id", emu.app.client_id.as_str()),
            ("client_secret", "wrong"),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = aad_error(res).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_refused_on_the_emulators_own_page() {
    let emu = spawn_emulator().await;
    let (_, challenge) = pkce();
    let mut params = authorize_params(&emu, &challenge);
    params[2].1 = "https://evil.example/callback".into();
    let res = emu
        .http
        .get(emu.url("/organizations/oauth2/v2.0/authorize"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("AADSTS50011"));
}

#[tokio::test]
async fn a_redirect_uri_registered_through_the_control_api_is_accepted() {
    let emu = spawn_emulator().await;
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/apps/{}/redirect-uris", emu.app.client_id),
            Some(json!({"uri": "http://acme.localhost:3000/adminportal/user-source/callback"})),
        )
        .await;
    assert_eq!(res.status(), 204);
    let (_, challenge) = pkce();
    let mut params = authorize_params(&emu, &challenge);
    params[2].1 = "http://acme.localhost:3000/adminportal/user-source/callback".into();
    let res = emu
        .http
        .get(emu.url("/organizations/oauth2/v2.0/authorize"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_declined_consent_returns_access_denied_with_the_state() {
    let emu = spawn_emulator().await;
    let (_, challenge) = pkce();
    let params = authorize_params(&emu, &challenge);
    let url = emu.url("/organizations/oauth2/v2.0/authorize");
    let mut form = params.clone();
    form.push(("step".into(), "consent".into()));
    form.push(("account".into(), format!("{CONTOSO_TENANT_ID}/{ALEX}")));
    form.push(("decision".into(), "cancel".into()));
    let res = emu.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let (_, q) = location_query(&res);
    assert_eq!(q["error"], "access_denied");
    assert!(q["error_description"].starts_with("AADSTS65004"));
    assert_eq!(q["state"], "state-123");
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in() {
    let emu = spawn_emulator().await;
    let (_, challenge) = pkce();
    let mut form = authorize_params(&emu, &challenge);
    form.push(("step".into(), "pick".into()));
    form.push((
        "account".into(),
        format!("{CONTOSO_TENANT_ID}/1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e04"),
    ));
    let res = emu
        .http
        .post(emu.url("/organizations/oauth2/v2.0/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("AADSTS50057"));
}

#[tokio::test]
async fn prompt_none_without_a_session_asks_for_a_login() {
    let emu = spawn_emulator().await;
    let (_, challenge) = pkce();
    let mut params = authorize_params(&emu, &challenge);
    params.push(("prompt".into(), "none".into()));
    let res = emu
        .http
        .get(emu.url("/organizations/oauth2/v2.0/authorize"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let (_, q) = location_query(&res);
    assert_eq!(q["error"], "login_required");
}

#[tokio::test]
async fn client_credentials_without_admin_consent_are_refused() {
    let emu = spawn_emulator().await;
    let (status, body) = aad_error(
        emu.client_credentials(CONTOSO_TENANT_ID, &emu.secret())
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unauthorized_client");
    assert_eq!(body["error_codes"], json!([700016]));
}

#[tokio::test]
async fn admin_consent_through_the_page_lets_client_credentials_carry_the_roles() {
    let emu = spawn_emulator().await;
    let params = [
        ("client_id", emu.app.client_id.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
        ("redirect_uri", CONSENT_CALLBACK),
        ("state", "consent-state"),
    ];
    let url = emu.url(&format!("/{CONTOSO_TENANT_ID}/v2.0/adminconsent"));
    let page = emu.http.get(&url).query(&params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("megan@contoso.com"), "admins are offered");
    assert!(!html.contains("alex@contoso.com"), "non-admins are not");
    assert!(html.contains("Read all users"));

    let mut form: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.to_string())).collect();
    form.push(("account", format!("{CONTOSO_TENANT_ID}/{MEGAN}")));
    form.push(("decision", "accept".into()));
    let res = emu.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let (target, q) = location_query(&res);
    assert_eq!(target, CONSENT_CALLBACK);
    assert_eq!(q["admin_consent"], "True");
    assert_eq!(q["tenant"], CONTOSO_TENANT_ID);
    assert_eq!(q["scope"], "https://graph.microsoft.com/.default");
    assert_eq!(q["state"], "consent-state");

    let res = emu.client_credentials("contoso.com", &emu.secret()).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let claims: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .unwrap()
        .claims;
    assert_eq!(
        claims["roles"],
        json!(["User.Read.All", "Domain.Read.All", "GroupMember.Read.All"])
    );
    assert_eq!(claims["tid"], CONTOSO_TENANT_ID);
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
}

#[tokio::test]
async fn a_refused_admin_consent_returns_the_error_and_grants_nothing() {
    let emu = spawn_emulator().await;
    let url = emu.url("/organizations/v2.0/adminconsent");
    let form: HashMap<&str, String> = [
        ("client_id", emu.app.client_id.clone()),
        ("scope", "https://graph.microsoft.com/.default".into()),
        ("redirect_uri", CONSENT_CALLBACK.into()),
        ("state", "s1".into()),
        ("account", format!("{CONTOSO_TENANT_ID}/{MEGAN}")),
        ("decision", "cancel".into()),
    ]
    .into_iter()
    .collect();
    let res = emu.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let (_, q) = location_query(&res);
    assert_eq!(q["error"], "access_denied");
    assert!(q.contains_key("error_description"));
    assert_eq!(q["state"], "s1");
    assert_eq!(
        emu.client_credentials(CONTOSO_TENANT_ID, &emu.secret())
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn client_credentials_need_a_tenant_and_a_default_scope() {
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    let (status, body) =
        aad_error(emu.client_credentials("organizations", &emu.secret()).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let res = emu
        .http
        .post(emu.url(&format!("/{CONTOSO_TENANT_ID}/oauth2/v2.0/token")))
        .form(&[
            ("client_id", emu.app.client_id.as_str()),
            ("client_secret", &emu.secret()),
            ("scope", "https://graph.microsoft.com/User.Read.All"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = aad_error(res).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

#[tokio::test]
async fn client_secret_basic_is_accepted_like_client_secret_post() {
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    let res = emu
        .http
        .post(emu.url(&format!("/{CONTOSO_TENANT_ID}/oauth2/v2.0/token")))
        .basic_auth(&emu.app.client_id, Some(emu.secret()))
        .form(&[
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
}

/// Posts a client-credentials request authenticated by a client assertion signed with
/// `key_pem`, whose header names the certificate as `x5t` and/or `x5t#S256` says.
async fn assert_with(
    emu: &Emu,
    key_pem: &str,
    alg: Algorithm,
    x5t: Option<String>,
    x5t_s256: Option<String>,
) -> reqwest::Response {
    let audience = emu.url(&format!("/{CONTOSO_TENANT_ID}/oauth2/v2.0/token"));
    let mut header = jsonwebtoken::Header::new(alg);
    header.x5t = x5t;
    header.x5t_s256 = x5t_s256;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": audience, "iss": emu.app.client_id, "sub": emu.app.client_id,
        "jti": "assertion-1", "nbf": now, "exp": now + 600,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    let assertion = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    emu.http
        .post(audience)
        .form(&[
            ("client_id", emu.app.client_id.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap()
}

/// Microsoft's certificate-credentials page asks for `x5t#S256`; the older SHA-1 `x5t` (what
/// MSAL sent before, with RS256) is still accepted. A thumbprint of the wrong kind, or a
/// wrong `x5t#S256` beside a right `x5t`, names no certificate.
#[tokio::test]
async fn client_assertions_name_their_certificate_by_sha256_or_by_the_older_sha1_thumbprint() {
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    let (cert_pem, key_pem) = certificate();
    let res = emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/apps/{}/certificates", emu.app.client_id),
            Some(json!({ "pem": cert_pem })),
        )
        .await;
    assert_eq!(res.status(), 204);
    let der = pem::parse(&cert_pem).unwrap().contents().to_vec();
    let s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(&der));
    let sha1 = URL_SAFE_NO_PAD.encode(<sha1::Sha1 as sha1::Digest>::digest(&der));

    let res = assert_with(&emu, &key_pem, Algorithm::PS256, None, Some(s256.clone())).await;
    assert_eq!(
        res.status(),
        200,
        "x5t#S256 with PS256, as documented today"
    );
    let res = assert_with(&emu, &key_pem, Algorithm::RS256, Some(sha1.clone()), None).await;
    assert_eq!(res.status(), 200, "the older x5t with RS256");
    let body: Value = res.json().await.unwrap();
    assert!(body["access_token"].is_string());

    let (status, body) =
        aad_error(assert_with(&emu, &key_pem, Algorithm::RS256, Some(s256.clone()), None).await)
            .await;
    assert_eq!(status, 401, "a SHA-256 value in x5t is no SHA-1 thumbprint");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([700027]));
    let (status, body) = aad_error(
        assert_with(
            &emu,
            &key_pem,
            Algorithm::RS256,
            Some(sha1),
            Some(URL_SAFE_NO_PAD.encode([0u8; 32])),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401, "x5t#S256 is read first");
    assert_eq!(body["error_codes"], json!([700027]));
}
