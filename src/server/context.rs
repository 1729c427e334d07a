//! What a server function may ask of its request: the app state, the tenant, the signed-in user.

use crate::error::AppError;
use crate::login::session::{self, SignedIn};
use crate::server::state::AppState;
use crate::tenants::Tenant;
use crate::users::service::User;
use leptos::prelude::*;
use tower_sessions::Session;

/// A server function's view of a signed-in request.
pub struct Ctx {
    pub state: AppState,
    pub tenant: Tenant,
    pub user: User,
    pub login_id: String,
}

/// Answers the server function with the status the error means (401 not signed in, 403 not
/// allowed, 404 not here) instead of a 500.
fn refuse(err: AppError) -> AppError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(match err {
            AppError::NotSignedIn => axum::http::StatusCode::UNAUTHORIZED,
            AppError::Forbidden => axum::http::StatusCode::FORBIDDEN,
            AppError::NotFound(_) => axum::http::StatusCode::NOT_FOUND,
            AppError::Invalid(_) => axum::http::StatusCode::BAD_REQUEST,
            AppError::Internal | AppError::Transport(_) => {
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            }
        });
    }
    err
}

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or(AppError::Internal)
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
        .map_err(|_| AppError::Internal)?;
    let SignedIn { login_id, user } = session::current(&state, &session, &tenant)
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
