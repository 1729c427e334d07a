//! One Graph subscription per connected tenant, kept alive: created when the tenant connects,
//! renewed days before it expires, made anew when Graph no longer has it, ended when the
//! tenant disconnects or reconnects to another Entra tenant (there, in the one it left). Each tenant's upkeep holds the tenant's reconcile lease, so one replica
//! at a time does it.

use super::store;
use crate::domain::{EntraTenantId, TenantId};
use crate::entra::{EntraClient, EntraError};
use crate::reconciler::lease::Lease;
use crate::server::bus::{Bus, Event};
use crate::server::db::Db;
use crate::server::util::{now, random_id};
use crate::tenants::store as tenants;
use secrecy::SecretString;
use std::time::Duration;

/// Microsoft's longest lifetime for a subscription on users is 41 760 minutes (29 days);
/// Gatehouse asks for an hour less, so clocks that disagree a little are not refused.
/// https://learn.microsoft.com/en-us/graph/change-notifications-overview#subscription-lifetime
const LIFETIME_SECS: i64 = 41_760 * 60 - 3600;
/// A subscription with less than this left is renewed.
const RENEW_WITHIN_SECS: i64 = 3 * 86_400;
/// How often every tenant's subscription is looked at, besides when a tenant changes.
const TICK: Duration = Duration::from_secs(3600);
/// How long a subscription goes without Graph being asked whether it still has it (so every
/// hourly pass asks, and passes brought forward by events do not).
const CHECK_EVERY_SECS: i64 = 55 * 60;

/// Where Graph delivers: the notification URL and the lifecycle URL.
#[derive(Debug, Clone)]
pub struct Urls {
    pub notifications: String,
    pub lifecycle: String,
}

/// Keeps the subscriptions until the process stops: at start, every `TICK`, and when a
/// tenant's settings change (it connected or disconnected). Without an Entra app, or without
/// a URL Graph can deliver to, there is nothing to keep.
pub async fn run_until_stopped(db: Db, bus: Bus, entra: Option<EntraClient>, urls: Option<Urls>) {
    let (Some(entra), Some(urls)) = (entra, urls) else {
        return std::future::pending().await;
    };
    let mut events = bus.subscribe();
    loop {
        keep_all(&db, &entra, &urls).await;
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = tenant_changed(&mut events) => {}
        }
    }
}

/// Waits for a tenant change or a notification (a lifecycle event brings a renewal forward),
/// then takes every event already waiting: a burst of notifications is one pass.
async fn tenant_changed(events: &mut tokio::sync::broadcast::Receiver<Event>) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    loop {
        match events.recv().await {
            Ok(Event::TenantChanged { .. } | Event::ChangeNotified { .. })
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

/// One pass over every tenant; a tenant whose upkeep fails is tried again next pass.
pub async fn keep_all(db: &Db, entra: &EntraClient, urls: &Urls) {
    match store::orphaned(db).await {
        Ok(gone) => {
            for sub in gone {
                if let Err(err) = end(db, entra, &sub).await {
                    tracing::warn!(tenant = %sub.tenant_id, error = %err, "a subscription of a disconnected tenant could not be ended; trying again later");
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "subscriptions could not be read"),
    }
    let connected = match tenants::connected_to_entra(db).await {
        Ok(c) => c,
        Err(err) => {
            tracing::warn!(error = %err, "connected tenants could not be read");
            return;
        }
    };
    for (tenant_id, entra_tenant_id) in connected {
        if let Err(err) = keep(db, entra, urls, &tenant_id, &entra_tenant_id).await {
            tracing::warn!(tenant = %tenant_id, error = %err, "the tenant's change subscription could not be kept; polling goes on");
            // What Microsoft said about the connection (consent revoked, credentials refused)
            // is the tenant's health, as when a reconcile run meets it.
            let health = err
                .downcast_ref::<EntraError>()
                .and_then(EntraError::health);
            if let Some(health) = health {
                if let Err(err) = tenants::set_entra_health(db, &tenant_id, health).await {
                    tracing::warn!(tenant = %tenant_id, error = %err, "the tenant's Entra health could not be recorded");
                }
            }
        }
    }
}

/// What a tenant's subscription needs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upkeep {
    Nothing,
    /// Ask Graph whether it still has it.
    Check,
    /// Renew it (or make one: there is none, or Graph lost it).
    Renew,
    /// End it where it was made, and make one in the Entra tenant connected now.
    Replace,
}

fn upkeep(current: Option<&store::Subscription>, connected: &EntraTenantId, at: i64) -> Upkeep {
    match current {
        None => Upkeep::Renew,
        Some(s)
            if s.made_in
                .as_ref()
                .is_some_and(|m| !m.is(connected.as_str())) =>
        {
            Upkeep::Replace
        }
        Some(s) if s.expires_at - at <= RENEW_WITHIN_SECS => Upkeep::Renew,
        Some(s) if at - s.checked_at >= CHECK_EVERY_SECS => Upkeep::Check,
        Some(_) => Upkeep::Nothing,
    }
}

/// Makes sure the tenant has a live subscription with more than `RENEW_WITHIN_SECS` left,
/// and, every hour, that Graph still has it.
pub async fn keep(
    db: &Db,
    entra: &EntraClient,
    urls: &Urls,
    tenant_id: &TenantId,
    entra_tenant_id: &EntraTenantId,
) -> anyhow::Result<()> {
    let current = store::of_tenant(db, tenant_id).await?;
    if upkeep(current.as_ref(), entra_tenant_id, now()) == Upkeep::Nothing {
        return Ok(());
    }
    let Some(lease) = lease_when_free(db, tenant_id).await? else {
        // Another replica has held the tenant all this while; the next pass tries again.
        return Ok(());
    };
    // Looked at again under the lease: whoever held it may have kept the subscription.
    let current = store::of_tenant(db, tenant_id).await?;
    let needed = upkeep(current.as_ref(), entra_tenant_id, now());
    let result = match (needed, current) {
        (Upkeep::Nothing, _) => Ok(()),
        // Its notifications would be refused (they name the Entra tenant the tenant left)
        // for up to 29 days: it is ended there first.
        (Upkeep::Replace, Some(old)) => match end(db, entra, &old).await {
            Ok(()) => {
                renew_or_create(db, entra, urls, tenant_id, entra_tenant_id, None, needed).await
            }
            Err(err) => Err(err),
        },
        (_, current) => {
            renew_or_create(db, entra, urls, tenant_id, entra_tenant_id, current, needed).await
        }
    };
    lease.release().await;
    result
}

/// How long the upkeep waits for a tenant's lease. A saved setting wakes the keeper and the
/// scheduler together, and the run it made due often takes the lease first: giving up then
/// would leave a newly connected tenant without change notifications until the next hourly
/// pass. A run holds the lease for seconds; a crashed holder's lapses within 20.
const LEASE_PATIENCE: Duration = Duration::from_secs(30);

/// The tenant's lease, once whatever holds it (a run, a held run's decision) lets it go.
async fn lease_when_free(db: &Db, tenant_id: &TenantId) -> anyhow::Result<Option<Lease>> {
    let started = std::time::Instant::now();
    loop {
        if let Some(lease) = Lease::acquire(db, tenant_id).await? {
            return Ok(Some(lease));
        }
        if started.elapsed() >= LEASE_PATIENCE {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn renew_or_create(
    db: &Db,
    entra: &EntraClient,
    urls: &Urls,
    tenant_id: &TenantId,
    entra_tenant_id: &EntraTenantId,
    current: Option<store::Subscription>,
    needed: Upkeep,
) -> anyhow::Result<()> {
    let graph = entra.graph(entra_tenant_id).await?;
    let at = now();
    if let Some(sub) = current {
        let kept = if needed == Upkeep::Check {
            graph.subscription_exists(&sub.subscription_id).await
        } else {
            match graph
                .renew_subscription(&sub.subscription_id, at + LIFETIME_SECS)
                .await
            {
                Ok(renewed) => {
                    store::renewed(db, &sub.subscription_id, renewed.expires_at).await?;
                    tracing::info!(tenant = %tenant_id, subscription = %sub.subscription_id, "change subscription renewed");
                    Ok(true)
                }
                // Expired or deleted at Microsoft.
                Err(EntraError::Graph { status: 404, .. }) => Ok(false),
                Err(err) => Err(err),
            }
        };
        if kept? {
            store::checked(db, &sub.subscription_id, at).await?;
            return Ok(());
        }
        tracing::warn!(tenant = %tenant_id, subscription = %sub.subscription_id, "Graph no longer has the change subscription; making a new one");
        store::forget(db, &sub.subscription_id).await?;
    }
    let client_state = SecretString::from(random_id(48));
    let created = graph
        .subscribe_to_users(
            &urls.notifications,
            &urls.lifecycle,
            &client_state,
            at + LIFETIME_SECS,
        )
        .await?;
    store::record(
        db,
        tenant_id,
        entra_tenant_id,
        &created.id,
        secrecy::ExposeSecret::expose_secret(&client_state),
        created.expires_at,
        at,
    )
    .await?;
    tracing::info!(tenant = %tenant_id, subscription = %created.id, "change subscription created");
    Ok(())
}

/// Ends a subscription at Graph, in the Entra tenant it was made in, and forgets it.
async fn end(db: &Db, entra: &EntraClient, sub: &store::Subscription) -> anyhow::Result<()> {
    // One made before Gatehouse recorded where: the tenant's connection (a tenant switched
    // to its own directory still names the Entra tenant it left).
    if let Some(entra_tenant_id) = sub.made_in.as_ref().or(sub.entra_tenant_id.as_ref()) {
        entra
            .graph(entra_tenant_id)
            .await?
            .unsubscribe(&sub.subscription_id)
            .await?;
    }
    store::forget(db, &sub.subscription_id).await?;
    tracing::info!(tenant = %sub.tenant_id, subscription = %sub.subscription_id, "change subscription ended");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contoso() -> EntraTenantId {
        EntraTenantId::from_microsoft("contoso")
    }

    fn sub(expires_at: i64, checked_at: i64) -> store::Subscription {
        store::Subscription {
            subscription_id: crate::domain::SubscriptionId::from_microsoft("s1"),
            tenant_id: crate::domain::TenantId::from_outside("t1"),
            entra_tenant_id: Some(contoso()),
            made_in: Some(contoso()),
            client_state_sha256: String::new(),
            expires_at,
            last_notification_at: None,
            checked_at,
        }
    }

    #[test]
    fn a_tenant_without_a_subscription_gets_one() {
        assert_eq!(upkeep(None, &contoso(), 1_000), Upkeep::Renew);
    }

    #[test]
    fn a_subscription_is_renewed_three_days_before_it_ends_and_checked_hourly() {
        let at = 10_000_000;
        let far = at + 20 * 86_400;
        assert_eq!(
            upkeep(Some(&sub(far, at - 60)), &contoso(), at),
            Upkeep::Nothing
        );
        assert_eq!(
            upkeep(Some(&sub(far, at - 3600)), &contoso(), at),
            Upkeep::Check
        );
        let soon = at + RENEW_WITHIN_SECS;
        assert_eq!(upkeep(Some(&sub(soon, at)), &contoso(), at), Upkeep::Renew);
    }

    #[test]
    fn a_subscription_made_in_another_entra_tenant_is_replaced() {
        let at = 10_000_000;
        let fresh = sub(at + 20 * 86_400, at);
        let fabrikam = EntraTenantId::from_microsoft("fabrikam");
        assert_eq!(upkeep(Some(&fresh), &fabrikam, at), Upkeep::Replace);
        let before_it_was_recorded = store::Subscription {
            made_in: None,
            ..fresh
        };
        assert_eq!(
            upkeep(Some(&before_it_was_recorded), &fabrikam, at),
            Upkeep::Nothing
        );
    }
}
