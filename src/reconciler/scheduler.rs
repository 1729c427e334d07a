//! Runs each azuread tenant's reconciliation on its own interval.

use super::run::{reconcile, Trigger};
use crate::entra::EntraClient;
use crate::server::bus::Bus;
use crate::server::db::Db;
use crate::server::util::now;
use crate::tenants::service as tenants;
use std::time::Duration;

/// How often the scheduler looks for tenants that are due.
const TICK: Duration = Duration::from_secs(30);

/// Reconciles due tenants until the process stops. Without an Entra app configured there
/// is nothing to reconcile and the scheduler waits.
pub async fn run_until_stopped(db: Db, bus: Bus, entra: Option<EntraClient>) -> anyhow::Result<()> {
    let Some(entra) = entra else {
        std::future::pending::<()>().await;
        return Ok(());
    };
    loop {
        if let Err(err) = try_once(&db, &bus, &entra).await {
            tracing::warn!(error = ?err, "the reconcile scheduler could not look for due tenants");
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Reconciles every tenant that is due now; returns how many ran.
pub async fn try_once(db: &Db, bus: &Bus, entra: &EntraClient) -> anyhow::Result<usize> {
    let at = now();
    let due = tenants::due_for_reconcile(db, at).await?;
    for (tenant_id, interval) in &due {
        // Book the next slot first, so a slow run is not started twice by this instance.
        tenants::book_reconcile(db, tenant_id, at + interval.clamp(&300, &86_400)).await?;
        let report = reconcile(db, bus, entra, tenant_id, Trigger::Schedule, false).await?;
        tracing::info!(tenant = %tenant_id, outcome = report.outcome.as_str(), offboarded = report.offboarded.len(), "scheduled reconciliation");
    }
    Ok(due.len())
}
