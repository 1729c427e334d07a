//! An admin's decision on a held run (DESIGN flow 5, deletion threshold). Approving looks at
//! each held user in Graph again and offboards only those still gone or disabled; rejecting
//! offboards nobody and forgets the tenant's delta link, so the next run reads the whole
//! directory and finds again whatever is still true. While a run waits, the runs after it
//! keep the delta link fresh and offboard everyone else as usual. A decision takes the
//! tenant's lease, so it never overlaps a run.

use super::carry_out::{self, Leaving};
use super::lease::Lease;
use super::run::LEASE_LOST;
use super::store;
use crate::audit::{self, Actor};
use crate::domain::{EntraUserId, OffboardReason, Reason, RunOutcome, TenantId, UserId};
use crate::entra::{DirectoryUser, EntraClient, EntraError};
use crate::server::bus::Bus;
use crate::server::db::Db;
use crate::server::util::now;
use crate::tenants::store as tenants;
use crate::users::admins::{AdminChange, Admins};

/// Why an admin's decision on a held run was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("there is no held run {0} waiting for a decision in this tenant")]
    NotHeld(i64),
    #[error("a reconciliation of this tenant is running; decide again in a moment")]
    Busy,
    #[error("the tenant is not connected to Entra ID")]
    NotConnected,
    /// Approving needs a fresh look at every held user; without it nothing is offboarded.
    #[error("Entra ID could not be asked whether the held users are still gone: {0}")]
    Entra(#[from] EntraError),
    /// The scoping group no longer exists: membership of it proves nothing either way.
    #[error("the group \"{0}\" no longer exists in Entra ID")]
    GroupGone(String),
    /// The held list is not the one the admin was shown: offboardings joined it since.
    #[error("the held list changed since it was shown: {shown} users then, {now} now")]
    ListChanged { shown: usize, now: usize },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for DecideError {
    fn from(e: sqlx::Error) -> Self {
        DecideError::Unexpected(e.into())
    }
}

/// What an approval did: usernames offboarded now, those left alone because Entra ID shows
/// them enabled again, and admins kept because they only left a group and were the tenant's
/// last (a group change never takes a tenant's last admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub offboarded: Vec<String>,
    pub back: Vec<String>,
    pub kept: Vec<String>,
}

/// What a fresh `GET /users/{id}` says about a user on a held list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recheck {
    /// Graph does not find them: still deleted.
    StillGone,
    /// Found, and disabled.
    Disabled,
    /// Found, and none of its addresses is in the tenant's domain.
    LeftDomain,
    /// Found and not disabled: restored or re-enabled since the run was held.
    Back,
}

/// Only an explicit `accountEnabled: false` counts as disabled, and only an account whose
/// sign-in name Graph returned can be said to have left the domain, as in `plan`.
fn recheck(found: Option<&DirectoryUser>, domain: &str) -> Recheck {
    match found {
        None => Recheck::StillGone,
        Some(u) if u.account_enabled == Some(false) => Recheck::Disabled,
        Some(u) if u.user_principal_name.is_some() && !has_address_in(u, domain) => {
            Recheck::LeftDomain
        }
        Some(_) => Recheck::Back,
    }
}

/// True when the account's sign-in name, mail, an SMTP proxy address or another mail is in
/// `domain`.
fn has_address_in(u: &DirectoryUser, domain: &str) -> bool {
    u.addresses().any(|a| {
        a.rsplit_once('@')
            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
    })
}

/// A held run as the admin was shown it: an approval covers that list and no other.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    pub run_id: i64,
    /// How many users the list held.
    pub users: usize,
}

/// Approves a held run as the admin was `shown` it: offboards the held users Graph still
/// finds gone or disabled. A list that grew since (a later run's offboardings joined it)
/// is not approved unseen; any Graph error changes nothing, and the run stays held for a
/// later decision.
pub async fn approve(
    db: &Db,
    bus: &Bus,
    entra: &EntraClient,
    tenant_id: &TenantId,
    shown: Shown,
    admin: &str,
) -> Result<Approved, DecideError> {
    let Some(lease) = Lease::acquire(db, tenant_id).await? else {
        return Err(DecideError::Busy);
    };
    let approved = approve_leased(db, bus, entra, &lease, tenant_id, shown, admin).await;
    lease.release().await;
    approved
}

async fn approve_leased(
    db: &Db,
    bus: &Bus,
    entra: &EntraClient,
    lease: &Lease,
    tenant_id: &TenantId,
    shown: Shown,
    admin: &str,
) -> Result<Approved, DecideError> {
    let run_id = shown.run_id;
    // The held users were found by this run (or joined its list from a later one): their
    // changes count as seen from its start.
    let found_at = match store::undecided_run(db, tenant_id).await? {
        Some(run) if run.id == run_id => run.started_at,
        _ => return Err(DecideError::NotHeld(run_id)),
    };
    let link = tenants::entra_link(db, tenant_id).await?;
    let (Some(tid), Some(domain)) = (link.tenant_id.clone(), link.domain.clone()) else {
        return Err(DecideError::NotConnected);
    };
    let held = store::held_users(db, run_id).await?;
    // Under the lease no run adds to the list: it is the one that is approved.
    if held.len() != shown.users {
        return Err(DecideError::ListChanged {
            shown: shown.users,
            now: held.len(),
        });
    }

    // Every held user is looked at before anything is written: one failed lookup and the
    // run stays held as it was.
    let graph = entra.graph(&tid).await?;
    // Membership of a deleted scoping group proves nothing: such a run cannot be approved.
    if let Some(scope) = link.scope_group() {
        if graph.group(&scope.id).await?.is_none() {
            return Err(DecideError::GroupGone(scope.name));
        }
    }
    let mut still_gone = Vec::new();
    let mut back = Vec::new();
    for user in &held {
        let reason = match recheck(graph.user(&user.entra_oid).await?.as_ref(), &domain) {
            // Graph no longer finds them: Entra ended their access, whatever first held them.
            Recheck::StillGone => Some(
                user.reason()
                    .filter(|r| r.code.ended_in_entra())
                    .unwrap_or(Reason::new(OffboardReason::NotInDirectory, None)),
            ),
            Recheck::Disabled => Some(Reason::new(OffboardReason::Disabled, None)),
            Recheck::LeftDomain => Some(Reason::new(OffboardReason::LeftDomain, None)),
            Recheck::Back => outside_scope(&graph, &link, &user.entra_oid).await?,
        };
        match reason {
            Some(reason) => still_gone.push(Leaving {
                user_id: user.user_id.clone(),
                reason,
            }),
            None => back.push(user.username.clone()),
        }
    }

    let mut tx = db.pool.begin().await?;
    if !store::decide(
        &mut tx,
        tenant_id,
        run_id,
        admin,
        RunOutcome::Approved,
        now(),
    )
    .await?
    {
        return Err(DecideError::NotHeld(run_id));
    }
    if !lease.still_held(&mut tx).await? {
        return Err(DecideError::Unexpected(anyhow::anyhow!(LEASE_LOST)));
    }
    // Counted under the tenant's lock, so that a demotion at sign-in cannot slip in between;
    // this run is decided now, so its list no longer counts as waiting.
    let admins = Admins::lock(&mut tx, tenant_id).await?;
    let kept = keep_last_admin(&admins, &mut still_gone, &held);
    let gone = carry_out::offboard(
        &mut tx,
        tenant_id,
        Actor::User(admin),
        &still_gone,
        found_at,
    )
    .await?;
    store::set_offboarded(&mut tx, run_id, gone.len()).await?;
    let offboarded: Vec<String> = held
        .iter()
        .filter(|u| gone.iter().any(|g| g.user_id == u.user_id))
        .map(|u| u.username.clone())
        .collect();
    audit::record(
        &mut *tx,
        Some(tenant_id),
        Actor::User(admin),
        audit::Event::HeldRunApproved {
            run: run_id,
            held: held.len(),
            offboarded: offboarded.len(),
            back: &back,
            kept: &kept_text(&kept),
        },
    )
    .await?;
    tx.commit().await?;
    carry_out::ended(db, bus, &gone).await;
    Ok(Approved {
        offboarded,
        back,
        kept,
    })
}

/// Takes out of `ending` the admins who only left a group, when ending all of it would leave
/// the tenant without an active admin (`users::admins`); returns their usernames. Access
/// Entra ended (deleted, disabled) still ends.
fn keep_last_admin(
    admins: &Admins,
    ending: &mut Vec<Leaving>,
    held: &[store::HeldUser],
) -> Vec<String> {
    let (ended, left): (Vec<&Leaving>, Vec<&Leaving>) =
        ending.iter().partition(|l| l.reason.code.ended_in_entra());
    let change = AdminChange {
        ended: ended.iter().map(|l| l.user_id.clone()).collect(),
        removed: left.iter().map(|l| l.user_id.clone()).collect(),
        promotes: false,
    };
    if !admins.lost_by(&change) {
        return Vec::new();
    }
    let keep: Vec<UserId> = left
        .iter()
        .filter(|l| admins.includes(&l.user_id))
        .map(|l| l.user_id.clone())
        .collect();
    ending.retain(|l| !keep.contains(&l.user_id));
    held.iter()
        .filter(|u| keep.contains(&u.user_id))
        .map(|u| u.username.clone())
        .collect()
}

/// How the approval's message and audit entry name the admins kept.
pub fn kept_text(kept: &[String]) -> String {
    if kept.is_empty() {
        return String::new();
    }
    format!(
        "; kept {}: they left the group in Entra ID, but offboarding them would leave this tenant without an admin (make someone else an admin, then the next run offboards them)",
        kept.join(", ")
    )
}

/// Rejects a held run: nobody is offboarded. The tenant's delta link is forgotten, so the
/// next run reads the whole directory, sees what is still true (and, under the same
/// threshold, holds it again).
/// Returns how many offboardings were dismissed.
pub async fn reject(
    db: &Db,
    tenant_id: &TenantId,
    run_id: i64,
    admin: &str,
) -> Result<usize, DecideError> {
    let Some(lease) = Lease::acquire(db, tenant_id).await? else {
        return Err(DecideError::Busy);
    };
    let rejected = reject_leased(db, &lease, tenant_id, run_id, admin).await;
    lease.release().await;
    rejected
}

async fn reject_leased(
    db: &Db,
    lease: &Lease,
    tenant_id: &TenantId,
    run_id: i64,
    admin: &str,
) -> Result<usize, DecideError> {
    let mut tx = db.pool.begin().await?;
    if !store::decide(
        &mut tx,
        tenant_id,
        run_id,
        admin,
        RunOutcome::Rejected,
        now(),
    )
    .await?
    {
        return Err(DecideError::NotHeld(run_id));
    }
    if !lease.still_held(&mut tx).await? {
        return Err(DecideError::Unexpected(anyhow::anyhow!(LEASE_LOST)));
    }
    let held = store::count_held(&mut tx, run_id).await?;
    store::set_offboarded(&mut tx, run_id, 0).await?;
    tenants::forget_delta_link(&mut tx, tenant_id).await?;
    audit::record(
        &mut *tx,
        Some(tenant_id),
        Actor::User(admin),
        audit::Event::HeldRunRejected { run: run_id, held },
    )
    .await?;
    tx.commit().await?;
    Ok(held as usize)
}

/// With a scoping group: why a held user who is back in Entra still goes (they are in
/// neither the scoping group nor the admin group), or `None`.
async fn outside_scope(
    graph: &crate::entra::Graph,
    link: &tenants::EntraLink,
    oid: &EntraUserId,
) -> Result<Option<Reason>, DecideError> {
    let Some(scope) = link.scope_group() else {
        return Ok(None);
    };
    let mut ids = vec![&scope.id];
    let admins = link.admin_group();
    if let Some(a) = &admins {
        ids.push(&a.id);
    }
    let member_of = graph.member_of(oid, &ids).await?;
    Ok(member_of
        .is_empty()
        .then(|| Reason::new(OffboardReason::LeftGroup, Some(&scope.name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(enabled: Option<bool>) -> DirectoryUser {
        DirectoryUser {
            id: EntraUserId::from_microsoft("oid"),
            user_principal_name: Some("first.last@contoso.com".into()),
            mail: None,
            account_enabled: enabled,
            display_name: None,
            given_name: None,
            surname: None,
            proxy_addresses: Vec::new(),
            other_mails: Vec::new(),
            user_type: None,
        }
    }

    #[test]
    fn a_held_user_graph_no_longer_finds_is_still_gone() {
        assert_eq!(recheck(None, "contoso.com"), Recheck::StillGone);
    }

    #[test]
    fn a_held_user_found_disabled_is_still_disabled() {
        assert_eq!(
            recheck(Some(&found(Some(false))), "contoso.com"),
            Recheck::Disabled
        );
    }

    #[test]
    fn a_held_user_found_enabled_or_without_the_property_came_back() {
        assert_eq!(
            recheck(Some(&found(Some(true))), "contoso.com"),
            Recheck::Back
        );
        assert_eq!(recheck(Some(&found(None)), "contoso.com"), Recheck::Back);
    }

    #[test]
    fn a_held_user_whose_addresses_all_left_the_domain_is_still_gone() {
        let mut moved = found(Some(true));
        moved.user_principal_name = Some("first.last@fabrikam.com".into());
        moved.proxy_addresses = vec!["SMTP:first.last@fabrikam.com".into()];
        assert_eq!(recheck(Some(&moved), "contoso.com"), Recheck::LeftDomain);
        moved.proxy_addresses.push("smtp:old@Contoso.com".into());
        assert_eq!(recheck(Some(&moved), "contoso.com"), Recheck::Back);
        moved.proxy_addresses = vec!["X500:/o=x@contoso.com".into()];
        assert_eq!(recheck(Some(&moved), "contoso.com"), Recheck::LeftDomain);
    }
}
