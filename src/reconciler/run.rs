//! One reconciliation run for one tenant: lease, walk `/users/delta`, plan, apply, record.
//! Every error fails the run and offboards nobody.

use super::apply;
use super::failure::RunError;
use super::groups;
use super::lease::Lease;
use super::plan::{self, Coverage, DirectoryEntry, Groups, KnownUser, Policy};
use super::store;
use crate::audit;
use crate::domain::RunOutcome;
use crate::entra::{EntraClient, EntraError, Graph};
use crate::server::bus::Bus;
use crate::server::db::Db;
use crate::server::util::now;
use crate::tenants::service as tenants;

/// A walk longer than this is taken for a broken chain, not a directory.
const MAX_PAGES: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    /// Microsoft notified a change in the directory.
    Notification,
    Manual,
    Cli,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Notification => "notification",
            Trigger::Manual => "manual",
            Trigger::Cli => "cli",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Held,
    /// Group changes would have left the tenant without an admin: nothing was applied.
    KeptLastAdmin,
    DryRun,
    /// Another instance holds this tenant's lease.
    Skipped,
}

impl Outcome {
    /// The run record's outcome this report stands for; a skipped run records none.
    pub fn recorded(self) -> Option<RunOutcome> {
        match self {
            Outcome::Ok => Some(RunOutcome::Ok),
            Outcome::Failed => Some(RunOutcome::Failed),
            Outcome::Held => Some(RunOutcome::Held),
            Outcome::KeptLastAdmin => Some(RunOutcome::KeptLastAdmin),
            Outcome::DryRun => Some(RunOutcome::DryRun),
            Outcome::Skipped => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.recorded().map_or("skipped", RunOutcome::as_str)
    }
}

/// What a run did, for the portal, the CLI and tests.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: Option<i64>,
    pub outcome: Outcome,
    pub graph_requests: u32,
    pub users_checked: usize,
    /// Offboarded (or, in a dry run or a held run, would be): (email, reason).
    pub offboarded: Vec<(String, String)>,
    pub error: Option<String>,
}

/// Runs one reconciliation of `tenant_id` and records it.
pub async fn reconcile(
    db: &Db,
    bus: &Bus,
    entra: &EntraClient,
    tenant_id: &str,
    trigger: Trigger,
    dry_run: bool,
) -> anyhow::Result<RunReport> {
    let Some(lease) = Lease::acquire(db, tenant_id).await? else {
        return Ok(skipped(
            "another instance is reconciling this tenant or deciding one of its held runs",
        ));
    };
    let report = reconcile_leased(db, bus, entra, &lease, tenant_id, trigger, dry_run).await;
    lease.release().await;
    report
}

async fn reconcile_leased(
    db: &Db,
    bus: &Bus,
    entra: &EntraClient,
    lease: &Lease,
    tenant_id: &str,
    trigger: Trigger,
    dry_run: bool,
) -> anyhow::Result<RunReport> {
    let run_id = store::start(db, tenant_id, trigger.as_str(), dry_run, now()).await?;
    metrics::counter!("gatehouse_reconcile_runs_total", "trigger" => trigger.as_str()).increment(1);
    let timer = std::time::Instant::now();
    let report = match run(db, bus, entra, lease, tenant_id, run_id, dry_run).await {
        Ok(report) => report,
        Err(Failure {
            graph_requests,
            error,
        }) => {
            let message = error.to_string();
            tracing::warn!(tenant = tenant_id, error = %message, "reconciliation failed; nobody was offboarded");
            let health = match &error {
                RunError::Entra(e) => e.health(),
                RunError::Groups(health, _) => Some(*health),
                _ => None,
            };
            store::failed(db, run_id, &message, graph_requests, now()).await?;
            if let Some(health) = health {
                metrics::counter!("gatehouse_entra_problems_total", "health" => health.as_str())
                    .increment(1);
                tenants::set_entra_health(db, tenant_id, health).await?;
            }
            RunReport {
                run_id: Some(run_id),
                outcome: Outcome::Failed,
                graph_requests,
                users_checked: 0,
                offboarded: Vec::new(),
                error: Some(message),
            }
        }
    };
    metrics::counter!("gatehouse_reconcile_outcomes_total", "outcome" => report.outcome.as_str())
        .increment(1);
    metrics::histogram!("gatehouse_reconcile_seconds").record(timer.elapsed().as_secs_f64());
    Ok(report)
}

fn skipped(why: &str) -> RunReport {
    RunReport {
        run_id: None,
        outcome: Outcome::Skipped,
        graph_requests: 0,
        users_checked: 0,
        offboarded: Vec::new(),
        error: Some(why.to_string()),
    }
}

struct Failure {
    graph_requests: u32,
    error: RunError,
}

async fn run(
    db: &Db,
    bus: &Bus,
    entra: &EntraClient,
    lease: &Lease,
    tenant_id: &str,
    run_id: i64,
    dry_run: bool,
) -> Result<RunReport, Failure> {
    let mut requests = 0;
    let fail = |requests: u32| {
        move |error: RunError| Failure {
            graph_requests: requests,
            error,
        }
    };
    let tenant = tenants::entra_link(db, tenant_id)
        .await
        .map_err(|e| fail(0)(e.into()))?;
    let (Some(tid), Some(domain)) = (tenant.tenant_id.clone(), tenant.domain.clone()) else {
        return Err(fail(0)(RunError::Other(
            "the tenant is not connected to Entra ID".into(),
        )));
    };
    let graph = entra.graph(&tid).await.map_err(|e| fail(0)(e.into()))?;
    // Whatever changed in Entra before now is in the walk that starts here.
    let read_from = now();
    let walked = walk(&graph, tenant.delta_link.as_deref()).await;
    requests = graph.requests().max(requests);
    let (entries, coverage, delta_link) = walked.map_err(|e| fail(requests)(e.into()))?;

    // Users on an undecided held run's list wait for the admin's decision (which looks at
    // each of them in Graph again); this run plans for everyone else.
    let waiting = store::undecided(db, tenant_id)
        .await
        .map_err(|e| fail(requests)(e.into()))?;
    let on_hold: std::collections::HashSet<String> = match waiting {
        Some(held_run) => store::held_user_ids(db, held_run)
            .await
            .map_err(|e| fail(requests)(e.into()))?
            .into_iter()
            .collect(),
        None => Default::default(),
    };
    let (scope_group, admin_group) = (tenant.scope_group(), tenant.admin_group());
    let members = groups::read(
        db,
        &graph,
        tenant_id,
        scope_group.as_ref(),
        admin_group.as_ref(),
    )
    .await;
    requests = graph.requests().max(requests);
    let members = members.map_err(fail(requests))?;
    let users = crate::users::store::from_entra(db, tenant_id)
        .await
        .map_err(|e| fail(requests)(e.into()))?;
    let other_admins = crate::users::store::active_admins_not_from_entra(db, tenant_id)
        .await
        .map_err(|e| fail(requests)(e.into()))?;
    let known: Vec<KnownUser> = users
        .into_iter()
        .filter(|u| !on_hold.contains(&u.id))
        .filter_map(|u| {
            Some(KnownUser {
                status: u.status,
                oid: u.entra_oid?,
                user_id: u.id,
                email: u.email,
                role: u.role,
            })
        })
        .collect();
    let policy = Policy {
        count: tenant.threshold_count.clamp(0, u32::MAX as i64) as u32,
        percent: tenant.threshold_percent.clamp(0, 100) as u32,
    };
    let groups = Groups {
        scope: members.scope.as_ref(),
        admins: members.admins.as_ref(),
        other_admins,
    };
    let plan = plan::plan(&entries, coverage, &known, &domain, policy, groups);
    let scope_name = scope_group.as_ref().map(|g| g.name.as_str());
    let listed: Vec<(String, String)> = plan
        .offboard
        .iter()
        .map(|o| (o.user_id.clone(), o.reason.text(scope_name)))
        .collect();
    let email_of: std::collections::HashMap<&str, &str> = known
        .iter()
        .map(|u| (u.user_id.as_str(), u.email.as_str()))
        .collect();
    let mut report = RunReport {
        run_id: Some(run_id),
        outcome: Outcome::Ok,
        graph_requests: requests,
        users_checked: plan.checked,
        offboarded: listed
            .iter()
            .map(|(id, why)| {
                (
                    email_of.get(id.as_str()).copied().unwrap_or(id).to_string(),
                    why.clone(),
                )
            })
            .collect(),
        error: None,
    };
    let mut tx = db
        .pool
        .begin()
        .await
        .map_err(|e| fail(requests)(e.into()))?;
    let tally = store::Tally {
        graph_requests: requests,
        users_checked: plan.checked,
        offboarded: listed.len(),
    };
    let mut gone = Vec::new();
    let result: Result<(), RunError> = async {
        if !lease.still_held(&mut tx).await? {
            return Err(RunError::Other(LEASE_LOST.into()));
        }
        // Counted again under the tenant's lock, before any user is written: a demotion at
        // sign-in since the plan was made must not add up with this run's group changes to a
        // tenant without an admin.
        tenants::lock(&mut tx, tenant_id).await?;
        let last_admin_lost = plan.last_admin_lost || loses_last_admin(&mut tx, tenant_id, &plan).await?;
        if dry_run {
            report.outcome = Outcome::DryRun;
            store::finish(&mut tx, run_id, RunOutcome::DryRun, &tally, now()).await?;
        } else if last_admin_lost && !plan.held {
            // Access that Entra ended (deleted, disabled, out of the domain) still ends; the
            // group changes wait, and the delta link stays: the next run sees the same
            // changes again and applies them once the tenant has another admin.
            let why = last_admin_reason(admin_group.as_ref(), scope_group.as_ref());
            let ended: Vec<(String, String)> = plan
                .offboard
                .iter()
                .filter(|o| o.reason != plan::OffboardReason::LeftGroup)
                .map(|o| (o.user_id.clone(), o.reason.text(scope_name)))
                .collect();
            let waits = plan::OffboardReason::LeftGroup.text(scope_name);
            report.offboarded.retain(|(_, why)| *why != waits);
            gone = apply::offboard(&mut tx, tenant_id, "reconciler", &ended, read_from).await?;
            report.outcome = Outcome::KeptLastAdmin;
            report.error = Some(why.clone());
            let tally = store::Tally {
                offboarded: gone.len(),
                ..tally
            };
            store::finish(&mut tx, run_id, RunOutcome::KeptLastAdmin, &tally, now()).await?;
            store::note(&mut tx, run_id, &why).await?;
            audit::record(
                &mut *tx,
                Some(tenant_id),
                "reconciler",
                "reconcile.admin_kept",
                &format!("run {run_id}"),
                &why,
            )
            .await?;
        } else if plan.held {
            report.outcome = Outcome::Held;
            let held: Vec<(&str, &str)> = listed
                .iter()
                .map(|(id, why)| (id.as_str(), why.as_str()))
                .collect();
            // The held list remembers these changes, so the delta link moves on and stays
            // fresh however long the decision takes. A second mass change while one run is
            // held joins that run's list: the admin decides once.
            let (held_run, outcome, what) = match waiting {
                Some(held_run) => (
                    held_run,
                    RunOutcome::Ok,
                    format!("{} more offboardings exceed the deletion threshold and join this held run", held.len()),
                ),
                None => (
                    run_id,
                    RunOutcome::Held,
                    format!("{} offboardings exceed the deletion threshold; an admin must approve or reject them", held.len()),
                ),
            };
            store::hold(&mut tx, held_run, &held).await?;
            let listed = store::count_held(&mut tx, held_run).await?;
            store::set_offboarded(&mut tx, held_run, listed as usize).await?;
            apply::rename(&mut tx, tenant_id, &plan.renames).await?;
            // Roles wait with the held offboardings when they would leave no admin.
            if !last_admin_lost {
                apply::roles(&mut tx, tenant_id, &plan.roles, admin_group.as_ref()).await?;
            }
            tenants::keep_delta_link(&mut tx, tenant_id, &delta_link).await?;
            let tally = store::Tally {
                offboarded: if outcome == RunOutcome::Held {
                    tally.offboarded
                } else {
                    0
                },
                ..tally
            };
            store::finish(&mut tx, run_id, outcome, &tally, now()).await?;
            audit::record(
                &mut *tx,
                Some(tenant_id),
                "reconciler",
                "reconcile.held",
                &format!("run {held_run}"),
                &what,
            )
            .await?;
        } else {
            gone = apply::offboard(&mut tx, tenant_id, "reconciler", &listed, read_from).await?;
            crate::users::store::forget_changes_seen(&mut tx, tenant_id, read_from).await?;
            apply::rename(&mut tx, tenant_id, &plan.renames).await?;
            apply::roles(&mut tx, tenant_id, &plan.roles, admin_group.as_ref()).await?;
            tenants::keep_delta_link(&mut tx, tenant_id, &delta_link).await?;
            store::finish(&mut tx, run_id, RunOutcome::Ok, &tally, now()).await?;
        }
        Ok(())
    }
    .await;
    result.map_err(fail(requests))?;
    tx.commit().await.map_err(|e| fail(requests)(e.into()))?;
    apply::ended(db, bus, &gone).await;
    Ok(report)
}

/// The plan's last-admin rule on the admins as they are now: true when the tenant has an
/// active admin, leaving aside those Entra ended, and none once the plan's group changes
/// (demotions, users who left the scoping group) are applied.
async fn loses_last_admin(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &str,
    plan: &plan::Plan,
) -> anyhow::Result<bool> {
    let admins = crate::users::store::active_admin_ids(tx, tenant_id).await?;
    let leaves = |id: &str, left_group: bool| {
        plan.offboard
            .iter()
            .any(|o| o.user_id == id && (o.reason == plan::OffboardReason::LeftGroup) == left_group)
    };
    let before: Vec<&String> = admins.iter().filter(|a| !leaves(a, false)).collect();
    let demoted = |id: &str| {
        plan.roles
            .iter()
            .any(|c| c.user_id == id && c.role == crate::domain::Role::Technician)
    };
    let promoted = plan
        .roles
        .iter()
        .any(|c| c.role == crate::domain::Role::Admin);
    let stays = before.iter().any(|a| !leaves(a, true) && !demoted(a));
    Ok(!before.is_empty() && !stays && !promoted)
}

/// Why a run that would leave the tenant without an admin applied nothing.
fn last_admin_reason(
    admins: Option<&crate::tenants::service::GroupRef>,
    scope: Option<&crate::tenants::service::GroupRef>,
) -> String {
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

/// Why a run or a decision wrote nothing: its lease ran out (a stall longer than the lease)
/// and another instance may have taken the tenant over.
pub(super) const LEASE_LOST: &str =
    "this instance lost the tenant's reconcile lease while it worked; nothing was changed";

/// Walks the delta chain to its deltaLink. A stored link that Graph no longer knows (expired
/// after seven days, or reset by Microsoft) means a full resync from the start, under the
/// same deletion threshold as any run.
async fn walk(
    graph: &Graph,
    stored: Option<&str>,
) -> Result<(Vec<DirectoryEntry>, Coverage, String), EntraError> {
    let (mut url, mut coverage) = match stored {
        Some(link) => (link.to_string(), Coverage::Changes),
        None => (graph.delta_start(), Coverage::Everyone),
    };
    let mut entries = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(EntraError::Malformed(format!(
                "the delta chain did not end within {MAX_PAGES} pages"
            )));
        }
        let page = match graph.delta_page(&url).await {
            Err(e) if e.sync_state_lost() && coverage == Coverage::Changes => {
                tracing::info!(error = %e, "the stored delta link is no longer valid; resynchronizing the whole directory");
                url = graph.delta_start();
                coverage = Coverage::Everyone;
                entries.clear();
                continue;
            }
            other => other?,
        };
        entries.extend(page.entries.into_iter().map(|e| DirectoryEntry {
            oid: e.id,
            removed: e.removed,
            account_enabled: e.account_enabled,
            user_principal_name: e.user_principal_name,
            mail: e.mail,
            other_addresses: e.other_addresses,
        }));
        match (page.next_link, page.delta_link) {
            (Some(next), _) => url = next,
            (None, Some(delta)) => return Ok((entries, coverage, delta)),
            (None, None) => {
                return Err(EntraError::Malformed(
                    "the delta chain ended without a deltaLink".into(),
                ))
            }
        }
    }
}
