//! Forgets what has run its course, so that tables do not grow for ever: QR codes and email
//! codes long expired, consent flows never finished, sign-ins past their lifetime, and the
//! session store's expired records. Every replica runs it; each delete may run twice.

use crate::login::session::SIGN_IN_LASTS_SECS;
use crate::server::db::{Db, Engine};
use crate::server::util::now;
use std::time::Duration;
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

const EVERY: Duration = Duration::from_secs(10 * 60);

/// Expired codes and flows stay a day, so that a phone or browser that comes back late is
/// told "expired", not "unknown".
const KEEP_EXPIRED_SECS: i64 = 24 * 3600;

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub challenges: u64,
    pub sign_ins: u64,
    pub email_codes: u64,
    pub oauth_flows: u64,
}

/// Removes everything that ended before `at` (Unix seconds) and is no longer needed.
pub async fn sweep(db: &Db, at: i64) -> anyhow::Result<Swept> {
    let expired_before = at - KEEP_EXPIRED_SECS;
    let delete = |sql: &'static str, before: i64| async move {
        anyhow::Ok(
            sqlx::query(sql)
                .bind(before)
                .execute(&db.pool)
                .await?
                .rows_affected(),
        )
    };
    let swept = Swept {
        challenges: delete(
            "DELETE FROM login_challenges WHERE expires_at < $1",
            expired_before,
        )
        .await?,
        // The index rows of sign-ins whose session has expired (an admin lists the rest).
        sign_ins: delete(
            "DELETE FROM user_sessions WHERE created_at <= $1",
            at - SIGN_IN_LASTS_SECS,
        )
        .await?,
        email_codes: delete(
            "DELETE FROM email_codes WHERE expires_at < $1",
            expired_before,
        )
        .await?,
        oauth_flows: delete(
            "DELETE FROM oauth_flows WHERE expires_at < $1",
            expired_before,
        )
        .await?,
    };
    // Budget windows of the phone's mail and code checks, long over.
    crate::server::rate_limit::sweep(db, at).await?;
    match &db.engine {
        Engine::Sqlite(pool) => SqliteStore::new(pool.clone()).delete_expired().await?,
        Engine::Postgres(pool) => PostgresStore::new(pool.clone()).delete_expired().await?,
    }
    Ok(swept)
}

/// Sweeps every ten minutes, the first time ten minutes after start (nothing is urgent, and
/// start-up has its own work). A failed sweep is logged and tried again.
pub async fn run_until_stopped(
    db: Db,
    throttles: std::sync::Arc<crate::server::throttle::Throttles>,
) -> anyhow::Result<()> {
    loop {
        tokio::time::sleep(EVERY).await;
        throttles.forget_idle();
        match sweep(&db, now()).await {
            Ok(swept) => tracing::debug!(?swept, "housekeeping"),
            Err(err) => tracing::warn!(error = ?err, "housekeeping failed; trying again later"),
        }
    }
}
