//! The reconciler's schedule, kept on each tenant's row: when its next run is due, the change
//! notifications it will cover, how often it runs and when a run is held. The scheduler
//! (`scheduler.rs`) claims due runs from here; a notification or a saved setting books one.

use crate::domain::{EntraTenantId, TenantId, UserSource};
use crate::server::db::Db;

/// A tenant's reconciliation that has come due, as the scheduler found it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueRun {
    pub tenant_id: TenantId,
    pub interval_secs: i64,
    /// -1 when none was booked (a tenant just connected).
    pub next_reconcile_at: i64,
    /// When the oldest change notification the run will cover arrived.
    pub notified_at: Option<i64>,
}

/// Tenants connected to Entra whose next reconciliation is due at `at`.
pub async fn due_for_reconcile(db: &Db, at: i64) -> Result<Vec<DueRun>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id AS tenant_id, offboard_interval_secs AS interval_secs, \
         COALESCE(next_reconcile_at, -1) AS next_reconcile_at, notified_at FROM tenants \
         WHERE user_source = $2 AND entra_tenant_id IS NOT NULL \
         AND (next_reconcile_at IS NULL OR next_reconcile_at <= $1)",
    )
    .bind(at)
    .bind(UserSource::AzureAd.as_str())
    .fetch_all(&db.pool)
    .await
}

/// Takes a due run for this replica by booking the next one at `next`: true for the one
/// replica whose booking found the slot as it was seen; every other replica leaves it.
pub async fn claim_reconcile(db: &Db, due: &DueRun, next: i64) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE tenants SET next_reconcile_at = $1, notified_at = NULL \
         WHERE id = $2 AND COALESCE(next_reconcile_at, -1) = $3 \
         AND COALESCE(notified_at, -1) = $4",
    )
    .bind(next)
    .bind(&due.tenant_id)
    .bind(due.next_reconcile_at)
    .bind(due.notified_at.unwrap_or(-1))
    .execute(&db.pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// A claimed run could not take the tenant's lease (a Sync now, a held-run decision or the
/// subscription's upkeep had it): it is due again `at`, still covering the notifications
/// it would have.
pub async fn retry_reconcile(db: &Db, due: &DueRun, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tenants SET next_reconcile_at = $1, \
         notified_at = CASE WHEN $2 < 0 THEN notified_at \
           WHEN notified_at IS NULL OR notified_at > $2 THEN $2 ELSE notified_at END \
         WHERE id = $3",
    )
    .bind(at)
    .bind(due.notified_at.unwrap_or(-1))
    .bind(&due.tenant_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The soonest any connected tenant's reconciliation is due (now, if one was never booked).
pub async fn next_reconcile_due(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    let (at,): (Option<i64>,) = sqlx::query_as(
        "SELECT MIN(COALESCE(next_reconcile_at, 0)) FROM tenants \
         WHERE user_source = $1 AND entra_tenant_id IS NOT NULL",
    )
    .bind(UserSource::AzureAd.as_str())
    .fetch_one(&db.pool)
    .await?;
    Ok(at)
}

/// Books the tenant's next reconciliation; the run about to start (or the next) covers every
/// change notified so far.
pub async fn book_reconcile<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    tenant_id: &TenantId,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET next_reconcile_at = $1, notified_at = NULL WHERE id = $2")
        .bind(at)
        .bind(tenant_id)
        .execute(db)
        .await?;
    Ok(())
}

/// A change notification for the tenant arrived `at`. The first of a burst books the run
/// `settle` seconds later (unless one is booked sooner); each further one pushes it to
/// `settle` seconds after itself, but never past `longest` seconds after the first, so a
/// burst is one run and a steady stream still gets one every `longest` seconds.
pub async fn note_change(
    db: &Db,
    tenant_id: &TenantId,
    at: i64,
    settle: i64,
    longest: i64,
) -> Result<(), sqlx::Error> {
    // Every expression in SET reads the row as it was before this statement.
    sqlx::query(
        "UPDATE tenants SET notified_at = COALESCE(notified_at, $1), \
         next_reconcile_at = CASE \
           WHEN notified_at IS NULL THEN \
             CASE WHEN next_reconcile_at IS NOT NULL AND next_reconcile_at < $1 + $2 \
             THEN next_reconcile_at ELSE $1 + $2 END \
           WHEN $1 + $2 < notified_at + $3 THEN $1 + $2 \
           ELSE notified_at + $3 END \
         WHERE id = $4",
    )
    .bind(at)
    .bind(settle)
    .bind(longest)
    .bind(tenant_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// How often the reconciler runs for the tenant, and when a run is held. A shorter interval
/// counts from `at`: a run booked later than one interval from now comes forward to it.
pub async fn set_reconcile_schedule(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    interval_secs: i64,
    count: i64,
    percent: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tenants SET offboard_interval_secs = $1, deletion_threshold_count = $2, \
         deletion_threshold_percent = $3, \
         next_reconcile_at = CASE WHEN next_reconcile_at > $5 THEN $5 ELSE next_reconcile_at END \
         WHERE id = $4",
    )
    .bind(interval_secs)
    .bind(count)
    .bind(percent)
    .bind(tenant_id)
    .bind(at + interval_secs)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What the Reconciliation page shows of the tenant's settings.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReconcileSettings {
    #[sqlx(try_from = "String")]
    pub user_source: UserSource,
    pub entra_tenant_id: Option<EntraTenantId>,
    pub offboard_interval_secs: i64,
    pub deletion_threshold_count: i64,
    pub deletion_threshold_percent: i64,
    pub next_reconcile_at: Option<i64>,
}

pub async fn reconcile_settings(
    db: &Db,
    tenant_id: &TenantId,
) -> Result<ReconcileSettings, sqlx::Error> {
    sqlx::query_as::<_, ReconcileSettings>(
        "SELECT user_source, entra_tenant_id, offboard_interval_secs, deletion_threshold_count, \
         deletion_threshold_percent, next_reconcile_at FROM tenants WHERE id = $1",
    )
    .bind(tenant_id)
    .fetch_one(&db.pool)
    .await
}
