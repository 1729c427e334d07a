use super::graph::Graph;
use super::tokens::{Cached, TokenCache};
use super::EntraError;
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
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
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

/// The Entra app registration Gatehouse signs in and reads Graph as.
#[derive(Clone)]
pub struct EntraClient {
    http: reqwest::Client,
    authority: String,
    graph_base: String,
    client_id: String,
    secret: SecretString,
    /// App-only tokens per Entra tenant, shared by every clone of this client.
    tokens: Arc<TokenCache>,
}

impl std::fmt::Debug for EntraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraClient")
            .field("authority", &self.authority)
            .field("graph_base", &self.graph_base)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The admin who signed in with Entra, from a validated id_token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInAdmin {
    /// The Entra tenant, from the token's `tid` (never from a query parameter).
    pub tid: String,
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
    /// A client from configuration; `NotConfigured` without a client id and secret.
    pub fn from_config(config: &EntraConfig) -> Result<Self, EntraError> {
        let (Some(client_id), Some(secret)) = (&config.client_id, &config.client_secret) else {
            return Err(EntraError::NotConfigured);
        };
        Ok(Self::new(
            &config.authority_url,
            &config.graph_base_url,
            client_id,
            secret.clone(),
        ))
    }

    pub fn new(authority: &str, graph_base: &str, client_id: &str, secret: SecretString) -> Self {
        Self {
            http: http_client(DEFAULT_TIMEOUT),
            authority: authority.trim_end_matches('/').to_string(),
            graph_base: graph_base.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            secret,
            tokens: Arc::new(TokenCache::default()),
        }
    }

    /// The same client with another per-request timeout (default 20 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = http_client(timeout);
        self
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn oauth(&self, tenant: &str) -> Result<OAuthClient, EntraError> {
        let bad = |e: url::ParseError| EntraError::Network(format!("bad authority URL: {e}"));
        Ok(Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.secret.expose_secret().to_string()))
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
    pub fn admin_consent_url(&self, tid: &str, redirect_uri: &str, state: &str) -> String {
        let mut url = url::Url::parse(&format!("{}/{tid}/v2.0/adminconsent", self.authority))
            .unwrap_or_else(|_| url::Url::parse("http://invalid/").expect("literal URL"));
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
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
        let token = self
            .oauth("organizations")?
            .set_redirect_uri(redirect)
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(verifier)
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
        validation.set_audience(&[&self.client_id]);
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
            tid: claims.tid,
            oid: claims.oid,
            name: claims.name.unwrap_or_default(),
            username: claims.preferred_username.unwrap_or_default(),
        })
    }

    /// An app-only Graph session for `tid` (client credentials, `.default` scope).
    pub async fn graph(&self, tid: &str) -> Result<Graph, EntraError> {
        let token = self.app_token(tid).await?;
        Ok(Graph::new(
            self.http.clone(),
            self.graph_base.clone(),
            token,
            Some((self.clone(), tid.to_string())),
        ))
    }

    /// The app-only Graph token for `tid`: the cached one while it is fresh, else a new one.
    pub(super) async fn app_token(&self, tid: &str) -> Result<SecretString, EntraError> {
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
    pub async fn forget_token(&self, tid: &str) {
        self.tokens.forget(tid).await;
    }

    /// The client credentials grant. A transient answer (Microsoft's
    /// `temporarily_unavailable` or `server_error`, or no answer) is retried twice.
    async fn request_app_token(&self, tid: &str) -> Result<Cached, EntraError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let answer = self
                .oauth(tid)?
                .exchange_client_credentials()
                .add_scope(Scope::new("https://graph.microsoft.com/.default".into()))
                .request_async(&self.http)
                .await;
            match answer {
                Ok(t) => {
                    return Ok(Cached::new(
                        SecretString::from(t.access_token().secret().to_string()),
                        t.expires_in(),
                    ))
                }
                Err(e) => {
                    let e = token_error(e);
                    if attempt >= TOKEN_ATTEMPTS || !e.is_transient() {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
            }
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
        },
        RequestTokenError::Request(e) => EntraError::Network(e.to_string()),
        RequestTokenError::Parse(e, _) => EntraError::Malformed(e.to_string()),
        RequestTokenError::Other(e) => EntraError::Malformed(e),
    }
}
