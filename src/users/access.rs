//! The one way access ends. Disabling, deleting and offboarding a user, and revoking or
//! forgetting a phone, all come here: sign-ins end, approved-but-unused QR codes are
//! cancelled, phone bindings are revoked, the user's accounts at every customer are marked
//! ending (the JIT worker ends them at Microsoft and records when Microsoft confirmed it),
//! and one audit event says what ended, all in the caller's transaction. After it commits,
//! `Ended::announce` tells open pages to leave and wakes the JIT worker.

use crate::audit::{self, Actor};
use crate::devices::store as devices;
use crate::domain::{DeviceId, TenantId, UserId};
use crate::login::{challenge as challenges, session};
use crate::server::bus::{Bus, Event};
use crate::server::util::now;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// What a revocation ended; `announce` it once the transaction has committed.
#[derive(Debug, Default)]
#[must_use = "announce it after the commit, or open pages stay until their next request"]
pub struct Ended {
    /// Users whose open pages must leave.
    pub users: Vec<UserId>,
    pub sessions: u64,
    pub phones: u64,
    /// Accounts at customers now ending.
    pub customer_accounts: u64,
    reason: String,
}

impl Ended {
    /// Pushes the sign-out to every open page of the users concerned, on every replica, and
    /// wakes the JIT worker for accounts ending without a sign-out.
    pub async fn announce(self, bus: &Bus) {
        if self.customer_accounts > 0 && self.users.is_empty() {
            bus.publish(Event::AccountsEnding).await;
        }
        for user_id in self.users {
            bus.publish(Event::SignedOut {
                user_id,
                reason: self.reason.clone(),
            })
            .await;
        }
    }

    /// "2 session(s) ended, 1 phone(s) revoked", for messages and the audit log, and
    /// ", 3 customer account(s) ending" when there are some.
    pub fn summary(&self) -> String {
        let customers = match self.customer_accounts {
            0 => String::new(),
            n => format!(", {n} customer account(s) ending"),
        };
        format!(
            "{} session(s) ended, {} phone(s) revoked{customers}",
            self.sessions, self.phones
        )
    }
}

/// The user involved: who, in which tenant, by which name the audit log shows them.
pub struct Subject<'a> {
    pub tenant_id: &'a TenantId,
    pub user_id: &'a UserId,
    pub username: &'a str,
}

/// Ends all of a user's access in the tenant: every sign-in, every phone binding (the phone
/// must be enrolled anew even if the user is enabled again), every approval not yet used.
/// `ending` names the audit event (disabled, deleted, offboarded).
pub async fn revoke_all_access(
    tx: &mut Tx<'_>,
    who: &Subject<'_>,
    ending: audit::Ending,
    actor: Actor<'_>,
    reason: &str,
) -> anyhow::Result<Ended> {
    let at = now();
    let sessions = session::end_all_of_user(tx, who.user_id).await?;
    challenges::cancel_for_user(tx, who.user_id, reason).await?;
    let phones = devices::revoke_user_bindings(tx, who.tenant_id, who.user_id, at).await?;
    let customer_accounts =
        crate::jit::store::end_all_of_user(&mut **tx, who.user_id, reason, at).await?;
    let ended = Ended {
        users: vec![who.user_id.clone()],
        sessions,
        phones,
        customer_accounts,
        reason: reason.to_string(),
    };
    audit::record(
        &mut **tx,
        Some(who.tenant_id),
        actor,
        audit::Event::AccessEnded {
            ending,
            username: who.username,
            reason,
            ended: &ended.summary(),
        },
    )
    .await?;
    Ok(ended)
}

/// Gives the user another Gatehouse role (an admin's choice, the admin group at a run or a
/// sign-in): and their accounts at customers whose roles the new role may not request there
/// are ending now, in the caller's transaction. `announce` what ended after the commit (the
/// JIT worker wakes; without it, it finds them at its next tick).
pub async fn change_role(
    tx: &mut Tx<'_>,
    user_id: &UserId,
    role: crate::domain::Role,
) -> anyhow::Result<Ended> {
    crate::users::store::set_role(tx, user_id, role).await?;
    let live = crate::jit::store::live_in(tx, crate::jit::store::Whose::User(user_id)).await?;
    let reason = format!("now {role}, who may not hold these roles there");
    Ok(Ended {
        customer_accounts: crate::jit::holders::end_disallowed(tx, live, &reason, now()).await?,
        reason,
        ..Ended::default()
    })
}

/// Accounts at customers ending for a reason of their own (a withdrawn mapping): `announce`
/// it after the commit.
pub fn accounts_ending(count: u64) -> Ended {
    Ended {
        customer_accounts: count,
        ..Ended::default()
    }
}

/// An admin revokes one phone of a user ("lost phone"): it can approve nothing more in this
/// tenant, and the sign-ins it approved here end. The user's other phones are untouched.
pub async fn revoke_device(
    tx: &mut Tx<'_>,
    who: &Subject<'_>,
    device_id: &DeviceId,
    actor: Actor<'_>,
) -> anyhow::Result<Ended> {
    let reason = "phone revoked by an admin";
    devices::revoke_binding(tx, device_id, who.tenant_id, who.user_id, now()).await?;
    let ended = end_device_in(tx, who.tenant_id, device_id, reason).await?;
    audit::record(
        &mut **tx,
        Some(who.tenant_id),
        actor,
        audit::Event::PhoneRevoked {
            username: who.username,
            phone: device_id,
            ended: &ended.summary(),
        },
    )
    .await?;
    Ok(ended)
}

/// The technician forgets their phone in the app: it is revoked everywhere, its verified
/// emails are dropped, and the sign-ins it approved end in every tenant.
pub async fn forget_device(tx: &mut Tx<'_>, device_id: &DeviceId) -> anyhow::Result<Ended> {
    let reason = "the phone was forgotten in the app";
    let tenants = devices::revoke_everywhere(tx, device_id, now()).await?;
    let mut all = Ended {
        reason: reason.to_string(),
        ..Ended::default()
    };
    for tenant_id in tenants {
        let ended = end_device_in(tx, &tenant_id, device_id, reason).await?;
        audit::record(
            &mut **tx,
            Some(&tenant_id),
            Actor::Device(device_id.short()),
            audit::Event::PhoneForgotten {
                phone: device_id,
                reason,
                ended: &ended.summary(),
            },
        )
        .await?;
        all.users.extend(ended.users);
        all.sessions += ended.sessions;
        all.phones += 1;
    }
    Ok(all)
}

/// Ends what a phone did in a tenant: the sign-ins it approved and its unused approvals.
async fn end_device_in(
    tx: &mut Tx<'_>,
    tenant_id: &TenantId,
    device_id: &DeviceId,
    reason: &str,
) -> anyhow::Result<Ended> {
    let users = session::end_all_of_device(tx, tenant_id, device_id).await?;
    challenges::cancel_for_device(tx, tenant_id, device_id, reason).await?;
    Ok(Ended {
        sessions: users.len() as u64,
        users: dedup(users),
        phones: 1,
        customer_accounts: 0,
        reason: reason.to_string(),
    })
}

fn dedup(mut v: Vec<UserId>) -> Vec<UserId> {
    v.sort();
    v.dedup();
    v
}
