//! Driving an emulator from a test or a bench: one of its own on 127.0.0.1, port 0, with a
//! client for its control API and its endpoints. The emulator's own tests and Gatehouse's use
//! this one harness. Its helpers panic when the emulator does not answer as they expect: they
//! are for tests.

use crate::{AppCredentials, Emulator, Seed, CONTOSO_TENANT_ID};
use secrecy::ExposeSecret;
use serde_json::Value;

/// The control token of every emulator `spawn_emulator` starts.
pub const CONTROL_TOKEN: &str = "test-control-token";
/// Alex Wilber and Megan Bowen, two of Contoso's seeded users (object ids).
pub const ALEX: &str = "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e02";
pub const MEGAN: &str = "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e01";
/// Isaiah Langer and Patti Fernandez, two more of Contoso's seeded users (object ids).
pub const ISAIAH: &str = "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e03";
pub const PATTI: &str = "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e05";

/// Contoso's seeded groups (object ids): "MSP Technicians" holds Alex, Isaiah and the nested
/// "Tier 2" (Patti); "MSP Admins" holds Megan; "Sales" is a Microsoft 365 group.
pub const MSP_TECHNICIANS: &str = "5b1d7c90-2e4f-4a6b-8c0d-1e2f3a4b5c01";
pub const TIER_2: &str = "5b1d7c90-2e4f-4a6b-8c0d-1e2f3a4b5c02";
pub const MSP_ADMINS: &str = "5b1d7c90-2e4f-4a6b-8c0d-1e2f3a4b5c03";
pub const SALES: &str = "5b1d7c90-2e4f-4a6b-8c0d-1e2f3a4b5c04";

/// Sending a request and reading its whole body, for tests: panics when there is no answer
/// or the body is not what was asked for.
#[allow(async_fn_in_trait)]
pub trait Fetch {
    async fn json_body(self) -> Value;
    async fn text_body(self) -> String;
}

impl Fetch for reqwest::RequestBuilder {
    async fn json_body(self) -> Value {
        let res = self.send().await.expect("an answer");
        res.json().await.expect("a JSON body")
    }

    async fn text_body(self) -> String {
        let res = self.send().await.expect("an answer");
        res.text().await.expect("a text body")
    }
}

/// An emulator of its own on 127.0.0.1, port 0, and a client that does not follow redirects.
pub struct Emu {
    pub base: String,
    pub emulator: Emulator,
    pub http: reqwest::Client,
    pub app: AppCredentials,
    /// The second app registration, the one customers consent to (issue 29).
    pub customers_app: AppCredentials,
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
        customers_app: emulator
            .customers_app()
            .expect("the customers app is seeded"),
        emulator,
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

    /// Admin consent in Contoso for exactly these application permissions: what a tenant
    /// that consented before the app asked for more still has.
    pub async fn grant_consent_for(&self, roles: &[&str]) {
        let res = self
            .control(
                reqwest::Method::PUT,
                &format!(
                    "/_emulator/directories/{CONTOSO_TENANT_ID}/consents/{}",
                    self.app.client_id
                ),
                Some(serde_json::json!({ "roles": roles })),
            )
            .await;
        assert_eq!(res.status(), 204);
    }

    /// Admin consent in Contoso for exactly these application permissions (as an app
    /// registration that asks for them, consented); an app token carrying them.
    pub async fn app_token_with(&self, roles: &[&str]) -> String {
        self.grant_consent_for(roles).await;
        let res = self
            .client_credentials(CONTOSO_TENANT_ID, &self.secret())
            .await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Adds a user (id or sign-in name) or a group (id or display name) to a Contoso group.
    pub async fn add_to_group(&self, group: &str, member: &str) {
        self.contoso_group(
            reqwest::Method::POST,
            &format!("/{group}/members"),
            Some(serde_json::json!({ "id": member })),
        )
        .await;
    }

    /// Takes a direct member out of a Contoso group.
    pub async fn remove_from_group(&self, group: &str, member: &str) {
        self.contoso_group(
            reqwest::Method::DELETE,
            &format!("/{group}/members/{member}"),
            None,
        )
        .await;
    }

    /// Delta links (users and groups) last `secs` instead of Microsoft's seven days.
    pub async fn delta_links_last(&self, secs: i64) {
        let res = self
            .control(
                reqwest::Method::PUT,
                "/_emulator/settings",
                Some(serde_json::json!({ "deltaLinkLifetimeSecs": secs })),
            )
            .await;
        assert!(res.status().is_success(), "settings: {}", res.status());
    }

    /// Deletes a Contoso group.
    pub async fn delete_group(&self, group: &str) {
        self.contoso_group(reqwest::Method::DELETE, &format!("/{group}"), None)
            .await;
    }

    /// A change to Contoso's groups through the control API; it must succeed.
    pub async fn contoso_group(&self, method: reqwest::Method, path: &str, body: Option<Value>) {
        let res = self
            .control(
                method,
                &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/groups{path}"),
                body,
            )
            .await;
        let status = res.status();
        assert!(
            status.is_success(),
            "Contoso groups {path}: {status} {}",
            res.text().await.unwrap_or_default()
        );
    }

    /// Withdraws the admin consent in Contoso, as its admin removing the app would.
    pub async fn revoke_consent(&self) {
        let res = self
            .control(
                reqwest::Method::DELETE,
                &format!(
                    "/_emulator/directories/{CONTOSO_TENANT_ID}/consents/{}",
                    self.app.client_id
                ),
                None,
            )
            .await;
        assert!(
            res.status().is_success(),
            "revoke consent: {}",
            res.status()
        );
    }

    /// Client credentials at `tenant` for Graph.
    pub async fn client_credentials(&self, tenant: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(&[
                ("client_id", self.app.client_id.as_str()),
                ("client_secret", secret),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .expect("token endpoint answers")
    }

    /// An app-only Graph token for Contoso, consent granted first.
    pub async fn app_token(&self) -> String {
        self.grant_consent().await;
        let res = self
            .client_credentials(CONTOSO_TENANT_ID, &self.secret())
            .await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// GET on Graph with a bearer token: status, headers and JSON body.
    pub async fn graph(
        &self,
        token: &str,
        path_or_url: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            self.url(path_or_url)
        };
        let res = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("Graph answers");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// Request counts per route, from the control API.
    pub async fn counts(&self) -> Value {
        self.control(reqwest::Method::GET, "/_emulator/requests", None)
            .await
            .json()
            .await
            .unwrap()
    }

    /// Makes the emulator misbehave as `spec` says (`route`, `status`, `count`, `latencyMs`,
    /// `retryAfter`, …: see the control API).
    pub async fn fault(&self, spec: Value) {
        let res = self
            .control(reqwest::Method::POST, "/_emulator/faults", Some(spec))
            .await;
        assert!(res.status().is_success(), "fault: {}", res.status());
    }

    /// Takes every fault away.
    pub async fn clear_faults(&self) {
        let res = self
            .control(reqwest::Method::DELETE, "/_emulator/faults", None)
            .await;
        assert!(res.status().is_success(), "clear faults: {}", res.status());
    }

    /// A change to Contoso's directory through the control API, as an Entra admin would make
    /// it in the portal: `path` after `/users` (empty for the collection); the answer's JSON.
    pub async fn contoso(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let res = self
            .control(
                method,
                &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users{path}"),
                body,
            )
            .await;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert!(status.is_success(), "Contoso {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The emulator's sign-in page, as a person uses it: `params` are the authorize request's
    /// (as Gatehouse sent them to `authorize_url`), Contoso's `user` is picked, and the consent
    /// screen is accepted if one is shown. The answer is the redirect back to the client.
    pub async fn pick_and_consent(
        &self,
        authorize_url: &str,
        params: &[(String, String)],
        user: &str,
    ) -> reqwest::Response {
        self.pick_and_consent_in(CONTOSO_TENANT_ID, authorize_url, params, user)
            .await
    }

    /// As `pick_and_consent`, signing in as `user` of directory `tenant_id` (a customer's).
    pub async fn pick_and_consent_in(
        &self,
        tenant_id: &str,
        authorize_url: &str,
        params: &[(String, String)],
        user: &str,
    ) -> reqwest::Response {
        let answer = |step: &str| {
            let mut form = params.to_vec();
            form.push(("step".into(), step.into()));
            form.push(("account".into(), format!("{tenant_id}/{user}")));
            form.push(("decision".into(), "accept".into()));
            self.http.post(authorize_url).form(&form).send()
        };
        let res = answer("pick").await.expect("the sign-in page answers");
        if res.status() != 200 {
            return res;
        }
        answer("consent").await.expect("the consent screen answers")
    }

    /// Deletes the user in Contoso (soft: restorable for 30 days, as in Entra).
    pub async fn remove_in_entra(&self, oid: &str) {
        self.contoso(reqwest::Method::DELETE, &format!("/{oid}"), None)
            .await;
    }

    /// Deletes the user in Contoso for good.
    pub async fn purge_in_entra(&self, oid: &str) {
        self.contoso(
            reqwest::Method::DELETE,
            &format!("/{oid}?permanent=true"),
            None,
        )
        .await;
    }

    /// Brings a soft-deleted user back.
    pub async fn restore_in_entra(&self, oid: &str) {
        self.contoso(reqwest::Method::POST, &format!("/{oid}/restore"), None)
            .await;
    }

    /// Blocks the user's sign-in (`accountEnabled: false`).
    pub async fn disable_in_entra(&self, oid: &str) {
        self.contoso(reqwest::Method::POST, &format!("/{oid}/disable"), None)
            .await;
    }

    pub async fn enable_in_entra(&self, oid: &str) {
        self.contoso(reqwest::Method::POST, &format!("/{oid}/enable"), None)
            .await;
    }

    /// Changes the user's properties (`mail`, `proxyAddresses`, …).
    pub async fn patch_in_entra(&self, oid: &str, patch: Value) {
        self.contoso(reqwest::Method::PATCH, &format!("/{oid}"), Some(patch))
            .await;
    }

    /// Microsoft drops the subscription (it lapsed, or was removed), telling nobody: Graph no
    /// longer has it and delivers nothing more for it.
    pub async fn drop_subscription(&self, id: &str) {
        let token = self.app_token().await;
        let res = self
            .http
            .delete(self.url(&format!("/v1.0/subscriptions/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("the emulator answers");
        assert_eq!(res.status(), 204, "the subscription was there to drop");
    }

    /// Creates a Contoso user whose sign-in name and mail are `email`; its object id.
    pub async fn add_in_entra(&self, email: &str, display_name: &str) -> String {
        let body = serde_json::json!({
            "userPrincipalName": email,
            "displayName": display_name,
            "mail": email,
        });
        let user = self.contoso(reqwest::Method::POST, "", Some(body)).await;
        user["id"].as_str().expect("the new user's id").to_string()
    }
}
