//! Forgets what has run its course, so that tables do not grow for ever: QR codes and email
//! codes long expired, consent flows never finished, sign-ins past their lifetime, phones
//! that never proved an address, and the session store's expired records. Each table's owner says what of it has run its course;
//! this only asks them in turn. Every replica runs it; each delete may run twice.

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
    pub unverified_phones: u64,
}

/// Removes everything that ended before `at` (Unix seconds) and is no longer needed.
pub async fn sweep(db: &Db, at: i64) -> anyhow::Result<Swept> {
    let expired_before = at - KEEP_EXPIRED_SECS;
    let swept = Swept {
        challenges: crate::login::challenge::forget_expired(db, expired_before).await?,
        sign_ins: crate::login::session::forget_expired(db, at - SIGN_IN_LASTS_SECS).await?,
        email_codes: crate::devices::email::forget_expired(db, expired_before).await?,
        oauth_flows: crate::user_source::flows::forget_expired(db, expired_before).await?,
        unverified_phones: crate::devices::store::forget_unverified(
            db,
            at - crate::devices::store::UNVERIFIED_LASTS_SECS,
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
