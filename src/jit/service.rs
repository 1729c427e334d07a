//! Opening a technician's account at a customer, and ending it. Microsoft lets an app with
//! application permissions only (no admin role, as an MSP should grant it) act on a user who
//! holds an admin role in few ways, so the steps come in the one order it allows
//! (docs/design/jit-accounts.md): open = roles it still holds removed → enabled → pass or
//! password → roles; end = roles → sessions → pass and password → disabled. Gatehouse acts
//! only on the object ids it made.

use super::holders::{self, Holding};
use super::store::{self, JitAccount};
use crate::audit::{self, Actor};
use crate::customers::store::{self as customers, Customer};
use crate::domain::{CustomerHealth, EntraRole, JitState, UserStatus};
use crate::entra::{EntraClient, EntraError, Graph};
use crate::server::db::Db;
use crate::server::util::{now, random_id};
use crate::tenants::Tenant;
use crate::users::store::User;
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// Refused, with the reason the technician is shown; nothing was made or changed.
    #[error("{0}")]
    Refused(String),
    #[error("Microsoft Entra: {0}")]
    Entra(#[from] EntraError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for JitError {
    fn from(e: sqlx::Error) -> Self {
        JitError::Unexpected(e.into())
    }
}

/// How the technician signs in to the account: shown once, never stored or logged.
pub enum Credential {
    /// A Temporary Access Pass, where the customer's policy allows one.
    Pass(SecretString),
    /// A long random password, where it does not.
    Password(SecretString),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Pass(_) => f.write_str("Pass([redacted])"),
            Credential::Password(_) => f.write_str("Password([redacted])"),
        }
    }
}

/// An account opened for a window.
#[derive(Debug)]
pub struct Opened {
    pub customer: String,
    pub upn: String,
    pub roles: Vec<EntraRole>,
    pub ends_at: i64,
    pub credential: Credential,
}

/// The roles `holding` may request at `customer`, by the customer's mapping.
pub async fn allowed_roles(
    db: &Db,
    customer: &Customer,
    holding: &Holding,
) -> Result<Vec<EntraRole>, sqlx::Error> {
    let grants = customers::grants(&db.pool, &customer.id).await?;
    Ok(holders::allowed(&grants, holding))
}

/// What a request asks for.
pub struct Request<'a> {
    pub tenant: &'a Tenant,
    pub customer: &'a Customer,
    pub user: &'a User,
    pub roles: &'a [EntraRole],
    /// The MSP's own Entra ID (the user source), asked which mapped groups the user is in.
    pub msp: Option<&'a EntraClient>,
}

/// Opens the technician's account at the customer for the customer's window, with `roles`:
/// makes it the first time, enables it again after. A refusal (a role the mapping does not
/// allow, an account of that name Gatehouse did not make, the customer not ready) is audited
/// and changes nothing. An opening that fails half-way is handed to the end worker, so
/// nothing is left enabled that Gatehouse does not track as open.
pub async fn open(db: &Db, entra: &EntraClient, req: Request<'_>) -> Result<Opened, JitError> {
    let opened = match check(db, &req).await {
        Ok(upn) => open_checked(db, entra, &req, upn).await,
        Err(e) => Err(e),
    };
    audited(db, &req, opened).await
}

/// Whether the request may go ahead as the rules stand now (asked before the phone is
/// bothered; `open` asks again). A refusal is audited.
pub async fn may_request(db: &Db, req: &Request<'_>) -> Result<(), JitError> {
    let checked = check(db, req).await.map(|_| ());
    audited(db, req, checked).await
}

/// Records a refusal in the audit log, and passes the outcome on.
async fn audited<T>(
    db: &Db,
    req: &Request<'_>,
    outcome: Result<T, JitError>,
) -> Result<T, JitError> {
    if let Err(JitError::Refused(why)) = &outcome {
        audit::record(
            &db.pool,
            Some(&req.tenant.id),
            Actor::User(&req.user.username),
            audit::Event::JitRefused {
                customer: &req.customer.name,
                why,
            },
        )
        .await
        .map_err(JitError::Unexpected)?;
    }
    outcome
}

/// The request's rules; the account's sign-in name when it may go ahead.
async fn check(db: &Db, req: &Request<'_>) -> Result<String, JitError> {
    let Request {
        customer,
        user,
        roles,
        ..
    } = req;
    if user.status != UserStatus::Active {
        return Err(JitError::Refused(format!(
            "{} is {}: only active users may request access.",
            user.username, user.status
        )));
    }
    if customer.health != CustomerHealth::Ok {
        return Err(JitError::Refused(format!(
            "{} is not connected right now; ask an admin to look at the Customers page.",
            customer.name
        )));
    }
    let Some(domain) = &customer.domain else {
        return Err(JitError::Refused(format!(
            "{} has no domain for accounts yet; ask an admin to choose one on the Customers page.",
            customer.name
        )));
    };
    if roles.is_empty() {
        return Err(JitError::Refused("Choose at least one role.".into()));
    }
    let grants = customers::grants(&db.pool, &customer.id).await?;
    let groups = holders::named_groups(&grants);
    let by_role = holders::allowed(&grants, &Holding::role_only(user.role));
    let role_suffices = roles.iter().all(|r| by_role.contains(r));
    // Where the mapping names groups, Microsoft is asked which the requester is in, and the
    // answer kept for the changes that do not ask. Without an answer, the role alone counts.
    let allowed = match groups_now(db, req, &groups).await {
        Ok(found) => holders::allowed(
            &grants,
            &Holding {
                role: user.role,
                groups: found,
            },
        ),
        Err(e) if role_suffices => {
            tracing::warn!(error = %e, "could not ask Microsoft for the requester's groups; their role allows the request");
            by_role
        }
        Err(e) => return Err(e),
    };
    if let Some(not) = roles.iter().find(|r| !allowed.contains(r)) {
        let groups_too = if groups.is_empty() {
            String::new()
        } else {
            ", and you are in no group that may".to_string()
        };
        return Err(JitError::Refused(format!(
            "{} may not request {not} at {}{groups_too}.",
            user.role.plural(),
            customer.name
        )));
    }
    Ok(format!("{}@{domain}", user.username))
}

/// Which of `groups` the requester is in now, by Microsoft's word in the MSP's own Entra ID,
/// recorded for the changes that do not ask. A group grants nothing Microsoft did not
/// confirm: no answer is a refusal, with the reason.
async fn groups_now(
    db: &Db,
    req: &Request<'_>,
    groups: &[crate::tenants::store::GroupRef],
) -> Result<Vec<crate::domain::GroupId>, JitError> {
    let (Some(msp), Some(tid)) = (req.msp, req.tenant.entra_tenant_id.as_ref()) else {
        return Ok(Vec::new());
    };
    if groups.is_empty() || req.user.entra_oid.is_none() {
        return Ok(Vec::new());
    }
    let asked =
        async { holders::ask(&msp.graph(tid).await?.interactive(), req.user, groups).await };
    let found = match asked.await {
        Ok(found) => found,
        Err(EntraError::Graph { status: 403, .. }) => {
            return Err(JitError::Refused(
                "Gatehouse may not read your groups in your own Entra ID (GroupMember.Read.All was not granted); ask an admin to authorize Gatehouse again under User source.".into(),
            ))
        }
        Err(e) => {
            return Err(JitError::Refused(format!(
                "Gatehouse could not ask Microsoft which groups you are in ({e}); nothing was opened. Try again in a minute."
            )))
        }
    };
    holders::keep(db, &req.user.id, groups, &found).await?;
    Ok(found)
}

async fn open_checked(
    db: &Db,
    entra: &EntraClient,
    req: &Request<'_>,
    upn: String,
) -> Result<Opened, JitError> {
    let Request {
        tenant,
        customer,
        user,
        roles,
        ..
    } = req;
    let graph = entra.graph(&customer.entra_tid).await?.interactive();
    let account = match store::find(db, &customer.id, &user.id).await? {
        // An earlier attempt to make it got no answer (a timeout, a crash). Where Microsoft
        // has no account of that name, nothing was made: the attempt is forgotten and made
        // anew. Where it has one, Gatehouse cannot tell whether it made it, so it leaves it.
        Some(a) if a.entra_object_id.is_none() && a.state == JitState::Making => {
            if graph.account_by_upn(&a.upn).await?.is_some() {
                return Err(JitError::Refused(format!(
                    "An earlier attempt to make {upn} in {name} got no answer from Microsoft, and {name} has an account of that name now: Gatehouse cannot tell whether it made it, so it leaves it alone. Ask {name}'s admin to remove it, then request access again.",
                    upn = a.upn,
                    name = customer.name
                )));
            }
            store::not_made(db, &a.id).await?;
            make(db, &graph, req, &upn).await?
        }
        Some(a) => a,
        None => make(db, &graph, req, &upn).await?,
    };
    let Some(object_id) = account.entra_object_id.clone() else {
        return Err(JitError::Refused(format!(
            "Gatehouse never learned which account it made in {} for you, so it acts on none there; ask an admin to look at {} in {}.",
            customer.name, account.upn, customer.name
        )));
    };
    if account.state == JitState::Ending {
        return Err(JitError::Refused(format!(
            "Your account at {} is still being closed; try again in a minute.",
            customer.name
        )));
    }
    let window = customer.window;
    let ends_at = now() + window.secs();
    // Roles it still holds from an earlier request go first, then enabled, then a way to
    // sign in, then the roles: while it holds an admin role, Microsoft lets Gatehouse neither
    // make a pass for it nor reset its password. One pass at a time: an earlier one goes.
    let steps = async {
        for assignment in graph.role_assignments_of(&object_id).await? {
            graph.remove_role_assignment(&assignment).await?;
        }
        graph.set_account_enabled(&object_id, true).await?;
        graph.delete_passes(&object_id).await?;
        let credential = credential(&graph, &object_id, window.minutes()).await?;
        for role in roles.iter() {
            graph.assign_role(&object_id, role.id()).await?;
        }
        Ok::<_, EntraError>(credential)
    };
    let credential = match steps.await {
        Ok(c) => c,
        Err(e) => {
            // Half open is not left behind: the end worker closes it.
            store::end_now(&db.pool, &account.id, "the opening failed half-way", now()).await?;
            return Err(e.into());
        }
    };
    if !store::opened(db, &account.id, roles, now(), ends_at).await? {
        return Err(JitError::Refused(format!(
            "Your access at {} ended while it was being opened; nothing is open.",
            customer.name
        )));
    }
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    audit::record(
        &db.pool,
        Some(&tenant.id),
        Actor::User(&user.username),
        audit::Event::JitOpened {
            upn: &account.upn,
            customer: &customer.name,
            roles: &names.join(", "),
            window,
        },
    )
    .await
    .map_err(JitError::Unexpected)?;
    Ok(Opened {
        customer: customer.name.clone(),
        upn: account.upn,
        roles: roles.to_vec(),
        ends_at,
        credential,
    })
}

/// Makes the account the first time: unless an account of that name exists that Gatehouse
/// did not make, which it never touches.
async fn make(
    db: &Db,
    graph: &Graph,
    req: &Request<'_>,
    upn: &str,
) -> Result<JitAccount, JitError> {
    let Request {
        tenant,
        customer,
        user,
        ..
    } = req;
    if graph.account_by_upn(upn).await?.is_some() {
        return Err(JitError::Refused(format!(
            "{} already has an account named {upn} that Gatehouse did not make; Gatehouse leaves it alone. Ask {}'s admin to rename or remove it.",
            customer.name, customer.name
        )));
    }
    let id = store::making(
        db,
        &tenant.id,
        &customer.id,
        (&user.id, &user.username),
        upn,
    )
    .await?;
    let display_name = format!("{} {} (MSP)", user.first_name, user.last_name);
    let nickname = user.username.clone();
    // Nobody ever sees this password: the way in is made next.
    let unseen = new_password(48);
    match graph
        .create_account(upn, display_name.trim(), &nickname, &unseen)
        .await
    {
        Ok(object_id) => store::made(db, &id, &object_id).await?,
        // An error Microsoft answered means nothing was made; no answer at all leaves the
        // row without an object id, which `open` reports.
        Err(e @ (EntraError::Graph { .. } | EntraError::Throttled(_))) => {
            store::not_made(db, &id).await?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    store::get(db, &id)
        .await?
        .ok_or_else(|| JitError::Unexpected(anyhow::anyhow!("the account just made is not there")))
}

/// The way in for this window: a Temporary Access Pass for the window where the customer
/// allows passes (and Microsoft says it can sign in), else a new long random password.
async fn credential(
    graph: &Graph,
    object_id: &str,
    minutes: i64,
) -> Result<Credential, EntraError> {
    let policy = graph.pass_policy().await?;
    if policy.enabled {
        let lifetime = minutes.clamp(policy.minimum_minutes, policy.maximum_minutes);
        let pass = graph.create_pass(object_id, lifetime).await?;
        if pass.usable {
            return Ok(Credential::Pass(pass.code));
        }
    }
    let password = new_password(24);
    graph.set_account_password(object_id, &password).await?;
    Ok(Credential::Password(password))
}

/// A random password Entra's complexity rules accept: URL-safe random characters (upper,
/// lower, digits, `-`, `_`), then one of each class so three classes are always there.
fn new_password(random_chars: usize) -> SecretString {
    let bytes = random_chars * 3 / 4;
    SecretString::from(format!("{}aZ7!", random_id(bytes.max(12))))
}

/// Ends the account at Microsoft, every step in the order Microsoft allows; each step is
/// idempotent, so a retry starts again from the first. `Ok(())` only when Microsoft confirmed
/// every step (an account the customer deleted meanwhile counts as ended).
pub async fn end_at_microsoft(
    entra: &EntraClient,
    customer: &Customer,
    account: &JitAccount,
) -> Result<(), EntraError> {
    let Some(object_id) = &account.entra_object_id else {
        // Made? Microsoft never said: there is nothing Gatehouse may act on.
        return Ok(());
    };
    let graph = entra.graph(&customer.entra_tid).await?;
    let steps = async {
        for assignment in graph.role_assignments_of(object_id).await? {
            graph.remove_role_assignment(&assignment).await?;
        }
        graph.revoke_account_sessions(object_id).await?;
        graph.delete_passes(object_id).await?;
        graph
            .set_account_password(object_id, &new_password(48))
            .await?;
        graph.set_account_enabled(object_id, false).await
    };
    match steps.await {
        Err(EntraError::Graph { status: 404, .. }) => Ok(()),
        other => other,
    }
}
