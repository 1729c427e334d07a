//! A phone's enrolment; what an admin sees of a user's phones, and revoking one.

use super::store;
use super::view::DeviceRow;
use crate::audit::{self, Actor};
use crate::domain::{DeviceId, UserId};
use crate::error::AppError;
use crate::server::bus::Bus;
use crate::server::db::Db;
use crate::server::util::{format_time, now, random_id};
use crate::tenants::Tenant;
use crate::users::access::{revoke_device, Subject};
use crate::users::service::User;

/// A key that was forgotten or revoked stays so: the app makes a new key to enroll again.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("this key was revoked")]
    Revoked,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Enrols a phone's public key (`jwk`, already checked, with its `thumbprint`): the same key
/// enrolled again is the same device. Returns the device and whether it is new; audited.
pub async fn enroll(db: &Db, jwk: &str, thumbprint: &str) -> Result<(DeviceId, bool), EnrolError> {
    if let Some((id, revoked)) = store::by_thumbprint(db, thumbprint).await? {
        return if revoked {
            Err(EnrolError::Revoked)
        } else {
            Ok((id, false))
        };
    }
    let id = DeviceId::drawn(random_id(16));
    store::insert(db, &id, jwk, thumbprint, now()).await?;
    audit::record(
        &db.pool,
        None,
        Actor::Device(id.as_str()),
        audit::Event::PhoneRegistered {
            phone: &id,
            thumbprint,
        },
    )
    .await?;
    Ok((id, true))
}

/// The phones that can act for `user_id`: those that signed them in and those that verified
/// their email. Of each phone's verified addresses the admin sees only those of this tenant
/// (the user's own, and the connected Entra domain's); others are counted, not named.
pub async fn of_user(
    db: &Db,
    tenant: &Tenant,
    user_id: &UserId,
) -> Result<Vec<DeviceRow>, AppError> {
    let user = user(db, tenant, user_id).await?;
    let mut rows = Vec::new();
    for d in store::of_user(db, &tenant.id, &user.id, &user.email).await? {
        let emails = store::emails_of(db, &d.id).await?;
        let (shown, hidden): (Vec<String>, Vec<String>) = emails
            .into_iter()
            .partition(|e| belongs_here(tenant, &user, e));
        rows.push(DeviceRow {
            short_id: d.id.short().to_string(),
            id: d.id.to_string(),
            added: format_time(d.created_at),
            last_used: d.last_used_at.map(format_time),
            emails: shown,
            other_emails: hidden.len(),
            signed_in_here: d.bound_at.is_some(),
            revoked: d.revoked_at.map(format_time),
        });
    }
    Ok(rows)
}

fn belongs_here(tenant: &Tenant, user: &User, email: &str) -> bool {
    email.eq_ignore_ascii_case(&user.email)
        || tenant.entra_domain.as_deref().is_some_and(|d| {
            email
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(d))
        })
}

async fn user(db: &Db, tenant: &Tenant, user_id: &UserId) -> Result<User, AppError> {
    crate::users::service::find(db, &tenant.id, user_id)
        .await?
        .ok_or_else(|| AppError::NotFound("There is no such user in this tenant.".into()))
}

/// A lost phone: it can approve nothing more for anyone in this tenant, and the sign-ins it
/// approved here end at once.
pub async fn revoke(
    db: &Db,
    bus: &Bus,
    tenant: &Tenant,
    admin: &User,
    user_id: &UserId,
    device_id: &DeviceId,
) -> Result<String, AppError> {
    let user = user(db, tenant, user_id).await?;
    let phone = store::of_user(db, &tenant.id, &user.id, &user.email)
        .await?
        .into_iter()
        .find(|d| d.id == *device_id)
        .ok_or_else(|| AppError::NotFound(format!("{} has no such phone.", user.username)))?;
    if phone.revoked_at.is_some() {
        return Err(AppError::Invalid(format!(
            "Phone {} of {} is already revoked.",
            device_id.short(),
            user.username
        )));
    }
    let who = Subject {
        tenant_id: &tenant.id,
        user_id: &user.id,
        username: &user.username,
    };
    let mut tx = db.pool.begin().await?;
    let ended = revoke_device(&mut tx, &who, device_id, Actor::User(&admin.username)).await?;
    tx.commit().await?;
    let message = format!(
        "Phone {} of {} is revoked: it can no longer approve sign-ins here; {} session(s) it approved ended. To sign in again, {} sets up the Gatehouse app anew on a phone and verifies their email.",
        device_id.short(),
        user.username,
        ended.sessions,
        user.username
    );
    ended.announce(bus).await;
    Ok(message)
}
