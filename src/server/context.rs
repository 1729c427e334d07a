//! What a server function may ask of its request: the app state, the tenant, the signed-in user.

use crate::error::AppError;
use crate::login::session::{self, SignedIn};
use crate::server::state::AppState;
use crate::tenants::Tenant;
use crate::users::store::User;
use axum::response::IntoResponse as _;
use leptos::prelude::*;
use tower_sessions::Session;

/// A server function's view of a signed-in request.
pub struct Ctx {
    pub state: AppState,
    pub tenant: Tenant,
    pub user: User,
    pub login_id: crate::domain::SessionId,
}

/// The HTTP status a server function's error means: 401 not signed in, 403 not allowed,
/// 404 not here, 400 refused input; 500 only for a fault on Gatehouse's side.
pub fn status_of(err: &AppError) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    match err {
        AppError::NotSignedIn => StatusCode::UNAUTHORIZED,
        AppError::Forbidden => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Invalid(_) => StatusCode::BAD_REQUEST,
        AppError::Internal(_) | AppError::Transport(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Answers the server function with the status the error means instead of a 500.
fn refuse(err: AppError) -> AppError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status_of(&err));
    }
    err
}

/// Server functions answer every error with 500 (server_fn's default); this gives a refusal
/// the status it means, whichever layer of the function returned it. The body (the error,
/// JSON-encoded) is untouched.
pub async fn error_status(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let is_server_fn =
        req.uri().path().starts_with("/api/") && !req.uri().path().starts_with("/api/mobile/");
    let res = next.run(req).await;
    if !is_server_fn || res.status() != axum::http::StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    if let Ok(err) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = status_of(&err);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(AppError::internal)
}

/// The tenant resolved from the Host header (server functions are called on tenant hosts).
pub fn tenant() -> Result<Tenant, AppError> {
    use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Tenant>().cloned())
        .ok_or_else(|| {
            refuse(AppError::NotFound(
                "This page belongs to a tenant's address.".into(),
            ))
        })
}

pub async fn signed_in() -> Result<Ctx, AppError> {
    let state = state()?;
    let tenant = tenant()?;
    let session: Session = leptos_axum::extract()
        .await
        .map_err(|_| AppError::internal())?;
    let SignedIn { login_id, user } = session::current(&state.db, &session, &tenant)
        .await?
        .ok_or_else(|| refuse(AppError::NotSignedIn))?;
    Ok(Ctx {
        state,
        tenant,
        user,
        login_id,
    })
}

/// Like `signed_in`, and the user must be an admin of this tenant.
pub async fn admin() -> Result<Ctx, AppError> {
    let ctx = signed_in().await?;
    if ctx.user.role != crate::domain::Role::Admin {
        return Err(refuse(AppError::Forbidden));
    }
    Ok(ctx)
}
