//! Making a tenant: its row and its first, invited admin, in one transaction.

use super::store::{self as tenants, Tenant};
use crate::audit::{self, Actor};
use crate::domain::{
    Email, JitUsername, Role, TenantId, TenantSlug, UserId, UserSource, UserStatus, UsernamePrefix,
};
use crate::server::db::{is_unique_violation, Db};
use crate::server::util::{now, random_id};
use crate::users::store::{self as users, User};

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
    match tenants::insert(&mut tx, &tenant, at).await {
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
        audit::Event::TenantCreated {
            slug: &tenant.slug,
            name: &tenant.name,
            admin_email: admin_email.as_str(),
        },
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(tenant)
}
