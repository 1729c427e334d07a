pub use super::view::{SessionRow, UserRow};
use crate::error::AppError;
use leptos::prelude::*;

#[server(endpoint = "users/list")]
pub async fn list_users() -> Result<Vec<UserRow>, AppError> {
    let ctx = crate::server::context::admin().await?;
    Ok(super::service::list(&ctx.state.db, &ctx.tenant.id).await?)
}

/// The username a new user with this email would get (the form's live preview).
#[server(endpoint = "users/suggest_username")]
pub async fn suggest_username(email: String) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    let Ok(email) = crate::domain::Email::parse(&email) else {
        return Ok(String::new());
    };
    Ok(
        super::service::free_username(&ctx.state.db, &ctx.tenant, &email)
            .await?
            .to_string(),
    )
}

#[server(endpoint = "users/add")]
pub async fn add_user(
    first_name: String,
    last_name: String,
    email: String,
    username: String,
) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    let user = super::service::add(
        &ctx.state.db,
        &ctx.tenant,
        crate::audit::Actor::User(&ctx.user.username),
        super::service::NewUser {
            first_name: &first_name,
            last_name: &last_name,
            email: &email,
            username: &username,
        },
    )
    .await?;
    Ok(format!(
        "Invited {} as {}. They sign in by verifying {} in the Gatehouse app and scanning the QR code.",
        user.display_name(),
        user.username,
        user.email
    ))
}

/// `action` is one of `disable`, `enable`, `make_admin`, `make_technician`, `delete`.
#[server(endpoint = "users/act")]
pub async fn act_on_user(user_id: String, action: String) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    let action = super::service::Action::parse(&action)
        .ok_or_else(|| AppError::Invalid(format!("Unknown action `{action}`.")))?;
    Ok(super::service::act(
        &ctx.state.db,
        &ctx.state.bus,
        &ctx.tenant,
        &ctx.user,
        &crate::domain::UserId::from_outside(user_id),
        action,
    )
    .await?)
}

#[server(endpoint = "users/sessions")]
pub async fn user_sessions(user_id: String) -> Result<Vec<SessionRow>, AppError> {
    let ctx = crate::server::context::admin().await?;
    Ok(super::service::sessions(
        &ctx.state.db,
        &ctx.tenant,
        &crate::domain::UserId::from_outside(user_id),
    )
    .await?)
}

#[server(endpoint = "users/revoke_session")]
pub async fn revoke_session(session_id: String) -> Result<(), AppError> {
    let ctx = crate::server::context::admin().await?;
    Ok(super::service::revoke_session(
        &ctx.state.db,
        &ctx.state.bus,
        &ctx.tenant,
        &ctx.user,
        &crate::domain::SessionId::from_outside(session_id),
    )
    .await?)
}
