//! Executes a plan: every offboarding in one transaction, idempotent; then, once it has
//! committed, tells open pages and records when access ended.

use crate::audit::{self, Actor};
use crate::domain::{Reason, TenantId, UserId};
use crate::server::bus::{Bus, Event};
use crate::server::db::Db;
use crate::server::util::now;
use crate::users::access::{revoke_all_access, Subject};
use crate::users::store as users;

/// Someone a run or an approval offboards, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaving {
    pub user_id: UserId,
    pub reason: Reason,
}

/// A user offboarded by this transaction, and when the change was first seen.
pub struct Gone {
    pub user_id: UserId,
    pub seen_at: i64,
}

/// Offboards users and returns who was offboarded now: the status, then everything
/// `revoke_all_access` ends (sessions, the tenant's phone bindings, unused approvals) and an
/// audit event each. `found_at` is when the run that found them began (a notification about
/// a user counts from its arrival instead). Users already offboarded are left as they are,
/// so applying the same plan twice changes nothing the second time.
pub async fn offboard(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    actor: Actor<'_>,
    leaving: &[Leaving],
    found_at: i64,
) -> anyhow::Result<Vec<Gone>> {
    let decided_at = now();
    let mut done = Vec::new();
    for Leaving { user_id, reason } in leaving {
        let Some((username, seen_at)) =
            users::offboard(tx, tenant_id, user_id, reason, found_at, decided_at).await?
        else {
            continue;
        };
        done.push(Gone {
            user_id: user_id.clone(),
            seen_at,
        });
        let who = Subject {
            tenant_id,
            user_id,
            username: &username,
        };
        // `ended` announces the sign-out of everyone in `done` once this commits.
        let _ended = revoke_all_access(
            tx,
            &who,
            audit::Ending::Offboarded,
            actor,
            &reason.to_string(),
        )
        .await?;
    }
    Ok(done)
}

/// After the offboarding committed: every open page of these users leaves, on every
/// replica; their access ended now, which is recorded and measured from first sight.
pub async fn ended(db: &Db, bus: &Bus, gone: &[Gone]) {
    if gone.is_empty() {
        return;
    }
    metrics::counter!("gatehouse_offboardings_total").increment(gone.len() as u64);
    for g in gone {
        bus.publish(Event::UserOffboarded {
            user_id: g.user_id.clone(),
        })
        .await;
    }
    let at = now();
    for g in gone {
        metrics::histogram!("gatehouse_offboarding_seconds").record((at - g.seen_at).max(0) as f64);
    }
    let ids: Vec<UserId> = gone.iter().map(|g| g.user_id.clone()).collect();
    if let Err(err) = users::access_ended(db, &ids, at).await {
        // Access has ended all the same; only the timeline lacks its last point.
        tracing::warn!(error = %err, "when offboarded users' access ended could not be recorded");
    }
}

/// Moves a record to the account's address in the domain when Entra no longer lists the one
/// it had, unless another user of the tenant already has that address. Audited.
pub async fn rename(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    renames: &[super::plan::Rename],
) -> anyhow::Result<()> {
    for r in renames {
        let Ok(email) = crate::domain::Email::parse(&r.email) else {
            continue;
        };
        if let Some(username) = users::move_email(tx, tenant_id, &r.user_id, &email).await? {
            audit::record(
                &mut **tx,
                Some(tenant_id),
                Actor::Reconciler,
                audit::Event::UserRenamed {
                    username: &username,
                    email: email.as_str(),
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Applies the roles the admin group gives, each audited with the group that decided it.
pub async fn roles(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    changes: &[super::plan::RoleChange],
    admin_group: Option<&crate::tenants::store::GroupRef>,
) -> anyhow::Result<()> {
    let group = admin_group.map_or("the admin group", |g| g.name.as_str());
    for change in changes {
        let user = users::get(tx, &change.user_id).await?;
        users::set_role(tx, &change.user_id, change.role).await?;
        let why = crate::users::service::role_by_group(change.role, group);
        audit::record(
            &mut **tx,
            Some(tenant_id),
            Actor::Reconciler,
            audit::Event::RoleChanged {
                username: &user.username,
                why: &why,
            },
        )
        .await?;
    }
    Ok(())
}
