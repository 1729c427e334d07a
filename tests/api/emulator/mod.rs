//! The Entra emulator as Gatehouse's tests use it: one of its own per test, and the control API.
//! The emulator's own tests (its endpoints against Microsoft's documentation) are in
//! emulator/tests.

mod cli;

use gatehouse_emulator::{AppCredentials, Emulator, Seed, CONTOSO_TENANT_ID};
use secrecy::ExposeSecret;
use serde_json::Value;

pub const CONTROL_TOKEN: &str = "test-control-token";
pub const ALEX: &str = "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e02";
pub const MEGAN: &str = "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e01";

/// An emulator of its own on 127.0.0.1, port 0, and a client that does not follow redirects.
pub struct Emu {
    pub base: String,
    pub http: reqwest::Client,
    pub app: AppCredentials,
}

pub async fn spawn_emulator() -> Emu {
    let emulator =
        Emulator::with_control_token(Seed::contoso(), CONTROL_TOKEN.into()).expect("emulator");
    let addr = emulator
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator listens");
    Emu {
        base: format!("http://{addr}"),
        app: emulator.demo_app().expect("the demo app is seeded"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl Emu {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn secret(&self) -> String {
        self.app.secret.expose_secret().to_string()
    }

    /// A control API call with the control token.
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(CONTROL_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("control API answers")
    }

    /// Grants admin consent in Contoso through the control API.
    pub async fn grant_consent(&self) {
        let res = self
            .control(
                reqwest::Method::PUT,
                &format!(
                    "/_emulator/directories/{CONTOSO_TENANT_ID}/consents/{}",
                    self.app.client_id
                ),
                None,
            )
            .await;
        assert_eq!(res.status(), 204);
    }

    /// Request counts per route, from the control API.
    pub async fn counts(&self) -> Value {
        self.control(reqwest::Method::GET, "/_emulator/requests", None)
            .await
            .json()
            .await
            .unwrap()
    }
}
