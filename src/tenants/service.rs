use crate::audit;
use crate::domain::{Email, JitUsername, Role, TenantSlug, UserSource, UserStatus, UsernamePrefix};
use crate::server::db::{is_unique_violation, Db};
use crate::server::util::{now, random_id};
use crate::users::store::{self as users, User};
use serde::Serialize;

/// A tenant as the rest of the server sees it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub user_source: UserSource,
    pub jit_prefix: String,
    pub entra_tenant_id: Option<String>,
    pub entra_domain: Option<String>,
    pub entra_org_name: Option<String>,
}

impl Tenant {
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
    "id, slug, name, user_source, jit_prefix, entra_tenant_id, entra_domain, entra_org_name";

pub async fn find_by_slug(db: &Db, slug: &str) -> anyhow::Result<Option<Tenant>> {
    Ok(sqlx::query_as::<_, Tenant>(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(&db.pool)
    .await?)
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
    actor: &str,
) -> Result<Tenant, CreateTenantError> {
    let slug = TenantSlug::parse(slug)?;
    let admin_email = Email::parse(admin_email)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CreateTenantError::Name);
    }
    let tenant = Tenant {
        id: random_id(16),
        slug: slug.as_str().to_string(),
        name: name.to_string(),
        user_source: UserSource::Local,
        jit_prefix: UsernamePrefix::default().as_str().to_string(),
        entra_tenant_id: None,
        entra_domain: None,
        entra_org_name: None,
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
        id: random_id(16),
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
    };
    users::insert(&mut tx, &admin)
        .await
        .map_err(anyhow::Error::from)?;
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        actor,
        "tenant.created",
        &tenant.slug,
        &format!("name \"{}\", admin {}", tenant.name, admin_email),
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(tenant)
}
