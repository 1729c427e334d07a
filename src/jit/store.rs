//! The `jit_accounts` table: every statement on it is here. A row is the only thing that
//! lets Gatehouse act on an account in a customer's tenant: the object id it made.

use crate::domain::{CustomerId, EntraRole, JitAccountId, JitState, TenantId, UserId};
use crate::server::db::Db;
use crate::server::util::random_id;
use sqlx::{Any, Executor};

/// A technician's account at a customer, as recorded.
#[derive(Debug, Clone)]
pub struct JitAccount {
    pub id: JitAccountId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub user_id: UserId,
    pub username: String,
    pub upn: String,
    pub entra_object_id: Option<String>,
    pub state: JitState,
    pub roles: Vec<EntraRole>,
    pub opened_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub end_reason: Option<String>,
    pub end_requested_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: JitAccountId,
    tenant_id: TenantId,
    customer_id: CustomerId,
    user_id: UserId,
    username: String,
    upn: String,
    entra_object_id: Option<String>,
    state: String,
    roles: String,
    opened_at: Option<i64>,
    ends_at: Option<i64>,
    end_reason: Option<String>,
    end_requested_at: Option<i64>,
    ended_at: Option<i64>,
    end_attempts: i64,
    next_attempt_at: Option<i64>,
    last_error: Option<String>,
}

impl From<Row> for JitAccount {
    fn from(r: Row) -> Self {
        let roles: Vec<String> = serde_json::from_str(&r.roles).unwrap_or_default();
        JitAccount {
            id: r.id,
            tenant_id: r.tenant_id,
            customer_id: r.customer_id,
            user_id: r.user_id,
            username: r.username,
            upn: r.upn,
            entra_object_id: r.entra_object_id,
            // A state this version does not know is treated as ending: Gatehouse tries to
            // end what it cannot account for, never leaves it open.
            state: r.state.parse().unwrap_or(JitState::Ending),
            roles: roles
                .iter()
                .filter_map(|id| EntraRole::parse(id).ok())
                .collect(),
            opened_at: r.opened_at,
            ends_at: r.ends_at,
            end_reason: r.end_reason,
            end_requested_at: r.end_requested_at,
            ended_at: r.ended_at,
            end_attempts: r.end_attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
        }
    }
}

const COLUMNS: &str = "id, tenant_id, customer_id, user_id, username, upn, entra_object_id, state, roles, \
     opened_at, ends_at, end_reason, end_requested_at, ended_at, end_attempts, next_attempt_at, last_error";

/// The technician's account at the customer, if Gatehouse ever made one.
pub async fn find(
    db: &Db,
    customer_id: &CustomerId,
    user_id: &UserId,
) -> Result<Option<JitAccount>, sqlx::Error> {
    let row = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM jit_accounts WHERE customer_id = $1 AND user_id = $2"
    ))
    .bind(customer_id)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(JitAccount::from))
}

/// The account by its id.
pub async fn get(db: &Db, id: &JitAccountId) -> Result<Option<JitAccount>, sqlx::Error> {
    let row =
        sqlx::query_as::<_, Row>(&format!("SELECT {COLUMNS} FROM jit_accounts WHERE id = $1"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(JitAccount::from))
}

/// Every account of the tenant that is not ended (open, being made, or ending), by customer.
pub async fn live_of_tenant(db: &Db, tenant_id: &TenantId) -> Result<Vec<JitAccount>, sqlx::Error> {
    let rows = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM jit_accounts WHERE tenant_id = $1 AND state <> $2 ORDER BY customer_id, upn"
    ))
    .bind(tenant_id)
    .bind(JitState::Ended.as_str())
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(JitAccount::from).collect())
}

/// The accounts of the user, or of the customer, that are open or being made, read in the
/// caller's transaction.
pub async fn live_in(
    tx: &mut sqlx::Transaction<'_, Any>,
    whose: Whose<'_>,
) -> Result<Vec<JitAccount>, sqlx::Error> {
    let (column, id) = match whose {
        Whose::User(id) => ("user_id", id.as_str()),
        Whose::Customer(id) => ("customer_id", id.as_str()),
    };
    let rows = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM jit_accounts WHERE {column} = $1 AND state IN ($2, $3)"
    ))
    .bind(id)
    .bind(JitState::Open.as_str())
    .bind(JitState::Making.as_str())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(JitAccount::from).collect())
}

/// Whose accounts `live_in` reads.
pub enum Whose<'a> {
    User(&'a UserId),
    Customer(&'a CustomerId),
}

/// Every account of the user, at every customer.
pub async fn of_user(db: &Db, user_id: &UserId) -> Result<Vec<JitAccount>, sqlx::Error> {
    let rows = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM jit_accounts WHERE user_id = $1 ORDER BY upn, customer_id"
    ))
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(JitAccount::from).collect())
}

/// Records that Gatehouse is about to ask Graph to make the account (before it asks, so an
/// answer lost on the way leaves a trace); its id.
pub async fn making(
    db: &Db,
    tenant_id: &TenantId,
    customer_id: &CustomerId,
    user: (&UserId, &str),
    upn: &str,
) -> Result<JitAccountId, sqlx::Error> {
    let id = JitAccountId::drawn(random_id(16));
    sqlx::query(
        "INSERT INTO jit_accounts (id, tenant_id, customer_id, user_id, username, upn, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(customer_id)
    .bind(user.0)
    .bind(user.1)
    .bind(upn)
    .bind(JitState::Making.as_str())
    .execute(&db.pool)
    .await?;
    Ok(id)
}

/// Graph made the account: its object id, from Graph's answer.
pub async fn made(db: &Db, id: &JitAccountId, object_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jit_accounts SET entra_object_id = $1 WHERE id = $2")
        .bind(object_id)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Graph did not make it (it answered with an error): the row goes, as nothing exists.
pub async fn not_made(db: &Db, id: &JitAccountId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM jit_accounts WHERE id = $1 AND entra_object_id IS NULL")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The account is open with `roles` until `ends_at`. Only an account not ending may open:
/// false when an end came first (the caller then ends what it opened).
pub async fn opened(
    db: &Db,
    id: &JitAccountId,
    roles: &[EntraRole],
    at: i64,
    ends_at: i64,
) -> Result<bool, sqlx::Error> {
    let roles: Vec<&str> = roles.iter().map(|r| r.id()).collect();
    let done = sqlx::query(
        "UPDATE jit_accounts SET state = $1, roles = $2, opened_at = $3, ends_at = $4, \
         end_reason = NULL, end_requested_at = NULL, ended_at = NULL, end_attempts = 0, \
         next_attempt_at = NULL, last_error = NULL WHERE id = $5 AND state IN ($6, $7, $8)",
    )
    .bind(JitState::Open.as_str())
    .bind(serde_json::to_string(&roles).unwrap_or_else(|_| "[]".into()))
    .bind(at)
    .bind(ends_at)
    .bind(id)
    .bind(JitState::Making.as_str())
    .bind(JitState::Open.as_str())
    .bind(JitState::Ended.as_str())
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the account ending now for `reason`, whatever it was doing (an opening that failed
/// half-way is ended too); an account ended already stays ended.
pub async fn end_now<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &JitAccountId,
    reason: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jit_accounts SET state = $1, end_reason = $2, end_requested_at = $3, next_attempt_at = $4 \
         WHERE id = $5 AND state IN ($6, $7)",
    )
    .bind(JitState::Ending.as_str())
    .bind(reason)
    .bind(at)
    .bind(at)
    .bind(id)
    .bind(JitState::Open.as_str())
    .bind(JitState::Making.as_str())
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every account of the user still open (or being made) is ending now, in the caller's
/// transaction: the step `users::access::revoke_all_access` adds. How many.
pub async fn end_all_of_user<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &UserId,
    reason: &str,
    at: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jit_accounts SET state = $1, end_reason = $2, end_requested_at = $3, next_attempt_at = $4 \
         WHERE user_id = $5 AND state IN ($6, $7)",
    )
    .bind(JitState::Ending.as_str())
    .bind(reason)
    .bind(at)
    .bind(at)
    .bind(user_id)
    .bind(JitState::Open.as_str())
    .bind(JitState::Making.as_str())
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Accounts whose window is over are ending now; how many.
pub async fn end_windows_over(db: &Db, at: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jit_accounts SET state = $1, end_reason = $2, end_requested_at = ends_at, next_attempt_at = $3 \
         WHERE state = $4 AND ends_at <= $5",
    )
    .bind(JitState::Ending.as_str())
    .bind("the access window is over")
    .bind(at)
    .bind(JitState::Open.as_str())
    .bind(at)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

/// Ending accounts due for a try now, each claimed by this replica until `until` (another
/// replica finds it claimed and leaves it).
pub async fn claim_due(db: &Db, at: i64, until: i64) -> Result<Vec<JitAccount>, sqlx::Error> {
    let due = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM jit_accounts WHERE state = $1 AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT 200"
    ))
    .bind(JitState::Ending.as_str())
    .bind(at)
    .fetch_all(&db.pool)
    .await?;
    let mut claimed = Vec::new();
    for row in due {
        let done = sqlx::query(
            "UPDATE jit_accounts SET next_attempt_at = $1 WHERE id = $2 AND state = $3 AND next_attempt_at = $4",
        )
        .bind(until)
        .bind(&row.id)
        .bind(JitState::Ending.as_str())
        .bind(row.next_attempt_at)
        .execute(&db.pool)
        .await?;
        if done.rows_affected() == 1 {
            claimed.push(JitAccount::from(row));
        }
    }
    Ok(claimed)
}

/// Microsoft confirmed the last step of the end.
pub async fn ended<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &JitAccountId,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jit_accounts SET state = $1, ended_at = $2, next_attempt_at = NULL, \
         end_attempts = end_attempts + 1, last_error = NULL WHERE id = $3 AND state = $4",
    )
    .bind(JitState::Ended.as_str())
    .bind(at)
    .bind(id)
    .bind(JitState::Ending.as_str())
    .execute(ex)
    .await?;
    Ok(())
}

/// A try at the end failed: why, and when the next try is.
pub async fn end_failed(
    db: &Db,
    id: &JitAccountId,
    error: &str,
    next_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jit_accounts SET end_attempts = end_attempts + 1, last_error = $1, next_attempt_at = $2 \
         WHERE id = $3 AND state = $4",
    )
    .bind(error)
    .bind(next_at)
    .bind(id)
    .bind(JitState::Ending.as_str())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// When something is next due: the soonest try at an end, or the soonest window's end.
pub async fn next_due(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    let (tries, windows): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT MIN(next_attempt_at) FROM jit_accounts WHERE state = $1), \
                (SELECT MIN(ends_at) FROM jit_accounts WHERE state = $2)",
    )
    .bind(JitState::Ending.as_str())
    .bind(JitState::Open.as_str())
    .fetch_one(&db.pool)
    .await?;
    Ok([tries, windows].into_iter().flatten().min())
}
