//! Who a phone signs in as on a tenant whose user source is Entra ID (DESIGN flow 3):
//! a live Graph check for people already onboarded, a lookup for newcomers. `choose` is the
//! pure decision; `resolve` does the I/O around it.

use crate::audit::{self, Actor};
use crate::domain::{
    Email, EntraUserId, GroupId, JitUsername, Role, UserId, UserSource, UserStatus,
};
use crate::entra::{DirectoryUser, EntraClient, EntraError};
use crate::server::db::{is_unique_violation, Db};
use crate::server::util::{now, random_id};
use crate::tenants::store::GroupRef;
use crate::tenants::Tenant;
use crate::users::admins::{AdminChange, Admins};
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
    #[error("{email} is not a member of the Entra ID group \"{group}\", whose members may sign in here; ask an admin to add you to it")]
    NotInGroup { email: String, group: String },
    #[error("Gatehouse may not read {0}'s Entra ID groups (the consent predates GroupMember.Read.All); an admin must authorize Gatehouse again under User source")]
    GroupsNotConsented(String),
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

/// What the tenant's groups make of a directory account: admitted (as what role, if the
/// tenant takes admins from a group) or refused. `member_of`: which of the tenant's groups
/// Graph says the account is in, nested groups counted. A member of the admin group is
/// admitted even outside the scoping group.
pub fn admitted(
    email: &Email,
    scope: Option<&GroupRef>,
    admins: Option<&GroupRef>,
    member_of: &[GroupId],
) -> Result<Option<Role>, Refusal> {
    let is_in = |g: Option<&GroupRef>| g.is_some_and(|g| member_of.contains(&g.id));
    if let Some(scope) = scope {
        if !is_in(Some(scope)) && !is_in(admins) {
            return Err(Refusal::NotInGroup {
                email: email.to_string(),
                group: scope.name.clone(),
            });
        }
    }
    Ok(admins.map(|_| {
        if is_in(admins) {
            Role::Admin
        } else {
            Role::Technician
        }
    }))
}

/// Which of the tenant's groups the account is in (no request when the tenant uses none).
async fn groups_of(
    graph: &crate::entra::Graph,
    tenant: &Tenant,
    oid: &EntraUserId,
    org: &str,
) -> Result<Vec<GroupId>, Refusal> {
    let groups: Vec<GroupRef> = tenant
        .scope_group()
        .into_iter()
        .chain(tenant.admin_group())
        .collect();
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&GroupId> = groups.iter().map(|g| &g.id).collect();
    match graph.member_of(oid, &ids).await {
        Ok(found) => Ok(found),
        Err(EntraError::Graph { status: 403, .. }) => {
            Err(Refusal::GroupsNotConsented(org.to_string()))
        }
        Err(e) => Err(Refusal::Unavailable(e.to_string())),
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
        tenant.entra_tenant_id.as_ref(),
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
    let member_of = groups_of(&graph, tenant, &chosen.id, &org).await?;
    let role = admitted(
        email,
        tenant.scope_group().as_ref(),
        tenant.admin_group().as_ref(),
        &member_of,
    )?;
    let store_error = |e: anyhow::Error| Refusal::Store(format!("{e:#}"));
    let by_oid = crate::users::service::find_by_oid(db, &tenant.id, &chosen.id)
        .await
        .map_err(store_error)?;
    let by_email = crate::users::service::find_by_email(db, &tenant.id, email)
        .await
        .map_err(store_error)?;
    match record_for(email, &chosen.id, by_oid, by_email)? {
        Record::SignIn(user) => refresh_role(db, tenant, user, role)
            .await
            .map_err(store_error),
        record => onboard(db, tenant, email, chosen, record, role)
            .await
            .map_err(store_error),
    }
}

/// A sign-in takes the role the admin group gives now (`role`; `None`: the tenant sets roles
/// by hand), without waiting for the next run: joining the group makes an admin, leaving it a
/// technician, unless the tenant would then have no active admin (the reconciler keeps such
/// a change back, and says so). Audited like the reconciler's role changes.
async fn refresh_role(
    db: &Db,
    tenant: &Tenant,
    user: User,
    role: Option<Role>,
) -> anyhow::Result<User> {
    let Some(role) = role.filter(|r| *r != user.role) else {
        return Ok(user);
    };
    let mut tx = db.pool.begin().await?;
    let admins = Admins::lock(&mut tx, &tenant.id).await?;
    if role == Role::Technician && admins.lost_by(&AdminChange::removes(&user.id)) {
        tx.rollback().await?;
        return Ok(user);
    }
    let group = tenant
        .admin_group()
        .map_or_else(|| "the admin group".to_string(), |g| g.name);
    let why = format!(
        "{}, seen at sign-in",
        crate::users::service::role_by_group(role, &group)
    );
    // Accounts at customers it ends are found by the JIT worker at its next tick.
    let _ending = crate::users::access::change_role(&mut tx, &user.id, role).await?;
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&user.username),
        audit::Event::RoleChanged {
            username: &user.username,
            why: &why,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(User { role, ..user })
}

/// What the sign-in of directory account `oid` (owner of `email`) does to Gatehouse's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An active record of this account: sign in as it.
    SignIn(User),
    /// An offboarded or invited record of this account, or a record made before the tenant
    /// switched to Entra that holds the address: it becomes this account's, active again.
    Revive(User),
    /// No record is this account's: a new user.
    New,
}

/// Which record a sign-in of directory account `oid` lands on, given the newest record with
/// that object id and the record that holds the address. The two are read one after the
/// other, so a second phone of the same newcomer may find the record its twin created a
/// moment ago under the address only: a record with this object id is this account's,
/// whichever way it was found.
pub fn record_for(
    email: &Email,
    oid: &EntraUserId,
    by_oid: Option<User>,
    by_email: Option<User>,
) -> Result<Record, Refusal> {
    let is_this_account = |u: &User| u.entra_oid.as_ref() == Some(oid);
    // The record, and whether it is bound to this account already.
    let (user, bound) = match (by_oid, by_email) {
        (Some(user), _) => (user, true),
        (None, Some(user)) if is_this_account(&user) => (user, true),
        // A record made before the tenant switched to Entra takes this account's id.
        (None, Some(user)) if user.entra_oid.is_none() => (user, false),
        // The address names a live record of another Entra account: it moved in Entra.
        (None, Some(user)) if user.status != UserStatus::Offboarded => {
            return Err(Refusal::AddressMoved {
                email: email.to_string(),
                username: user.username,
            })
        }
        // A new account behind an old address (a rehire) is a new user; the old record
        // stays offboarded.
        (None, _) => return Ok(Record::New),
    };
    match user.status {
        UserStatus::Disabled => Err(Refusal::DisabledHere(user.username)),
        UserStatus::Active if bound => Ok(Record::SignIn(user)),
        // Offboarded (or invited) and enabled in Entra again: the same record comes back.
        UserStatus::Active | UserStatus::Offboarded | UserStatus::Invited => {
            Ok(Record::Revive(user))
        }
    }
}

/// Creates the user record, or revives one, and audits the onboarding. A phone of the same
/// technician that approved at the same moment may have done either already; then this
/// sign-in is theirs too, and the onboarding is recorded once.
async fn onboard(
    db: &Db,
    tenant: &Tenant,
    email: &Email,
    entra_user: &DirectoryUser,
    record: Record,
    role: Option<Role>,
) -> anyhow::Result<User> {
    let at = now();
    // Everything read goes before the transaction: a transaction holding its connection
    // while it waits for another from the pool deadlocks once as many sign-ins as the pool
    // has connections arrive together.
    let new_user = match &record {
        Record::SignIn(user) => return Ok(user.clone()),
        Record::Revive(_) => None,
        Record::New => {
            let username = free_username(db, tenant, email).await?;
            Some(new_record(
                tenant,
                email,
                entra_user,
                &username,
                role.unwrap_or(Role::Technician),
                at,
            ))
        }
    };
    let mut tx = db.pool.begin().await?;
    let user_id = match (record, new_user) {
        (Record::Revive(user), _) => {
            // A revived record may be an active admin made in Gatehouse, signing in through
            // Entra for the first time: the admin group's role follows the last-admin rule.
            let admins = Admins::lock(&mut tx, &tenant.id).await?;
            if !users::onboard_from_entra(&mut tx, &user.id, &entra_user.id, at).await? {
                drop(tx);
                return active_twin(db, tenant, entra_user).await;
            }
            let demotes = role == Some(Role::Technician) && user.role == Role::Admin;
            if let Some(role) = role.filter(|r| *r != user.role) {
                if !(demotes && admins.lost_by(&AdminChange::removes(&user.id))) {
                    // Accounts at customers it ends are found by the JIT worker at its next tick.
                    let _ending =
                        crate::users::access::change_role(&mut tx, &user.id, role).await?;
                }
            }
            user.id
        }
        (_, Some(user)) => {
            match users::insert(&mut tx, &user).await {
                Err(e) if is_unique_violation(&e) => {
                    drop(tx);
                    return active_twin(db, tenant, entra_user).await;
                }
                other => other?,
            }
            user.id
        }
        (record, None) => anyhow::bail!("nothing to write for {record:?}"),
    };
    let user = users::get(&mut tx, &user_id).await?;
    let why = match (user.role, role, tenant.admin_group()) {
        (Role::Admin, Some(Role::Admin), Some(g)) => {
            format!(", admin as a member of \"{}\"", g.name)
        }
        (Role::Admin, Some(Role::Technician), Some(g)) => format!(
            ", kept admin though not a member of \"{}\": the tenant's last admin",
            g.name
        ),
        _ => String::new(),
    };
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&user.username),
        audit::Event::OnboardedFromEntra {
            username: &user.username,
            email: email.as_str(),
            object_id: &entra_user.id,
            note: &why,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// A new technician's record, as Entra names them.
fn new_record(
    tenant: &Tenant,
    email: &Email,
    entra_user: &DirectoryUser,
    username: &JitUsername,
    role: Role,
    at: i64,
) -> User {
    User {
        id: UserId::drawn(random_id(16)),
        tenant_id: tenant.id.clone(),
        email: email.to_string(),
        first_name: entra_user.given_name.clone().unwrap_or_default(),
        last_name: entra_user
            .surname
            .clone()
            .unwrap_or_else(|| entra_user.display_name.clone().unwrap_or_default()),
        username: username.to_string(),
        role,
        source: UserSource::AzureAd,
        status: UserStatus::Active,
        entra_oid: Some(entra_user.id.clone()),
        created_at: at,
        onboarded_at: Some(at),
        last_login_at: None,
        offboarded_at: None,
        offboard_reason: None,
        offboard_group: None,
    }
}

/// The record another approval of the same account made active a moment ago.
async fn active_twin(db: &Db, tenant: &Tenant, entra_user: &DirectoryUser) -> anyhow::Result<User> {
    match users::find_by_oid(db, &tenant.id, &entra_user.id).await? {
        Some(user) if user.status == UserStatus::Active => Ok(user),
        _ => anyhow::bail!(
            "the record of Entra account {} changed while it was being onboarded",
            entra_user.id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(id: &str) -> EntraUserId {
        EntraUserId::from_microsoft(id)
    }

    fn user(id: &str, enabled: Option<bool>) -> DirectoryUser {
        DirectoryUser {
            id: oid(id),
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
        assert_eq!(choose(&alex(), &m, "Contoso").unwrap().id.as_str(), "a");
        let m = [user("a", None)];
        assert_eq!(
            choose(&alex(), &m, "Contoso").unwrap().id.as_str(),
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
        assert_eq!(choose(&alex(), &m, "Contoso").unwrap().id.as_str(), "new");
    }

    fn record(oid: Option<&str>, status: UserStatus) -> User {
        User {
            id: UserId::from_outside(format!("record-of-{}", oid.unwrap_or("nobody"))),
            tenant_id: crate::domain::TenantId::from_outside("t"),
            email: "alex@contoso.com".into(),
            first_name: "Alex".into(),
            last_name: "Wilber".into(),
            username: "msp-alex".into(),
            role: Role::Technician,
            source: UserSource::AzureAd,
            status,
            entra_oid: oid.map(EntraUserId::from_microsoft),
            created_at: 0,
            onboarded_at: None,
            last_login_at: None,
            offboarded_at: None,
            offboard_reason: None,
            offboard_group: None,
        }
    }

    /// The two reads straddle another approval's commit: the address already names the record
    /// it made for this very account. That is a sign-in, not an address that moved.
    #[test]
    fn a_record_found_by_address_with_this_accounts_id_is_this_account() {
        let twin = record(Some("a"), UserStatus::Active);
        assert_eq!(
            record_for(&alex(), &oid("a"), None, Some(twin.clone())),
            Ok(Record::SignIn(twin))
        );
    }

    #[test]
    fn an_address_held_by_another_live_account_has_moved() {
        let other = record(Some("b"), UserStatus::Active);
        assert!(matches!(
            record_for(&alex(), &oid("a"), None, Some(other)),
            Err(Refusal::AddressMoved { .. })
        ));
        let gone = record(Some("b"), UserStatus::Offboarded);
        assert_eq!(
            record_for(&alex(), &oid("a"), None, Some(gone)),
            Ok(Record::New)
        );
        assert_eq!(record_for(&alex(), &oid("a"), None, None), Ok(Record::New));
    }

    #[test]
    fn offboarded_records_come_back_and_disabled_ones_stay_out() {
        let offboarded = record(Some("a"), UserStatus::Offboarded);
        assert_eq!(
            record_for(&alex(), &oid("a"), Some(offboarded.clone()), None),
            Ok(Record::Revive(offboarded))
        );
        let disabled = record(Some("a"), UserStatus::Disabled);
        assert!(matches!(
            record_for(&alex(), &oid("a"), Some(disabled), None),
            Err(Refusal::DisabledHere(_))
        ));
    }

    /// A record made before the switch to Entra is bound to the account that owns its
    /// address, unless an admin disabled it.
    #[test]
    fn a_record_from_before_entra_is_bound_unless_disabled_here() {
        let local = record(None, UserStatus::Active);
        assert_eq!(
            record_for(&alex(), &oid("a"), None, Some(local.clone())),
            Ok(Record::Revive(local))
        );
        let disabled = record(None, UserStatus::Disabled);
        assert!(matches!(
            record_for(&alex(), &oid("a"), None, Some(disabled)),
            Err(Refusal::DisabledHere(_))
        ));
    }
}
