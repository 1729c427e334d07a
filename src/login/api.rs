use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The signed-in person, as pages show them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub role: crate::domain::Role,
    pub tenant_name: String,
    pub demo: bool,
    pub base_url: String,
}

/// Who is signed in on this tenant.
#[server(endpoint = "me")]
pub async fn whoami() -> Result<Me, AppError> {
    let ctx = crate::server::context::signed_in().await?;
    Ok(Me {
        username: ctx.user.username.clone(),
        email: ctx.user.email.clone(),
        display_name: ctx.user.display_name(),
        role: ctx.user.role,
        tenant_name: ctx.tenant.name.clone(),
        demo: ctx.state.config.demo,
        base_url: ctx.state.config.public_url.clone(),
    })
}
