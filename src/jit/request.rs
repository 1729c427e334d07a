//! A technician's request for access at a customer, from the home page to the opened account.
//! Asked: the rules are checked and a phone challenge is drawn, bound to the signed-in
//! session that asked. Approved: on the requester's own phone, by number matching
//! (`mobile::service::approve`). Collected: once, by that session; only then is the account
//! opened, so the credential goes straight to the page that asked and is never kept.

use super::holders::{self, Holding};
use super::service::{self, JitError, Opened, Request};
use super::store::{self as accounts, JitAccount};
use crate::customers::store::{self as customers, Customer};
use crate::domain::{
    ChallengeId, ChallengePurpose, ChallengeStatus, CustomerHealth, CustomerId, EntraRole,
    JitState, SessionId,
};
use crate::entra::EntraClient;
use crate::login::challenge::{self, AccessAsked, Challenge};
use crate::server::db::Db;
use crate::server::util::now;
use crate::tenants::Tenant;
use crate::users::store::User;

/// A customer the technician may request access at, with the roles they may ask for and
/// their account there if it is open now.
pub struct Offer {
    pub customer: Customer,
    pub roles: Vec<EntraRole>,
    pub open: Option<JitAccount>,
}

/// What the technician may request: every connected customer with a domain where their
/// Gatehouse role, or a group of the MSP they are in, may hold at least one role. Microsoft
/// is asked about groups once for all customers (when a mapping names any); when it cannot
/// be, its last answer stands (the request itself asks again).
pub async fn offers(
    db: &Db,
    msp: Option<&EntraClient>,
    tenant: &Tenant,
    user: &User,
) -> Result<Vec<Offer>, sqlx::Error> {
    let holding = holding_now(db, msp, tenant, user).await?;
    let mut offers = Vec::new();
    let mut mine = accounts::of_user(db, &user.id).await?;
    for customer in customers::list(db, &tenant.id).await? {
        if customer.health != CustomerHealth::Ok || customer.domain.is_none() {
            continue;
        }
        let roles = service::allowed_roles(db, &customer, &holding).await?;
        if roles.is_empty() {
            continue;
        }
        let open = mine
            .iter()
            .position(|a| a.customer_id == customer.id)
            .map(|i| mine.swap_remove(i))
            .filter(|a| a.state == JitState::Open && a.ends_at.is_some_and(|t| t > now()));
        offers.push(Offer {
            customer,
            roles,
            open,
        });
    }
    Ok(offers)
}

/// The user's role and the mapped groups they are in, for the offers.
async fn holding_now(
    db: &Db,
    msp: Option<&EntraClient>,
    tenant: &Tenant,
    user: &User,
) -> Result<Holding, sqlx::Error> {
    let mapped = customers::mapped_groups(&db.pool, &tenant.id).await?;
    let mut holding = Holding::role_only(user.role);
    if mapped.is_empty() {
        return Ok(holding);
    }
    let asked = async {
        match (msp, tenant.entra_tenant_id.as_ref()) {
            (Some(msp), Some(tid)) => {
                holders::ask(&msp.graph(tid).await?.interactive(), user, &mapped).await
            }
            _ => Ok(Vec::new()),
        }
    };
    holding.groups = match asked.await {
        Ok(found) => {
            holders::keep(db, &user.id, &mapped, &found).await?;
            found
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not ask Microsoft for the technician's groups; offering by the last answer");
            holders::recorded_groups(&db.pool, &user.id).await?
        }
    };
    Ok(holding)
}

/// Who asks, from where.
pub struct Asker<'a> {
    pub tenant: &'a Tenant,
    /// The MSP's own Entra ID (the user source), for the groups the user is in.
    pub msp: Option<&'a EntraClient>,
    pub user: &'a User,
    pub login_id: &'a SessionId,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// Asks for `roles` (template ids, comma-separated) at customer `customer_id`: refused (and
/// audited) when the rules say no, else the phone challenge to approve, and the customer.
pub async fn ask(
    db: &Db,
    asker: Asker<'_>,
    customer_id: &str,
    roles: &str,
) -> Result<(Challenge, Customer), JitError> {
    let customer = customers::find(db, &asker.tenant.id, &CustomerId::from_outside(customer_id))
        .await?
        .ok_or_else(|| JitError::Refused("There is no such customer.".into()))?;
    let roles = parse_roles(roles)?;
    service::may_request(
        db,
        &Request {
            tenant: asker.tenant,
            customer: &customer,
            user: asker.user,
            roles: &roles,
            msp: asker.msp,
        },
    )
    .await?;
    let challenge = challenge::create_access(
        db,
        AccessAsked {
            tenant: asker.tenant,
            user: asker.user,
            login_id: asker.login_id,
            customer_id: &customer.id,
            roles: &roles,
            ip: asker.ip,
            user_agent: asker.user_agent,
        },
    )
    .await?;
    Ok((challenge, customer))
}

/// Role template ids as the page sends them: each one Gatehouse offers, none twice.
fn parse_roles(raw: &str) -> Result<Vec<EntraRole>, JitError> {
    let mut roles: Vec<EntraRole> = Vec::new();
    for id in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let role = EntraRole::parse(id).map_err(JitError::Refused)?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

/// Where a request stands when its page asks.
pub enum Collected {
    /// Waiting for the phone until `expires_at`.
    Waiting { expires_at: i64 },
    /// Approved and used: the account is open, and this is the one time its credential is
    /// shown.
    Opened(Opened),
}

/// The asking session comes back for its request: still waiting, refused (why), or approved,
/// in which case the approval is used up (once) and the account opened. Another session's
/// request, or another tenant's, is not found.
pub async fn collect(
    db: &Db,
    entra: &EntraClient,
    asker: Asker<'_>,
    id: &str,
) -> Result<Collected, JitError> {
    let no_such = || JitError::Refused("There is no such request.".into());
    let c = challenge::find(db, &asker.tenant.id, &ChallengeId::from_outside(id))
        .await?
        .filter(|c| {
            c.purpose == ChallengePurpose::Access
                && c.binding_hash == challenge::session_binding(asker.login_id)
                && c.user_id.as_ref() == Some(&asker.user.id)
        })
        .ok_or_else(no_such)?;
    let at = now();
    match c.status {
        ChallengeStatus::Pending if c.expires_at > at => Ok(Collected::Waiting {
            expires_at: c.expires_at,
        }),
        ChallengeStatus::Pending => Err(JitError::Refused(
            "The request expired before your phone approved it; request access again.".into(),
        )),
        ChallengeStatus::Denied | ChallengeStatus::Cancelled => Err(JitError::Refused(format!(
            "The request was refused: {}.",
            c.reason.as_deref().unwrap_or("on the phone")
        ))),
        ChallengeStatus::Consumed => Err(JitError::Refused(
            "This approval was used already; request access again for a new one.".into(),
        )),
        ChallengeStatus::Approved if c.expires_at + challenge::COMPLETION_GRACE_SECS <= at => {
            Err(JitError::Refused(
                "The approval ran out before this page came back for it; request access again."
                    .into(),
            ))
        }
        ChallengeStatus::Approved => open_approved(db, entra, asker, &c).await,
    }
}

/// Uses the approval up, then opens the account: a second use of it finds nothing to use.
async fn open_approved(
    db: &Db,
    entra: &EntraClient,
    asker: Asker<'_>,
    c: &Challenge,
) -> Result<Collected, JitError> {
    let mut tx = db.pool.begin().await?;
    if !challenge::consume(&mut tx, &c.id)
        .await
        .map_err(JitError::Unexpected)?
    {
        return Err(JitError::Refused(
            "This approval was used already; request access again for a new one.".into(),
        ));
    }
    tx.commit().await?;
    let customer_id = c.customer_id.clone().ok_or_else(|| {
        JitError::Unexpected(anyhow::anyhow!("an access request without a customer"))
    })?;
    let customer = customers::find(db, &asker.tenant.id, &customer_id)
        .await?
        .ok_or_else(|| JitError::Refused("The customer was removed meanwhile.".into()))?;
    let roles = c.asked_roles();
    let opened = service::open(
        db,
        entra,
        Request {
            tenant: asker.tenant,
            customer: &customer,
            user: asker.user,
            roles: &roles,
            msp: asker.msp,
        },
    )
    .await?;
    Ok(Collected::Opened(opened))
}

/// The technician ends their own account at `customer_id` before its window is over: it is
/// ending now, and the end worker ends it at Microsoft as any other end. What to tell them.
pub async fn end_early(
    db: &Db,
    bus: &crate::server::bus::Bus,
    tenant: &Tenant,
    user: &User,
    customer_id: &str,
) -> Result<String, JitError> {
    let customer = customers::find(db, &tenant.id, &CustomerId::from_outside(customer_id))
        .await?
        .ok_or_else(|| JitError::Refused("There is no such customer.".into()))?;
    let account = accounts::find(db, &customer.id, &user.id)
        .await?
        .filter(|a| a.state == JitState::Open)
        .ok_or_else(|| {
            JitError::Refused(format!("You have no open account at {}.", customer.name))
        })?;
    let ended = accounts::end_now(
        &db.pool,
        &account.id,
        "ended early by its technician",
        now(),
    )
    .await?;
    crate::users::access::accounts_ending(u64::from(ended))
        .announce(bus)
        .await;
    Ok(format!(
        "{} is ending: Gatehouse is removing its roles and disabling it at {}.",
        account.upn, customer.name
    ))
}
