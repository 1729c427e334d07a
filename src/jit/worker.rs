//! Ends accounts in customers' tenants: those whose window is over, and those whose
//! technician lost access in Gatehouse (`users::access::revoke_all_access` marks them
//! ending). It wakes when access ends anywhere (the bus), when a window or a retry is due,
//! and at least every ten seconds. An end is recorded only when Microsoft confirmed it; until
//! then it is retried with a growing wait, and shown.

use super::service::end_at_microsoft;
use super::store::{self, JitAccount};
use crate::audit::{self, Actor};
use crate::customers::store as customers;
use crate::entra::EntraClient;
use crate::server::bus::{Bus, Event};
use crate::server::db::Db;
use crate::server::util::now;
use futures::StreamExt;
use std::time::Duration;

/// The longest the worker sleeps: how late it finds an account marked ending without an
/// event (a role changed by the admin group at a run or a sign-in).
const TICK: Duration = Duration::from_secs(10);
/// How long a replica holds an account it is ending before another may try.
const CLAIM_SECS: i64 = 120;
/// How many customers' accounts are ended at once.
const AT_ONCE: usize = 16;

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub ended: usize,
    pub retrying: usize,
}

pub async fn run_until_stopped(db: Db, bus: Bus, entra: Option<EntraClient>) -> anyhow::Result<()> {
    let Some(entra) = entra else {
        std::future::pending::<()>().await;
        return Ok(());
    };
    let mut events = bus.subscribe();
    loop {
        match try_once(&db, &entra).await {
            Ok(o) if o != Outcome::default() => {
                tracing::info!(
                    ended = o.ended,
                    retrying = o.retrying,
                    "customer accounts ended"
                )
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = ?err, "the customer account worker could not look for work")
            }
        }
        let wait = match store::next_due(&db).await {
            Ok(Some(at)) => Duration::from_millis(((at - now()).max(0) as u64) * 1000 + 50),
            _ => TICK,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait.min(TICK)) => {}
            _ = access_ended(&mut events) => {}
        }
    }
}

/// Waits for an event after which an account may be ending (a user signed out everywhere or
/// offboarded, on any replica, or events this replica may have missed), then takes every
/// event already waiting.
async fn access_ended(events: &mut tokio::sync::broadcast::Receiver<Event>) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    loop {
        match events.recv().await {
            Ok(
                Event::SignedOut { .. }
                | Event::UserOffboarded { .. }
                | Event::AccountsEnding
                | Event::MayHaveMissed,
            )
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

/// Ends every account due now that this replica claims.
pub async fn try_once(db: &Db, entra: &EntraClient) -> anyhow::Result<Outcome> {
    let at = now();
    store::end_windows_over(db, at).await?;
    let due = store::claim_due(db, at, at + CLAIM_SECS).await?;
    let results: Vec<anyhow::Result<bool>> = futures::stream::iter(due)
        .map(|account| end_one(db, entra, account))
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let mut outcome = Outcome::default();
    for r in results {
        match r? {
            true => outcome.ended += 1,
            false => outcome.retrying += 1,
        }
    }
    metrics::gauge!("gatehouse_customer_accounts_ending").set(outcome.retrying as f64);
    Ok(outcome)
}

/// One account's end: true when Microsoft confirmed it.
#[tracing::instrument(skip_all, fields(account = %account.id, upn = %account.upn))]
async fn end_one(db: &Db, entra: &EntraClient, account: JitAccount) -> anyhow::Result<bool> {
    let Some(customer) = customers::get(db, &account.customer_id).await? else {
        anyhow::bail!("the account's customer is not there");
    };
    match end_at_microsoft(entra, &customer, &account).await {
        Ok(()) => {
            let at = now();
            let mut tx = db.pool.begin().await?;
            store::ended(&mut *tx, &account.id, at).await?;
            customers::ends_go_through(&mut *tx, &customer.id).await?;
            let took = at - account.end_requested_at.unwrap_or(at);
            audit::record(
                &mut *tx,
                Some(&account.tenant_id),
                Actor::Command("gatehouse"),
                audit::Event::JitEnded {
                    upn: &account.upn,
                    customer: &customer.name,
                    reason: account.end_reason.as_deref().unwrap_or("access ended"),
                    took_secs: took,
                },
            )
            .await?;
            tx.commit().await?;
            metrics::histogram!("gatehouse_customer_account_end_seconds")
                .record(took.max(0) as f64);
            Ok(true)
        }
        Err(e) => {
            let wait = backoff(account.end_attempts);
            let error = e.to_string();
            tracing::warn!(error = %error, attempts = account.end_attempts + 1, retry_in_secs = wait, "an account at a customer is not ended yet");
            store::end_failed(db, &account.id, &error, now() + wait).await?;
            // A lasting refusal (consent revoked, a permission removed) is the customer's
            // health too: nothing opens there while its ends do not go through.
            if e.health().is_some() {
                customers::ends_refused(&db.pool, &customer.id, &error).await?;
            }
            if account.end_attempts == 0 {
                audit::record(
                    &db.pool,
                    Some(&account.tenant_id),
                    Actor::Command("gatehouse"),
                    audit::Event::JitEndRetrying {
                        upn: &account.upn,
                        customer: &customer.name,
                        error: &error,
                    },
                )
                .await?;
            }
            Ok(false)
        }
    }
}

/// The wait before the next try after `attempts` failed ones: 5 s, doubling, at most 10 min.
fn backoff(attempts: i64) -> i64 {
    (5_i64 << attempts.clamp(0, 7)).min(600)
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_come_sooner_first_and_never_more_than_ten_minutes_apart() {
        let waits: Vec<i64> = (0..10).map(super::backoff).collect();
        assert_eq!(&waits[..5], &[5, 10, 20, 40, 80]);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap(), 600);
    }
}
