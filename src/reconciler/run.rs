//! One reconciliation run for one tenant: under the tenant's lease, read Entra, plan, carry
//! the plan out, record the run. Every error fails the run and offboards nobody.

use super::carry_out::{carry_out, ended, Carried, RunContext};
use super::groups;
use super::lease::Lease;
use super::outcome::RunError;
pub use super::outcome::{Outcome, RunReport, Trigger};
use super::plan::{self, Coverage, DirectoryEntry, Groups, KnownUser, Policy};
use super::store;
use crate::domain::TenantId;
use crate::domain::UserId;
use crate::entra::{EntraClient, EntraError, Graph};
use crate::jit::holders;
use crate::server::bus::Bus;
use crate::server::db::Db;
use crate::server::util::now;
use crate::tenants::store as tenants;
use std::collections::HashMap;

/// A walk longer than this is taken for a broken chain, not a directory.
const MAX_PAGES: usize = 20_000;

/// Runs one reconciliation of `tenant_id` and records it; `Skipped` when another instance
/// holds the tenant's lease.
#[tracing::instrument(name = "reconcile", skip(db, bus, entra), fields(trigger = trigger.as_str()))]
pub async fn reconcile(
    db: &Db,
    bus: &Bus,
    entra: &EntraClient,
    tenant_id: &TenantId,
    trigger: Trigger,
    dry_run: bool,
) -> anyhow::Result<RunReport> {
    let Some(lease) = Lease::acquire(db, tenant_id).await? else {
        return Ok(RunReport::skipped(
            "another instance is reconciling this tenant or deciding one of its held runs",
        ));
    };
    let run_id = store::start(db, tenant_id, trigger.as_str(), dry_run, now()).await;
    let report = match run_id {
        Ok(run_id) => recorded(db, bus, entra, &lease, tenant_id, run_id, trigger, dry_run).await,
        Err(e) => Err(e.into()),
    };
    lease.release().await;
    report
}

/// A run that has its record: it ends recorded as done, held, kept back or failed.
#[allow(clippy::too_many_arguments)]
async fn recorded(
    db: &Db,
    bus: &Bus,
    entra: &EntraClient,
    lease: &Lease,
    tenant_id: &TenantId,
    run_id: i64,
    trigger: Trigger,
    dry_run: bool,
) -> anyhow::Result<RunReport> {
    metrics::counter!("gatehouse_reconcile_runs_total", "trigger" => trigger.as_str()).increment(1);
    let timer = std::time::Instant::now();
    let report = match run(db, bus, entra, lease, tenant_id, run_id, dry_run).await {
        Ok(report) => report,
        Err(failure) => failed(db, tenant_id, run_id, failure).await?,
    };
    metrics::counter!("gatehouse_reconcile_outcomes_total", "outcome" => report.outcome.as_str())
        .increment(1);
    metrics::histogram!("gatehouse_reconcile_seconds").record(timer.elapsed().as_secs_f64());
    Ok(report)
}

/// The run, as it reads: the tenant's connection, what changed in Entra since the last
/// run, the plan, and the plan carried out in one transaction under the lease.
async fn run(
    db: &Db,
    bus: &Bus,
    entra: &EntraClient,
    lease: &Lease,
    tenant_id: &TenantId,
    run_id: i64,
    dry_run: bool,
) -> Result<RunReport, Failure> {
    let link = tenants::entra_link(db, tenant_id)
        .await
        .map_err(Failure::early)?;
    let (Some(tid), Some(domain)) = (link.tenant_id.as_ref(), link.domain.as_deref()) else {
        return Err(Failure::early(RunError::Other(
            "the tenant is not connected to Entra ID".into(),
        )));
    };
    let graph = entra.graph(tid).await.map_err(Failure::early)?;
    let failed = |e: RunError| Failure::spent(&graph, e);
    // Whatever changed in Entra before now is in the walk that starts here.
    let found_at = now();
    let seen = read(db, &graph, tenant_id, &link).await.map_err(failed)?;
    let plan = plan::plan(
        &seen.entries,
        seen.coverage,
        &seen.known,
        domain,
        policy(&link),
        seen.groups(),
    );
    let held_groups = match dry_run {
        true => None,
        false => held_groups(db, &graph, tenant_id, &plan).await,
    };
    let context = RunContext {
        tenant_id,
        run_id,
        dry_run,
        waiting: seen.waiting,
        found_at,
        delta_link: &seen.delta_link,
        scope_group: link.scope_group(),
        admin_group: link.admin_group(),
        graph_requests: graph.requests(),
    };
    let (done, by_groups) = commit(db, lease, &plan, &context, held_groups.as_deref())
        .await
        .map_err(failed)?;
    ended(db, bus, &done.gone).await;
    // Accounts at customers that a group left or a new role ended: the JIT worker wakes now.
    if by_groups > 0 || !plan.roles.is_empty() {
        bus.publish(crate::server::bus::Event::AccountsEnding).await;
    }
    Ok(RunReport::of(&context, plan.checked, &seen.known, done))
}

/// What a run read before it plans.
struct Seen {
    entries: Vec<DirectoryEntry>,
    coverage: Coverage,
    delta_link: String,
    /// The tenant's held run still waiting for a decision.
    waiting: Option<i64>,
    members: groups::Members,
    known: Vec<KnownUser>,
}

impl Seen {
    fn groups(&self) -> Groups<'_> {
        Groups {
            scope: self.members.scope.as_ref(),
            admins: self.members.admins.as_ref(),
        }
    }
}

/// Reads the changes in Entra (users, then the tenant's groups) and the users they concern.
async fn read(
    db: &Db,
    graph: &Graph,
    tenant_id: &TenantId,
    link: &tenants::EntraLink,
) -> Result<Seen, RunError> {
    let (entries, coverage, delta_link) = walk(graph, link.delta_link.as_deref()).await?;
    let waiting = store::undecided(db, tenant_id).await?;
    let (scope, admins) = (link.scope_group(), link.admin_group());
    let members = groups::read(db, graph, tenant_id, scope.as_ref(), admins.as_ref()).await?;
    let known = watched(db, tenant_id, waiting).await?;
    Ok(Seen {
        entries,
        coverage,
        delta_link,
        waiting,
        members,
        known,
    })
}

/// Which mapped groups the owners of accounts open at customers are in now, but for those the
/// plan offboards (their accounts end with them). `None`: Microsoft could not say, and those
/// accounts stay as they are until a run can; the offboardings go ahead.
async fn held_groups(
    db: &Db,
    graph: &Graph,
    tenant_id: &TenantId,
    plan: &plan::Plan,
) -> Option<Vec<holders::Checked>> {
    let leaving: Vec<&UserId> = plan.offboard.iter().map(|o| &o.user_id).collect();
    match holders::recheck(db, graph, tenant_id, &leaving).await {
        Ok(checked) => Some(checked),
        Err(e) => {
            tracing::warn!(tenant = %tenant_id, error = %e, "could not ask which mapped groups the owners of open customer accounts are in; their accounts stay as they are until a run can");
            None
        }
    }
}

/// Carries the plan out in one transaction, which writes nothing if this instance no longer
/// holds the tenant's lease; then, in the same transaction, ends the accounts at customers
/// that the groups their owners left no longer allow (`held_groups`; none in a dry run): how
/// many.
async fn commit(
    db: &Db,
    lease: &Lease,
    plan: &plan::Plan,
    context: &RunContext<'_>,
    held_groups: Option<&[holders::Checked]>,
) -> Result<(Carried, u64), RunError> {
    let mut tx = db.pool.begin().await?;
    if !lease.still_held(&mut tx).await? {
        return Err(RunError::Other(LEASE_LOST.into()));
    }
    let done = carry_out(&mut tx, plan, context).await?;
    let by_groups = match held_groups {
        Some(checked) => holders::apply(&mut tx, checked, now()).await?,
        None => 0,
    };
    tx.commit().await?;
    Ok((done, by_groups))
}

/// The tenant's deletion threshold.
fn policy(link: &tenants::EntraLink) -> Policy {
    Policy {
        count: link.threshold_count.clamp(0, u32::MAX as i64) as u32,
        percent: link.threshold_percent.clamp(0, 100) as u32,
    }
}

/// The tenant's users from Entra as the plan watches them, leaving out those on the held
/// run's list (`waiting`): they wait for the admin's decision, which looks at each of them
/// in Graph again.
async fn watched(
    db: &Db,
    tenant_id: &TenantId,
    waiting: Option<i64>,
) -> anyhow::Result<Vec<KnownUser>> {
    let on_hold: std::collections::HashSet<UserId> = match waiting {
        Some(held_run) => store::held_user_ids(db, held_run)
            .await?
            .into_iter()
            .collect(),
        None => Default::default(),
    };
    Ok(crate::users::store::from_entra(db, tenant_id)
        .await?
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
        .collect())
}

impl RunReport {
    fn skipped(why: &str) -> Self {
        RunReport {
            run_id: None,
            outcome: Outcome::Skipped,
            graph_requests: 0,
            users_checked: 0,
            offboarded: Vec::new(),
            error: Some(why.to_string()),
        }
    }

    /// A carried-out run, naming each user by address.
    fn of(run: &RunContext<'_>, users_checked: usize, known: &[KnownUser], done: Carried) -> Self {
        let email_of: HashMap<&str, &str> = known
            .iter()
            .map(|u| (u.user_id.as_str(), u.email.as_str()))
            .collect();
        RunReport {
            run_id: Some(run.run_id),
            outcome: done.outcome,
            graph_requests: run.graph_requests,
            users_checked,
            offboarded: done
                .listed
                .iter()
                .map(|l| {
                    let who = email_of.get(l.user_id.as_str()).copied();
                    (
                        who.unwrap_or(l.user_id.as_str()).to_string(),
                        l.reason.to_string(),
                    )
                })
                .collect(),
            error: done.note,
        }
    }
}

/// Why a run failed, and the Graph requests it had made by then.
struct Failure {
    graph_requests: u32,
    error: RunError,
}

impl Failure {
    /// Before any Graph request.
    fn early(error: impl Into<RunError>) -> Self {
        Failure {
            graph_requests: 0,
            error: error.into(),
        }
    }

    fn spent(graph: &Graph, error: RunError) -> Self {
        Failure {
            graph_requests: graph.requests(),
            error,
        }
    }
}

/// Records a failed run: nobody was offboarded; the tenant's health says what lasts.
async fn failed(
    db: &Db,
    tenant_id: &TenantId,
    run_id: i64,
    Failure {
        graph_requests,
        error,
    }: Failure,
) -> anyhow::Result<RunReport> {
    let message = error.to_string();
    tracing::warn!(tenant = %tenant_id, error = %message, "reconciliation failed; nobody was offboarded");
    store::failed(db, run_id, &message, graph_requests, now()).await?;
    if let Some(health) = error.health() {
        metrics::counter!("gatehouse_entra_problems_total", "health" => health.as_str())
            .increment(1);
        tenants::set_entra_health(db, tenant_id, health).await?;
    }
    Ok(RunReport {
        run_id: Some(run_id),
        outcome: Outcome::Failed,
        graph_requests,
        users_checked: 0,
        offboarded: Vec::new(),
        error: Some(message),
    })
}

/// Why a run or a decision wrote nothing: its lease ran out (a stall longer than the lease)
/// and another instance may have taken the tenant over.
pub(super) const LEASE_LOST: &str =
    "this instance lost the tenant's reconcile lease while it worked; nothing was changed";

/// Walks the delta chain to its deltaLink. A stored link that Graph no longer knows (expired
/// after seven days, or reset by Microsoft), or one made at another Graph address, means a
/// full resync from the start, under the same deletion threshold as any run.
async fn walk(
    graph: &Graph,
    stored: Option<&str>,
) -> Result<(Vec<DirectoryEntry>, Coverage, String), EntraError> {
    let (mut url, mut coverage) = match stored {
        Some(link) if graph.made_here(link) => (link.to_string(), Coverage::Changes),
        Some(_) => {
            tracing::warn!("the stored delta link was made at another Graph address than GRAPH_BASE_URL; resynchronizing the whole directory");
            (graph.delta_start(), Coverage::Everyone)
        }
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
