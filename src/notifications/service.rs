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

/// Checks every item and books a run for each tenant that had a genuine one; how many
/// items were genuine.
pub async fn accept(db: &Db, bus: &Bus, collection: &Collection) -> anyhow::Result<usize> {
    let ids: BTreeSet<&str> = collection
        .value
        .read
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
    let mut refusals = Refusals::default();
    for item in &collection.value.read {
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
            Err(why) => refusals.add(why, &item.subscription_id),
        }
    }
    // When each change was first seen, for the offboarding's timeline (at most one per item
    // read; changes past those count as seen when the run finds them); the run decides what
    // the change was.
    for (tenant_id, oid) in accounts {
        users::note_change_seen(db, tenant_id, &oid, at).await?;
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
    refusals.report(collection.value.skipped);
    Ok(genuine)
}

/// The items of one delivery that were refused, counted by reason: one log line per
/// delivery, however many there were.
#[derive(Default)]
struct Refusals<'a> {
    by_reason: std::collections::BTreeMap<&'static str, usize>,
    /// The subscription id the first refused item gave: text from anyone.
    first_claimed: Option<&'a str>,
}

impl<'a> Refusals<'a> {
    fn add(&mut self, why: Refusal, claimed: &'a str) {
        *self.by_reason.entry(why.as_str()).or_default() += 1;
        self.first_claimed.get_or_insert(claimed);
    }

    /// Counts and logs the refusals, and the items `skipped` unread past `MOST_ITEMS_READ`.
    fn report(self, skipped: usize) {
        if skipped > 0 {
            count("skipped", skipped);
        }
        let Some(claimed) = self.first_claimed else {
            return;
        };
        for (reason, n) in &self.by_reason {
            count(reason, *n);
        }
        // The claimed id is logged quoted and escaped: a line break in it cannot start a
        // log line of its own.
        tracing::warn!(
            refused = self.by_reason.values().sum::<usize>(),
            reasons = ?self.by_reason,
            skipped,
            subscription = ?claimed.chars().take(64).collect::<String>(),
            "change notifications were refused"
        );
    }
}

pub(super) fn count(outcome: &'static str, n: usize) {
    metrics::counter!("gatehouse_entra_notifications_total", "outcome" => outcome)
        .increment(n as u64);
}
