//! What Gatehouse does with a delivery of change notifications: each item checked against
//! the subscription it names (`receive::check`); for each tenant with a genuine one, when
//! each account's change was first seen, and a reconcile run booked a moment later (the run
//! decides what the change was).

use super::receive::{check, Collection, Refusal};
use super::store;
use crate::domain::SubscriptionId;
use crate::reconciler::scheduler::{DEBOUNCE_SECS, LONGEST_WAIT_SECS};
use crate::server::bus::{Bus, Event};
use crate::server::db::Db;
use crate::server::util::now;
use crate::users::store as users;
use std::collections::{BTreeSet, HashMap};

/// A delivery names one subscription (Microsoft batches per subscription); a body naming
/// more than this many is not Microsoft's, and the rest is refused without a lookup.
const MOST_SUBSCRIPTIONS_LOOKED_UP: usize = 4;

/// Microsoft delivers at most a few hundred changes at once; beyond this many accounts in one
/// delivery the rest count as seen when the run finds them.
const MOST_ACCOUNTS_NOTED: usize = 1000;

/// Checks every item and books a run for each tenant that had a genuine one; how many
/// items were genuine.
pub async fn accept(db: &Db, bus: &Bus, collection: &Collection) -> anyhow::Result<usize> {
    let ids: BTreeSet<&str> = collection
        .value
        .iter()
        .map(|i| i.subscription_id.as_str())
        .collect();
    let mut known = HashMap::new();
    for id in ids.into_iter().take(MOST_SUBSCRIPTIONS_LOOKED_UP) {
        if let Some(sub) = store::find(db, &SubscriptionId::from_microsoft(id)).await? {
            known.insert(id, sub);
        }
    }
    let at = now();
    let mut genuine = 0;
    let mut tenants_told = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    for item in &collection.value {
        let sub = known.get(item.subscription_id.as_str());
        match check(item, sub) {
            Ok(()) => {
                genuine += 1;
                if let Some(sub) = sub {
                    tenants_told.insert((sub.tenant_id.clone(), sub.subscription_id.clone()));
                    if let Some(oid) = item.account() {
                        accounts.insert((&sub.tenant_id, oid));
                    }
                    if item.lifecycle_event.is_some() {
                        // Renewed by the keeper, which wakes with the run's event below.
                        store::renewed(db, &sub.subscription_id, 0).await?;
                    }
                }
            }
            Err(why) => refused(why, item.subscription_id.as_str()),
        }
    }
    // When each change was first seen, for the offboarding's timeline; the run decides
    // what the change was.
    for (tenant_id, oid) in accounts.into_iter().take(MOST_ACCOUNTS_NOTED) {
        users::note_change_seen(db, tenant_id, oid, at).await?;
    }
    for (tenant_id, subscription_id) in &tenants_told {
        crate::reconciler::schedule::note_change(
            db,
            tenant_id,
            at,
            DEBOUNCE_SECS,
            LONGEST_WAIT_SECS,
        )
        .await?;
        store::heard(db, subscription_id, at).await?;
        bus.publish(Event::ChangeNotified {
            tenant_id: tenant_id.clone(),
        })
        .await;
    }
    count("accepted", genuine);
    Ok(genuine)
}

/// `claimed` is the subscription id as the refused item gave it: text from anyone.
fn refused(why: Refusal, claimed: &str) {
    count(why.as_str(), 1);
    tracing::warn!(
        reason = why.as_str(),
        subscription = %claimed.chars().take(64).collect::<String>(),
        "a change notification was refused"
    );
}

pub(super) fn count(outcome: &'static str, n: usize) {
    metrics::counter!("gatehouse_entra_notifications_total", "outcome" => outcome)
        .increment(n as u64);
}
