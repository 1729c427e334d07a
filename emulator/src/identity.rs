//! The Microsoft identity platform v2.0: discovery, JWKS, the authorize and consent pages, the
//! token endpoint and the admin-consent endpoint, for `{tenant}` = a tenant id, a verified
//! domain, `organizations` or `common`.

use crate::errors::AadError;
use crate::html::{error_page, esc, found, hidden, page};
use crate::ids::{new_guid, random_id, GRAPH_APP_ID, GRAPH_AUDIENCE};
use crate::model::{App, AuthCode, Consent, User, World};
use crate::state::Emulator;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Lifetime of tokens; Microsoft issues 60–90 minutes, the emulator a fixed hour.
const TOKEN_SECONDS: i64 = 3599;
/// Authorization codes live about ten minutes.
/// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#redeem-a-code-for-an-access-token
const CODE_SECONDS: i64 = 600;

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize_page).post(authorize_step),
        )
        .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
        .route(
            "/{tenant}/v2.0/adminconsent",
            get(admin_consent_page).post(admin_consent_step),
        )
}

/// What a `{tenant}` path segment names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Authority {
    Tenant(String),
    Organizations,
    Common,
}

impl Authority {
    fn resolve(world: &World, segment: &str) -> Result<Self, AadError> {
        match segment.to_ascii_lowercase().as_str() {
            "organizations" => Ok(Self::Organizations),
            "common" => Ok(Self::Common),
            s => world
                .directory_by_name(s)
                .map(|d| Self::Tenant(d.tenant_id.clone()))
                .ok_or_else(|| {
                    AadError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_tenant",
                        90002,
                        format!("Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
                    )
                }),
        }
    }

    fn allows(&self, tenant_id: &str) -> bool {
        match self {
            Self::Tenant(t) => t == tenant_id,
            _ => true,
        }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---------------------------------------------------------------------------------------------
// Discovery and keys

/// OpenID configuration. For `organizations` and `common` the issuer is a template with the
/// literal `{tenantid}`, which clients replace with the id_token's `tid`.
/// https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri
async fn discovery(State(em): State<Emulator>, Path(segment): Path<String>) -> Response {
    let authority = match Authority::resolve(&em.read(), &segment) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let base = em.base_url();
    let (path, issuer) = match &authority {
        // Microsoft lists a domain's endpoints under the tenant id.
        Authority::Tenant(tid) => (tid.clone(), format!("{base}/{tid}/v2.0")),
        _ => (
            segment.to_ascii_lowercase(),
            format!("{base}/{{tenantid}}/v2.0"),
        ),
    };
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/{path}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{path}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{path}/discovery/v2.0/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_modes_supported": ["query"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "name",
            "preferred_username", "oid", "tid", "ver", "email"],
        "request_uri_parameter_supported": false,
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "msgraph_host": base.trim_start_matches("http://").trim_start_matches("https://"),
    }))
    .into_response()
}

async fn jwks(State(em): State<Emulator>, Path(segment): Path<String>) -> Response {
    let authority = match Authority::resolve(&em.read(), &segment) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let issuer = match authority {
        Authority::Tenant(tid) => format!("{}/{tid}/v2.0", em.base_url()),
        _ => format!("{}/{{tenantid}}/v2.0", em.base_url()),
    };
    Json(em.keys().jwks(Some(&issuer))).into_response()
}

// ---------------------------------------------------------------------------------------------
// Authorize: pick a user, consent, code

/// A checked authorization request.
struct AuthorizeRequest {
    authority: Authority,
    app: App,
    redirect_uri: String,
    state: Option<String>,
    scope: String,
    prompt: Option<String>,
    /// The original parameters, carried through the pages.
    carry: Vec<(String, String)>,
}

enum Refusal {
    /// Shown on the emulator's own page: the redirect URI cannot be trusted.
    Page(StatusCode, String),
    /// Sent back to the (registered) redirect URI.
    Redirect(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(status, line) => error_page(status, &line),
            Refusal::Redirect(url) => found(&url),
        }
    }
}

/// `redirect_uri` with `params` appended to its query.
fn with_query(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

fn refuse_to_client(redirect_uri: &str, state: Option<&str>, error: &str, line: &str) -> Refusal {
    let mut params = vec![("error", error), ("error_description", line)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    Refusal::Redirect(with_query(redirect_uri, &params))
}

fn check_app<'w>(
    world: &'w World,
    p: &HashMap<String, String>,
) -> Result<(&'w App, String), Refusal> {
    let client_id = p.get("client_id").map(|s| s.to_ascii_lowercase());
    let app = client_id
        .as_deref()
        .and_then(|c| world.apps.get(c))
        .ok_or_else(|| {
            Refusal::Page(
                StatusCode::BAD_REQUEST,
                format!(
                    "AADSTS700016: Application with identifier '{}' was not found in the directory.",
                    client_id.unwrap_or_default()
                ),
            )
        })?;
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    // Redirect URIs match exactly, else Microsoft refuses on its own page (never redirects).
    // https://learn.microsoft.com/en-us/entra/identity-platform/reply-url
    if !app.redirect_uris.iter().any(|r| r == &redirect_uri) {
        return Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            format!("AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'.", app.client_id),
        ));
    }
    Ok((app, redirect_uri))
}

fn check_authorize(
    em: &Emulator,
    segment: &str,
    p: &HashMap<String, String>,
) -> Result<AuthorizeRequest, Refusal> {
    let world = em.read();
    let authority = Authority::resolve(&world, segment)
        .map_err(|e| Refusal::Page(StatusCode::BAD_REQUEST, e.line()))?;
    let (app, redirect_uri) = check_app(&world, p)?;
    let state = p.get("state").cloned();
    let back =
        |error: &str, line: &str| refuse_to_client(&redirect_uri, state.as_deref(), error, line);
    if p.get("response_type").map(String::as_str) != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "AADSTS700054: The emulator supports response_type=code only.",
        ));
    }
    if let Some(mode) = p.get("response_mode") {
        if mode != "query" {
            return Err(back(
                "invalid_request",
                "AADSTS900144: The emulator supports response_mode=query only.",
            ));
        }
    }
    let method = p.get("code_challenge_method").map(String::as_str);
    if p.contains_key("code_challenge") && !matches!(method, None | Some("S256") | Some("plain")) {
        return Err(back(
            "invalid_request",
            "AADSTS501491: Invalid code_challenge_method.",
        ));
    }
    let scope = p.get("scope").cloned().unwrap_or_default();
    if scope.trim().is_empty() {
        return Err(back(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        ));
    }
    let prompt = p.get("prompt").cloned();
    // There is no browser session in the emulator, so a silent request always needs a sign-in.
    // https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#request-an-authorization-code
    if prompt.as_deref() == Some("none") {
        return Err(back(
            "login_required",
            "AADSTS50058: A silent sign-in request was sent but no user is signed in.",
        ));
    }
    let carry = [
        "client_id",
        "redirect_uri",
        "response_type",
        "response_mode",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "login_hint",
    ]
    .iter()
    .filter_map(|k| p.get(*k).map(|v| (k.to_string(), v.clone())))
    .collect();
    Ok(AuthorizeRequest {
        authority,
        app: app.clone(),
        redirect_uri,
        state,
        scope,
        prompt,
        carry,
    })
}

/// Users who may sign in here: one directory's, or every directory's for the multi-tenant
/// authorities (the emulator's stand-in for "use another account").
fn candidates(
    world: &World,
    authority: &Authority,
    admins_only: bool,
) -> Vec<(String, String, User)> {
    let mut out = Vec::new();
    for d in world.sorted_directories() {
        if !authority.allows(&d.tenant_id) {
            continue;
        }
        for (_, u) in d.live_after(0).take(200) {
            if admins_only && !u.is_admin {
                continue;
            }
            out.push((d.tenant_id.clone(), d.display_name.clone(), u.clone()));
        }
    }
    out
}

/// Radio buttons for `users`; the one named by `hint` (a UPN) is preselected, else the first.
fn user_list(users: &[(String, String, User)], hint: Option<&str>) -> String {
    let hinted = hint.and_then(|h| {
        users
            .iter()
            .position(|(_, _, u)| u.user_principal_name.eq_ignore_ascii_case(h))
    });
    let mut html = String::new();
    for (i, (tid, dname, u)) in users.iter().enumerate() {
        html.push_str(&format!(
            r#"<label><input type="radio" name="account" value="{tid}/{id}"{checked}> {name} &lt;{upn}&gt; <small>({dir}{off})</small></label>"#,
            tid = esc(tid),
            id = esc(&u.id),
            checked = if i == hinted.unwrap_or(0) { " checked" } else { "" },
            name = esc(&u.display_name),
            upn = esc(&u.user_principal_name),
            dir = esc(dname),
            off = if u.account_enabled { "" } else { ", disabled" },
        ));
    }
    html
}

async fn authorize_page(
    State(em): State<Emulator>,
    Path(segment): Path<String>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let req = match check_authorize(&em, &segment, &p) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let users = candidates(&em.read(), &req.authority, false);
    page(
        "Pick an account",
        &format!(
            r#"<p>to continue to <b>{app}</b></p><form method="post">{hidden}<input type="hidden" name="step" value="pick">{list}<p><button type="submit" name="decision" value="accept">Next</button></p></form>"#,
            app = esc(&req.app.display_name),
            hidden = hidden(&req.carry),
            list = user_list(&users, p.get("login_hint").map(String::as_str)),
        ),
    )
    .into_response()
}

/// Splits `tenant/user` from the account radio button and finds the live user.
fn chosen_user(
    world: &World,
    authority: &Authority,
    account: &str,
) -> Result<(String, User), Refusal> {
    let (tid, uid) = account.split_once('/').unwrap_or(("", account));
    let user = world
        .directory(tid)
        .ok()
        .filter(|d| authority.allows(&d.tenant_id))
        .and_then(|d| d.live(uid))
        .cloned()
        .ok_or_else(|| {
            Refusal::Page(
                StatusCode::BAD_REQUEST,
                "AADSTS50034: The user account does not exist in this directory.".into(),
            )
        })?;
    if !user.account_enabled {
        return Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "AADSTS50057: The user account is disabled.".into(),
        ));
    }
    Ok((tid.to_ascii_lowercase(), user))
}

async fn authorize_step(
    State(em): State<Emulator>,
    Path(segment): Path<String>,
    Form(p): Form<HashMap<String, String>>,
) -> Response {
    let req = match check_authorize(&em, &segment, &p) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let account = p.get("account").cloned().unwrap_or_default();
    let (tid, user) = match chosen_user(&em.read(), &req.authority, &account) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let step = p.get("step").map(String::as_str).unwrap_or("pick");
    let decision = p.get("decision").map(String::as_str).unwrap_or("accept");
    let client_id = req.app.client_id.clone();
    if step == "consent" {
        if decision != "accept" {
            // https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
            return refuse_to_client(
                &req.redirect_uri,
                req.state.as_deref(),
                "access_denied",
                "AADSTS65004: User declined to consent to access the app.",
            )
            .into_response();
        }
        if let Ok(d) = em.write().directory_mut(&tid) {
            d.user_consents.insert((client_id.clone(), user.id.clone()));
        }
    } else {
        let consented = em
            .read()
            .directory(&tid)
            .map(|d| {
                d.consents.contains_key(&client_id)
                    || d.user_consents
                        .contains(&(client_id.clone(), user.id.clone()))
            })
            .unwrap_or(false);
        if !consented || req.prompt.as_deref() == Some("consent") {
            return consent_page(&req, &account, &user).into_response();
        }
    }
    let code = random_id(48);
    em.write().codes.insert(
        code.clone(),
        AuthCode {
            client_id,
            redirect_uri: req.redirect_uri.clone(),
            tenant_id: tid,
            user_id: user.id.clone(),
            scope: req.scope.clone(),
            nonce: p.get("nonce").cloned(),
            code_challenge: p.get("code_challenge").cloned(),
            code_challenge_method: p
                .get("code_challenge_method")
                .cloned()
                .unwrap_or_else(|| "plain".into()),
            expires_at: now() + CODE_SECONDS,
            redeemed: false,
        },
    );
    let session_state = new_guid();
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("session_state", &session_state));
    found(&with_query(&req.redirect_uri, &params))
}

fn describe(permission: &str) -> &str {
    match permission {
        "openid" => "Sign you in",
        "profile" => "View your basic profile",
        "email" => "View your email address",
        "offline_access" => "Maintain access to data you have given it access to",
        "User.Read" => "Sign you in and read your profile",
        "User.Read.All" => "Read all users' full profiles (application)",
        "Domain.Read.All" => "Read domains (application)",
        "GroupMember.Read.All" => "Read all group memberships (application)",
        other => other,
    }
}

fn consent_page(req: &AuthorizeRequest, account: &str, user: &User) -> impl IntoResponse {
    let mut items = String::new();
    for s in req.scope.split_whitespace() {
        let name = s.trim_start_matches("https://graph.microsoft.com/");
        let name = if name == ".default" {
            "User.Read"
        } else {
            name
        };
        items.push_str(&format!("<li>{}</li>", esc(describe(name))));
    }
    page(
        "Permissions requested",
        &format!(
            r#"<p><b>{app}</b> (unverified) wants to, for <b>{upn}</b>:</p><ul id="permissions">{items}</ul><form method="post">{hidden}<input type="hidden" name="step" value="consent"><input type="hidden" name="account" value="{account}"><button type="submit" name="decision" value="accept">Accept</button><button class="secondary" type="submit" name="decision" value="cancel">Cancel</button></form>"#,
            app = esc(&req.app.display_name),
            upn = esc(&user.user_principal_name),
            hidden = hidden(&req.carry),
            account = esc(account),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

/// Checks the client: its id and secret (`client_secret_post` or `client_secret_basic`), or a
/// client assertion signed with one of its certificates (`private_key_jwt`).
fn authenticate_client(
    world: &World,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
    audience: &str,
) -> Result<App, AadError> {
    if let Some(assertion) = form.get("client_assertion") {
        return authenticate_assertion(world, form, assertion, audience);
    }
    // Basic credentials are form-urlencoded before base64 (RFC 6749 section 2.3.1).
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':').map(|(i, p)| {
                (
                    url::form_urlencoded::parse(format!("a={i}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default(),
                    url::form_urlencoded::parse(format!("a={p}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default(),
                )
            })
        });
    let (client_id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    let client_id = client_id.unwrap_or_default().to_ascii_lowercase();
    let app = world.apps.get(&client_id).ok_or_else(|| {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory."),
        )
    })?;
    let Some(secret) = secret else {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    // Compare digests so the comparison time does not depend on where the strings differ.
    if Sha256::digest(secret.as_bytes()) != Sha256::digest(app.secret.as_bytes()) {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
        ));
    }
    if app.secret_expires_at.is_some_and(|at| at <= now()) {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            format!("The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app."),
        ));
    }
    Ok(app.clone())
}

/// `private_key_jwt`: a JWT signed with the key of a certificate uploaded to the app, named
/// by its SHA-256 thumbprint (`x5t#S256`, what Microsoft's page asks for today) or by its
/// SHA-1 thumbprint (`x5t`, the older form MSAL still sends and Microsoft still accepts;
/// `x5t#S256` wins when both are present), for this token endpoint, from and about the app.
/// https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
fn authenticate_assertion(
    world: &World,
    form: &HashMap<String, String>,
    assertion: &str,
    audience: &str,
) -> Result<App, AadError> {
    let refuse = |code: u32, message: String| {
        AadError::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
    };
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err(refuse(700023, "Invalid client assertion type.".to_string()));
    }
    let client_id = form
        .get("client_id")
        .cloned()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let app = world.apps.get(&client_id).ok_or_else(|| {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory."),
        )
    })?;
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| refuse(700027, format!("Client assertion is not a JWT: {e}")))?;
    if !matches!(
        header.alg,
        jsonwebtoken::Algorithm::PS256 | jsonwebtoken::Algorithm::RS256
    ) {
        return Err(refuse(
            700027,
            "Client assertion must be signed with PS256 or RS256.".to_string(),
        ));
    }
    let (thumbprint, sha1) = match (header.x5t_s256, header.x5t) {
        (Some(s256), _) => (s256, false),
        (None, Some(sha1)) => (sha1, true),
        (None, None) => (String::new(), false),
    };
    let cert = app
        .certificates
        .iter()
        .find(|c| {
            if sha1 {
                c.thumbprint_sha1 == thumbprint
            } else {
                c.thumbprint_s256 == thumbprint
            }
        })
        .ok_or_else(|| {
            refuse(
                700027,
                format!("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}']"),
            )
        })?;
    if cert.not_after <= now() {
        return Err(refuse(
            700027,
            "Client assertion contains an invalid signature. [Reason - The key used is expired.]"
                .to_string(),
        ));
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&cert.public_key);
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.client_id.as_str()]);
    validation.sub = Some(app.client_id.clone());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(assertion, &key, &validation).map_err(|e| {
        refuse(
            700027,
            format!("Client assertion failed signature validation: {e}"),
        )
    })?;
    Ok(app.clone())
}

async fn token(
    State(em): State<Emulator>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match exchange(&em, &segment, &headers, &form) {
        Ok(body) => (
            [("cache-control", "no-store"), ("pragma", "no-cache")],
            Json(body),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn exchange(
    em: &Emulator,
    segment: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Value, AadError> {
    let (authority, app) = {
        let world = em.read();
        let authority = Authority::resolve(&world, segment)?;
        let audience = format!("{}/{segment}/oauth2/v2.0/token", em.base_url());
        let app = authenticate_client(&world, form, headers, &audience)?;
        (authority, app)
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => redeem_code(em, &authority, &app, form),
        Some("client_credentials") => client_credentials(em, &authority, &app, form),
        _ => Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        )),
    }
}

/// The `sub` of id_tokens: pairwise, one value per user and app.
fn pairwise_sub(client_id: &str, oid: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(format!("{client_id}:{oid}").as_bytes())[..24])
}

fn redeem_code(
    em: &Emulator,
    authority: &Authority,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<Value, AadError> {
    let code_value = form.get("code").ok_or_else(|| {
        AadError::invalid_request(
            900144,
            "The request body must contain the following parameter: 'code'.",
        )
    })?;
    let code = {
        let mut world = em.write();
        let stored = world.codes.get_mut(code_value).ok_or_else(|| {
            AadError::invalid_grant(
                70000,
                "The provided value for the 'code' parameter is not valid.",
            )
        })?;
        if stored.redeemed {
            return Err(AadError::invalid_grant(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        // A code is single-use even when the attempt fails.
        stored.redeemed = true;
        stored.clone()
    };
    if code.expires_at < now() {
        return Err(AadError::invalid_grant(
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    if code.client_id != app.client_id || !authority.allows(&code.tenant_id) {
        return Err(AadError::invalid_grant(
            70000,
            "The provided value for the 'code' parameter is not valid.",
        ));
    }
    let redirect_uri = form.get("redirect_uri").cloned().unwrap_or_default();
    if redirect_uri != code.redirect_uri {
        return Err(AadError::invalid_grant(
            500112,
            format!("The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.", code.redirect_uri),
        ));
    }
    if let Some(challenge) = &code.code_challenge {
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        let computed = if code.code_challenge_method == "S256" {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        } else {
            verifier
        };
        if &computed != challenge {
            return Err(AadError::invalid_grant(
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
    }
    let user = em
        .read()
        .directory(&code.tenant_id)
        .ok()
        .and_then(|d| d.live(&code.user_id).cloned())
        .filter(|u| u.account_enabled)
        .ok_or_else(|| {
            AadError::invalid_grant(50057, "The user account is disabled or was deleted.")
        })?;
    let issued = now();
    let base = em.base_url();
    let tid = &code.tenant_id;
    let scopes: Vec<&str> = code.scope.split_whitespace().collect();
    let delegated: Vec<String> = scopes
        .iter()
        .map(|s| s.trim_start_matches("https://graph.microsoft.com/"))
        .filter(|s| {
            !matches!(
                *s,
                "openid" | "profile" | "email" | "offline_access" | ".default"
            )
        })
        .map(str::to_string)
        .chain(std::iter::once("User.Read".to_string()))
        .fold(Vec::new(), |mut acc, s| {
            if !acc.contains(&s) {
                acc.push(s);
            }
            acc
        });
    let access = json!({
        "aud": GRAPH_AUDIENCE, "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": issued, "nbf": issued, "exp": issued + TOKEN_SECONDS,
        "appid": app.client_id, "idtyp": "user", "oid": user.id, "sub": pairwise_sub(GRAPH_APP_ID, &user.id),
        "tid": tid, "scp": delegated.join(" "), "upn": user.user_principal_name,
        "name": user.display_name, "ver": "1.0", "uti": random_id(16),
    });
    let mut body = json!({
        "token_type": "Bearer",
        "scope": scopes.iter().filter(|s| matches!(**s, "openid" | "profile" | "email" | "offline_access"))
            .map(|s| s.to_string())
            .chain(delegated.iter().map(|s| format!("https://graph.microsoft.com/{s}")))
            .collect::<Vec<_>>().join(" "),
        "expires_in": TOKEN_SECONDS,
        "ext_expires_in": TOKEN_SECONDS,
        "access_token": sign(em, &access)?,
    });
    if scopes.contains(&"openid") {
        let mut id = json!({
            "aud": app.client_id, "iss": format!("{base}/{tid}/v2.0"),
            "iat": issued, "nbf": issued, "exp": issued + TOKEN_SECONDS,
            "name": user.display_name, "oid": user.id,
            "preferred_username": user.user_principal_name,
            "sub": pairwise_sub(&app.client_id, &user.id), "tid": tid, "ver": "2.0",
        });
        if let Some(nonce) = &code.nonce {
            id["nonce"] = json!(nonce);
        }
        if scopes.contains(&"email") {
            if let Some(mail) = &user.mail {
                id["email"] = json!(mail);
            }
        }
        body["id_token"] = json!(sign(em, &id)?);
    }
    Ok(body)
}

fn sign(em: &Emulator, claims: &Value) -> Result<String, AadError> {
    em.keys().sign(claims).map_err(|e| {
        tracing::error!("emulator token signing failed: {e}");
        AadError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            90033,
            "A transient error has occurred. Please try again.",
        )
    })
}

/// App-only tokens carry the permissions an admin consented to in the tenant.
/// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
fn client_credentials(
    em: &Emulator,
    authority: &Authority,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<Value, AadError> {
    let Authority::Tenant(tid) = authority else {
        return Err(AadError::invalid_request(
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        ));
    };
    let scope = form.get("scope").cloned().unwrap_or_default();
    let Some(resource) = scope.trim().strip_suffix("/.default") else {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        ));
    };
    if resource != GRAPH_AUDIENCE && resource != GRAPH_APP_ID {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tid}."
            ),
        ));
    }
    let consent: Consent = em
        .read()
        .directory(tid)
        .ok()
        .and_then(|d| d.consents.get(&app.client_id).cloned())
        .ok_or_else(|| {
            AadError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!("Application with identifier '{}' was not found in the directory '{tid}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", app.client_id),
            )
        })?;
    // A consent Microsoft has not applied yet: the token comes without the new roles.
    let mut consent = consent;
    if now() - consent.granted_at < em.consent_delay_secs() {
        consent.roles.clear();
    }
    // Microsoft's access tokens live a random 60 to 90 minutes (75 on average), so a client
    // must read `expires_in` rather than assume an hour.
    // https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#token-lifetime
    let lifetime = rand::Rng::gen_range(&mut rand::thread_rng(), 3600..=5400);
    let access = app_only_claims(tid, &app.client_id, &consent, lifetime);
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": sign(em, &access)?,
    }))
}

/// Claims of an app-only Graph token living `lifetime` seconds (negative: already expired).
pub fn app_only_claims(tid: &str, client_id: &str, consent: &Consent, lifetime: i64) -> Value {
    let issued = now();
    let not_before = issued.min(issued + lifetime - 60);
    let mut access = json!({
        "aud": GRAPH_AUDIENCE, "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": not_before, "nbf": not_before, "exp": issued + lifetime,
        "appid": client_id, "idtyp": "app",
        "oid": consent.service_principal_id, "sub": consent.service_principal_id,
        "tid": tid, "ver": "1.0", "uti": random_id(16),
    });
    // Microsoft leaves `roles` out entirely when nothing was granted.
    if !consent.roles.is_empty() {
        access["roles"] = json!(consent.roles);
    }
    access
}

// ---------------------------------------------------------------------------------------------
// Admin consent

/// https://learn.microsoft.com/en-us/entra/identity-platform/v2-admin-consent
async fn admin_consent_page(
    State(em): State<Emulator>,
    Path(segment): Path<String>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let world = em.read();
    let authority = match Authority::resolve(&world, &segment) {
        Ok(a) => a,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.line()),
    };
    let (app, _) = match check_app(&world, &p) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let admins = candidates(&world, &authority, true);
    let mut perms = String::new();
    for perm in &app.application_permissions {
        perms.push_str(&format!("<li>{}</li>", esc(describe(perm))));
    }
    let carry: Vec<(String, String)> = ["client_id", "redirect_uri", "scope", "state"]
        .iter()
        .filter_map(|k| p.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let body = if admins.is_empty() {
        "<p id=\"error\">AADSTS90094: No administrator of this directory can grant this consent.</p>".to_string()
    } else {
        format!(
            r#"<p><b>{app}</b> wants these permissions for your whole organization:</p><ul id="permissions">{perms}</ul><form method="post">{hidden}<p>Sign in as an administrator:</p>{list}<p><button type="submit" name="decision" value="accept">Accept</button><button class="secondary" type="submit" name="decision" value="cancel">Cancel</button></p></form>"#,
            app = esc(&app.display_name),
            hidden = hidden(&carry),
            list = user_list(&admins, None),
        )
    };
    page("Permissions requested: accept for your organization", &body).into_response()
}

async fn admin_consent_step(
    State(em): State<Emulator>,
    Path(segment): Path<String>,
    Form(p): Form<HashMap<String, String>>,
) -> Response {
    let (authority, app, redirect_uri) = {
        let world = em.read();
        let authority = match Authority::resolve(&world, &segment) {
            Ok(a) => a,
            Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.line()),
        };
        match check_app(&world, &p) {
            Ok((app, uri)) => (authority, app.clone(), uri),
            Err(refusal) => return refusal.into_response(),
        }
    };
    let state = p.get("state").cloned();
    if p.get("decision").map(String::as_str) != Some("accept") {
        return refuse_to_client(
            &redirect_uri,
            state.as_deref(),
            "access_denied",
            "AADSTS65004: User declined to consent to access the app.",
        )
        .into_response();
    }
    let account = p.get("account").cloned().unwrap_or_default();
    let (tid, user) = match chosen_user(&em.read(), &authority, &account) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    if !user.is_admin {
        return error_page(
            StatusCode::FORBIDDEN,
            "AADSTS90094: The grant requires admin permission.",
        );
    }
    if let Err(e) = em.grant_admin_consent(&tid, &app.client_id) {
        return error_page(StatusCode::BAD_REQUEST, &e.to_string());
    }
    let scope = p.get("scope").cloned().unwrap_or_default();
    let mut params = vec![
        ("admin_consent", "True"),
        ("tenant", tid.as_str()),
        ("scope", scope.as_str()),
    ];
    if let Some(s) = state.as_deref() {
        params.push(("state", s));
    }
    found(&with_query(&redirect_uri, &params))
}
