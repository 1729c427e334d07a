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

/// Back to the page with a message for the admin (kept out of logs: it names no secret).
fn back(kind: &str, message: &str) -> Response {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(kind, message)
        .finish();
    to(&format!("/adminportal/user-source?{q}"))
}

fn failed(err: SourceError) -> Response {
    if let SourceError::Unexpected(e) = &err {
        tracing::error!(error = ?e, "connecting Entra ID failed");
        return back(
            "error",
            &format!(
                "Something went wrong on our side; it has been logged{}. Try again.",
                crate::server::request_log::reference()
            ),
        );
    }
    back("error", &err.to_string())
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
        return back(
            "error",
            "No Entra app is configured for this Gatehouse (ENTRA_CLIENT_ID, ENTRA_CLIENT_SECRET).",
        );
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
        Err(e) => failed(e),
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
        return back("error", "No Entra app is configured.");
    };
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").map(String::as_str).unwrap_or("");
        return back(
            "error",
            &format!("Microsoft refused the sign-in: {error} {description}"),
        );
    }
    let (Some(code), Some(st)) = (q.get("code"), q.get("state")) else {
        return back("error", "The sign-in answer lacks its code or state.");
    };
    let url = state.config.tenant_url(&tenant.slug);
    match service::signed_in(&state.db, entra, &tenant, &admin, &url, st, code).await {
        Ok(consent_url) => to(&consent_url),
        Err(e) => failed(e),
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
        return back("error", "No Entra app is configured.");
    };
    let Some(st) = q.get("state") else {
        return back("error", "The consent answer lacks its state.");
    };
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").map(String::as_str).unwrap_or("");
        let message = service::consent_refused(&state.db, st, error, description).await;
        return back("error", &message);
    }
    if !q
        .get("admin_consent")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return back("error", "Microsoft did not confirm admin consent.");
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
        Ok(service::Proof::Proven(auth)) => back(
            "ok",
            &format!(
                "Authorized in {}. Choose the domain and the JIT prefix, then Save.",
                auth.org_name
            ),
        ),
        // The page shows the wait and keeps trying.
        Ok(service::Proof::Waiting { .. } | service::Proof::Nothing) => {
            to("/adminportal/user-source")
        }
        Err(e) => failed(e),
    }
}
