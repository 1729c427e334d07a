pub use super::view::{
    HeldRun, NotificationsLive, OffboardingRow, ReconcileView, RunRow, TimeToRevoke,
};
use crate::error::AppError;
use leptos::prelude::*;

#[server(endpoint = "reconcile/view")]
pub async fn reconciliation() -> Result<ReconcileView, AppError> {
    let ctx = crate::server::context::admin().await?;
    Ok(super::service::view(&ctx.state.db, &ctx.tenant.id).await?)
}

/// Runs a reconciliation now (`dry_run`: only say who would be offboarded).
#[server(endpoint = "reconcile/sync")]
pub async fn sync_now(dry_run: bool) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    super::service::sync_now(
        &ctx.state.db,
        &ctx.state.bus,
        ctx.state.entra.as_ref(),
        &ctx.tenant,
        &ctx.user,
        dry_run,
    )
    .await
}

/// Approves a held run (its users are looked up in Entra ID again first) or rejects it;
/// `seen` is how many users the list held when the page showed it, and an approval covers
/// that list only.
#[server(endpoint = "reconcile/decide")]
pub async fn decide_held(run_id: i64, approve: bool, seen: usize) -> Result<String, AppError> {
    use super::service::Decision;
    let ctx = crate::server::context::admin().await?;
    let decision = if approve {
        Decision::Approve(super::Shown {
            run_id,
            users: seen,
        })
    } else {
        Decision::Reject { run_id }
    };
    super::service::decide(
        &ctx.state.db,
        &ctx.state.bus,
        ctx.state.entra.as_ref(),
        &ctx.tenant,
        &ctx.user,
        decision,
    )
    .await
}
