//! Which user is this phone? One answer for both user sources (DESIGN flow 3). The tenant's
//! own records decide first (`decide`, pure): a user whose address the phone verified, most
//! recently verified first. On an Entra tenant only accounts made in Gatehouse (typically the
//! admin who connected Entra) are taken from the records; everyone else is asked of Graph
//! (`onboarding::resolve`), which onboards newcomers.

use super::onboarding;
use crate::devices::store as devices;
use crate::domain::{DeviceId, Email, UserSource};
use crate::entra::EntraClient;
use crate::server::db::Db;
use crate::server::util::now;
use crate::tenants::Tenant;
use crate::users::store::{self as users, User};

/// Why the phone signs in as nobody; shown on the phone and audited, never to the browser.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("this phone was revoked in the tenant")]
    PhoneRevoked,
    #[error("verify your work email in the app first")]
    NotVerified,
    #[error("your verified email has expired; verify it again in the app")]
    ClaimExpired,
    #[error("{0}")]
    NoAccount(String),
    #[error("{0}")]
    Disabled(String),
    #[error(transparent)]
    Entra(onboarding::Refusal),
    #[error("Gatehouse could not read its records")]
    Store(#[from] anyhow::Error),
}

/// What the tenant's records say about the users whose addresses a phone verified.
#[derive(Debug)]
pub enum Decision<'a> {
    /// The first of them who may sign in.
    SignIn(&'a User),
    /// They exist, and none may sign in: the first is named.
    Disabled(&'a User),
    /// The tenant has no user with any of the phone's addresses.
    Nobody,
}

/// `found`: the tenant's users whose address the phone verified, most recently verified first.
pub fn decide(found: &[User]) -> Decision<'_> {
    match (found.iter().find(|u| u.status.may_sign_in()), found.first()) {
        (Some(user), _) => Decision::SignIn(user),
        (None, Some(first)) => Decision::Disabled(first),
        (None, None) => Decision::Nobody,
    }
}

/// The user the phone `device_id` signs in as at `tenant`, onboarding them from Entra ID if
/// that is the tenant's source.
pub async fn which_user(
    db: &Db,
    entra: Option<&EntraClient>,
    tenant: &Tenant,
    device_id: &DeviceId,
) -> Result<User, Refusal> {
    if devices::is_revoked_in(db, device_id, &tenant.id).await? {
        return Err(Refusal::PhoneRevoked);
    }
    let entra_tenant = tenant.user_source == UserSource::AzureAd;
    let only = entra_tenant.then_some(UserSource::Local);
    let found = users::verified_on_device(db, &tenant.id, device_id, only, now()).await?;
    match decide(&found) {
        Decision::SignIn(user) => return Ok(user.clone()),
        Decision::Disabled(user) if !entra_tenant => {
            return Err(Refusal::Disabled(format!(
                "the account {} at {} is {}",
                user.username, tenant.name, user.status
            )))
        }
        _ => {}
    }
    let emails = verified_emails(db, device_id).await?;
    if entra_tenant {
        return onboarding::resolve(db, entra, tenant, &emails)
            .await
            .map_err(Refusal::Entra);
    }
    Err(Refusal::NoAccount(format!(
        "{} has no account at {}; ask an admin there to invite you",
        emails
            .iter()
            .map(Email::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        tenant.name
    )))
}

/// The phone's verified emails that are still valid, most recently verified first.
async fn verified_emails(db: &Db, device_id: &DeviceId) -> Result<Vec<Email>, Refusal> {
    let claims = devices::claims(db, device_id, now()).await?;
    let live: Vec<Email> = claims
        .iter()
        .filter(|(_, live)| *live)
        .map(|(e, _)| e.clone())
        .collect();
    if live.is_empty() {
        return Err(if claims.is_empty() {
            Refusal::NotVerified
        } else {
            Refusal::ClaimExpired
        });
    }
    Ok(live)
}
