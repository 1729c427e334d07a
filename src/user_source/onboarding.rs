//! Who a phone signs in as on a tenant whose user source is Entra ID (DESIGN flow 3):
//! a live Graph check for people already onboarded, a lookup for newcomers. `choose` is the
//! pure decision; `resolve` does the I/O around it.

use crate::audit;
use crate::domain::{Email, JitUsername, Role, UserSource, UserStatus};
use crate::entra::{DirectoryUser, EntraClient, EntraError};
use crate::server::db::{is_unique_violation, Db};
use crate::server::util::{now, random_id};
use crate::tenants::Tenant;
use crate::users::service::{free_username, User};
use crate::users::store as users;

/// Why Entra does not let this phone in; the message is shown on the phone and audited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} is not an account in {1}'s Entra ID directory")]
    NotInDirectory(String, String),
    #[error("the Entra ID account {0} is disabled")]
    Disabled(String),
    #[error("only {domain} accounts may sign in here, and this phone has verified {emails}")]
    OtherDomain { domain: String, emails: String },
    #[error("{0} matches more than one Entra ID account; ask an admin to make the address unique")]
    Ambiguous(String),
    #[error("the account {0} was disabled in Gatehouse by an admin")]
    DisabledHere(String),
    #[error("{email} now belongs to another Entra ID account than the one {username} onboarded with; ask an admin")]
    AddressMoved { email: String, username: String },
    #[error("Entra ID could not be asked ({0}); try again in a moment")]
    Unavailable(String),
    #[error("this tenant is not connected to an Entra ID directory yet")]
    NotConnected,
    /// Gatehouse's own database failed; the detail is for the log, never the phone.
    #[error("Gatehouse could not record the sign-in; try again in a moment")]
    Store(String),
}

/// The one enabled directory account an email belongs to, or why there is none.
pub fn choose<'a>(
    email: &Email,
    matches: &'a [DirectoryUser],
    org: &str,
) -> Result<&'a DirectoryUser, Refusal> {
    match matches {
        [] => Err(Refusal::NotInDirectory(email.to_string(), org.to_string())),
        [one] if one.account_enabled == Some(false) => Err(Refusal::Disabled(email.to_string())),
        [one] => Ok(one),
        many => {
            let enabled: Vec<&DirectoryUser> = many
                .iter()
                .filter(|u| u.account_enabled != Some(false))
                .collect();
            match enabled.as_slice() {
                [] => Err(Refusal::Disabled(email.to_string())),
                [one] => Ok(one),
                _ => Err(Refusal::Ambiguous(email.to_string())),
            }
        }
    }
}

/// How long a phone approval waits for Entra ID before it says Microsoft is slow.
pub const INTERACTIVE_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

/// The user a phone with these verified emails signs in as, onboarding them if needed.
/// Someone is waiting on the phone: Graph gets a short patience and the whole lookup at most
/// `INTERACTIVE_BUDGET`.
pub async fn resolve(
    db: &Db,
    entra: Option<&EntraClient>,
    tenant: &Tenant,
    emails: &[Email],
) -> Result<User, Refusal> {
    tokio::time::timeout(INTERACTIVE_BUDGET, resolve_now(db, entra, tenant, emails))
        .await
        .unwrap_or_else(|_| {
            Err(Refusal::Unavailable(format!(
                "Microsoft did not answer within {} seconds",
                INTERACTIVE_BUDGET.as_secs()
            )))
        })
}

async fn resolve_now(
    db: &Db,
    entra: Option<&EntraClient>,
    tenant: &Tenant,
    emails: &[Email],
) -> Result<User, Refusal> {
    let (Some(entra), Some(tid), Some(domain)) = (
        entra,
        tenant.entra_tenant_id.as_deref(),
        tenant.entra_domain.as_deref(),
    ) else {
        return Err(Refusal::NotConnected);
    };
    let unavailable = |e: EntraError| Refusal::Unavailable(e.to_string());
    let in_domain: Vec<&Email> = emails
        .iter()
        .filter(|e| e.domain().eq_ignore_ascii_case(domain))
        .collect();
    if in_domain.is_empty() {
        return Err(Refusal::OtherDomain {
            domain: format!("@{domain}"),
            emails: emails
                .iter()
                .map(Email::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let org = tenant
        .entra_org_name
        .clone()
        .unwrap_or_else(|| tenant.name.clone());
    let graph = entra.graph(tid).await.map_err(unavailable)?.interactive();
    // The most recently verified address of the domain is the one the technician means.
    let email = in_domain[0];
    // Every sign-in asks Graph who owns this address now, and the record signed in is that
    // account's (by object id), never the record that happens to store the address: an
    // alias moved to someone else in Entra must not sign its new holder in as the old one.
    let matches = graph
        .users_by_email(email.as_str())
        .await
        .map_err(unavailable)?;
    let chosen = choose(email, &matches, &org)?;
    let store_error = |e: anyhow::Error| Refusal::Store(format!("{e:#}"));
    let by_oid = crate::users::service::find_by_oid(db, &tenant.id, &chosen.id)
        .await
        .map_err(store_error)?;
    if let Some(user) = &by_oid {
        match user.status {
            UserStatus::Disabled => return Err(Refusal::DisabledHere(user.username.clone())),
            UserStatus::Active => return Ok(user.clone()),
            // Offboarded (or invited) and enabled in Entra again: the same record comes back.
            UserStatus::Offboarded | UserStatus::Invited => {}
        }
    }
    let by_email = crate::users::service::find_by_email(db, &tenant.id, email)
        .await
        .map_err(store_error)?;
    let revive = match (by_oid, by_email) {
        (Some(user), _) => Some(user),
        // The address names a live record of another Entra account: it moved in Entra.
        (None, Some(user)) if user.entra_oid.is_some() && user.status != UserStatus::Offboarded => {
            return Err(Refusal::AddressMoved {
                email: email.to_string(),
                username: user.username,
            })
        }
        // A record made before the tenant switched to Entra takes this account's id.
        (None, Some(user)) if user.entra_oid.is_none() => Some(user),
        // A new account behind an old address (a rehire) is a new user; the old record
        // stays offboarded.
        (None, _) => None,
    };
    onboard(db, tenant, email, chosen, revive)
        .await
        .map_err(store_error)
}

/// Creates the user record (or revives an offboarded one with the same object id).
async fn onboard(
    db: &Db,
    tenant: &Tenant,
    email: &Email,
    entra_user: &DirectoryUser,
    existing: Option<User>,
) -> anyhow::Result<User> {
    let at = now();
    let mut tx = db.pool.begin().await?;
    let user_id = match existing {
        Some(user)
            if user.entra_oid.as_deref() == Some(entra_user.id.as_str())
                || user.entra_oid.is_none() =>
        {
            // A re-enabled Entra account onboards again into the same record.
            users::onboard_from_entra(&mut tx, &user.id, &entra_user.id, at).await?;
            user.id
        }
        Some(user) => {
            anyhow::bail!(
                "{email} belongs to another Entra account than the record {}",
                user.username
            )
        }
        None => {
            let username: JitUsername = free_username(db, tenant, email).await?;
            let user = User {
                id: random_id(16),
                tenant_id: tenant.id.clone(),
                email: email.to_string(),
                first_name: entra_user.given_name.clone().unwrap_or_default(),
                last_name: entra_user
                    .surname
                    .clone()
                    .unwrap_or_else(|| entra_user.display_name.clone().unwrap_or_default()),
                username: username.to_string(),
                role: Role::Technician,
                source: UserSource::AzureAd,
                status: UserStatus::Active,
                entra_oid: Some(entra_user.id.clone()),
                created_at: at,
                onboarded_at: Some(at),
                last_login_at: None,
            };
            match users::insert(&mut tx, &user).await {
                // Two phones of one newcomer approved at once, and the other onboarded them
                // a moment ago: this sign-in is theirs too.
                Err(e) if is_unique_violation(&e) => {
                    drop(tx);
                    if let Some(user) = users::find_by_oid(db, &tenant.id, &entra_user.id).await? {
                        if user.status == UserStatus::Active {
                            return Ok(user);
                        }
                    }
                    return Err(e.into());
                }
                other => other?,
            }
            user.id
        }
    };
    let user = users::get(&mut tx, &user_id).await?;
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        &user.username,
        "user.onboarded",
        &user.username,
        &format!("{} confirmed in Entra ID (object {})", email, entra_user.id),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, enabled: Option<bool>) -> DirectoryUser {
        DirectoryUser {
            id: id.into(),
            user_principal_name: Some(format!("{id}@contoso.com")),
            mail: None,
            account_enabled: enabled,
            display_name: None,
            given_name: None,
            surname: None,
            proxy_addresses: vec![],
            other_mails: vec![],
            user_type: None,
        }
    }

    fn alex() -> Email {
        Email::parse("alex@contoso.com").unwrap()
    }

    #[test]
    fn exactly_one_enabled_match_onboards() {
        let m = [user("a", Some(true))];
        assert_eq!(choose(&alex(), &m, "Contoso").unwrap().id, "a");
        let m = [user("a", None)];
        assert_eq!(
            choose(&alex(), &m, "Contoso").unwrap().id,
            "a",
            "accountEnabled not returned counts as enabled"
        );
    }

    #[test]
    fn no_match_a_disabled_match_or_two_matches_refuse() {
        assert!(matches!(
            choose(&alex(), &[], "Contoso"),
            Err(Refusal::NotInDirectory(..))
        ));
        assert!(matches!(
            choose(&alex(), &[user("a", Some(false))], "Contoso"),
            Err(Refusal::Disabled(_))
        ));
        let two = [user("a", Some(true)), user("b", Some(true))];
        assert!(matches!(
            choose(&alex(), &two, "Contoso"),
            Err(Refusal::Ambiguous(_))
        ));
        let both_disabled = [user("a", Some(false)), user("b", Some(false))];
        assert!(matches!(
            choose(&alex(), &both_disabled, "Contoso"),
            Err(Refusal::Disabled(_))
        ));
    }

    #[test]
    fn a_disabled_twin_does_not_make_an_enabled_match_ambiguous() {
        let m = [user("old", Some(false)), user("new", Some(true))];
        assert_eq!(choose(&alex(), &m, "Contoso").unwrap().id, "new");
    }
}
