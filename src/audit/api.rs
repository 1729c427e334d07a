use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One audit event as the Audit log page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    /// The request that made the change (its `x-request-id`, in the logs), if a request did.
    pub request: Option<String>,
}

#[server(endpoint = "audit/list")]
pub async fn list_audit() -> Result<Vec<AuditEntry>, AppError> {
    let ctx = crate::server::context::admin().await?;
    Ok(super::service::list(&ctx.state.db, &ctx.tenant.id, 500).await?)
}
