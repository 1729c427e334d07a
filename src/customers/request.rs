//! The home page's requests for access at customers: what the technician may request, asking
//! (a phone challenge), and collecting the opened account once the phone approved. Each
//! server function checks the signed-in user, calls `jit::request`, maps the result.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A customer the technician may request access at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfferView {
    pub customer_id: String,
    pub customer: String,
    /// The roles they may ask for there: (template id, name).
    pub roles: Vec<(String, String)>,
    /// "Open for you 4 hours at a time" and the like.
    pub window_text: String,
    pub open: Option<OpenView>,
}

/// Their account there while it is open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenView {
    pub upn: String,
    pub until: String,
    pub role_ids: Vec<String>,
    pub role_names: Vec<String>,
}

/// A request waiting for the phone: the code to scan and the number to pick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AskedView {
    pub request: String,
    pub customer: String,
    pub role_names: Vec<String>,
    pub qr_svg: String,
    pub match_number: u8,
    pub expires_in_secs: i64,
    pub scan_url: String,
    pub demo: bool,
}

/// Where a request stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CollectedView {
    Waiting { expires_in_secs: i64 },
    Opened(OpenedView),
}

/// How the technician signs in to the opened account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// A Temporary Access Pass, where the customer allows passes.
    Pass,
    /// A long random password, where it does not.
    Password,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Pass => "pass",
            CredentialKind::Password => "password",
        }
    }

    /// What the page calls it.
    pub fn label(self) -> &'static str {
        match self {
            CredentialKind::Pass => "Temporary Access Pass",
            CredentialKind::Password => "Password",
        }
    }
}

/// The opened account and, this once, how to sign in to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenedView {
    pub customer: String,
    pub upn: String,
    pub role_names: Vec<String>,
    pub until: String,
    pub kind: CredentialKind,
    /// Shown once on the page that asked; Gatehouse keeps no copy.
    pub secret: String,
    /// Where to sign in with it.
    pub sign_in_url: String,
}

#[server(endpoint = "access/offers")]
pub async fn get_offers() -> Result<Vec<OfferView>, AppError> {
    use crate::server::util::format_time;
    let ctx = crate::server::context::signed_in().await?;
    let offers = crate::jit::request::offers(
        &ctx.state.db,
        ctx.state.entra.as_ref(),
        &ctx.tenant,
        &ctx.user,
    )
    .await?;
    Ok(offers
        .into_iter()
        .map(|o| OfferView {
            customer_id: o.customer.id.to_string(),
            window_text: format!("Open for {} at a time.", o.customer.window),
            customer: o.customer.name,
            roles: o
                .roles
                .iter()
                .map(|r| (r.id().to_string(), r.name().to_string()))
                .collect(),
            open: o.open.map(|a| OpenView {
                until: a.ends_at.map(format_time).unwrap_or_default(),
                role_ids: a.roles.iter().map(|r| r.id().to_string()).collect(),
                role_names: a.roles.iter().map(|r| r.name().to_string()).collect(),
                upn: a.upn,
            }),
        })
        .collect())
}

/// Asks for `roles` (template ids, comma-separated) at `customer`.
#[server(endpoint = "access/request")]
pub async fn request_access(customer: String, roles: String) -> Result<AskedView, AppError> {
    use crate::server::util::now;
    let ctx = crate::server::context::signed_in().await?;
    let (ip, user_agent) = requester().await?;
    let asker = asker(&ctx, &ip, &user_agent);
    let (c, customer) = crate::jit::request::ask(&ctx.state.db, asker, &customer, &roles)
        .await
        .map_err(refused)?;
    let config = &ctx.state.config;
    let scan_url = format!(
        "{}/app/scan?tenant={}&challenge={}",
        config.public_url, ctx.tenant.slug, c.id
    );
    Ok(AskedView {
        request: c.id.to_string(),
        customer: customer.name,
        role_names: c
            .asked_roles()
            .iter()
            .map(|r| r.name().to_string())
            .collect(),
        qr_svg: ctx
            .state
            .qr_codes
            .svg(c.id.as_str(), c.expires_at, &scan_url)
            .to_string(),
        match_number: c.match_number as u8,
        expires_in_secs: (c.expires_at - now()).max(0),
        scan_url,
        demo: config.demo,
    })
}

/// Where request `request` stands; once approved, opens the account and shows its
/// credential, this one time.
#[server(endpoint = "access/collect")]
pub async fn collect_access(request: String) -> Result<CollectedView, AppError> {
    use crate::jit::request::Collected;
    use crate::jit::service::Credential;
    use crate::server::util::{format_time, now};
    use secrecy::ExposeSecret as _;
    let ctx = crate::server::context::signed_in().await?;
    let Some(entra) = ctx.state.customers_entra.clone() else {
        return Err(AppError::Invalid(
            "No customers app is configured for this Gatehouse.".into(),
        ));
    };
    let (ip, user_agent) = requester().await?;
    let asker = asker(&ctx, &ip, &user_agent);
    let collected = crate::jit::request::collect(&ctx.state.db, &entra, asker, &request)
        .await
        .map_err(refused)?;
    Ok(match collected {
        Collected::Waiting { expires_at } => CollectedView::Waiting {
            expires_in_secs: (expires_at - now()).max(0),
        },
        Collected::Opened(o) => {
            let (kind, secret) = match &o.credential {
                Credential::Pass(s) => (CredentialKind::Pass, s.expose_secret().to_string()),
                Credential::Password(s) => {
                    (CredentialKind::Password, s.expose_secret().to_string())
                }
            };
            CollectedView::Opened(OpenedView {
                customer: o.customer.clone(),
                upn: o.upn.clone(),
                role_names: o.roles.iter().map(|r| r.name().to_string()).collect(),
                until: format_time(o.ends_at),
                kind,
                secret,
                sign_in_url: sign_in_url(entra.authority(), &o.upn),
            })
        }
    })
}

/// Where the technician signs in as the account: Microsoft's admin center (any tenant's
/// account signs in there), or, against the emulator, its sign-in page for the account's
/// directory.
#[cfg(feature = "ssr")]
fn sign_in_url(authority: &str, upn: &str) -> String {
    const MICROSOFT: &str = "https://login.microsoftonline.com";
    let authority = authority.trim_end_matches('/');
    let domain = upn.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if authority == MICROSOFT {
        "https://admin.microsoft.com/".to_string()
    } else {
        format!("{authority}/{domain}/signin")
    }
}

/// Ends the technician's open account at `customer` now, before its window is over.
#[server(endpoint = "access/end")]
pub async fn end_access(customer: String) -> Result<String, AppError> {
    let ctx = crate::server::context::signed_in().await?;
    crate::jit::request::end_early(
        &ctx.state.db,
        &ctx.state.bus,
        &ctx.tenant,
        &ctx.user,
        &customer,
    )
    .await
    .map_err(refused)
}

#[cfg(feature = "ssr")]
fn asker<'a>(
    ctx: &'a crate::server::context::Ctx,
    ip: &'a str,
    user_agent: &'a str,
) -> crate::jit::request::Asker<'a> {
    crate::jit::request::Asker {
        tenant: &ctx.tenant,
        msp: ctx.state.entra.as_ref(),
        user: &ctx.user,
        login_id: &ctx.login_id,
        ip,
        user_agent,
    }
}

/// The asking browser's address (as the trusted proxies tell it) and user agent: the phone
/// shows both, as at sign-in.
#[cfg(feature = "ssr")]
async fn requester() -> Result<(String, String), AppError> {
    let parts = use_context::<axum::http::request::Parts>().ok_or_else(AppError::internal)?;
    let ip = parts
        .extensions
        .get::<crate::server::client_ip::ClientIp>()
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let user_agent = parts
        .headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((ip, user_agent))
}

#[cfg(feature = "ssr")]
fn refused(e: crate::jit::service::JitError) -> AppError {
    use crate::jit::service::JitError;
    match e {
        JitError::Refused(why) => AppError::Invalid(why),
        JitError::Entra(e) => AppError::Invalid(format!(
            "Microsoft Entra did not do it: {e}. Nothing is open; try again in a moment."
        )),
        JitError::Unexpected(e) => e.into(),
    }
}
