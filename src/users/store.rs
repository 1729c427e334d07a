//! Every statement on `users`. Other contexts call these; none writes the table itself.

use crate::domain::{
    DeviceId, Email, EntraUserId, Reason, Role, SessionId, TenantId, UserId, UserSource, UserStatus,
};
use crate::server::db::Db;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// A user record.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub username: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    #[sqlx(try_from = "String")]
    pub source: UserSource,
    #[sqlx(try_from = "String")]
    pub status: UserStatus,
    pub entra_oid: Option<EntraUserId>,
    pub created_at: i64,
    pub onboarded_at: Option<i64>,
    pub last_login_at: Option<i64>,
    /// When and why the reconciler offboarded the user (cleared when they come back).
    pub offboarded_at: Option<i64>,
    /// The stored code of `domain::OffboardReason` (`Reason::worded` words it).
    pub offboard_reason: Option<String>,
    /// The group's name, when leaving a group was the reason.
    pub offboard_group: Option<String>,
}

const COLUMNS: &str = "id, tenant_id, email, first_name, last_name, username, role, \
    source, status, entra_oid, created_at, onboarded_at, last_login_at, offboarded_at, \
    offboard_reason, offboard_group";
const COLUMNS_U: &str = "u.id, u.tenant_id, u.email, u.first_name, u.last_name, \
    u.username, u.role, u.source, u.status, u.entra_oid, u.created_at, u.onboarded_at, u.last_login_at, \
    u.offboarded_at, u.offboard_reason, u.offboard_group";

impl User {
    /// Why the reconciler offboarded the user, worded as every page words it.
    pub fn offboarded_because(&self) -> Option<String> {
        let code = self.offboard_reason.as_deref()?;
        Some(Reason::worded(code, self.offboard_group.as_deref()))
    }

    pub fn display_name(&self) -> String {
        let name = format!("{} {}", self.first_name, self.last_name);
        let name = name.trim();
        if name.is_empty() {
            self.email.clone()
        } else {
            name.to_string()
        }
    }
}

pub async fn find(db: &Db, tenant_id: &TenantId, user_id: &UserId) -> anyhow::Result<Option<User>> {
    Ok(sqlx::query_as::<_, User>(&format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(user_id)
    .bind(tenant_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// The record, read in `tx` (under the tenant's lock, it stays as read until `tx` ends).
pub async fn find_in(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(&format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(user_id)
    .bind(tenant_id)
    .fetch_optional(&mut **tx)
    .await
}

/// The newest record of an Entra account in this tenant.
pub async fn find_by_oid(
    db: &Db,
    tenant_id: &TenantId,
    oid: &EntraUserId,
) -> anyhow::Result<Option<User>> {
    Ok(sqlx::query_as::<_, User>(&format!(
        "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND entra_oid = $2 \
         ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(tenant_id)
    .bind(oid)
    .fetch_optional(&db.pool)
    .await?)
}

/// The record that holds `email`: the live one if there is one (an offboarded record may
/// share its address with a rehire's).
pub async fn find_by_email(
    db: &Db,
    tenant_id: &TenantId,
    email: &Email,
) -> anyhow::Result<Option<User>> {
    Ok(sqlx::query_as::<_, User>(&format!(
        "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND email = $2 \
         ORDER BY CASE status WHEN $3 THEN 1 ELSE 0 END, created_at DESC LIMIT 1"
    ))
    .bind(tenant_id)
    .bind(email.as_str())
    .bind(UserStatus::Offboarded.as_str())
    .fetch_optional(&db.pool)
    .await?)
}

/// Every user of the tenant, by email.
pub async fn list(db: &Db, tenant_id: &TenantId) -> anyhow::Result<Vec<User>> {
    Ok(sqlx::query_as::<_, User>(&format!(
        "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY email"
    ))
    .bind(tenant_id)
    .fetch_all(&db.pool)
    .await?)
}

/// The tenant's users that came from its Entra tenant, whatever their status.
pub async fn from_entra(db: &Db, tenant_id: &TenantId) -> anyhow::Result<Vec<User>> {
    Ok(sqlx::query_as::<_, User>(&format!(
        "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND source = $2 AND entra_oid IS NOT NULL"
    ))
    .bind(tenant_id)
    .bind(UserSource::AzureAd.as_str())
    .fetch_all(&db.pool)
    .await?)
}

/// The ids of the tenant's active admins, wherever they come from.
pub async fn active_admin_ids(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
) -> anyhow::Result<Vec<UserId>> {
    let ids: Vec<(UserId,)> =
        sqlx::query_as("SELECT id FROM users WHERE tenant_id = $1 AND role = $2 AND status = $3")
            .bind(tenant_id)
            .bind(Role::Admin.as_str())
            .bind(UserStatus::Active.as_str())
            .fetch_all(&mut **tx)
            .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Users of the tenant (of `source`, when given) whose email the device has verified and
/// the claim has not expired, most recently verified first.
pub async fn verified_on_device(
    db: &Db,
    tenant_id: &TenantId,
    device_id: &DeviceId,
    source: Option<UserSource>,
    at: i64,
) -> anyhow::Result<Vec<User>> {
    Ok(sqlx::query_as::<_, User>(&format!(
        "SELECT {COLUMNS_U} FROM users u JOIN email_claims c ON c.email = u.email \
         WHERE u.tenant_id = $1 AND c.device_id = $2 AND ($3 IS NULL OR u.source = $3) \
           AND c.expires_at > $4 \
         ORDER BY c.verified_at DESC"
    ))
    .bind(tenant_id)
    .bind(device_id)
    .bind(source.map(|s| s.as_str().to_string()))
    .bind(at)
    .fetch_all(&db.pool)
    .await?)
}

/// The active user a browser session belongs to.
pub async fn of_session(
    db: &Db,
    tenant_id: &TenantId,
    login_id: &SessionId,
) -> anyhow::Result<Option<User>> {
    Ok(sqlx::query_as::<_, User>(&format!(
        "SELECT {COLUMNS_U} FROM users u JOIN user_sessions s ON s.user_id = u.id \
         WHERE s.id = $1 AND s.tenant_id = $2 AND u.status = $3"
    ))
    .bind(login_id)
    .bind(tenant_id)
    .bind(UserStatus::Active.as_str())
    .fetch_optional(&db.pool)
    .await?)
}

pub async fn username_taken(db: &Db, tenant_id: &TenantId, username: &str) -> anyhow::Result<bool> {
    let taken: Option<(String,)> =
        sqlx::query_as("SELECT id FROM users WHERE tenant_id = $1 AND username = $2")
            .bind(tenant_id)
            .bind(username)
            .fetch_optional(&db.pool)
            .await?;
    Ok(taken.is_some())
}

/// How many of the tenant's users have ever signed in.
pub async fn count_onboarded(db: &Db, tenant_id: &TenantId) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND onboarded_at IS NOT NULL",
    )
    .bind(tenant_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}

/// The record, read inside a transaction.
pub async fn get(tx: &mut Tx<'_>, user_id: &UserId) -> Result<User, sqlx::Error> {
    sqlx::query_as::<_, User>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await
}

/// A new record. A unique violation (email or username taken) is the caller's to tell apart.
pub async fn insert(tx: &mut Tx<'_>, user: &User) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, first_name, last_name, username, role, source, \
         status, entra_oid, created_at, onboarded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&user.id)
    .bind(&user.tenant_id)
    .bind(&user.email)
    .bind(&user.first_name)
    .bind(&user.last_name)
    .bind(&user.username)
    .bind(user.role.as_str())
    .bind(user.source.as_str())
    .bind(user.status.as_str())
    .bind(&user.entra_oid)
    .bind(user.created_at)
    .bind(user.onboarded_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn set_status(
    tx: &mut Tx<'_>,
    user_id: &UserId,
    status: UserStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET status = $1 WHERE id = $2")
        .bind(status.as_str())
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn set_role(tx: &mut Tx<'_>, user_id: &UserId, role: Role) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
        .bind(role.as_str())
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn delete(tx: &mut Tx<'_>, user_id: &UserId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An invited user's first approved sign-in makes them active; false when they were not
/// invited (any more).
pub async fn activate_invited(
    tx: &mut Tx<'_>,
    user_id: &UserId,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET status = $1, onboarded_at = $2 WHERE id = $3 AND status = $4",
    )
    .bind(UserStatus::Active.as_str())
    .bind(at)
    .bind(user_id)
    .bind(UserStatus::Invited.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An Entra account onboards (again) into an existing record: active, bound to its object id.
/// False when another sign-in of the account did so a moment ago.
pub async fn onboard_from_entra(
    tx: &mut Tx<'_>,
    user_id: &UserId,
    oid: &EntraUserId,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET status = $1, source = $2, entra_oid = $3, onboarded_at = $4, \
         offboarded_at = NULL, offboard_reason = NULL, offboard_group = NULL, offboard_seen_at = NULL, \
         access_ended_at = NULL, change_seen_at = NULL \
         WHERE id = $5 AND (status <> $1 OR entra_oid IS NULL)",
    )
    .bind(UserStatus::Active.as_str())
    .bind(UserSource::AzureAd.as_str())
    .bind(oid)
    .bind(at)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a user offboarded with its reason, decided `at`. The change counts as first seen
/// when a notification about the user arrived, if one waits, else `found_at`. Returns the
/// username and that first sight when this changed the record; none when it was offboarded
/// already (or is not the tenant's).
pub async fn offboard(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
    user_id: &UserId,
    reason: &Reason,
    found_at: i64,
    at: i64,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE users SET status = $1, offboarded_at = $2, offboard_reason = $3, \
         offboard_group = $7, \
         offboard_seen_at = COALESCE(change_seen_at, $6), change_seen_at = NULL, \
         access_ended_at = NULL \
         WHERE id = $4 AND tenant_id = $5 AND status <> $1 \
         RETURNING username, offboard_seen_at",
    )
    .bind(UserStatus::Offboarded.as_str())
    .bind(at)
    .bind(reason.code.as_str())
    .bind(user_id)
    .bind(tenant_id)
    .bind(found_at.min(at))
    .bind(reason.group.as_deref())
    .fetch_optional(&mut **tx)
    .await
}

/// A change notification about Entra account `oid` arrived `at`; the first one not yet
/// covered by a run is kept as when the change was first seen.
pub async fn note_change_seen(
    db: &Db,
    tenant_id: &TenantId,
    oid: &EntraUserId,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET change_seen_at = $1 WHERE tenant_id = $2 AND entra_oid = $3 \
         AND status = $4 AND change_seen_at IS NULL",
    )
    .bind(at)
    .bind(tenant_id)
    .bind(oid)
    .bind(UserStatus::Active.as_str())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A run that read Entra from `read_from` on has covered every notification that arrived
/// before then: those users stayed, and their changes were not an offboarding. (One that
/// arrived in that same second is kept: should it turn out to be an offboarding, it is dated
/// too early rather than too late.)
pub async fn forget_changes_seen(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
    read_from: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET change_seen_at = NULL WHERE tenant_id = $1 AND change_seen_at < $2",
    )
    .bind(tenant_id)
    .bind(read_from)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every session and phone binding of these offboarded users has ended (`at`).
pub async fn access_ended(db: &Db, user_ids: &[UserId], at: i64) -> Result<(), sqlx::Error> {
    for id in user_ids {
        sqlx::query(
            "UPDATE users SET access_ended_at = $1 WHERE id = $2 AND status = $3 \
             AND access_ended_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .bind(UserStatus::Offboarded.as_str())
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// How one offboarding went, for the Reconciliation page.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Offboarding {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub reason: Option<String>,
    pub group_name: Option<String>,
    pub seen_at: i64,
    pub decided_at: i64,
    pub access_ended_at: Option<i64>,
}

/// The tenant's offboardings decided at or after `since`, newest first.
pub async fn offboardings_since(
    db: &Db,
    tenant_id: &TenantId,
    since: i64,
) -> Result<Vec<Offboarding>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, username, email, offboard_reason AS reason, offboard_group AS group_name, \
         offboard_seen_at AS seen_at, \
         offboarded_at AS decided_at, access_ended_at FROM users \
         WHERE tenant_id = $1 AND status = $2 AND offboarded_at >= $3 \
         AND offboard_seen_at IS NOT NULL ORDER BY offboarded_at DESC, username",
    )
    .bind(tenant_id)
    .bind(UserStatus::Offboarded.as_str())
    .bind(since)
    .fetch_all(&db.pool)
    .await
}

/// Moves a record to a new address unless another record of the tenant holds it; the
/// username when it moved.
pub async fn move_email(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
    user_id: &UserId,
    email: &Email,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "UPDATE users SET email = $1 WHERE id = $2 AND email <> $1 \
         AND NOT EXISTS (SELECT 1 FROM users o WHERE o.tenant_id = $3 AND o.email = $1) \
         RETURNING username",
    )
    .bind(email.as_str())
    .bind(user_id)
    .bind(tenant_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(u,)| u))
}

/// Records a sign-in, and returns the user, only if they are still active and the approving
/// phone was not revoked in this tenant meanwhile.
pub async fn record_sign_in(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
    user_id: &UserId,
    device_id: Option<&DeviceId>,
    at: i64,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(&format!(
        "UPDATE users SET last_login_at = $1 WHERE id = $2 AND tenant_id = $3 AND status = $5 \
         AND NOT EXISTS (SELECT 1 FROM device_bindings b WHERE b.device_id = $4 AND b.tenant_id = $3 \
                         AND b.revoked_at IS NOT NULL) \
         RETURNING {COLUMNS}"
    ))
    .bind(at)
    .bind(user_id)
    .bind(tenant_id)
    .bind(device_id)
    .bind(UserStatus::Active.as_str())
    .fetch_optional(&mut **tx)
    .await
}
