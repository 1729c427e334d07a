//! Every statement on `reconcile_runs` and `reconcile_held`: the record of each run, and who
//! a held run would offboard.

use crate::domain::{EntraUserId, Reason, RunOutcome, TenantId, UserId};
use crate::server::db::Db;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// The tenant's held run that nobody has decided yet, if there is one.
pub async fn undecided(db: &Db, tenant_id: &TenantId) -> Result<Option<i64>, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM reconcile_runs WHERE tenant_id = $1 AND outcome = $2 AND decided_at IS NULL",
    )
    .bind(tenant_id)
    .bind(RunOutcome::Held.as_str())
    .fetch_optional(&db.pool)
    .await?;
    Ok(found.map(|(id,)| id))
}

/// Who the tenant's undecided held run would offboard (user ids), read in `tx`.
pub async fn awaiting_decision(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
) -> Result<Vec<UserId>, sqlx::Error> {
    let rows: Vec<(UserId,)> = sqlx::query_as(
        "SELECT h.user_id FROM reconcile_held h JOIN reconcile_runs r ON r.id = h.run_id \
         WHERE r.tenant_id = $1 AND r.outcome = $2 AND r.decided_at IS NULL",
    )
    .bind(tenant_id)
    .bind(RunOutcome::Held.as_str())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The tenant's undecided held run, as the Reconciliation page lists it.
pub async fn undecided_run(db: &Db, tenant_id: &TenantId) -> Result<Option<Run>, sqlx::Error> {
    sqlx::query_as::<_, Run>(
        "SELECT id, started_at, trigger, outcome, graph_requests, users_checked, \
         offboarded, error FROM reconcile_runs WHERE tenant_id = $1 AND outcome = $2 AND decided_at IS NULL",
    )
    .bind(tenant_id)
    .bind(RunOutcome::Held.as_str())
    .fetch_optional(&db.pool)
    .await
}

/// Records a run as started; returns its id.
pub async fn start(
    db: &Db,
    tenant_id: &TenantId,
    trigger: &str,
    dry_run: bool,
    at: i64,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO reconcile_runs (tenant_id, trigger, dry_run, started_at, outcome) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(tenant_id)
    .bind(trigger)
    .bind(i64::from(dry_run))
    .bind(at)
    .bind(RunOutcome::Running.as_str())
    .fetch_one(&db.pool)
    .await?;
    Ok(id)
}

/// Records a run that failed, and why.
pub async fn failed(
    db: &Db,
    run_id: i64,
    error: &str,
    graph_requests: u32,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reconcile_runs SET finished_at = $1, outcome = $2, error = $3, graph_requests = $4 WHERE id = $5",
    )
    .bind(at)
    .bind(RunOutcome::Failed.as_str())
    .bind(error)
    .bind(i64::from(graph_requests))
    .bind(run_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Records why a finished run did what it did (shown where a failed run shows its error).
pub async fn note(tx: &mut Tx<'_>, run_id: i64, why: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reconcile_runs SET error = $1 WHERE id = $2")
        .bind(why)
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What a finished run counted.
pub struct Tally {
    pub graph_requests: u32,
    pub users_checked: usize,
    pub offboarded: usize,
}

/// Records a run's end: ok, dry run or held.
pub async fn finish(
    tx: &mut Tx<'_>,
    run_id: i64,
    outcome: RunOutcome,
    tally: &Tally,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reconcile_runs SET finished_at = $1, outcome = $2, graph_requests = $3, \
         users_checked = $4, offboarded = $5 WHERE id = $6",
    )
    .bind(at)
    .bind(outcome.as_str())
    .bind(i64::from(tally.graph_requests))
    .bind(tally.users_checked as i64)
    .bind(tally.offboarded as i64)
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Lists who a held run would offboard, each with the reason.
pub async fn hold(
    tx: &mut Tx<'_>,
    run_id: i64,
    users: &[(&str, &Reason)],
) -> Result<(), sqlx::Error> {
    for (user_id, reason) in users {
        sqlx::query(
            "INSERT INTO reconcile_held (run_id, user_id, reason, group_name) VALUES ($1, $2, $3, $4)",
        )
        .bind(run_id)
        .bind(user_id)
        .bind(reason.code.as_str())
        .bind(reason.group.as_deref())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A user on a held run's list.
#[derive(sqlx::FromRow)]
pub struct HeldUser {
    pub user_id: UserId,
    pub username: String,
    pub email: String,
    pub entra_oid: EntraUserId,
    /// The stored code of the reason, and the group's name beside it: `reason()` reads them.
    reason: String,
    group_name: Option<String>,
}

impl HeldUser {
    /// Why the run would offboard them; `None` for text no release of Gatehouse stored.
    pub fn reason(&self) -> Option<Reason> {
        Reason::stored(&self.reason, self.group_name.clone())
    }

    /// The reason as the page words it.
    pub fn worded_reason(&self) -> String {
        Reason::worded(&self.reason, self.group_name.as_deref())
    }
}

/// Who a held run would offboard, by username.
pub async fn held_users(db: &Db, run_id: i64) -> Result<Vec<HeldUser>, sqlx::Error> {
    sqlx::query_as::<_, HeldUser>(
        "SELECT h.user_id, u.username, u.email, u.entra_oid, h.reason, h.group_name \
         FROM reconcile_held h \
         JOIN users u ON u.id = h.user_id WHERE h.run_id = $1 ORDER BY u.username",
    )
    .bind(run_id)
    .fetch_all(&db.pool)
    .await
}

/// The ids of the users on a held run's list.
pub async fn held_user_ids(db: &Db, run_id: i64) -> Result<Vec<UserId>, sqlx::Error> {
    let rows: Vec<(UserId,)> =
        sqlx::query_as("SELECT user_id FROM reconcile_held WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// How many users a held run listed.
pub async fn count_held(tx: &mut Tx<'_>, run_id: i64) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM reconcile_held WHERE run_id = $1")
        .bind(run_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(n)
}

/// Records how many users a decided run offboarded.
pub async fn set_offboarded(tx: &mut Tx<'_>, run_id: i64, n: usize) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reconcile_runs SET offboarded = $1 WHERE id = $2")
        .bind(n as i64)
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records an admin's decision on a still-undecided held run; false when there is none
/// (decided meanwhile, another tenant's, or not held).
pub async fn decide(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
    run_id: i64,
    admin: &str,
    outcome: RunOutcome,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE reconcile_runs SET decided_by = $1, decided_at = $2, outcome = $3 \
         WHERE id = $4 AND tenant_id = $5 AND outcome = $6 AND decided_at IS NULL",
    )
    .bind(admin)
    .bind(at)
    .bind(outcome.as_str())
    .bind(run_id)
    .bind(tenant_id)
    .bind(RunOutcome::Held.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// One recorded run, as the Reconciliation page lists it.
#[derive(sqlx::FromRow)]
pub struct Run {
    pub id: i64,
    pub started_at: i64,
    pub trigger: String,
    #[sqlx(try_from = "String")]
    pub outcome: RunOutcome,
    pub graph_requests: i64,
    pub users_checked: i64,
    pub offboarded: i64,
    pub error: Option<String>,
}

/// The tenant's latest runs, newest first.
pub async fn recent(db: &Db, tenant_id: &TenantId, limit: i64) -> Result<Vec<Run>, sqlx::Error> {
    sqlx::query_as::<_, Run>(
        "SELECT id, started_at, trigger, outcome, graph_requests, users_checked, \
         offboarded, error FROM reconcile_runs WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// When the tenant's directory was last read through to the end: the latest run that
/// finished ok or as a dry run, or was held (its walk completed).
pub async fn last_complete_check(
    db: &Db,
    tenant_id: &TenantId,
) -> Result<Option<i64>, sqlx::Error> {
    let (at,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(finished_at) FROM reconcile_runs WHERE tenant_id = $1 AND outcome IN ($2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(RunOutcome::Ok.as_str())
    .bind(RunOutcome::DryRun.as_str())
    .bind(RunOutcome::Held.as_str())
    .bind(RunOutcome::Approved.as_str())
    .bind(RunOutcome::Rejected.as_str())
    .fetch_one(&db.pool)
    .await?;
    Ok(at)
}
