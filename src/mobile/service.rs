//! What the phone may do: enroll, prove an email, look at a sign-in request, approve or deny it.

use super::error::ApiError;
use super::jws::{self, Common};
use crate::audit::Actor;
use crate::devices::email as email_proof;
use crate::devices::store as devices;
use crate::domain::{ChallengeId, ChallengePurpose, ChallengeStatus, DeviceId, Email};
use crate::login::challenge::{self as challenges, Challenge};
use crate::server::state::AppState;
use crate::server::util::now;
use crate::tenants::Tenant;
use crate::user_source::phone;
use crate::users::store::User;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;

/// Registers a phone's public key; the same key registered again gets the same device.
/// Returns the device id and whether it is new (`devices::service::enroll`); the request is
/// signed by the key it enrols.
pub async fn register(
    state: &AppState,
    public_key: &serde_json::Value,
    token: &str,
) -> Result<(DeviceId, bool), ApiError> {
    let jwk = jws::parse_public_key(public_key)?;
    jws::verify::<serde_json::Value>(token, &jwk, "register", now())?;
    let stored = serde_json::to_string(&jwk).map_err(anyhow::Error::from)?;
    crate::devices::service::enroll(&state.db, &stored, &jws::thumbprint(&jwk))
        .await
        .map_err(|e| match e {
            crate::devices::service::EnrolError::Revoked => ApiError::DeviceRevoked,
            crate::devices::service::EnrolError::Unexpected(err) => ApiError::Internal(err),
        })
}

/// Verifies a request signed by `device_id`'s key for `purpose`.
async fn authenticate<T: serde::de::DeserializeOwned>(
    state: &AppState,
    device_id: &DeviceId,
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
    if common.device_id.as_deref() != Some(device_id.as_str()) {
        return Err(ApiError::DeviceMismatch);
    }
    Ok((common, payload))
}

/// The technician forgets this phone (`DELETE /devices/{id}`, purpose `forget`): it is
/// revoked everywhere, its emails are dropped, and the sign-ins it approved end.
pub async fn forget(state: &AppState, device_id: &DeviceId, token: &str) -> Result<(), ApiError> {
    let _: (_, serde_json::Value) = authenticate(state, device_id, token, "forget").await?;
    let mut tx = state.db.pool.begin().await?;
    let ended = crate::users::access::forget_device(&mut tx, device_id).await?;
    tx.commit().await?;
    ended.announce(&state.bus).await;
    Ok(())
}

/// Reads `device_id` from a JWS payload before verification; the signature is checked
/// right after with that device's key, so nothing is trusted from this peek.
fn claimed_device(token: &str) -> Result<DeviceId, ApiError> {
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
    Ok(DeviceId::from_outside(id))
}

#[derive(Deserialize)]
struct EmailPayload {
    email: String,
}

fn parse_email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| ApiError::InvalidEmail(format!("email: {e}")))
}

/// Mails a 6-digit code for the signed `email` (`devices::email::send_code`); `network` is
/// the client's, as the limits count it.
pub async fn request_code(
    state: &AppState,
    device_id: &DeviceId,
    token: &str,
    network: &str,
) -> Result<(), ApiError> {
    let (_, p): (_, EmailPayload) = authenticate(state, device_id, token, "verify_email").await?;
    let email = parse_email(&p.email)?;
    let limits = &state.config.limits;
    email_proof::send_code(&state.db, &state.mailer, limits, device_id, &email, network).await?;
    Ok(())
}

#[derive(Deserialize)]
struct ConfirmPayload {
    email: String,
    code: String,
}

/// Checks the signed code for the signed `email` (`devices::email::confirm`); on success
/// the email is a verified claim of the device.
pub async fn confirm_code(
    state: &AppState,
    device_id: &DeviceId,
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
    let limits = &state.config.limits;
    let at = email_proof::confirm(&state.db, limits, device_id, &email, code).await?;
    Ok((email, at))
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
    /// Set when the challenge asks for access at a customer rather than a sign-in.
    pub access: Option<AccessInfo>,
}

/// What an access request asks the phone to approve.
pub struct AccessInfo {
    pub customer: String,
    /// The account it opens, `msp-alex@fabrikam.com`.
    pub account: String,
    /// The Entra roles, by name.
    pub roles: Vec<String>,
    pub window_minutes: i64,
}

/// The customer an access request names, in the challenge's tenant.
async fn asked_customer(
    state: &AppState,
    c: &Challenge,
) -> Result<crate::customers::store::Customer, ApiError> {
    let id = c.customer_id.as_ref().ok_or(ApiError::UnknownChallenge)?;
    crate::customers::store::find(&state.db, &c.tenant_id, id)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or(ApiError::UnknownChallenge)
}

/// The phone's view of an access request.
async fn access_info(state: &AppState, c: &Challenge) -> Result<AccessInfo, ApiError> {
    let customer = asked_customer(state, c).await?;
    let requester = match &c.user_id {
        Some(id) => crate::users::store::find(&state.db, &c.tenant_id, id).await?,
        None => None,
    }
    .ok_or(ApiError::UnknownChallenge)?;
    Ok(AccessInfo {
        account: format!(
            "{}@{}",
            requester.username,
            customer.domain.as_deref().unwrap_or("?")
        ),
        customer: customer.name,
        roles: c
            .asked_roles()
            .iter()
            .map(|r| r.name().to_string())
            .collect(),
        window_minutes: customer.window.minutes(),
    })
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
    let c = challenges::find(&state.db, &tenant.id, &ChallengeId::from_outside(id))
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
    let access = match c.purpose {
        ChallengePurpose::SignIn => None,
        ChallengePurpose::Access => Some(access_info(state, &c).await?),
    };
    Ok(ChallengeInfo {
        access,
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
    let actor = Actor::Device(device_id.short());
    if p.number != c.match_number {
        // One guess only: with three numbers on the phone, retries would make the match
        // number pointless. Nothing about the phone's owner is in this reason.
        let reason = "the wrong number was picked on the phone";
        challenges::deny(&state.db, &state.bus, &c, reason, reason, actor).await?;
        return Err(ApiError::WrongNumber);
    }
    if c.purpose == ChallengePurpose::Access {
        // Only a phone that signed the requester in may approve what they asked for; anyone
        // else's is refused before Gatehouse looks them up (which could onboard them).
        let requester = c.user_id.as_ref().ok_or(ApiError::UnknownChallenge)?;
        if !devices::is_bound_to(&state.db, &device_id, &tenant.id, requester).await? {
            return refuse_stranger(state, &c, actor).await;
        }
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
    if c.purpose == ChallengePurpose::Access {
        return approve_access(state, &c, &device_id, user).await;
    }
    challenges::approve(&state.db, &state.bus, &c, &device_id, user)
        .await?
        .ok_or_else(|| ApiError::ChallengeUsed("answered".into()))
}

/// An access request is approved only by a phone of the technician who asked: anyone else's
/// phone (a colleague's, scanning the code on someone's screen) is refused, and the request
/// with it.
async fn approve_access(
    state: &AppState,
    c: &Challenge,
    device_id: &DeviceId,
    user: User,
) -> Result<User, ApiError> {
    if c.user_id.as_ref() != Some(&user.id) {
        return refuse_stranger(state, c, Actor::Device(device_id.short())).await;
    }
    let customer = asked_customer(state, c).await?;
    if challenges::approve_access(&state.db, &state.bus, c, device_id, &user, &customer.name)
        .await?
    {
        Ok(user)
    } else {
        Err(ApiError::ChallengeUsed("answered".into()))
    }
}

/// A phone not the requester's approved an access request: the request is refused (the
/// page that asked is told the phone refused), and so is the phone.
async fn refuse_stranger<T>(
    state: &AppState,
    c: &Challenge,
    actor: Actor<'_>,
) -> Result<T, ApiError> {
    challenges::deny(
        &state.db,
        &state.bus,
        c,
        challenges::REFUSED_ON_THE_PHONE,
        "a phone that is not the requester's approved an access request",
        actor,
    )
    .await?;
    Err(ApiError::NotRequester)
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
        Actor::Device(device_id.short()),
    )
    .await?;
    Ok(())
}
