//! What the phone may do: enroll, prove an email, look at a sign-in request, approve or deny it.

use super::error::ApiError;
use super::jws::{self, Common};
use crate::audit::{self, Actor};
use crate::devices::store as devices;
use crate::domain::{ChallengeStatus, Email};
use crate::login::challenge::{self as challenges, Challenge};
use crate::server::rate_limit::Budget;
use crate::server::state::AppState;
use crate::server::util::{now, random_id, sha256_hex};
use crate::tenants::Tenant;
use crate::user_source::phone;
use crate::users::store::User;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use rand::Rng;
use serde::Deserialize;

pub const CODE_TTL_SECS: i64 = 600;
pub const CODE_ATTEMPTS: i64 = 5;
/// A new code may be mailed at most this often per device and address.
pub const CODE_RESEND_SECS: i64 = 20;

/// Registers a phone's public key; the same key registered again gets the same device.
/// Returns the device id and whether it is new. A forgotten or revoked key stays so: the
/// app makes a new key to enroll again.
pub async fn register(
    state: &AppState,
    public_key: &serde_json::Value,
    token: &str,
) -> Result<(String, bool), ApiError> {
    let jwk = jws::parse_public_key(public_key)?;
    jws::verify::<serde_json::Value>(token, &jwk, "register", now())?;
    let thumb = jws::thumbprint(&jwk);
    if let Some((id, revoked)) = devices::by_thumbprint(&state.db, &thumb).await? {
        return if revoked {
            Err(ApiError::DeviceRevoked)
        } else {
            Ok((id, false))
        };
    }
    let id = random_id(16);
    let stored = serde_json::to_string(&jwk).map_err(anyhow::Error::from)?;
    devices::insert(&state.db, &id, &stored, &thumb, now()).await?;
    audit::record(
        &state.db.pool,
        None,
        Actor::Device(&id),
        audit::Action::DeviceRegistered,
        &id,
        &format!("key thumbprint {thumb}"),
    )
    .await?;
    Ok((id, true))
}

/// Verifies a request signed by `device_id`'s key for `purpose`.
async fn authenticate<T: serde::de::DeserializeOwned>(
    state: &AppState,
    device_id: &str,
    token: &str,
    purpose: &'static str,
) -> Result<(Common, T), ApiError> {
    let row = devices::key(&state.db, device_id)
        .await?
        .ok_or(ApiError::UnknownDevice)?;
    if row.revoked_at.is_some() {
        return Err(ApiError::DeviceRevoked);
    }
    let jwk: Jwk = serde_json::from_str(&row.public_jwk).map_err(anyhow::Error::from)?;
    let (common, payload) = jws::verify::<T>(token, &jwk, purpose, now())?;
    if common.device_id.as_deref() != Some(device_id) {
        return Err(ApiError::DeviceMismatch);
    }
    Ok((common, payload))
}

/// The technician forgets this phone (`DELETE /devices/{id}`, purpose `forget`): it is
/// revoked everywhere, its emails are dropped, and the sign-ins it approved end.
pub async fn forget(state: &AppState, device_id: &str, token: &str) -> Result<(), ApiError> {
    let _: (_, serde_json::Value) = authenticate(state, device_id, token, "forget").await?;
    let mut tx = state.db.pool.begin().await?;
    let ended = crate::users::access::forget_device(&mut tx, device_id).await?;
    tx.commit().await?;
    ended.announce(&state.bus).await;
    Ok(())
}

/// Reads `device_id` from a JWS payload before verification; the signature is checked
/// right after with that device's key, so nothing is trusted from this peek.
fn claimed_device(token: &str) -> Result<String, ApiError> {
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .ok_or_else(|| {
            ApiError::InvalidJws("the jws is not a compact JWS with a JSON payload".into())
        })?;
    let id = payload["device_id"]
        .as_str()
        .ok_or_else(|| ApiError::InvalidJws("the signed payload lacks `device_id`".into()))?;
    // Device ids are Gatehouse's own random base64url strings; anything else names no
    // device, and is not worth a database query (a NUL in it would even fail one).
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::UnknownDevice);
    }
    Ok(id.to_string())
}

#[derive(Deserialize)]
struct EmailPayload {
    email: String,
}

fn parse_email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| ApiError::InvalidEmail(format!("email: {e}")))
}

fn code_hash(device_id: &str, email: &Email, code: &str) -> String {
    sha256_hex(&format!("{device_id}:{email}:{code}"))
}

/// The three budgets of the phone's email verification, from the configured limits.
struct CodeBudgets {
    mails_per_address: Budget,
    mails_per_ip: Budget,
    failures_per_address: Budget,
}

const HOUR: i64 = 3600;

fn budgets(state: &AppState) -> CodeBudgets {
    let l = &state.config.limits;
    CodeBudgets {
        mails_per_address: Budget {
            name: "code_mail_addr",
            max: l.code_mails_per_address,
            window_secs: HOUR,
        },
        mails_per_ip: Budget {
            name: "code_mail_ip",
            max: l.code_mails_per_ip,
            window_secs: HOUR,
        },
        failures_per_address: Budget {
            name: "code_fail_addr",
            max: l.code_failures_per_address,
            window_secs: HOUR,
        },
    }
}

/// Mails a 6-digit code for `email`; a new code replaces the previous one. Mails to one
/// address and from one client are budgeted per hour, so nobody can flood an inbox.
pub async fn request_code(
    state: &AppState,
    device_id: &str,
    token: &str,
    client_ip: &str,
) -> Result<(), ApiError> {
    let (_, p): (_, EmailPayload) = authenticate(state, device_id, token, "verify_email").await?;
    let email = parse_email(&p.email)?;
    let at = now();
    let last: Option<(i64,)> =
        sqlx::query_as("SELECT created_at FROM email_codes WHERE device_id = $1 AND email = $2")
            .bind(device_id)
            .bind(email.as_str())
            .fetch_optional(&state.db.pool)
            .await?;
    if let Some((created,)) = last {
        if at - created < CODE_RESEND_SECS {
            return Err(ApiError::TooSoon(CODE_RESEND_SECS));
        }
    }
    let b = budgets(state);
    if let Err(spent) = b
        .mails_per_address
        .take(&state.db, email.as_str(), at)
        .await?
    {
        return Err(ApiError::RateLimited {
            what: format!("too many codes were mailed to {email} this hour"),
            retry_after: spent.retry_after,
        });
    }
    if let Err(spent) = b.mails_per_ip.take(&state.db, client_ip, at).await? {
        b.mails_per_address
            .give_back(&state.db, email.as_str())
            .await?;
        return Err(ApiError::RateLimited {
            what: "too many codes were asked for from this network this hour".into(),
            retry_after: spent.retry_after,
        });
    }
    let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
    sqlx::query(
        "INSERT INTO email_codes (device_id, email, code_hash, attempts, created_at, expires_at) \
         VALUES ($1, $2, $3, 0, $4, $5) \
         ON CONFLICT (device_id, email) DO UPDATE SET code_hash = excluded.code_hash, \
         attempts = 0, created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(device_id)
    .bind(email.as_str())
    .bind(code_hash(device_id, &email, &code))
    .bind(at)
    .bind(at + CODE_TTL_SECS)
    .execute(&state.db.pool)
    .await?;
    let body = format!(
        "Your Gatehouse verification code is {code}.\n\n\
         Enter it in the Gatehouse app within 10 minutes. If you did not ask for it, ignore this mail."
    );
    if let Err(err) = state
        .mailer
        .send(
            &state.db,
            &email,
            &format!("Your Gatehouse code: {code}"),
            &body,
        )
        .await
    {
        tracing::warn!(error = ?err, "verification mail failed");
        // The code was never delivered: forget it, so a retry is neither throttled nor
        // counted against the address.
        sqlx::query("DELETE FROM email_codes WHERE device_id = $1 AND email = $2")
            .bind(device_id)
            .bind(email.as_str())
            .execute(&state.db.pool)
            .await?;
        b.mails_per_address
            .give_back(&state.db, email.as_str())
            .await?;
        b.mails_per_ip.give_back(&state.db, client_ip).await?;
        return Err(ApiError::MailFailed);
    }
    Ok(())
}

#[derive(Deserialize)]
struct ConfirmPayload {
    email: String,
    code: String,
}

/// Checks a mailed code; on success the email becomes a verified claim of the device.
///
/// Guessing is bounded twice, and both counts are taken in one statement each, never read
/// and then written: a code accepts `CODE_ATTEMPTS` tries, and an address accepts
/// `code_failures_per_address` failures an hour across every device and every resend (a new
/// code does not restore it). Both budgets are taken before the code is compared.
pub async fn confirm_code(
    state: &AppState,
    device_id: &str,
    token: &str,
) -> Result<(Email, i64), ApiError> {
    let (_, p): (_, ConfirmPayload) =
        authenticate(state, device_id, token, "confirm_email").await?;
    let email = parse_email(&p.email)?;
    let code = p.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::InvalidRequest(
            "code: the code has 6 digits".into(),
        ));
    }
    let at = now();
    let failures = budgets(state).failures_per_address;
    let used = match failures.take(&state.db, email.as_str(), at).await? {
        Ok(used) => used,
        Err(spent) => return Err(ApiError::EmailLocked(spent.retry_after)),
    };
    let tried: Option<(String, i64)> = sqlx::query_as(
        "UPDATE email_codes SET attempts = attempts + 1 \
         WHERE device_id = $1 AND email = $2 AND attempts < $3 AND expires_at > $4 \
         RETURNING code_hash, attempts",
    )
    .bind(device_id)
    .bind(email.as_str())
    .bind(CODE_ATTEMPTS)
    .bind(at)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some((hash, attempts)) = tried else {
        // No code was compared: this does not count against the address.
        failures.give_back(&state.db, email.as_str()).await?;
        return Err(no_attempt_left(state, device_id, &email, at).await?);
    };
    if hash != code_hash(device_id, &email, code) {
        if used == failures.max {
            audit::record(
                &state.db.pool,
                None,
                Actor::Device(device_id),
                audit::Action::EmailLocked,
                email.as_str(),
                &format!(
                    "{used} wrong codes within an hour; confirmations locked for the rest of it"
                ),
            )
            .await?;
            return Err(ApiError::EmailLocked(HOUR));
        }
        return Err(if attempts >= CODE_ATTEMPTS {
            ApiError::TooManyAttempts
        } else {
            ApiError::WrongCode(CODE_ATTEMPTS - attempts)
        });
    }
    failures.give_back(&state.db, email.as_str()).await?;
    let mut tx = state.db.pool.begin().await?;
    crate::devices::store::claim_email(&mut tx, device_id, &email, at).await?;
    sqlx::query("DELETE FROM email_codes WHERE device_id = $1 AND email = $2")
        .bind(device_id)
        .bind(email.as_str())
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        None,
        Actor::Device(device_id),
        audit::Action::EmailVerified,
        email.as_str(),
        "the mailed code was entered on the phone",
    )
    .await?;
    tx.commit().await?;
    Ok((email, at))
}

/// Why no attempt could be made on this device's code for `email`.
async fn no_attempt_left(
    state: &AppState,
    device_id: &str,
    email: &Email,
    at: i64,
) -> Result<ApiError, ApiError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT expires_at FROM email_codes WHERE device_id = $1 AND email = $2")
            .bind(device_id)
            .bind(email.as_str())
            .fetch_optional(&state.db.pool)
            .await?;
    Ok(match row {
        None => ApiError::NoCode,
        Some((expires_at,)) if expires_at <= at => {
            sqlx::query("DELETE FROM email_codes WHERE device_id = $1 AND email = $2")
                .bind(device_id)
                .bind(email.as_str())
                .execute(&state.db.pool)
                .await?;
            ApiError::CodeExpired
        }
        Some(_) => ApiError::TooManyAttempts,
    })
}

/// What the phone shows before the technician approves.
pub struct ChallengeInfo {
    pub tenant_name: String,
    /// The host the code was shown on (`acme.gatehouse.example`): what the technician should
    /// see in the browser's address bar.
    pub tenant_host: String,
    pub requester_ip: String,
    pub user_agent: String,
    pub numbers: Vec<u8>,
    pub expires_at: i64,
}

async fn tenant(state: &AppState, slug: &str) -> Result<Tenant, ApiError> {
    state
        .tenants
        .find_by_slug(&state.db, slug)
        .await?
        .ok_or_else(|| ApiError::UnknownTenant(slug.to_string()))
}

/// A challenge that can still be acted on.
async fn live_challenge(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
) -> Result<Challenge, ApiError> {
    let c = challenges::find(&state.db, &tenant.id, id)
        .await?
        .ok_or(ApiError::UnknownChallenge)?;
    if c.status != ChallengeStatus::Pending {
        return Err(ApiError::ChallengeUsed(c.status.to_string()));
    }
    if c.expires_at <= now() {
        return Err(ApiError::ChallengeExpired);
    }
    Ok(c)
}

pub async fn challenge_info(
    state: &AppState,
    id: &str,
    slug: &str,
) -> Result<ChallengeInfo, ApiError> {
    let tenant = tenant(state, slug).await?;
    let c = live_challenge(state, &tenant, id).await?;
    Ok(ChallengeInfo {
        tenant_host: format!("{}.{}", tenant.slug, state.config.base_domain),
        tenant_name: tenant.name,
        requester_ip: c.requester_ip.clone(),
        user_agent: c.user_agent.clone(),
        numbers: c.numbers(),
        expires_at: c.expires_at,
    })
}

#[derive(Deserialize)]
struct ApprovePayload {
    tenant: String,
    challenge: String,
    number: i64,
}

/// Approves a sign-in request: the number must match, the phone must not be revoked in the
/// tenant, and its verified email must belong to an enabled user of the tenant. The phone
/// hears every refusal in detail; the browser only that the phone refused.
pub async fn approve(state: &AppState, id: &str, token: &str) -> Result<User, ApiError> {
    let device_id = claimed_device(token)?;
    let (_, p): (_, ApprovePayload) = authenticate(state, &device_id, token, "approve").await?;
    if p.challenge != id {
        return Err(ApiError::InvalidRequest(
            "the signed challenge differs from the one in the address".into(),
        ));
    }
    let tenant = tenant(state, &p.tenant).await?;
    let c = live_challenge(state, &tenant, id).await?;
    let actor = Actor::Device(crate::devices::store::short(&device_id));
    if p.number != c.match_number {
        // One guess only: with three numbers on the phone, retries would make the match
        // number pointless. Nothing about the phone's owner is in this reason.
        let reason = "the wrong number was picked on the phone";
        challenges::deny(&state.db, &state.bus, &c, reason, reason, actor).await?;
        return Err(ApiError::WrongNumber);
    }
    let resolved = phone::which_user(&state.db, state.entra.as_ref(), &tenant, &device_id)
        .await
        .map_err(refused);
    let user = match resolved {
        Ok(u) => u,
        Err(refusal) => {
            challenges::deny(
                &state.db,
                &state.bus,
                &c,
                challenges::REFUSED_ON_THE_PHONE,
                &refusal.to_string(),
                actor,
            )
            .await?;
            return Err(refusal);
        }
    };
    challenges::approve(&state.db, &state.bus, &c, &device_id, user)
        .await?
        .ok_or_else(|| ApiError::ChallengeUsed("answered".into()))
}

/// What the phone is told when it signs in as nobody (DESIGN: mobile API error codes).
fn refused(refusal: phone::Refusal) -> ApiError {
    use crate::user_source::onboarding::Refusal as Entra;
    let message = refusal.to_string();
    match refusal {
        phone::Refusal::PhoneRevoked => ApiError::DeviceRevoked,
        phone::Refusal::NotVerified => ApiError::NotVerified(message),
        phone::Refusal::ClaimExpired => ApiError::ClaimExpired,
        phone::Refusal::NoAccount(_) => ApiError::NoAccount(message),
        phone::Refusal::Disabled(_) => ApiError::AccountDisabled(message),
        phone::Refusal::Store(err) => ApiError::Internal(err),
        phone::Refusal::Entra(r) => match r {
            Entra::NotInDirectory(..) | Entra::NotConnected => ApiError::NoAccount(message),
            Entra::Disabled(_) | Entra::DisabledHere(_) => ApiError::AccountDisabled(message),
            Entra::OtherDomain { .. } => ApiError::OtherDomain(message),
            Entra::Ambiguous(_) => ApiError::Ambiguous(message),
            Entra::AddressMoved { .. } => ApiError::AddressMoved(message),
            Entra::NotInGroup { .. } => ApiError::NotInGroup(message),
            Entra::Unavailable(_) | Entra::GroupsNotConsented(_) => {
                ApiError::EntraUnavailable(message)
            }
            Entra::Store(detail) => ApiError::Internal(anyhow::anyhow!(detail)),
        },
    }
}

#[derive(Deserialize)]
struct DenyPayload {
    challenge: String,
    #[serde(default)]
    tenant: Option<String>,
}

/// The technician refused a sign-in request on the phone.
pub async fn deny(
    state: &AppState,
    id: &str,
    tenant_slug: Option<&str>,
    token: &str,
) -> Result<(), ApiError> {
    let device_id = claimed_device(token)?;
    let (_, p): (_, DenyPayload) = authenticate(state, &device_id, token, "deny").await?;
    if p.challenge != id {
        return Err(ApiError::InvalidRequest(
            "the signed challenge differs from the one in the address".into(),
        ));
    }
    let slug = p.tenant.as_deref().or(tenant_slug).ok_or_else(|| {
        ApiError::InvalidRequest("tenant: name the tenant of the challenge".into())
    })?;
    let tenant = tenant(state, slug).await?;
    let c = live_challenge(state, &tenant, id).await?;
    let reason = "denied on the phone";
    challenges::deny(
        &state.db,
        &state.bus,
        &c,
        reason,
        reason,
        Actor::Device(crate::devices::store::short(&device_id)),
    )
    .await?;
    Ok(())
}
