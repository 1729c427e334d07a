use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The tenant's current user source as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceView {
    pub user_source: String,
    pub jit_prefix: String,
    pub entra_configured: bool,
}

#[server(endpoint = "user_source/get")]
pub async fn get_source() -> Result<SourceView, AppError> {
    let ctx = crate::server::context::admin().await?;
    Ok(SourceView {
        user_source: ctx.tenant.user_source.clone(),
        jit_prefix: ctx.tenant.jit_prefix.clone(),
        entra_configured: ctx.state.config.entra.client_id.is_some() || ctx.state.config.demo,
    })
}
