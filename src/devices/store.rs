//! Every statement on `devices`, `email_claims` and `device_bindings`.

use crate::domain::{DeviceId, Email, TenantId, UserId};
use crate::server::db::Db;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// A verified email stays the device's this long; then the app asks to verify it again.
pub const CLAIM_LASTS_SECS: i64 = 180 * 24 * 3600;

/// A phone that registered its key and proved no address within a day is forgotten: anyone
/// can register keys, and the table must not keep every one of them. (A forgotten phone is
/// told `unknown_device` and sets itself up again.)
pub const UNVERIFIED_LASTS_SECS: i64 = 24 * 3600;

#[derive(sqlx::FromRow)]
pub struct DeviceKey {
    pub public_jwk: String,
    pub revoked_at: Option<i64>,
}

pub async fn key(db: &Db, device_id: &DeviceId) -> anyhow::Result<Option<DeviceKey>> {
    Ok(
        sqlx::query_as::<_, DeviceKey>("SELECT public_jwk, revoked_at FROM devices WHERE id = $1")
            .bind(device_id)
            .fetch_optional(&db.pool)
            .await?,
    )
}

/// The device registered with this key thumbprint: (id, revoked?).
pub async fn by_thumbprint(db: &Db, thumbprint: &str) -> anyhow::Result<Option<(DeviceId, bool)>> {
    let row: Option<(DeviceId, Option<i64>)> =
        sqlx::query_as("SELECT id, revoked_at FROM devices WHERE jwk_thumbprint = $1")
            .bind(thumbprint)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|(id, revoked)| (id, revoked.is_some())))
}

pub async fn insert(
    db: &Db,
    id: &DeviceId,
    jwk: &str,
    thumbprint: &str,
    at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO devices (id, public_jwk, jwk_thumbprint, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(jwk)
    .bind(thumbprint)
    .bind(at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Records that `email` was proved on the device now; it lasts `CLAIM_LASTS_SECS`.
pub async fn claim_email(
    tx: &mut Tx<'_>,
    device_id: &DeviceId,
    email: &Email,
    at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO email_claims (device_id, email, verified_at, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (device_id, email) DO UPDATE SET verified_at = excluded.verified_at, expires_at = excluded.expires_at",
    )
    .bind(device_id)
    .bind(email.as_str())
    .bind(at)
    .bind(at + CLAIM_LASTS_SECS)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The device's emails, most recently verified first, with whether each is still valid.
pub async fn claims(db: &Db, device_id: &DeviceId, at: i64) -> anyhow::Result<Vec<(Email, bool)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT email, expires_at FROM email_claims WHERE device_id = $1 ORDER BY verified_at DESC",
    )
    .bind(device_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(e, exp)| Email::parse(&e).ok().map(|e| (e, exp > at)))
        .collect())
}

/// True when the device may no longer approve anything in this tenant: an admin revoked it
/// there, or access of a user it signed in for ended (offboarding, disabling, deletion).
pub async fn is_revoked_in(
    db: &Db,
    device_id: &DeviceId,
    tenant_id: &TenantId,
) -> anyhow::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM device_bindings WHERE device_id = $1 AND tenant_id = $2 AND revoked_at IS NOT NULL LIMIT 1",
    )
    .bind(device_id)
    .bind(tenant_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.is_some())
}

/// Whether the device signed `user_id` in at the tenant and is not revoked there: a phone
/// that may approve what that user asks for.
pub async fn is_bound_to(
    db: &Db,
    device_id: &DeviceId,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> anyhow::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM device_bindings WHERE device_id = $1 AND tenant_id = $2 AND user_id = $3 \
         AND revoked_at IS NULL",
    )
    .bind(device_id)
    .bind(tenant_id)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.is_some())
}

/// The device approved a sign-in of `user_id`: remember the binding (a revoked one stays
/// revoked) and when the phone was last used.
pub async fn bind(
    tx: &mut Tx<'_>,
    device_id: &DeviceId,
    tenant_id: &TenantId,
    user_id: &UserId,
    at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO device_bindings (device_id, tenant_id, user_id, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (device_id, tenant_id, user_id) DO NOTHING",
    )
    .bind(device_id)
    .bind(tenant_id)
    .bind(user_id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE devices SET last_used_at = $1 WHERE id = $2")
        .bind(at)
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Revokes every phone binding of a user in a tenant; returns how many phones.
pub async fn revoke_user_bindings(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
    user_id: &UserId,
    at: i64,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE device_bindings SET revoked_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(tenant_id)
    .bind(user_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Revokes the device for `user_id` in the tenant, whether or not it ever signed them in.
pub async fn revoke_binding(
    tx: &mut Tx<'_>,
    device_id: &DeviceId,
    tenant_id: &TenantId,
    user_id: &UserId,
    at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO device_bindings (device_id, tenant_id, user_id, created_at, revoked_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (device_id, tenant_id, user_id) DO UPDATE SET revoked_at = excluded.revoked_at",
    )
    .bind(device_id)
    .bind(tenant_id)
    .bind(user_id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The device is revoked everywhere: it can do nothing after, and its emails are forgotten.
/// Returns the tenants it was bound in.
pub async fn revoke_everywhere(
    tx: &mut Tx<'_>,
    device_id: &DeviceId,
    at: i64,
) -> anyhow::Result<Vec<TenantId>> {
    let tenants: Vec<(TenantId,)> =
        sqlx::query_as("SELECT DISTINCT tenant_id FROM device_bindings WHERE device_id = $1")
            .bind(device_id)
            .fetch_all(&mut **tx)
            .await?;
    sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(at)
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE device_bindings SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(device_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM email_claims WHERE device_id = $1")
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    Ok(tenants.into_iter().map(|(t,)| t).collect())
}

/// A phone of a user as the admin sees it.
#[derive(sqlx::FromRow)]
pub struct UserDevice {
    pub id: DeviceId,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub bound_at: Option<i64>,
}

/// The phones that can act for a user of a tenant: those that signed them in, and those
/// holding a verified claim on their email. Revoked ones are listed too, marked.
pub async fn of_user(
    db: &Db,
    tenant_id: &TenantId,
    user_id: &UserId,
    email: &str,
) -> anyhow::Result<Vec<UserDevice>> {
    Ok(sqlx::query_as::<_, UserDevice>(
        "SELECT d.id, d.created_at, d.last_used_at, \
                COALESCE(d.revoked_at, b.revoked_at) AS revoked_at, b.created_at AS bound_at \
         FROM devices d \
         LEFT JOIN device_bindings b ON b.device_id = d.id AND b.tenant_id = $1 AND b.user_id = $2 \
         WHERE b.device_id IS NOT NULL \
            OR d.id IN (SELECT device_id FROM email_claims WHERE email = $3) \
         ORDER BY d.created_at DESC",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(email)
    .fetch_all(&db.pool)
    .await?)
}

/// The emails a device has verified (for the admin's list), most recent first.
pub async fn emails_of(db: &Db, device_id: &DeviceId) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT email FROM email_claims WHERE device_id = $1 ORDER BY verified_at DESC",
    )
    .bind(device_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(e,)| e).collect())
}

/// Drops a deleted user's phone bindings (their record is going away).
pub async fn forget_user(tx: &mut Tx<'_>, user_id: &UserId) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM device_bindings WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
/// Forgets the phones registered before `before` that never proved an address, never signed
/// anyone in and are not revoked (a revoked key must stay known, so that it cannot register
/// again as new), with the codes they asked for. Returns how many.
pub async fn forget_unverified(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    const NEVER_USED: &str = "SELECT id FROM devices d WHERE d.created_at < $1 \
         AND d.revoked_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM email_claims c WHERE c.device_id = d.id) \
         AND NOT EXISTS (SELECT 1 FROM device_bindings b WHERE b.device_id = d.id)";
    let mut tx = db.pool.begin().await?;
    sqlx::query(&format!(
        "DELETE FROM email_codes WHERE device_id IN ({NEVER_USED})"
    ))
    .bind(before)
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query(&format!("DELETE FROM devices WHERE id IN ({NEVER_USED})"))
        .bind(before)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}
