//! Carries out a run's plan in the run's transaction: exactly one of four outcomes, each with
//! all of its bookkeeping here. The plan decided who leaves and why; this decides, under the
//! tenant's lock, whether the tenant would be left without an admin, and writes what follows:
//! the offboardings (idempotent, through the one way access ends), renames and roles, and,
//! once the transaction has committed, `ended` tells open pages and records when access
//! ended. An admin's approval of a held run offboards through the same `offboard`.

use super::outcome::Outcome;
use super::plan::{Plan, Rename, RoleChange};
use super::store::{self, Tally};
use crate::audit::{self, Actor};
use crate::domain::{Reason, RunOutcome, TenantId, UserId};
use crate::server::bus::{Bus, Event};
use crate::server::db::Db;
use crate::server::util::now;
use crate::tenants::store::{self as tenants, GroupRef};
use crate::users::access::{revoke_all_access, Subject};
use crate::users::admins::Admins;
use crate::users::store as users;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// What a run knows beside its plan.
pub(super) struct RunContext<'a> {
    pub tenant_id: &'a TenantId,
    pub run_id: i64,
    pub dry_run: bool,
    /// The tenant's held run that still waits for an admin: a new mass change joins its list.
    pub waiting: Option<i64>,
    /// When the run began reading Entra: what it finds counts as seen from then.
    pub found_at: i64,
    /// Where the next run reads on from, once this one is carried out.
    pub delta_link: &'a str,
    pub scope_group: Option<GroupRef>,
    pub admin_group: Option<GroupRef>,
    pub graph_requests: u32,
}

/// What carrying out did.
pub(super) struct Carried {
    pub outcome: Outcome,
    /// Who was offboarded (in a dry run or a held run: would be), and why.
    pub listed: Vec<Leaving>,
    /// Why the run did not do all its plan said, for the page.
    pub note: Option<String>,
    /// Who lost access in this transaction: `ended` once it commits.
    pub gone: Vec<Gone>,
}

/// Carries out `plan`: a dry run records what it would do; a plan that would leave the tenant
/// without an admin keeps its group changes back; a plan over the deletion threshold is held
/// for an admin; any other plan is applied whole.
pub(super) async fn carry_out(
    tx: &mut Tx<'_>,
    plan: &Plan,
    run: &RunContext<'_>,
) -> anyhow::Result<Carried> {
    // Counted under the tenant's lock, before any user is written: a demotion at sign-in or
    // by an admin since the plan was made must not add up with this run's group changes to a
    // tenant without an admin.
    let admins = Admins::lock(tx, run.tenant_id).await?;
    let last_admin_lost = admins.lost_by(&plan.admin_change());
    let scope_name = run.scope_group.as_ref().map(|g| g.name.as_str());
    let listed: Vec<Leaving> = plan
        .offboard
        .iter()
        .map(|o| Leaving {
            user_id: o.user_id.clone(),
            reason: Reason::new(o.reason, scope_name),
        })
        .collect();
    let tally = |offboarded: usize| Tally {
        graph_requests: run.graph_requests,
        users_checked: plan.checked,
        offboarded,
    };
    if run.dry_run {
        store::finish(
            tx,
            run.run_id,
            RunOutcome::DryRun,
            &tally(listed.len()),
            now(),
        )
        .await?;
        return Ok(carried(Outcome::DryRun, listed, None, Vec::new()));
    }
    if last_admin_lost && !plan.held {
        return keep_last_admin(tx, run, listed, tally).await;
    }
    if plan.held {
        hold(tx, plan, run, &listed, last_admin_lost, tally(listed.len())).await?;
        return Ok(carried(Outcome::Held, listed, None, Vec::new()));
    }
    let gone = offboard(tx, run.tenant_id, Actor::Reconciler, &listed, run.found_at).await?;
    users::forget_changes_seen(tx, run.tenant_id, run.found_at).await?;
    rename(tx, run.tenant_id, &plan.renames).await?;
    roles(tx, run.tenant_id, &plan.roles, run.admin_group.as_ref()).await?;
    tenants::keep_delta_link(tx, run.tenant_id, run.delta_link).await?;
    store::finish(tx, run.run_id, RunOutcome::Ok, &tally(listed.len()), now()).await?;
    Ok(carried(Outcome::Ok, listed, None, gone))
}

fn carried(
    outcome: Outcome,
    listed: Vec<Leaving>,
    note: Option<String>,
    gone: Vec<Gone>,
) -> Carried {
    Carried {
        outcome,
        listed,
        note,
        gone,
    }
}

/// The group changes would leave the tenant without an admin: access that Entra ended
/// (deleted, disabled, out of the domain) still ends; the group changes wait, and the delta
/// link stays, so the next run sees the same changes again and applies them once the tenant
/// has another admin.
async fn keep_last_admin(
    tx: &mut Tx<'_>,
    run: &RunContext<'_>,
    listed: Vec<Leaving>,
    tally: impl Fn(usize) -> Tally,
) -> anyhow::Result<Carried> {
    let why = last_admin_reason(run.admin_group.as_ref(), run.scope_group.as_ref());
    let ended: Vec<Leaving> = listed
        .into_iter()
        .filter(|l| l.reason.code.ended_in_entra())
        .collect();
    let gone = offboard(tx, run.tenant_id, Actor::Reconciler, &ended, run.found_at).await?;
    let outcome = RunOutcome::KeptLastAdmin;
    store::finish(tx, run.run_id, outcome, &tally(gone.len()), now()).await?;
    store::note(tx, run.run_id, &why).await?;
    audit::record(
        &mut **tx,
        Some(run.tenant_id),
        Actor::Reconciler,
        audit::Event::AdminKept {
            run: run.run_id,
            why: &why,
        },
    )
    .await?;
    Ok(carried(Outcome::KeptLastAdmin, ended, Some(why), gone))
}

/// Too many offboardings at once: they wait on a held list for an admin. The held list
/// remembers these changes, so the delta link moves on and stays fresh however long the
/// decision takes; renames apply, and roles too unless they would leave no admin. A second
/// mass change while one run is held joins that run's list: the admin decides once.
async fn hold(
    tx: &mut Tx<'_>,
    plan: &Plan,
    run: &RunContext<'_>,
    listed: &[Leaving],
    last_admin_lost: bool,
    tally: Tally,
) -> anyhow::Result<()> {
    let n = listed.len();
    let (held_run, outcome, what) = match run.waiting {
        Some(held_run) => (
            held_run,
            RunOutcome::Ok,
            format!("{n} more offboardings exceed the deletion threshold and join this held run"),
        ),
        None => (
            run.run_id,
            RunOutcome::Held,
            format!("{n} offboardings exceed the deletion threshold; an admin must approve or reject them"),
        ),
    };
    let held: Vec<(&str, &Reason)> = listed
        .iter()
        .map(|l| (l.user_id.as_str(), &l.reason))
        .collect();
    store::hold(tx, held_run, &held).await?;
    let on_list = store::count_held(tx, held_run).await?;
    store::set_offboarded(tx, held_run, on_list as usize).await?;
    rename(tx, run.tenant_id, &plan.renames).await?;
    if !last_admin_lost {
        roles(tx, run.tenant_id, &plan.roles, run.admin_group.as_ref()).await?;
    }
    tenants::keep_delta_link(tx, run.tenant_id, run.delta_link).await?;
    // A run whose list joined an earlier one offboarded nobody of its own.
    let tally = match outcome {
        RunOutcome::Held => tally,
        _ => Tally {
            offboarded: 0,
            ..tally
        },
    };
    store::finish(tx, run.run_id, outcome, &tally, now()).await?;
    audit::record(
        &mut **tx,
        Some(run.tenant_id),
        Actor::Reconciler,
        audit::Event::RunHeld {
            run: held_run,
            what: &what,
        },
    )
    .await?;
    Ok(())
}

/// Why a run that would leave the tenant without an admin applied no group change.
fn last_admin_reason(admins: Option<&GroupRef>, scope: Option<&GroupRef>) -> String {
    let groups: Vec<String> = admins
        .iter()
        .chain(scope.iter())
        .map(|g| format!("\"{}\"", g.name))
        .collect();
    format!(
        "kept back: the group changes in Entra ID ({}) would leave this tenant without an admin, so they were not applied (nothing to approve; deletions and disables in Entra still end access). Add someone to the admin group in Entra, or make someone an admin in Gatehouse; the next run applies the changes then",
        groups.join(", ")
    )
}

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
    renames: &[Rename],
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
    changes: &[RoleChange],
    admin_group: Option<&crate::tenants::store::GroupRef>,
) -> anyhow::Result<()> {
    let group = admin_group.map_or("the admin group", |g| g.name.as_str());
    for change in changes {
        let user = users::get(tx, &change.user_id).await?;
        // Accounts at customers it ends: the run wakes the JIT worker once it commits.
        let _ending = crate::users::access::change_role(tx, &change.user_id, change.role).await?;
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
