//! The Entra emulator, driven over HTTP the way Microsoft documents its endpoints.

mod control;
mod delta;
mod graph;
mod group_delta;
mod groups;
mod identity;
mod roles;
mod seed;
mod subscriptions;
mod tap;
mod users_write;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
pub use gatehouse_emulator::testing::*;
use gatehouse_emulator::{Emulator, Seed, CONTOSO_TENANT_ID};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const CALLBACK: &str = "http://localhost:3000/adminportal/user-source/callback";
pub const CONSENT_CALLBACK: &str = "http://localhost:3000/adminportal/user-source/consent-callback";

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "verifier-{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A self-signed certificate and its RSA key (PEM), as an operator uploads to an app
/// registration for client assertions.
pub fn certificate() -> (String, String) {
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

/// The query parameters of a redirect's Location.
pub fn location_query(
    res: &reqwest::Response,
) -> (String, std::collections::HashMap<String, String>) {
    let location = res
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_string();
    let url = url::Url::parse(&location).unwrap();
    let q = url.query_pairs().into_owned().collect();
    let without_query = location.split('?').next().unwrap_or_default().to_string();
    (without_query, q)
}

/// Sends `method` to Graph's `path` with `token` (and `body` as JSON): the status and the
/// answer (`null` when it has no JSON).
pub async fn send(
    emu: &Emu,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = emu.http.request(method, emu.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// `msp-alex@contoso.com`, made through Graph with `token` as Gatehouse will make a
/// technician's account (password `xWwvJ]6NMw+bWH-d`): its id.
pub async fn msp_alex(emu: &Emu, token: &str) -> String {
    let (status, made) = send(
        emu,
        token,
        reqwest::Method::POST,
        "/v1.0/users",
        Some(serde_json::json!({
            "accountEnabled": true, "displayName": "Alex (MSP)", "mailNickname": "msp-alex",
            "userPrincipalName": "msp-alex@contoso.com",
            "passwordProfile": { "password": "xWwvJ]6NMw+bWH-d" }
        })),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    made["id"].as_str().unwrap().to_string()
}
