pub use super::view::AuditEntry;
use crate::error::AppError;
use leptos::prelude::*;

#[server(endpoint = "audit/list")]
pub async fn list_audit() -> Result<Vec<AuditEntry>, AppError> {
    let ctx = crate::server::context::admin().await?;
    Ok(super::service::list(&ctx.state.db, &ctx.tenant.id, 500).await?)
}
