use crate::audit::{self, Actor};
use crate::domain::{
    Email, EntraHealth, EntraTenantId, GroupId, JitUsername, Role, TenantId, TenantSlug, UserId,
    UserSource, UserStatus, UsernamePrefix,
};
use crate::server::db::{is_unique_violation, Db};
use crate::server::util::{now, random_id};
use crate::users::store::{self as users, User};
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

#[derive(Debug, thiserror::Error)]
pub enum CreateTenantError {
    #[error("invalid slug: {0}")]
    Slug(#[from] crate::domain::SlugError),
    #[error("invalid admin email: {0}")]
    Email(#[from] crate::domain::EmailError),
    #[error("the name may not be empty and may be at most 100 characters")]
    Name,
    #[error("the slug `{0}` is already taken")]
    Taken(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
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

/// Every tenant whose users come from `source`, by slug.
pub async fn using_source(db: &Db, source: UserSource) -> anyhow::Result<Vec<Tenant>> {
    Ok(sqlx::query_as::<_, Tenant>(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE user_source = $1 ORDER BY slug"
    ))
    .bind(source.as_str())
    .fetch_all(&db.pool)
    .await?)
}

/// Creates a tenant on the local user source with one invited admin, in one transaction.
pub async fn create(
    db: &Db,
    slug: &str,
    name: &str,
    admin_email: &str,
    actor: Actor<'_>,
) -> Result<Tenant, CreateTenantError> {
    let slug = TenantSlug::parse(slug)?;
    let admin_email = Email::parse(admin_email)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CreateTenantError::Name);
    }
    let tenant = Tenant {
        id: TenantId::drawn(random_id(16)),
        slug: slug.as_str().to_string(),
        name: name.to_string(),
        user_source: UserSource::Local,
        jit_prefix: UsernamePrefix::default().as_str().to_string(),
        entra_tenant_id: None,
        entra_domain: None,
        entra_org_name: None,
        entra_scope_group_id: None,
        entra_scope_group_name: None,
        entra_admin_group_id: None,
        entra_admin_group_name: None,
    };
    let username = JitUsername::derive(&tenant.prefix(), &admin_email);
    let at = now();
    let mut tx = db.pool.begin().await.map_err(anyhow::Error::from)?;
    let inserted = sqlx::query(
        "INSERT INTO tenants (id, slug, name, user_source, jit_prefix, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&tenant.id)
    .bind(&tenant.slug)
    .bind(&tenant.name)
    .bind(tenant.user_source.as_str())
    .bind(&tenant.jit_prefix)
    .bind(at)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(CreateTenantError::Taken(tenant.slug)),
        other => {
            other.map_err(anyhow::Error::from)?;
        }
    }
    let admin = User {
        id: UserId::drawn(random_id(16)),
        tenant_id: tenant.id.clone(),
        email: admin_email.to_string(),
        first_name: String::new(),
        last_name: String::new(),
        username: username.to_string(),
        role: Role::Admin,
        source: UserSource::Local,
        status: UserStatus::Invited,
        entra_oid: None,
        created_at: at,
        onboarded_at: None,
        last_login_at: None,
        offboarded_at: None,
        offboard_reason: None,
        offboard_group: None,
    };
    users::insert(&mut tx, &admin)
        .await
        .map_err(anyhow::Error::from)?;
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        actor,
        audit::Action::TenantCreated,
        &tenant.slug,
        &format!("name \"{}\", admin {}", tenant.name, admin_email),
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(tenant)
}
