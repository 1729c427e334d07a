use super::certificate::{ClientCertificate, JWT_BEARER};
use super::graph::Graph;
use super::tokens::{Cached, TokenCache};
use super::EntraError;
use crate::domain::EntraTenantId;
use crate::server::config::EntraConfig;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The `id_token` Microsoft returns beside the access token.
#[derive(Clone, Serialize, Deserialize, Default)]
struct IdTokenField {
    #[serde(default)]
    id_token: Option<String>,
}

impl std::fmt::Debug for IdTokenField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenField([redacted])")
    }
}

impl ExtraTokenFields for IdTokenField {}

type OAuthClient = Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenField, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The scope of an app-only Graph token: every application permission consented.
const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Tries of the token endpoint when Microsoft answers that it is briefly unavailable.
const TOKEN_ATTEMPTS: u32 = 3;

/// How long one call to Entra may take before it counts as a failure.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

fn http_client(timeout: Duration) -> reqwest::Client {
    // Identity calls never follow redirects: a redirect from a token endpoint is an attack or
    // a misconfiguration, never a result.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .build()
        .expect("a reqwest client with static settings builds")
}

/// How Gatehouse proves to Microsoft that it is its app: a client secret, or (preferred) a
/// certificate whose key signs a client assertion.
#[derive(Clone)]
pub enum Credential {
    Secret(SecretString),
    Certificate(Arc<ClientCertificate>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret([redacted])"),
            Credential::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
        }
    }
}

/// A token endpoint answer, success or error, as Microsoft sends it.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
}

/// The Entra app registration Gatehouse signs in and reads Graph as.
#[derive(Clone)]
pub struct EntraClient {
    http: reqwest::Client,
    authority: String,
    graph_base: String,
    client_id: ClientId,
    credential: Credential,
    /// App-only tokens per Entra tenant, shared by every clone of this client.
    tokens: Arc<TokenCache>,
}

impl std::fmt::Debug for EntraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraClient")
            .field("authority", &self.authority)
            .field("graph_base", &self.graph_base)
            .field("client_id", &self.client_id.as_str())
            .finish_non_exhaustive()
    }
}

/// The admin who signed in with Entra, from a validated id_token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInAdmin {
    /// The Entra tenant, from the token's `tid` (never from a query parameter).
    pub tid: EntraTenantId,
    pub oid: String,
    pub name: String,
    pub username: String,
}

#[derive(Deserialize)]
struct IdClaims {
    tid: String,
    oid: String,
    iss: String,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

impl EntraClient {
    /// A client from configuration: the certificate when one is configured, else the
    /// secret; `NotConfigured` without a client id and one of them.
    pub fn from_config(config: &EntraConfig) -> Result<Self, EntraError> {
        let Some(client_id) = &config.client_id else {
            return Err(EntraError::NotConfigured);
        };
        let credential = match (&config.client_certificate, &config.client_secret) {
            (Some(c), _) => Credential::Certificate(c.clone()),
            (None, Some(s)) => Credential::Secret(s.clone()),
            (None, None) => return Err(EntraError::NotConfigured),
        };
        Ok(Self::with_credential(
            &config.authority_url,
            &config.graph_base_url,
            client_id,
            credential,
        ))
    }

    /// The customers' app (issue 29) from configuration: its own client id, with the shared
    /// certificate when one is configured, else its own secret; `NotConfigured` otherwise.
    pub fn for_customers(config: &EntraConfig) -> Result<Self, EntraError> {
        let Some(client_id) = &config.customers_client_id else {
            return Err(EntraError::NotConfigured);
        };
        let credential = match (&config.client_certificate, &config.customers_client_secret) {
            (Some(c), _) => Credential::Certificate(c.clone()),
            (None, Some(s)) => Credential::Secret(s.clone()),
            (None, None) => return Err(EntraError::NotConfigured),
        };
        Ok(Self::with_credential(
            &config.authority_url,
            &config.graph_base_url,
            client_id,
            credential,
        ))
    }

    pub fn new(authority: &str, graph_base: &str, client_id: &str, secret: SecretString) -> Self {
        Self::with_credential(authority, graph_base, client_id, Credential::Secret(secret))
    }

    pub fn with_credential(
        authority: &str,
        graph_base: &str,
        client_id: &str,
        credential: Credential,
    ) -> Self {
        Self {
            http: http_client(DEFAULT_TIMEOUT),
            authority: authority.trim_end_matches('/').to_string(),
            graph_base: graph_base.trim_end_matches('/').to_string(),
            client_id: ClientId::new(client_id.to_string()),
            credential,
            tokens: Arc::new(TokenCache::default()),
        }
    }

    /// The certificate Gatehouse authenticates with, if it uses one.
    pub fn certificate(&self) -> Option<&ClientCertificate> {
        match &self.credential {
            Credential::Certificate(c) => Some(c),
            Credential::Secret(_) => None,
        }
    }

    fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.authority)
    }

    /// The form fields that authenticate Gatehouse at `tenant`'s token endpoint.
    fn client_auth(&self, tenant: &str) -> Result<Vec<(&'static str, String)>, EntraError> {
        Ok(match &self.credential {
            Credential::Secret(s) => vec![("client_secret", s.expose_secret().to_string())],
            Credential::Certificate(c) => vec![
                ("client_assertion_type", JWT_BEARER.to_string()),
                (
                    "client_assertion",
                    c.assertion(&self.client_id, &self.token_url(tenant))?,
                ),
            ],
        })
    }

    /// The same client with another per-request timeout (default 20 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = http_client(timeout);
        self
    }

    /// Where this client signs in (Microsoft's login host, or an emulator's).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn client_id(&self) -> &str {
        self.client_id.as_str()
    }

    fn oauth(&self, tenant: &str) -> Result<OAuthClient, EntraError> {
        let bad = |e: url::ParseError| EntraError::Network(format!("bad authority URL: {e}"));
        let client = Client::new(self.client_id.clone());
        // With a certificate there is no secret: oauth2 then sends the client id in the body,
        // and the caller adds the assertion.
        let client = match &self.credential {
            Credential::Secret(s) => {
                client.set_client_secret(ClientSecret::new(s.expose_secret().to_string()))
            }
            Credential::Certificate(_) => client,
        };
        Ok(client
            .set_auth_uri(
                AuthUrl::new(format!("{}/{tenant}/oauth2/v2.0/authorize", self.authority))
                    .map_err(bad)?,
            )
            .set_token_uri(
                TokenUrl::new(format!("{}/{tenant}/oauth2/v2.0/token", self.authority))
                    .map_err(bad)?,
            ))
    }

    /// Where to send an admin to sign in (`organizations`: any work account), with PKCE,
    /// state and nonce. Returns the URL and the PKCE verifier to keep server-side.
    pub fn sign_in_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
    ) -> Result<(String, PkceCodeVerifier), EntraError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| EntraError::Network(e.to_string()))?;
        let state = state.to_string();
        let (url, _) = self
            .oauth("organizations")?
            .set_redirect_uri(redirect)
            .authorize_url(move || CsrfToken::new(state))
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("profile".into()))
            .add_extra_param("nonce", nonce)
            .add_extra_param("response_mode", "query")
            .add_extra_param("prompt", "select_account")
            .set_pkce_challenge(challenge)
            .url();
        Ok((url.to_string(), verifier))
    }

    /// Where to send the admin to grant the app's application permissions in `tid`.
    pub fn admin_consent_url(
        &self,
        tid: &EntraTenantId,
        redirect_uri: &str,
        state: &str,
    ) -> String {
        let mut url = url::Url::parse(&format!("{}/{tid}/v2.0/adminconsent", self.authority))
            .unwrap_or_else(|_| url::Url::parse("http://invalid/").expect("literal URL"));
        url.query_pairs_mut()
            .append_pair("client_id", self.client_id.as_str())
            .append_pair("scope", "https://graph.microsoft.com/.default")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        url.to_string()
    }

    /// Redeems an authorization code and validates the id_token it brings.
    pub async fn redeem_code(
        &self,
        code: &str,
        verifier: PkceCodeVerifier,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<SignedInAdmin, EntraError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| EntraError::Network(e.to_string()))?;
        let client = self.oauth("organizations")?.set_redirect_uri(redirect);
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(verifier);
        if matches!(self.credential, Credential::Certificate(_)) {
            for (name, value) in self.client_auth("organizations")? {
                request = request.add_extra_param(name, value);
            }
        }
        let token = request
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = token.extra_fields().id_token.clone().ok_or_else(|| {
            EntraError::InvalidIdToken("the token response has no id_token".into())
        })?;
        self.validate_id_token(&id_token, nonce).await
    }

    /// Checks an id_token against the published keys: signature, audience, expiry, the
    /// issuer for the token's own tenant, and the nonce of this sign-in.
    pub async fn validate_id_token(
        &self,
        token: &str,
        nonce: &str,
    ) -> Result<SignedInAdmin, EntraError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| EntraError::InvalidIdToken(e.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| EntraError::InvalidIdToken("the id_token names no key (kid)".into()))?;
        let discovery: Discovery = self
            .get_json(&format!(
                "{}/organizations/v2.0/.well-known/openid-configuration",
                self.authority
            ))
            .await?;
        let jwks: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let jwk = jwks
            .find(&kid)
            .ok_or_else(|| EntraError::InvalidIdToken(format!("no published key has kid {kid}")))?;
        let key =
            DecodingKey::from_jwk(jwk).map_err(|e| EntraError::InvalidIdToken(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[self.client_id.as_str()]);
        validation.leeway = 120;
        // The multi-tenant issuer is a template; it is checked below against the token's tid.
        validation.iss = None;
        let data = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map_err(|e| EntraError::InvalidIdToken(e.to_string()))?;
        let claims = data.claims;
        let expected_iss = format!("{}/{}/v2.0", self.authority, claims.tid);
        if claims.iss != expected_iss {
            return Err(EntraError::InvalidIdToken(format!(
                "issuer {} does not match the token's tenant (expected {expected_iss})",
                claims.iss
            )));
        }
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(EntraError::InvalidIdToken(
                "the nonce does not match this sign-in".into(),
            ));
        }
        Ok(SignedInAdmin {
            tid: EntraTenantId::from_microsoft(claims.tid),
            oid: claims.oid,
            name: claims.name.unwrap_or_default(),
            username: claims.preferred_username.unwrap_or_default(),
        })
    }

    /// An app-only Graph session for `tid` (client credentials, `.default` scope).
    pub async fn graph(&self, tid: &EntraTenantId) -> Result<Graph, EntraError> {
        let token = self.app_token(tid).await?;
        Ok(Graph::new(
            self.http.clone(),
            self.graph_base.clone(),
            token,
            Some((self.clone(), tid.clone())),
        ))
    }

    /// The app-only Graph token for `tid`: the cached one while it is fresh, else a new one.
    pub(super) async fn app_token(&self, tid: &EntraTenantId) -> Result<SecretString, EntraError> {
        let slot = self.tokens.slot(tid);
        let mut held = slot.lock().await;
        if let Some(token) = TokenCache::fresh(&held) {
            metrics::counter!("gatehouse_entra_tokens_total", "source" => "cache").increment(1);
            return Ok(token);
        }
        let fresh = self.request_app_token(tid).await?;
        metrics::counter!("gatehouse_entra_tokens_total", "source" => "endpoint").increment(1);
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }

    /// Drops `tid`'s cached token (Graph refused it, or its roles just changed).
    pub async fn forget_token(&self, tid: &EntraTenantId) {
        self.tokens.forget(tid).await;
    }

    /// The client credentials grant. A transient answer (Microsoft's
    /// `temporarily_unavailable` or `server_error`, or no answer) is retried twice.
    async fn request_app_token(&self, tid: &EntraTenantId) -> Result<Cached, EntraError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.client_credentials(tid).await {
                Ok(token) => return Ok(token),
                Err(e) if attempt < TOKEN_ATTEMPTS && e.is_transient() => {
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One client credentials request, sent by hand so Microsoft's `error_codes` (which tell
    /// a wrong secret from a deleted tenant) and the certificate's assertion are ours to see.
    async fn client_credentials(&self, tid: &EntraTenantId) -> Result<Cached, EntraError> {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", self.client_id.to_string()),
            ("scope", GRAPH_DEFAULT_SCOPE.into()),
        ];
        form.extend(self.client_auth(tid.as_str())?);
        let res = self
            .http
            .post(self.token_url(tid.as_str()))
            .form(&form)
            .send()
            .await
            .map_err(|e| EntraError::Network(e.to_string()))?;
        let status = res.status();
        let answer: TokenAnswer = match res.json().await {
            Ok(a) => a,
            // A 5xx page that is not Microsoft's JSON: worth another try.
            Err(_) if status.is_server_error() => {
                return Err(EntraError::Network(format!(
                    "the token endpoint answered {status}"
                )))
            }
            Err(e) => return Err(EntraError::Malformed(e.to_string())),
        };
        match (status.is_success(), answer.access_token) {
            (true, Some(token)) => Ok(Cached::new(
                SecretString::from(token),
                answer.expires_in.map(Duration::from_secs),
            )),
            (true, None) => Err(EntraError::Malformed(
                "a token answer without access_token".into(),
            )),
            (false, _) => Err(EntraError::Token {
                error: answer.error.unwrap_or_else(|| status.to_string()),
                description: answer.error_description,
                codes: answer.error_codes,
            }),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, EntraError> {
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| EntraError::Network(e.to_string()))?;
        if !res.status().is_success() {
            return Err(EntraError::Network(format!(
                "{url} answered {}",
                res.status()
            )));
        }
        res.json()
            .await
            .map_err(|e| EntraError::Malformed(e.to_string()))
    }
}

fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, BasicErrorResponse>,
) -> EntraError {
    match e {
        RequestTokenError::ServerResponse(r) => EntraError::Token {
            error: r.error().as_ref().to_string(),
            description: r.error_description().cloned(),
            codes: Vec::new(),
        },
        RequestTokenError::Request(e) => EntraError::Network(e.to_string()),
        RequestTokenError::Parse(e, _) => EntraError::Malformed(e.to_string()),
        RequestTokenError::Other(e) => EntraError::Malformed(e),
    }
}
