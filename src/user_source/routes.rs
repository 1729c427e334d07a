//! The browser round trips to Microsoft: Authorize, the sign-in callback, the consent callback.
//! The User source page and the Customers page make the same round trip, each with its own
//! app registration and its own end (`Connects`); the handlers are written once.

use super::flows::{self, Round, Step};
use super::service::{self, SourceError};
use crate::domain::EntraTenantId;
use crate::entra::EntraClient;
use crate::login::session;
use crate::server::state::AppState;
use crate::tenants::Tenant;
use crate::users::service::User;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use std::collections::HashMap;
use tower_sessions::Session;

/// A page that connects an Entra tenant by the round trip.
pub trait Connects: Send + Sync + 'static {
    const ROUND: &'static Round;
    /// Said when the app registration this page needs is not configured.
    const NOT_CONFIGURED: &'static str;
    fn client(state: &AppState) -> Option<&EntraClient>;
    /// The consent for `tid` came back (proven to be the tenant the admin signed in to):
    /// what to tell the admin, or `None` while Microsoft has not applied it (the page waits).
    fn consented(
        state: &AppState,
        tenant: &Tenant,
        admin: &User,
        tid: EntraTenantId,
    ) -> impl std::future::Future<Output = Result<Option<String>, SourceError>> + Send;
}

/// Users → User source: the MSP's own Entra tenant.
pub struct UserSourcePage;

impl Connects for UserSourcePage {
    const ROUND: &'static Round = &flows::USER_SOURCE;
    const NOT_CONFIGURED: &'static str =
        "No Entra app is configured for this Gatehouse (ENTRA_CLIENT_ID, ENTRA_CLIENT_SECRET).";

    fn client(state: &AppState) -> Option<&EntraClient> {
        state.entra.as_ref()
    }

    async fn consented(
        state: &AppState,
        tenant: &Tenant,
        admin: &User,
        tid: EntraTenantId,
    ) -> Result<Option<String>, SourceError> {
        let entra = Self::client(state).ok_or_else(not_configured::<Self>)?;
        match service::consented(&state.db, entra, tenant, admin, tid).await? {
            service::Proof::Proven(auth) => Ok(Some(format!(
                "Authorized in {}. Choose the domain and the JIT prefix, then Save.",
                auth.org_name
            ))),
            service::Proof::Waiting { .. } | service::Proof::Nothing => Ok(None),
        }
    }
}

pub fn router() -> Router<AppState> {
    connecting::<UserSourcePage>()
}

/// The three routes of page `P`'s round trip.
pub fn connecting<P: Connects>() -> Router<AppState> {
    let page = P::ROUND.page;
    Router::new()
        .route(&format!("{page}/authorize"), get(authorize::<P>))
        .route(&format!("{page}/callback"), get(callback::<P>))
        .route(
            &format!("{page}/consent-callback"),
            get(consent_callback::<P>),
        )
}

fn not_configured<P: Connects>() -> SourceError {
    SourceError::Refused(P::NOT_CONFIGURED.into())
}

async fn admin(state: &AppState, session: &Session, tenant: &Tenant) -> Option<User> {
    match session::current(&state.db, session, tenant).await {
        Ok(Some(s)) if s.user.role == crate::domain::Role::Admin => Some(s.user),
        _ => None,
    }
}

fn to(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// Back to the page, which tells the admin `message` once (`flows::leave_notice`: in the
/// session, not the address).
async fn back<P: Connects>(session: &Session, ok: bool, message: &str) -> Response {
    super::flows::leave_notice(session, P::ROUND, ok, message).await;
    to(P::ROUND.page)
}

async fn failed<P: Connects>(session: &Session, err: SourceError) -> Response {
    if let SourceError::Unexpected(e) = &err {
        tracing::error!(error = ?e, page = P::ROUND.page, "connecting Entra ID failed");
        let message = format!(
            "Something went wrong on our side; it has been logged{}. Try again.",
            crate::server::request_log::reference()
        );
        return back::<P>(session, false, &message).await;
    }
    back::<P>(session, false, &err.to_string()).await
}

async fn authorize<P: Connects>(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    session: Session,
) -> Response {
    let Some(admin) = admin(&state, &session, &tenant).await else {
        return to("/");
    };
    let Some(entra) = P::client(&state) else {
        return failed::<P>(&session, not_configured::<P>()).await;
    };
    let url = state.config.tenant_url(&tenant.slug);
    match flows::start(&state.db, entra, P::ROUND, &tenant, &admin, &url).await {
        Ok(url) => to(&url),
        Err(e) => failed::<P>(&session, e).await,
    }
}

async fn callback<P: Connects>(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(admin) = admin(&state, &session, &tenant).await else {
        return to("/");
    };
    let Some(entra) = P::client(&state) else {
        return failed::<P>(&session, not_configured::<P>()).await;
    };
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").map(String::as_str).unwrap_or("");
        let st = q.get("state").map(String::as_str);
        let message = flows::refused_by_microsoft(
            &state.db,
            P::ROUND,
            &tenant,
            &admin,
            Step::SignIn,
            st,
            error,
            description,
        )
        .await;
        return back::<P>(&session, false, &message).await;
    }
    let (Some(code), Some(st)) = (q.get("code"), q.get("state")) else {
        return back::<P>(
            &session,
            false,
            "The sign-in answer lacks its code or state.",
        )
        .await;
    };
    let url = state.config.tenant_url(&tenant.slug);
    match flows::signed_in(&state.db, entra, P::ROUND, &tenant, &admin, &url, st, code).await {
        Ok(consent_url) => to(&consent_url),
        Err(e) => failed::<P>(&session, e).await,
    }
}

async fn consent_callback<P: Connects>(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(admin) = admin(&state, &session, &tenant).await else {
        return to("/");
    };
    let Some(st) = q.get("state") else {
        return back::<P>(&session, false, "The consent answer lacks its state.").await;
    };
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").map(String::as_str).unwrap_or("");
        let message = flows::refused_by_microsoft(
            &state.db,
            P::ROUND,
            &tenant,
            &admin,
            Step::Consent,
            Some(st),
            error,
            description,
        )
        .await;
        return back::<P>(&session, false, &message).await;
    }
    if !q
        .get("admin_consent")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return back::<P>(&session, false, "Microsoft did not confirm admin consent.").await;
    }
    let reported = q.get("tenant").map(String::as_str);
    let tid =
        match flows::consented_tenant(&state.db, P::ROUND, &tenant, &admin, st, reported).await {
            Ok(tid) => tid,
            Err(e) => return failed::<P>(&session, e).await,
        };
    match P::consented(&state, &tenant, &admin, tid).await {
        Ok(Some(message)) => back::<P>(&session, true, &message).await,
        // The page shows the wait and keeps trying.
        Ok(None) => to(P::ROUND.page),
        Err(e) => failed::<P>(&session, e).await,
    }
}
