//! A QR login challenge's whole life: drawn for a browser, approved or denied on a phone,
//! consumed once by the same browser, cancelled when access ends, run out. The browser is
//! identified by the hash of its binding cookie, so a challenge id seen by anyone else (a
//! shoulder-surfer, a phishing page) is worthless.

use super::qr::QrCodes;
use super::view::LoginView;
use crate::audit::{self, Actor};
use crate::devices::store as devices;
use crate::domain::{
    ChallengeId, ChallengePurpose, ChallengeStatus, CustomerId, DeviceId, EntraRole, SessionId,
    TenantId, UserId, UserStatus,
};
use crate::server::bus::{Bus, Event};
use crate::server::client_ip::ClientIp;
use crate::server::config::Config;
use crate::server::db::Db;
use crate::server::throttle::{Action, Throttled, Throttles};
use crate::server::util::{format_time, now, random_id};
use crate::tenants::Tenant;
use crate::users::store::User;
use rand::seq::SliceRandom;
use rand::Rng;

/// How long a QR code stays valid.
pub const CHALLENGE_TTL_SECS: i64 = 120;
/// How long after its expiry an approved challenge may still be completed by its browser
/// (the phone approved at the last second; the browser needs a moment to come back).
pub const COMPLETION_GRACE_SECS: i64 = 60;
/// A page load this close to a code's end draws the next code instead: nobody could scan
/// and approve in time.
pub const RENEW_WITHIN_SECS: i64 = 5;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Challenge {
    pub id: ChallengeId,
    pub tenant_id: TenantId,
    pub binding_hash: String,
    pub match_number: i64,
    pub numbers: String,
    pub requester_ip: String,
    pub user_agent: String,
    #[sqlx(try_from = "String")]
    pub status: ChallengeStatus,
    pub reason: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub device_id: Option<DeviceId>,
    pub user_id: Option<UserId>,
    #[sqlx(try_from = "String")]
    pub purpose: ChallengePurpose,
    /// For an access request: the customer and the role template ids (a JSON array).
    pub customer_id: Option<CustomerId>,
    pub roles: Option<String>,
}

const COLUMNS: &str = "id, tenant_id, binding_hash, match_number, numbers, requester_ip, \
    user_agent, status, reason, created_at, expires_at, device_id, user_id, purpose, \
    customer_id, roles";

impl Challenge {
    pub fn numbers(&self) -> Vec<u8> {
        self.numbers
            .split(',')
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    pub fn is_live(&self, at: i64) -> bool {
        self.status == ChallengeStatus::Pending && self.expires_at > at
    }
}

/// The three numbers the phone shows: the match number and two decoys, shuffled.
fn draw_numbers() -> (i64, String) {
    let mut rng = rand::thread_rng();
    let mut numbers: Vec<i64> = Vec::with_capacity(3);
    while numbers.len() < 3 {
        let n = rng.gen_range(10..100);
        if !numbers.contains(&n) {
            numbers.push(n);
        }
    }
    let matching = numbers[0];
    numbers.shuffle(&mut rng);
    let listed = numbers
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    (matching, listed)
}

pub async fn find(
    db: &Db,
    tenant_id: &TenantId,
    id: &ChallengeId,
) -> anyhow::Result<Option<Challenge>> {
    Ok(sqlx::query_as::<_, Challenge>(&format!(
        "SELECT {COLUMNS} FROM login_challenges WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// What a browser's page load finds: an approval to complete, or the QR code to show.
pub enum ForBrowser {
    /// The phone approved this browser's challenge; signing in consumes it
    /// (`session::complete`).
    Approved(Box<Challenge>),
    /// The challenge to display: the browser's live one, or a new one; with a new one, why
    /// the browser's previous code was refused, if it was (the new code says so once).
    Show(Box<Challenge>, Option<String>),
    /// A new code was needed, but this client IP has drawn too many this minute.
    Throttled(Throttled),
}

/// One page load of the login page: the browser's approved challenge, else its live one,
/// else a new one. Reloads (the no-JavaScript path refreshes every few seconds) keep showing
/// the same QR code until it is about to expire. An approval wins over a newer pending code:
/// the phone may approve a code the page has just replaced.
pub async fn for_browser(
    db: &Db,
    throttles: &Throttles,
    tenant: &Tenant,
    binding_hash: &str,
    ip: ClientIp,
    user_agent: &str,
) -> anyhow::Result<ForBrowser> {
    let at = now();
    let found = sqlx::query_as::<_, Challenge>(&format!(
        "SELECT {COLUMNS} FROM login_challenges \
         WHERE tenant_id = $1 AND binding_hash = $2 AND purpose = $7 \
           AND ((status = $5 AND expires_at > $3) OR (status = $6 AND expires_at > $4)) \
         ORDER BY CASE status WHEN $5 THEN 0 ELSE 1 END, created_at DESC LIMIT 1"
    ))
    .bind(&tenant.id)
    .bind(binding_hash)
    .bind(at - COMPLETION_GRACE_SECS)
    .bind(at + RENEW_WITHIN_SECS)
    .bind(ChallengeStatus::Approved.as_str())
    .bind(ChallengeStatus::Pending.as_str())
    .bind(ChallengePurpose::SignIn.as_str())
    .fetch_optional(&db.pool)
    .await?;
    Ok(match found {
        Some(c) if c.status == ChallengeStatus::Approved => ForBrowser::Approved(Box::new(c)),
        Some(c) => ForBrowser::Show(Box::new(c), None),
        None => {
            if let Err(throttled) = throttles.check(Action::LoginCode, ip.network()) {
                return Ok(ForBrowser::Throttled(throttled));
            }
            let refused = last_refusal(db, tenant, binding_hash).await?;
            let c = create(db, tenant, binding_hash, &ip.to_string(), user_agent).await?;
            ForBrowser::Show(Box::new(c), refused)
        }
    })
}

/// Why this browser's latest code was refused (denied on the phone, cancelled because the
/// account was disabled or offboarded, refused when the browser came back), if it was.
async fn last_refusal(
    db: &Db,
    tenant: &Tenant,
    binding_hash: &str,
) -> anyhow::Result<Option<String>> {
    let last: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT status, reason FROM login_challenges \
         WHERE tenant_id = $1 AND binding_hash = $2 AND purpose = $3 \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&tenant.id)
    .bind(binding_hash)
    .bind(ChallengePurpose::SignIn.as_str())
    .fetch_optional(&db.pool)
    .await?;
    Ok(match last {
        Some((status, reason))
            if matches!(
                status.parse(),
                Ok(ChallengeStatus::Denied | ChallengeStatus::Cancelled)
            ) =>
        {
            reason
        }
        _ => None,
    })
}

async fn create(
    db: &Db,
    tenant: &Tenant,
    binding_hash: &str,
    ip: &str,
    user_agent: &str,
) -> anyhow::Result<Challenge> {
    insert(db, new(tenant, binding_hash, ip, user_agent)).await
}

/// A new pending sign-in challenge, not yet stored.
fn new(tenant: &Tenant, binding_hash: &str, ip: &str, user_agent: &str) -> Challenge {
    let at = now();
    let (match_number, numbers) = draw_numbers();
    Challenge {
        id: ChallengeId::drawn(random_id(24)),
        tenant_id: tenant.id.clone(),
        binding_hash: binding_hash.to_string(),
        match_number,
        numbers,
        requester_ip: ip.to_string(),
        user_agent: truncate(user_agent, 300),
        status: ChallengeStatus::Pending,
        reason: None,
        created_at: at,
        expires_at: at + CHALLENGE_TTL_SECS,
        device_id: None,
        user_id: None,
        purpose: ChallengePurpose::SignIn,
        customer_id: None,
        roles: None,
    }
}

async fn insert(db: &Db, challenge: Challenge) -> anyhow::Result<Challenge> {
    sqlx::query(
        "INSERT INTO login_challenges (id, tenant_id, binding_hash, match_number, numbers, \
         requester_ip, user_agent, status, created_at, expires_at, user_id, purpose, \
         customer_id, roles) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&challenge.id)
    .bind(&challenge.tenant_id)
    .bind(&challenge.binding_hash)
    .bind(challenge.match_number)
    .bind(&challenge.numbers)
    .bind(&challenge.requester_ip)
    .bind(&challenge.user_agent)
    .bind(challenge.status.as_str())
    .bind(challenge.created_at)
    .bind(challenge.expires_at)
    .bind(&challenge.user_id)
    .bind(challenge.purpose.as_str())
    .bind(&challenge.customer_id)
    .bind(&challenge.roles)
    .execute(&db.pool)
    .await?;
    Ok(challenge)
}

/// The binding of an access request: the signed-in session that asked, by its index id.
pub fn session_binding(login_id: &SessionId) -> String {
    format!("session:{login_id}")
}

/// What an access request asks for.
pub struct AccessAsked<'a> {
    pub tenant: &'a Tenant,
    pub user: &'a User,
    pub login_id: &'a SessionId,
    pub customer_id: &'a CustomerId,
    pub roles: &'a [EntraRole],
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// Draws the phone challenge of an access request: the requester's phone approves it, and
/// only the session that asked may use the approval, once.
pub async fn create_access(db: &Db, asked: AccessAsked<'_>) -> anyhow::Result<Challenge> {
    // One request waits for the phone at a time, however often the page asks: the user's
    // earlier ones that no phone approved yet are replaced.
    sqlx::query(
        "UPDATE login_challenges SET status = $1, reason = $2 \
         WHERE user_id = $3 AND purpose = $4 AND status = $5",
    )
    .bind(ChallengeStatus::Cancelled.as_str())
    .bind(REPLACED)
    .bind(&asked.user.id)
    .bind(ChallengePurpose::Access.as_str())
    .bind(ChallengeStatus::Pending.as_str())
    .execute(&db.pool)
    .await?;
    let ids: Vec<&str> = asked.roles.iter().map(|r| r.id()).collect();
    let challenge = Challenge {
        user_id: Some(asked.user.id.clone()),
        purpose: ChallengePurpose::Access,
        customer_id: Some(asked.customer_id.clone()),
        roles: Some(serde_json::to_string(&ids)?),
        ..new(
            asked.tenant,
            &session_binding(asked.login_id),
            asked.ip,
            asked.user_agent,
        )
    };
    insert(db, challenge).await
}

/// Why an access request stopped waiting: the same user asked again.
pub const REPLACED: &str = "replaced by a newer request";

impl Challenge {
    /// The roles an access request asks for (none for a sign-in).
    pub fn asked_roles(&self) -> Vec<EntraRole> {
        self.roles
            .as_deref()
            .and_then(|r| serde_json::from_str::<Vec<String>>(r).ok())
            .unwrap_or_default()
            .iter()
            .filter_map(|id| EntraRole::parse(id).ok())
            .collect()
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// What the login page shows for a challenge.
pub fn view(config: &Config, qr_codes: &QrCodes, tenant: &Tenant, c: &Challenge) -> LoginView {
    let scan_url = format!(
        "{}/app/scan?tenant={}&challenge={}",
        config.public_url, tenant.slug, c.id
    );
    let qr_svg = qr_codes.svg(c.id.as_str(), c.expires_at, &scan_url);
    LoginView {
        tenant_name: tenant.name.clone(),
        challenge_id: c.id.to_string(),
        match_number: c.match_number as u8,
        expires_in_secs: (c.expires_at - now()).max(0),
        expires_at: format_time(c.expires_at),
        qr_svg: qr_svg.to_string(),
        scan_url,
        demo: config.demo,
        base_url: config.public_url.clone(),
        notice: None,
    }
}

/// Cancels the user's approvals that no browser has used yet (access ended).
pub async fn cancel_for_user(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &UserId,
    reason: &str,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE login_challenges SET status = $1, reason = $2 \
         WHERE user_id = $3 AND status IN ($4, $5)",
    )
    .bind(ChallengeStatus::Cancelled.as_str())
    .bind(reason)
    .bind(user_id)
    .bind(ChallengeStatus::Pending.as_str())
    .bind(ChallengeStatus::Approved.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Cancels the approvals a phone gave in a tenant that no browser has used yet.
pub async fn cancel_for_device(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &TenantId,
    device_id: &DeviceId,
    reason: &str,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE login_challenges SET status = $1, reason = $2 \
         WHERE tenant_id = $3 AND device_id = $4 AND status = $5",
    )
    .bind(ChallengeStatus::Cancelled.as_str())
    .bind(reason)
    .bind(tenant_id)
    .bind(device_id)
    .bind(ChallengeStatus::Approved.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// A phone approved `c` for `user` (the phone's owner, as the user source decided): in one
/// transaction the code is marked approved (once), an invited user becomes active (their
/// onboarding), the phone is bound to the user in the tenant and the audit log says so; the
/// browser hears of it once all of that has committed. False when the code was answered (or
/// refused) meanwhile. The user comes back as they now are.
pub async fn approve(
    db: &Db,
    bus: &Bus,
    c: &Challenge,
    device_id: &DeviceId,
    user: User,
) -> anyhow::Result<Option<User>> {
    let at = now();
    let mut tx = db.pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE login_challenges SET status = $1, device_id = $2, user_id = $3 \
         WHERE id = $4 AND status = $5",
    )
    .bind(ChallengeStatus::Approved.as_str())
    .bind(device_id)
    .bind(&user.id)
    .bind(&c.id)
    .bind(ChallengeStatus::Pending.as_str())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(None);
    }
    if crate::users::store::activate_invited(&mut tx, &user.id, at).await? {
        audit::record(
            &mut *tx,
            Some(&c.tenant_id),
            Actor::User(&user.username),
            audit::Event::InvitationAccepted {
                username: &user.username,
                email: &user.email,
            },
        )
        .await?;
    }
    devices::bind(&mut tx, device_id, &c.tenant_id, &user.id, at).await?;
    audit::record(
        &mut *tx,
        Some(&c.tenant_id),
        Actor::User(&user.username),
        audit::Event::LoginApproved {
            username: &user.username,
            phone: device_id,
            browser_ip: &c.requester_ip,
        },
    )
    .await?;
    commit_approved(bus, tx, c).await?;
    Ok(Some(User {
        status: UserStatus::Active,
        ..user
    }))
}

/// The requester's phone approved access request `c` (the caller checked the phone is
/// theirs): marked approved once, audited, and the asking page hears of it after the commit.
/// False when the request was answered (or cancelled) meanwhile.
pub async fn approve_access(
    db: &Db,
    bus: &Bus,
    c: &Challenge,
    device_id: &DeviceId,
    user: &User,
    customer: &str,
) -> anyhow::Result<bool> {
    let mut tx = db.pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE login_challenges SET status = $1, device_id = $2 \
         WHERE id = $3 AND status = $4 AND purpose = $5 AND user_id = $6",
    )
    .bind(ChallengeStatus::Approved.as_str())
    .bind(device_id)
    .bind(&c.id)
    .bind(ChallengeStatus::Pending.as_str())
    .bind(ChallengePurpose::Access.as_str())
    .bind(&user.id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    let roles: Vec<&str> = c.asked_roles().iter().map(|r| r.name()).collect();
    audit::record(
        &mut *tx,
        Some(&c.tenant_id),
        Actor::User(&user.username),
        audit::Event::JitApproved {
            customer,
            roles: &roles.join(", "),
            phone: device_id,
        },
    )
    .await?;
    commit_approved(bus, tx, c).await?;
    Ok(true)
}

/// Commits an approval of `c`; then its page hears of it (the login page, or the home page
/// that asked for access).
async fn commit_approved(
    bus: &Bus,
    tx: sqlx::Transaction<'_, sqlx::Any>,
    c: &Challenge,
) -> anyhow::Result<()> {
    bus.commit_and_publish(
        tx,
        Event::Approved {
            challenge_id: c.id.clone(),
            browser: c.binding_hash.clone(),
        },
    )
    .await?;
    Ok(())
}

/// The browser came back for its approval: consumes it, once. False when another request of
/// the same browser consumed it first.
pub async fn consume(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &ChallengeId,
) -> anyhow::Result<bool> {
    let consumed =
        sqlx::query("UPDATE login_challenges SET status = $1 WHERE id = $2 AND status = $3")
            .bind(ChallengeStatus::Consumed.as_str())
            .bind(id)
            .bind(ChallengeStatus::Approved.as_str())
            .execute(&mut **tx)
            .await?;
    Ok(consumed.rows_affected() == 1)
}

/// An approval spent on a user whose access ended between the phone's approval and the
/// browser's return: the browser's next code says why.
pub async fn cancel_spent(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &ChallengeId,
    reason: &str,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE login_challenges SET status = $1, reason = $2 WHERE id = $3")
        .bind(ChallengeStatus::Cancelled.as_str())
        .bind(reason)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Detaches a deleted user from the codes they approved (the codes stay, for the audit trail).
pub async fn forget_user(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &UserId,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE login_challenges SET user_id = NULL WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What a browser is told when the phone refused its sign-in for a reason about the phone's
/// owner (no account, disabled, another domain, a revoked phone …): the detail names people
/// and addresses, so it goes to the phone and the audit log only. Whoever put a QR code in
/// front of someone learns nothing about them.
pub const REFUSED_ON_THE_PHONE: &str = "the sign-in was refused on the phone";

/// Marks a pending challenge denied: its browser is told `for_browser`, the audit log
/// `detail`.
pub async fn deny(
    db: &Db,
    bus: &Bus,
    c: &Challenge,
    for_browser: &str,
    detail: &str,
    actor: Actor<'_>,
) -> anyhow::Result<bool> {
    let mut tx = db.pool.begin().await?;
    let done = sqlx::query(
        "UPDATE login_challenges SET status = $1, reason = $2 WHERE id = $3 AND status = $4",
    )
    .bind(ChallengeStatus::Denied.as_str())
    .bind(for_browser)
    .bind(&c.id)
    .bind(ChallengeStatus::Pending.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    audit::record(
        &mut *tx,
        Some(&c.tenant_id),
        actor,
        audit::Event::LoginDenied {
            challenge: &c.id,
            detail,
        },
    )
    .await?;
    bus.commit_and_publish(
        tx,
        Event::Denied {
            challenge_id: c.id.clone(),
            browser: c.binding_hash.clone(),
            reason: for_browser.to_string(),
        },
    )
    .await?;
    Ok(true)
}

/// Forgets QR codes that expired before `before` (housekeeping); how many.
pub async fn forget_expired(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM login_challenges WHERE expires_at < $1")
            .bind(before)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}
