//! Runs each azuread tenant's reconciliation on its own interval.

use super::run::{reconcile, Trigger};
use crate::entra::EntraClient;
use crate::server::bus::{Bus, Event};
use crate::server::db::Db;
use crate::server::util::now;
use crate::tenants::service as tenants;
use std::time::Duration;

/// How often the scheduler looks for tenants that are due.
const TICK: Duration = Duration::from_secs(30);

/// How long a tenant's run waits after the latest change notification: the notifications of
/// one burst (an admin removing twenty people, Microsoft repeating itself) make one run...
pub const DEBOUNCE_SECS: i64 = 2;
/// ...but a run waits at most this long after the first notification it will cover.
pub const LONGEST_WAIT_SECS: i64 = 10;

/// Reconciles due tenants until the process stops: every `TICK`, and a moment after a change
/// notification for any tenant (heard on the bus, from whichever replica received it). Without
/// an Entra app configured there is nothing to reconcile and the scheduler waits.
pub async fn run_until_stopped(db: Db, bus: Bus, entra: Option<EntraClient>) -> anyhow::Result<()> {
    let Some(entra) = entra else {
        std::future::pending::<()>().await;
        return Ok(());
    };
    let mut events = bus.subscribe();
    loop {
        if let Err(err) = try_once(&db, &bus, &entra).await {
            tracing::warn!(error = ?err, "the reconcile scheduler could not look for due tenants");
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = notified(&mut events) => {
                // The run is booked `DEBOUNCE_SECS` after the notification: look just after.
                tokio::time::sleep(Duration::from_millis(DEBOUNCE_SECS as u64 * 1000 + 200)).await;
            }
        }
    }
}

/// Waits for a change notification (or for events lost while this replica was busy, which
/// may have been one), then takes every event already waiting: a burst wakes it once.
async fn notified(events: &mut tokio::sync::broadcast::Receiver<Event>) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    loop {
        match events.recv().await {
            Ok(Event::ChangeNotified { .. }) | Err(RecvError::Lagged(_)) => break,
            Ok(_) => {}
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
    while !matches!(
        events.try_recv(),
        Err(TryRecvError::Empty | TryRecvError::Closed)
    ) {}
}

/// Reconciles every tenant that is due now; returns how many ran.
pub async fn try_once(db: &Db, bus: &Bus, entra: &EntraClient) -> anyhow::Result<usize> {
    let at = now();
    let due = tenants::due_for_reconcile(db, at).await?;
    for (tenant_id, interval, notified_at) in &due {
        // Book the next slot first, so a slow run is not started twice by this instance.
        tenants::book_reconcile(&db.pool, tenant_id, at + interval.clamp(&60, &86_400)).await?;
        let trigger = match notified_at {
            Some(_) => Trigger::Notification,
            None => Trigger::Schedule,
        };
        let report = reconcile(db, bus, entra, tenant_id, trigger, false).await?;
        tracing::info!(tenant = %tenant_id, trigger = trigger.as_str(), outcome = report.outcome.as_str(), offboarded = report.offboarded.len(), "scheduled reconciliation");
    }
    Ok(due.len())
}
