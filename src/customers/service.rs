//! Customers: connecting a customer's Entra tenant to Gatehouse's customers app (the round
//! trip of `user_source::flows`, then a client-credentials proof), and what its admin sets
//! there: the domain accounts are made in, how long they stay open, and which Entra roles
//! the holders of each Gatehouse role may request.

use super::store::{self, Customer, Grant, Holder};
use crate::audit::{self, Actor};
use crate::domain::{AccessWindow, CustomerHealth, CustomerId, EntraRole, EntraTenantId, Role};
use crate::entra::EntraClient;
use crate::server::db::Db;
use crate::server::util::{format_time, now};
use crate::tenants::Tenant;
use crate::user_source::service::{not_applied_yet, SourceError, CONSENT_PATIENCE_SECS};
use crate::users::service::User;

/// Where a customer's consent stands after a try.
#[derive(Debug, PartialEq, Eq)]
pub enum Proof {
    /// Graph answered: the customer is connected.
    Proven { name: String },
    /// Microsoft has not applied the consent yet; the page tries again.
    Waiting,
}

/// The consent for `tid` came back (the tenant the admin signed in to, `flows`): the
/// customer is recorded, or consented again, and proven at once if Microsoft allows.
pub async fn consented(
    db: &Db,
    entra: &EntraClient,
    tenant: &Tenant,
    admin: &User,
    tid: EntraTenantId,
) -> Result<Proof, SourceError> {
    let id = store::consented(db, &tenant.id, &tid, &admin.username, now()).await?;
    let customer = store::find(db, &tenant.id, &id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the customer just recorded is not there"))?;
    prove(db, entra, &customer).await
}

/// One try at proving a customer's consent: the verified domains, read with the customers
/// app's client credentials. Within `CONSENT_PATIENCE_SECS` of the consent a refusal means
/// "not applied yet"; after it, or for any other error, Microsoft's words are the customer's
/// health and the audit log's.
pub async fn prove(
    db: &Db,
    entra: &EntraClient,
    customer: &Customer,
) -> Result<Proof, SourceError> {
    // A token issued before Microsoft applied the consent lacks its roles: ask for a new one.
    entra.forget_token(&customer.entra_tid).await;
    let read = async { entra.graph(&customer.entra_tid).await?.domains().await };
    let all = match read.await {
        Ok(all) => all,
        Err(e) if not_applied_yet(&e) && now() - customer.consented_at < CONSENT_PATIENCE_SECS => {
            store::still_waiting(db, &customer.id, &e.to_string()).await?;
            return Ok(Proof::Waiting);
        }
        Err(e) => {
            let mut tx = db.pool.begin().await?;
            store::failing(&mut *tx, &customer.id, &e.to_string()).await?;
            audit::record(
                &mut *tx,
                Some(&customer.tenant_id),
                Actor::User(&customer.consented_by),
                audit::Event::CustomerConsentFailed {
                    entra_tenant: &customer.entra_tid,
                    error: &e.to_string(),
                },
            )
            .await?;
            tx.commit().await?;
            return Err(e.into());
        }
    };
    let domains: Vec<String> = all
        .iter()
        .filter(|d| d.is_verified)
        .map(|d| d.id.to_ascii_lowercase())
        .collect();
    if domains.is_empty() {
        let why = "This Entra tenant has no verified domain to make accounts in.";
        store::failing(&db.pool, &customer.id, why).await?;
        return Err(SourceError::Refused(why.into()));
    }
    let name = all
        .iter()
        .find(|d| d.is_default)
        .map(|d| d.id.clone())
        .unwrap_or_else(|| domains[0].clone());
    let mut tx = db.pool.begin().await?;
    store::proven(&mut *tx, &customer.id, &name, &domains, now()).await?;
    audit::record(
        &mut *tx,
        Some(&customer.tenant_id),
        Actor::User(&customer.consented_by),
        audit::Event::CustomerConnected {
            name: &name,
            entra_tenant: &customer.entra_tid,
        },
    )
    .await?;
    tx.commit().await?;
    let name = match customer.connected_at {
        Some(_) => customer.name.clone(),
        None => name,
    };
    Ok(Proof::Proven { name })
}

/// One more try at every consent of the tenant Microsoft has not applied yet; how many are
/// still waiting.
pub async fn prove_waiting(
    db: &Db,
    entra: &EntraClient,
    tenant: &Tenant,
) -> Result<usize, SourceError> {
    let mut waiting = 0;
    for customer in store::list(db, &tenant.id).await? {
        if customer.health != CustomerHealth::Waiting {
            continue;
        }
        match prove(db, entra, &customer).await {
            Ok(Proof::Waiting) => waiting += 1,
            Ok(Proof::Proven { .. }) => {}
            // Recorded as the customer's health, which the page shows.
            Err(SourceError::Unexpected(e)) => return Err(SourceError::Unexpected(e)),
            Err(_) => {}
        }
    }
    Ok(waiting)
}

/// The tenant's customer `id`, or a refusal that says it is not one.
async fn customer_of(db: &Db, tenant: &Tenant, id: &str) -> Result<Customer, SourceError> {
    store::find(db, &tenant.id, &CustomerId::from_outside(id))
        .await?
        .ok_or_else(|| SourceError::Refused("There is no such customer here.".into()))
}

/// Saves a customer's name, the domain its accounts are made in (a verified domain Graph
/// listed) and how long an account stays open.
pub async fn save(
    db: &Db,
    tenant: &Tenant,
    admin: &User,
    id: &str,
    name: &str,
    domain: &str,
    window_minutes: &str,
) -> Result<String, SourceError> {
    let customer = customer_of(db, tenant, id).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(SourceError::Refused(
            "The customer's name must be 1 to 100 characters on one line.".into(),
        ));
    }
    let domain = domain.trim().to_ascii_lowercase();
    if !customer.domains.iter().any(|d| d == &domain) {
        return Err(SourceError::Refused(format!(
            "{domain} is not a verified domain of this customer's Entra tenant (verified: {}).",
            customer.domains.join(", ")
        )));
    }
    let window = AccessWindow::from_minutes(window_minutes)
        .map_err(|e| SourceError::Refused(format!("{e}.")))?;
    let mut tx = db.pool.begin().await?;
    store::save_settings(&mut *tx, &customer.id, name, &domain, window).await?;
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&admin.username),
        audit::Event::CustomerSaved {
            name,
            domain: &domain,
            window,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(format!(
        "Saved: accounts at {name} are made in {domain} and stay open {window}."
    ))
}

/// A Gatehouse role as the page's form names it.
fn holders_role(holders: &str) -> Result<Role, SourceError> {
    holders.parse().map_err(|_| {
        SourceError::Refused(format!(
            "`{}` is not a Gatehouse role or an Entra group: choose Technicians, Admins or a group from the list.",
            holders.chars().take(60).collect::<String>()
        ))
    })
}

fn entra_role(role: &str) -> Result<EntraRole, SourceError> {
    EntraRole::parse(role).map_err(|e| SourceError::Refused(format!("{e}.")))
}

/// Lets the holders of a Gatehouse role, or the members of an Entra group of the MSP (which
/// Graph must confirm, and which only its owners may let people join), request an Entra
/// role at a customer.
pub async fn grant(
    db: &Db,
    msp: Option<&crate::entra::EntraClient>,
    tenant: &Tenant,
    admin: &User,
    id: &str,
    holders: &str,
    role: &str,
) -> Result<String, SourceError> {
    let customer = customer_of(db, tenant, id).await?;
    let role = entra_role(role)?;
    let holders = match holders.strip_prefix(store::GROUP_PREFIX) {
        Some(group) => Holder::Group(
            crate::user_source::groups::confirmed_for_mapping(msp, tenant, group).await?,
        ),
        None => Holder::Role(holders_role(holders)?),
    };
    let grant = Grant { holders, role };
    let who = grant.holders.words();
    let mut tx = db.pool.begin().await?;
    if !store::grant(&mut *tx, &customer.id, &grant, &admin.username, now()).await? {
        return Ok(format!(
            "{who} may already request {} at {}.",
            grant.role, customer.name
        ));
    }
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&admin.username),
        audit::Event::CustomerRoleGranted {
            name: &customer.name,
            holders: &who,
            role: grant.role,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(format!(
        "{who} may now request {} at {}.",
        grant.role, customer.name
    ))
}

/// Disconnects a customer: nothing more is opened there, and every account open there ends
/// now (marked in the same transaction; the end worker ends them at Microsoft). The row
/// stays, for the accounts' ends and the audit trail; consenting again connects it anew.
pub async fn disconnect(
    db: &Db,
    bus: &crate::server::bus::Bus,
    tenant: &Tenant,
    admin: &User,
    id: &str,
) -> Result<String, SourceError> {
    let customer = customer_of(db, tenant, id).await?;
    if customer.health == CustomerHealth::Disconnected {
        return Err(SourceError::Refused(format!(
            "{} is disconnected already.",
            customer.name
        )));
    }
    let at = now();
    let reason = format!("{} was disconnected", customer.name);
    let mut tx = db.pool.begin().await?;
    store::disconnect(
        &mut *tx,
        &customer.id,
        &format!("at {} by {}", format_time(at), admin.username),
    )
    .await?;
    let mut ending = 0;
    for account in
        crate::jit::store::live_in(&mut tx, crate::jit::store::Whose::Customer(&customer.id))
            .await?
    {
        if crate::jit::store::end_now(&mut *tx, &account.id, &reason, at).await? {
            ending += 1;
        }
    }
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&admin.username),
        audit::Event::CustomerDisconnected {
            name: &customer.name,
            ending,
        },
    )
    .await?;
    tx.commit().await?;
    crate::users::access::accounts_ending(ending)
        .announce(bus)
        .await;
    Ok(match ending {
        0 => format!("{} is disconnected.", customer.name),
        n => format!(
            "{} is disconnected; {n} open account(s) there are ending.",
            customer.name
        ),
    })
}

/// Takes a line out of a customer's role mapping.
pub async fn withdraw(
    db: &Db,
    bus: &crate::server::bus::Bus,
    tenant: &Tenant,
    admin: &User,
    id: &str,
    holders: &str,
    role: &str,
) -> Result<String, SourceError> {
    let customer = customer_of(db, tenant, id).await?;
    let role = entra_role(role)?;
    // A group's line is the one the mapping holds (with the group's name); a role's is made
    // from the form.
    let grant = match holders.strip_prefix(store::GROUP_PREFIX) {
        Some(group) => store::grants(&db.pool, &customer.id)
            .await?
            .into_iter()
            .find(|g| {
                g.role == role
                    && matches!(&g.holders, Holder::Group(held) if held.id.as_str() == group)
            }),
        None => Some(Grant {
            holders: Holder::Role(holders_role(holders)?),
            role,
        }),
    };
    let not_there = || {
        SourceError::Refused(format!(
            "That line is not in {}'s mapping (withdrawn already?).",
            customer.name
        ))
    };
    let grant = grant.ok_or_else(not_there)?;
    let who = grant.holders.words();
    let mut tx = db.pool.begin().await?;
    if !store::withdraw(&mut *tx, &customer.id, &grant).await? {
        return Err(SourceError::Refused(format!(
            "{who} could not request {} at {}.",
            grant.role, customer.name
        )));
    }
    // Accounts open with the withdrawn role end now, unless their owner may still hold it
    // another way (the one rule, `jit::holders::end_disallowed`).
    let live =
        crate::jit::store::live_in(&mut tx, crate::jit::store::Whose::Customer(&customer.id))
            .await?;
    let reason = format!("{who} may no longer request {}", grant.role);
    let ending = crate::jit::holders::end_disallowed(&mut tx, live, &reason, now()).await?;
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&admin.username),
        audit::Event::CustomerRoleWithdrawn {
            name: &customer.name,
            holders: &who,
            role: grant.role,
        },
    )
    .await?;
    tx.commit().await?;
    crate::users::access::accounts_ending(ending)
        .announce(bus)
        .await;
    let ending = match ending {
        0 => String::new(),
        n => format!(" {n} account(s) holding it are ending."),
    };
    Ok(format!(
        "{who} may no longer request {} at {}.{ending}",
        grant.role, customer.name
    ))
}
