//! The browser round trips to Microsoft: Authorize, the sign-in callback, the consent callback.

use super::service::{self, SourceError};
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/adminportal/user-source/authorize", get(authorize))
        .route("/adminportal/user-source/callback", get(callback))
        .route(
            "/adminportal/user-source/consent-callback",
            get(consent_callback),
        )
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

/// Back to the page, which tells the admin `message` once (`service::leave_notice`: in the
/// session, not the address).
async fn back(session: &Session, ok: bool, message: &str) -> Response {
    service::leave_notice(session, ok, message).await;
    to("/adminportal/user-source")
}

async fn refused(session: &Session, message: &str) -> Response {
    back(session, false, message).await
}

async fn failed(session: &Session, err: SourceError) -> Response {
    if let SourceError::Unexpected(e) = &err {
        tracing::error!(error = ?e, "connecting Entra ID failed");
        let message = format!(
            "Something went wrong on our side; it has been logged{}. Try again.",
            crate::server::request_log::reference()
        );
        return refused(session, &message).await;
    }
    refused(session, &err.to_string()).await
}

async fn authorize(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    session: Session,
) -> Response {
    let Some(admin) = admin(&state, &session, &tenant).await else {
        return to("/");
    };
    let Some(entra) = &state.entra else {
        return refused(
            &session,
            "No Entra app is configured for this Gatehouse (ENTRA_CLIENT_ID, ENTRA_CLIENT_SECRET).",
        )
        .await;
    };
    match service::start(
        &state.db,
        entra,
        &tenant,
        &admin,
        &state.config.tenant_url(&tenant.slug),
    )
    .await
    {
        Ok(url) => to(&url),
        Err(e) => failed(&session, e).await,
    }
}

async fn callback(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(admin) = admin(&state, &session, &tenant).await else {
        return to("/");
    };
    let Some(entra) = &state.entra else {
        return refused(&session, "No Entra app is configured.").await;
    };
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").map(String::as_str).unwrap_or("");
        let state_ = q.get("state").map(String::as_str);
        let message = service::refused_by_microsoft(
            &state.db,
            &tenant,
            &admin,
            "sign_in",
            state_,
            error,
            description,
        )
        .await;
        return refused(&session, &message).await;
    }
    let (Some(code), Some(st)) = (q.get("code"), q.get("state")) else {
        return refused(&session, "The sign-in answer lacks its code or state.").await;
    };
    let url = state.config.tenant_url(&tenant.slug);
    match service::signed_in(&state.db, entra, &tenant, &admin, &url, st, code).await {
        Ok(consent_url) => to(&consent_url),
        Err(e) => failed(&session, e).await,
    }
}

async fn consent_callback(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(admin) = admin(&state, &session, &tenant).await else {
        return to("/");
    };
    let Some(entra) = &state.entra else {
        return refused(&session, "No Entra app is configured.").await;
    };
    let Some(st) = q.get("state") else {
        return refused(&session, "The consent answer lacks its state.").await;
    };
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").map(String::as_str).unwrap_or("");
        let message = service::refused_by_microsoft(
            &state.db,
            &tenant,
            &admin,
            "consent",
            Some(st),
            error,
            description,
        )
        .await;
        return refused(&session, &message).await;
    }
    if !q
        .get("admin_consent")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return refused(&session, "Microsoft did not confirm admin consent.").await;
    }
    match service::consented(
        &state.db,
        entra,
        &tenant,
        &admin,
        st,
        q.get("tenant").map(String::as_str),
    )
    .await
    {
        Ok(service::Proof::Proven(auth)) => {
            let message = format!(
                "Authorized in {}. Choose the domain and the JIT prefix, then Save.",
                auth.org_name
            );
            back(&session, true, &message).await
        }
        // The page shows the wait and keeps trying.
        Ok(service::Proof::Waiting { .. } | service::Proof::Nothing) => {
            to("/adminportal/user-source")
        }
        Err(e) => failed(&session, e).await,
    }
}
