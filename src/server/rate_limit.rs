//! Budgets kept in the database (fixed windows, one row per key), so that they hold across
//! devices, resends and replicas. Taking from a budget is one statement: concurrent requests
//! never read the same count and each write its own.

use super::db::Db;

/// How much of something one key may have per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Part of every key, so that budgets never share a row.
    pub name: &'static str,
    pub max: i64,
    pub window_secs: i64,
}

/// The budget is spent: the next one opens after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    pub retry_after: i64,
}

impl Budget {
    fn key(&self, key: &str) -> String {
        format!("{}:{}", self.name, key)
    }

    /// Takes one from `key`'s budget; returns how many are used in this window, this one
    /// included.
    pub async fn take(
        &self,
        db: &Db,
        key: &str,
        at: i64,
    ) -> anyhow::Result<Result<i64, Exhausted>> {
        let key = self.key(key);
        // A window that has run out starts again at one; otherwise the count goes up only
        // while it is below the maximum. The WHERE of the upsert makes "no row" mean "spent".
        let used: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO rate_limits (key, window_start, used) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET \
               used = CASE WHEN rate_limits.window_start <= $3 THEN 1 ELSE rate_limits.used + 1 END, \
               window_start = CASE WHEN rate_limits.window_start <= $3 THEN $2 ELSE rate_limits.window_start END \
             WHERE rate_limits.window_start <= $3 OR rate_limits.used < $4 \
             RETURNING used",
        )
        .bind(&key)
        .bind(at)
        .bind(at - self.window_secs)
        .bind(self.max)
        .fetch_optional(&db.pool)
        .await?;
        if let Some((used,)) = used {
            return Ok(Ok(used));
        }
        metrics::counter!("gatehouse_rate_limited_total", "limit" => self.name).increment(1);
        let (start,): (i64,) =
            sqlx::query_as("SELECT window_start FROM rate_limits WHERE key = $1")
                .bind(&key)
                .fetch_one(&db.pool)
                .await?;
        Ok(Err(Exhausted {
            retry_after: (start + self.window_secs - at).max(1),
        }))
    }

    /// Gives one back: what was taken turned out not to count (a correct code, a mail that
    /// could not be sent).
    pub async fn give_back(&self, db: &Db, key: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE rate_limits SET used = used - 1 WHERE key = $1 AND used > 0")
            .bind(self.key(key))
            .execute(&db.pool)
            .await?;
        Ok(())
    }

    /// True when `key` has nothing left in this window (nothing is taken).
    pub async fn is_spent(&self, db: &Db, key: &str, at: i64) -> anyhow::Result<Option<Exhausted>> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT window_start, used FROM rate_limits WHERE key = $1")
                .bind(self.key(key))
                .fetch_optional(&db.pool)
                .await?;
        Ok(match row {
            Some((start, used)) if start > at - self.window_secs && used >= self.max => {
                Some(Exhausted {
                    retry_after: (start + self.window_secs - at).max(1),
                })
            }
            _ => None,
        })
    }
}

/// Forgets windows that ended more than a day ago (housekeeping).
pub async fn sweep(db: &Db, at: i64) -> anyhow::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(at - 24 * 3600)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}
