//! Every statement on `entra_subscriptions`: the one Graph subscription of each connected
//! tenant, with its clientState kept as a SHA-256 digest.

use crate::domain::{EntraTenantId, SubscriptionId, TenantId};
use crate::server::db::Db;
use sha2::{Digest, Sha256};

/// What Gatehouse knows of one subscription, enough to check a notification against it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Subscription {
    pub subscription_id: SubscriptionId,
    /// Gatehouse's tenant.
    pub tenant_id: TenantId,
    /// The Entra tenant the subscription watches (the tenant's connection); none when the
    /// tenant has gone back to its own directory.
    pub entra_tenant_id: Option<EntraTenantId>,
    /// The Entra tenant the subscription was made in (none for one made before Gatehouse
    /// recorded it): where it must be ended.
    pub made_in: Option<EntraTenantId>,
    pub client_state_sha256: String,
    pub expires_at: i64,
    pub last_notification_at: Option<i64>,
    /// When Graph last showed it exists (its creation, until the first look).
    pub checked_at: i64,
}

/// The digest kept for a clientState.
pub fn digest(client_state: &str) -> String {
    hex::encode(Sha256::digest(client_state.as_bytes()))
}

/// Records the tenant's subscription (replacing one it had), as Graph created it.
pub async fn record(
    db: &Db,
    tenant_id: &TenantId,
    made_in: &EntraTenantId,
    subscription_id: &SubscriptionId,
    client_state: &str,
    expires_at: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM entra_subscriptions WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO entra_subscriptions \
         (subscription_id, tenant_id, client_state_sha256, expires_at, created_at, entra_tenant_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(subscription_id)
    .bind(tenant_id)
    .bind(digest(client_state))
    .bind(expires_at)
    .bind(at)
    .bind(made_in)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The subscription with this id, with the Entra tenant its tenant is connected to.
pub async fn find(
    db: &Db,
    subscription_id: &SubscriptionId,
) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as::<_, Subscription>(
        "SELECT s.subscription_id, s.tenant_id, t.entra_tenant_id, s.entra_tenant_id AS made_in, s.client_state_sha256, \
         s.expires_at, s.last_notification_at, COALESCE(s.checked_at, s.created_at) AS checked_at \
         FROM entra_subscriptions s JOIN tenants t ON t.id = s.tenant_id \
         WHERE s.subscription_id = $1 AND t.entra_tenant_id IS NOT NULL",
    )
    .bind(subscription_id)
    .fetch_optional(&db.pool)
    .await
}

/// Notes that a checked notification of this subscription arrived.
pub async fn heard(db: &Db, subscription_id: &SubscriptionId, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE entra_subscriptions SET last_notification_at = $1 WHERE subscription_id = $2",
    )
    .bind(at)
    .bind(subscription_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The tenant's subscription, if it has one on record.
pub async fn of_tenant(db: &Db, tenant_id: &TenantId) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as::<_, Subscription>(
        "SELECT s.subscription_id, s.tenant_id, t.entra_tenant_id, s.entra_tenant_id AS made_in, \
         s.client_state_sha256, s.expires_at, s.last_notification_at, COALESCE(s.checked_at, s.created_at) AS checked_at \
         FROM entra_subscriptions s JOIN tenants t ON t.id = s.tenant_id WHERE s.tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(&db.pool)
    .await
}

/// Subscriptions of tenants no longer connected to Entra (disconnected, or switched to the
/// local directory): to be deleted at Graph and here.
pub async fn orphaned(db: &Db) -> Result<Vec<Subscription>, sqlx::Error> {
    sqlx::query_as::<_, Subscription>(
        "SELECT s.subscription_id, s.tenant_id, t.entra_tenant_id, s.entra_tenant_id AS made_in, \
         s.client_state_sha256, \
         s.expires_at, s.last_notification_at, COALESCE(s.checked_at, s.created_at) AS checked_at \
         FROM entra_subscriptions s JOIN tenants t ON t.id = s.tenant_id \
         WHERE t.entra_tenant_id IS NULL OR t.user_source <> $1",
    )
    .bind(crate::domain::UserSource::AzureAd.as_str())
    .fetch_all(&db.pool)
    .await
}

/// Graph moved the subscription's expiry.
pub async fn renewed(
    db: &Db,
    subscription_id: &SubscriptionId,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE entra_subscriptions SET expires_at = $1 WHERE subscription_id = $2")
        .bind(expires_at)
        .bind(subscription_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Graph showed the subscription exists, `at`.
pub async fn checked(
    db: &Db,
    subscription_id: &SubscriptionId,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE entra_subscriptions SET checked_at = $1 WHERE subscription_id = $2")
        .bind(at)
        .bind(subscription_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Forgets a subscription (ended at Graph, or gone there).
pub async fn forget(db: &Db, subscription_id: &SubscriptionId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM entra_subscriptions WHERE subscription_id = $1")
        .bind(subscription_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}
