//! Every statement on `tenants` but the reconciler's schedule (`reconciler::schedule`): a
//! tenant as the server sees it, its Entra connection, groups and health, and its row lock.

use crate::domain::{EntraHealth, EntraTenantId, GroupId, TenantId, UserSource, UsernamePrefix};
use crate::server::db::Db;
use serde::Serialize;

/// A tenant as the rest of the server sees it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub user_source: UserSource,
    pub jit_prefix: String,
    pub entra_tenant_id: Option<EntraTenantId>,
    pub entra_domain: Option<String>,
    pub entra_org_name: Option<String>,
    pub entra_scope_group_id: Option<GroupId>,
    pub entra_scope_group_name: Option<String>,
    pub entra_admin_group_id: Option<GroupId>,
    pub entra_admin_group_name: Option<String>,
}

/// An Entra group a tenant's setting names: its object id, and its display name when the
/// admin chose it (for pages and reasons).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupRef {
    pub id: GroupId,
    pub name: String,
}

impl GroupRef {
    fn from_columns(id: &Option<GroupId>, name: &Option<String>) -> Option<GroupRef> {
        id.as_ref().map(|id| GroupRef {
            id: id.clone(),
            name: name.clone().unwrap_or_else(|| id.to_string()),
        })
    }
}

impl Tenant {
    /// Only members of this group (nested groups count) may onboard from Entra.
    pub fn scope_group(&self) -> Option<GroupRef> {
        GroupRef::from_columns(&self.entra_scope_group_id, &self.entra_scope_group_name)
    }

    /// Members of this group (nested groups count) are the tenant's admins from Entra.
    pub fn admin_group(&self) -> Option<GroupRef> {
        GroupRef::from_columns(&self.entra_admin_group_id, &self.entra_admin_group_name)
    }

    /// The tenant's JIT prefix; a stored prefix was validated when it was saved.
    pub fn prefix(&self) -> UsernamePrefix {
        UsernamePrefix::parse(&self.jit_prefix, true).unwrap_or_default()
    }
}

const TENANT_COLUMNS: &str =
    "id, slug, name, user_source, jit_prefix, entra_tenant_id, entra_domain, entra_org_name, \
     entra_scope_group_id, entra_scope_group_name, entra_admin_group_id, entra_admin_group_name";

pub async fn find_by_slug(db: &Db, slug: &str) -> anyhow::Result<Option<Tenant>> {
    Ok(sqlx::query_as::<_, Tenant>(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(&db.pool)
    .await?)
}

/// Where a tenant stands with its Entra tenant, as the reconciler reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EntraLink {
    #[sqlx(rename = "entra_tenant_id")]
    pub tenant_id: Option<EntraTenantId>,
    #[sqlx(rename = "entra_domain")]
    pub domain: Option<String>,
    #[sqlx(rename = "entra_delta_link")]
    pub delta_link: Option<String>,
    #[sqlx(rename = "deletion_threshold_count")]
    pub threshold_count: i64,
    #[sqlx(rename = "deletion_threshold_percent")]
    pub threshold_percent: i64,
    pub entra_scope_group_id: Option<GroupId>,
    pub entra_scope_group_name: Option<String>,
    pub entra_admin_group_id: Option<GroupId>,
    pub entra_admin_group_name: Option<String>,
}

impl EntraLink {
    pub fn scope_group(&self) -> Option<GroupRef> {
        GroupRef::from_columns(&self.entra_scope_group_id, &self.entra_scope_group_name)
    }

    pub fn admin_group(&self) -> Option<GroupRef> {
        GroupRef::from_columns(&self.entra_admin_group_id, &self.entra_admin_group_name)
    }
}

pub async fn entra_link(db: &Db, tenant_id: &TenantId) -> Result<EntraLink, sqlx::Error> {
    sqlx::query_as::<_, EntraLink>(
        "SELECT entra_tenant_id, entra_domain, entra_delta_link, deletion_threshold_count, \
         deletion_threshold_percent, entra_scope_group_id, entra_scope_group_name, \
         entra_admin_group_id, entra_admin_group_name FROM tenants WHERE id = $1",
    )
    .bind(tenant_id)
    .fetch_one(&db.pool)
    .await
}

/// Records the tenant's Entra health as the pages show it (`ok`, or what went wrong).
pub async fn set_entra_health(
    db: &Db,
    tenant_id: &TenantId,
    health: EntraHealth,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET entra_health = $1 WHERE id = $2")
        .bind(health.as_str())
        .bind(tenant_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Takes the tenant's row for the rest of `tx`: changes that must see the tenant's admins as
/// they are (a run's, a demotion at sign-in, an approval) happen one after the other, on both
/// engines. Every such transaction takes it before it writes any user, so none waits for
/// another in the opposite order.
pub async fn lock(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Keeps the delta link a successful run ended with; the connection is healthy.
pub async fn keep_delta_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    link: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET entra_delta_link = $1, entra_health = $3 WHERE id = $2")
        .bind(link)
        .bind(tenant_id)
        .bind(EntraHealth::Ok.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Forgets the tenant's delta link: its next run reads the whole directory again.
pub async fn forget_delta_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET entra_delta_link = NULL WHERE id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Every tenant whose users come from Entra ID, with its Entra tenant id.
pub async fn connected_to_entra(db: &Db) -> Result<Vec<(TenantId, EntraTenantId)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, entra_tenant_id FROM tenants \
         WHERE user_source = $1 AND entra_tenant_id IS NOT NULL",
    )
    .bind(UserSource::AzureAd.as_str())
    .fetch_all(&db.pool)
    .await
}

/// The tenant's Entra connection and reconciler settings, as the User source page shows them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionRow {
    pub entra_connected_at: Option<i64>,
    pub entra_connected_by: Option<String>,
    pub entra_health: Option<String>,
    pub offboard_interval_secs: i64,
    pub deletion_threshold_count: i64,
    pub deletion_threshold_percent: i64,
}

pub async fn connection(db: &Db, tenant_id: &TenantId) -> Result<ConnectionRow, sqlx::Error> {
    sqlx::query_as::<_, ConnectionRow>(
        "SELECT entra_connected_at, entra_connected_by, entra_health, offboard_interval_secs, \
         deletion_threshold_count, deletion_threshold_percent FROM tenants WHERE id = $1",
    )
    .bind(tenant_id)
    .fetch_one(&db.pool)
    .await
}

/// The tenant keeps its own directory from now on.
pub async fn use_local_directory(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    prefix: &UsernamePrefix,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET user_source = $1, jit_prefix = $2 WHERE id = $3")
        .bind(UserSource::Local.as_str())
        .bind(prefix.as_str())
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What an admin saved when connecting an Entra tenant.
pub struct EntraConnection<'a> {
    pub prefix: &'a UsernamePrefix,
    pub entra_tenant_id: &'a EntraTenantId,
    pub domain: &'a str,
    pub org_name: &'a str,
    pub by: &'a str,
    pub at: i64,
}

/// The tenant's users come from this Entra tenant and domain from now on. The delta link
/// and the chosen groups are kept only when the Entra tenant stays the same (another tenant's
/// group ids mean nothing here); the next run is due at once.
pub async fn connect_entra(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    c: &EntraConnection<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tenants SET user_source = $8, jit_prefix = $1, entra_tenant_id = $2, entra_domain = $3, \
         entra_org_name = $4, entra_connected_at = $5, entra_connected_by = $6, entra_health = $9, \
         entra_delta_link = CASE WHEN entra_tenant_id = $2 THEN entra_delta_link ELSE NULL END, \
         entra_scope_group_id = CASE WHEN entra_tenant_id = $2 THEN entra_scope_group_id ELSE NULL END, \
         entra_scope_group_name = CASE WHEN entra_tenant_id = $2 THEN entra_scope_group_name ELSE NULL END, \
         entra_admin_group_id = CASE WHEN entra_tenant_id = $2 THEN entra_admin_group_id ELSE NULL END, \
         entra_admin_group_name = CASE WHEN entra_tenant_id = $2 THEN entra_admin_group_name ELSE NULL END, \
         next_reconcile_at = NULL WHERE id = $7",
    )
    .bind(c.prefix.as_str())
    .bind(c.entra_tenant_id)
    .bind(c.domain)
    .bind(c.org_name)
    .bind(c.at)
    .bind(c.by)
    .bind(tenant_id)
    .bind(UserSource::AzureAd.as_str())
    .bind(EntraHealth::Ok.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Who may onboard from Entra (`scope`) and who is an admin (`admins`); `None` is anyone in
/// the domain, and roles set by hand. The next run is due at once, so the change takes
/// effect for people already onboarded.
pub async fn set_entra_groups(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    scope: Option<&GroupRef>,
    admins: Option<&GroupRef>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tenants SET entra_scope_group_id = $1, entra_scope_group_name = $2, \
         entra_admin_group_id = $3, entra_admin_group_name = $4, next_reconcile_at = NULL \
         WHERE id = $5",
    )
    .bind(scope.map(|g| g.id.as_str()))
    .bind(scope.map(|g| g.name.as_str()))
    .bind(admins.map(|g| g.id.as_str()))
    .bind(admins.map(|g| g.name.as_str()))
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every tenant whose users come from `source`, by slug.
pub async fn using_source(db: &Db, source: UserSource) -> anyhow::Result<Vec<Tenant>> {
    Ok(sqlx::query_as::<_, Tenant>(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE user_source = $1 ORDER BY slug"
    ))
    .bind(source.as_str())
    .fetch_all(&db.pool)
    .await?)
}

/// Writes a new tenant's row; a taken slug is the database's unique violation.
pub async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &Tenant,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, user_source, jit_prefix, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&tenant.id)
    .bind(&tenant.slug)
    .bind(&tenant.name)
    .bind(tenant.user_source.as_str())
    .bind(&tenant.jit_prefix)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
