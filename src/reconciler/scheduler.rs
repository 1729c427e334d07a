//! Runs each azuread tenant's reconciliation on its own interval.

use super::run::{reconcile, Outcome, Trigger};
use super::schedule;
use crate::entra::EntraClient;
use crate::server::bus::{Bus, Event};
use crate::server::db::Db;
use crate::server::util::now;
use std::time::Duration;

/// How often the scheduler looks for tenants that are due.
const TICK: Duration = Duration::from_secs(30);

/// How long a tenant's run waits after the latest change notification: the notifications of
/// one burst (an admin removing twenty people, Microsoft repeating itself) make one run...
pub const DEBOUNCE_SECS: i64 = 2;
/// ...but a run waits at most this long after the first notification it will cover, so a
/// steady stream (an admin deleting people one a second) still ends access within seconds.
pub const LONGEST_WAIT_SECS: i64 = 5;

/// A run that could not take its tenant's lease is due again this much later.
const RETRY_SECS: i64 = 3;

/// Reconciles due tenants until the process stops: it sleeps until the soonest booked run
/// (at most `TICK`), and wakes when a change notification arrives or a tenant's settings
/// change (heard on the bus, from whichever replica took them) to look at the run they may
/// have booked: saving the groups or connecting makes one due at once, and it starts at
/// once. Without an Entra app configured there is nothing to reconcile and the scheduler
/// waits.
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
        let wait = match schedule::next_reconcile_due(&db).await {
            Ok(Some(at)) => until(at),
            _ => TICK,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait.min(TICK)) => {}
            _ = booked(&mut events) => {}
        }
    }
}

/// How long until second `at` has begun (a little after, so the run is due when looked at);
/// a little while when it has begun already, so a run another replica is claiming is not
/// looked at in a tight loop.
fn until(at: i64) -> Duration {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Duration::from_millis((at * 1000 - now_ms).max(0) as u64 + 100)
}

/// Waits for an event that may have booked a run (a change notification, a tenant's changed
/// settings, or events lost while this replica was busy, which may have been one), then takes
/// every event already waiting: a burst wakes it once.
async fn booked(events: &mut tokio::sync::broadcast::Receiver<Event>) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    loop {
        match events.recv().await {
            Ok(Event::ChangeNotified { .. } | Event::TenantChanged { .. })
            | Ok(Event::MayHaveMissed)
            | Err(RecvError::Lagged(_)) => break,
            Ok(_) => {}
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
    while !matches!(
        events.try_recv(),
        Err(TryRecvError::Empty | TryRecvError::Closed)
    ) {}
}

/// Reconciles every tenant that is due now and that this replica claims (replicas that find
/// the same run due at once run it once); returns how many ran.
pub async fn try_once(db: &Db, bus: &Bus, entra: &EntraClient) -> anyhow::Result<usize> {
    let at = now();
    let mut ran = 0;
    for due in schedule::due_for_reconcile(db, at).await? {
        // Book the next slot first, so a slow run is not started twice.
        let next = at + due.interval_secs.clamp(60, 86_400);
        if !schedule::claim_reconcile(db, &due, next).await? {
            continue;
        }
        let trigger = match due.notified_at {
            Some(_) => Trigger::Notification,
            None => Trigger::Schedule,
        };
        let report = reconcile(db, bus, entra, &due.tenant_id, trigger, false).await?;
        tracing::info!(tenant = %due.tenant_id, trigger = trigger.as_str(), outcome = report.outcome.as_str(), offboarded = report.offboarded.len(), "scheduled reconciliation");
        if report.outcome == Outcome::Skipped {
            // Whatever holds the lease may have begun before the changes this run was for.
            schedule::retry_reconcile(db, &due, now() + RETRY_SECS).await?;
        } else {
            ran += 1;
        }
    }
    Ok(ran)
}
