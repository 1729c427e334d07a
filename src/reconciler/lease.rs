//! One instance reconciles a tenant at a time: a lease row in the database, the same on
//! SQLite and PostgreSQL, so it holds across processes (replicas behind a load balancer, or
//! `gatehouse reconcile` beside `gatehouse serve` on one SQLite file) and pins no connection.
//! This module owns the `reconcile_leases` table.

use crate::domain::TenantId;
use crate::server::db::Db;
use crate::server::util::{now, random_id};
use std::time::Duration;

/// How long a lease lasts without renewal: a holder killed outright (SIGKILL, out of memory,
/// a lost node) blocks its tenant's runs, Sync now and notifications for at most this long.
/// Short, with a heartbeat several times faster, rather than a PostgreSQL session lock that
/// the server frees the moment the connection drops: that would pin a pooled connection for
/// a whole run, and SQLite has no such thing; one lease row behaves the same on both
/// engines. Instances' clocks must agree to well within this.
const LEASE_SECS: i64 = 20;

/// How often a holder renews its lease while it works: four renewals fit in one lease, so a
/// renewal that fails or waits (a database restart, a busy SQLite writer) does not lose it.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// A tenant's reconcile lease, held until `release` (or, failing that, until it expires).
pub struct Lease {
    db: Db,
    tenant_id: TenantId,
    holder: String,
    heartbeat: tokio::task::JoinHandle<()>,
    released: bool,
}

impl Lease {
    /// Takes the tenant's lease if nobody holds it, or if its holder let it expire (a crash).
    /// `None`: another instance is reconciling the tenant or deciding one of its held runs.
    pub async fn acquire(db: &Db, tenant_id: &TenantId) -> Result<Option<Lease>, sqlx::Error> {
        let holder = random_id(16);
        let at = now();
        // One statement, so two instances cannot both see the lease free: the insert and the
        // takeover of an expired lease are decided under the row's uniqueness, and exactly
        // one row changes for the winner.
        let taken = sqlx::query(
            "INSERT INTO reconcile_leases (tenant_id, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE reconcile_leases.expires_at < $4",
        )
        .bind(tenant_id)
        .bind(&holder)
        .bind(at + LEASE_SECS)
        .bind(at)
        .execute(&db.pool)
        .await?
        .rows_affected();
        if taken != 1 {
            return Ok(None);
        }
        let heartbeat = tokio::spawn(heartbeat(db.clone(), tenant_id.clone(), holder.clone()));
        Ok(Some(Lease {
            db: db.clone(),
            tenant_id: tenant_id.clone(),
            holder,
            heartbeat,
            released: false,
        }))
    }

    /// Renews the lease inside the transaction that applies a run or a decision, and says
    /// whether this instance still holds it. A holder that stalled past its expiry may have
    /// been replaced; the check and the writes commit together, so it then writes nothing.
    pub async fn still_held(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<bool, sqlx::Error> {
        Ok(renew(&mut **tx, &self.tenant_id, &self.holder).await? == 1)
    }

    /// Gives the lease back so the next run need not wait for it to expire.
    pub async fn release(mut self) {
        self.heartbeat.abort();
        self.released = true;
        if let Err(err) = delete(&self.db, &self.tenant_id, &self.holder).await {
            tracing::warn!(tenant = %self.tenant_id, error = %err, "the reconcile lease was not released; it expires on its own");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if self.released {
            return;
        }
        // Dropped without `release` (the run's future was cancelled, or it panicked): give
        // the lease back in the background when a runtime is still there; otherwise it
        // expires on its own.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (db, tenant_id, holder) = (
                self.db.clone(),
                self.tenant_id.clone(),
                std::mem::take(&mut self.holder),
            );
            runtime.spawn(async move {
                let _ = delete(&db, &tenant_id, &holder).await;
            });
        }
    }
}

/// Keeps a long run's lease from expiring under it.
async fn heartbeat(db: Db, tenant_id: TenantId, holder: String) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        match renew(&db.pool, &tenant_id, &holder).await {
            Ok(1) => {}
            Ok(_) => {
                // Taken over after an expiry: the run notices when it tries to apply.
                tracing::warn!(tenant = %tenant_id, "the reconcile lease was lost");
                return;
            }
            Err(err) => {
                tracing::warn!(tenant = %tenant_id, error = %err, "the reconcile lease could not be renewed; trying again");
            }
        }
    }
}

async fn renew<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    tenant_id: &TenantId,
    holder: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE reconcile_leases SET expires_at = $1 WHERE tenant_id = $2 AND holder = $3",
    )
    .bind(now() + LEASE_SECS)
    .bind(tenant_id)
    .bind(holder)
    .execute(db)
    .await?
    .rows_affected())
}

async fn delete(db: &Db, tenant_id: &TenantId, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM reconcile_leases WHERE tenant_id = $1 AND holder = $2")
        .bind(tenant_id)
        .bind(holder)
        .execute(&db.pool)
        .await?;
    Ok(())
}
