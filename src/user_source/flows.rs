//! The round trip an admin makes to Microsoft to connect an Entra tenant: sign in (the Entra
//! tenant is learnt from the validated id_token), then admin consent for that tenant. The User
//! source page makes it for the MSP's own tenant, the Customers page for each customer's, each
//! with its own app registration and callbacks. Owns the `oauth_flows` table.

use super::service::SourceError;
use crate::domain::EntraTenantId;
use crate::entra::EntraClient;
use crate::server::db::Db;
use crate::server::util::{now, random_id};
use crate::tenants::Tenant;
use crate::users::service::User;
use oauth2::PkceCodeVerifier;

/// How long a round trip to Microsoft may take.
const FLOW_TTL_SECS: i64 = 600;

/// One kind of round trip: the page it starts from and returns to, and the names of its two
/// steps (a flow of one kind can never finish a round of the other).
pub struct Round {
    sign_in: &'static str,
    consent: &'static str,
    /// The page, under which the callbacks live.
    pub page: &'static str,
}

/// Connecting the tenant's own user source.
pub const USER_SOURCE: Round = Round {
    sign_in: "sign_in",
    consent: "consent",
    page: "/adminportal/user-source",
};

/// Connecting a customer's Entra tenant (issue 29).
pub const CUSTOMER: Round = Round {
    sign_in: "customer_sign_in",
    consent: "customer_consent",
    page: "/adminportal/customers",
};

/// Which step of a round Microsoft answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SignIn,
    Consent,
}

impl Round {
    pub fn callback_uri(&self, tenant_url: &str) -> String {
        format!("{tenant_url}{}/callback", self.page)
    }

    pub fn consent_callback_uri(&self, tenant_url: &str) -> String {
        format!("{tenant_url}{}/consent-callback", self.page)
    }

    fn kind(&self, step: Step) -> &'static str {
        match step {
            Step::SignIn => self.sign_in,
            Step::Consent => self.consent,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Flow {
    nonce: Option<String>,
    pkce_verifier: Option<String>,
    entra_tid: Option<EntraTenantId>,
}

/// Step 1: the URL that signs the admin in with Entra.
pub async fn start(
    db: &Db,
    entra: &EntraClient,
    round: &Round,
    tenant: &Tenant,
    admin: &User,
    tenant_url: &str,
) -> Result<String, SourceError> {
    let state = random_id(24);
    let nonce = random_id(24);
    let (url, verifier) = entra.sign_in_url(&round.callback_uri(tenant_url), &state, &nonce)?;
    sqlx::query(
        "INSERT INTO oauth_flows (state, tenant_id, user_id, kind, nonce, pkce_verifier, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&state)
    .bind(&tenant.id)
    .bind(&admin.id)
    .bind(round.sign_in)
    .bind(&nonce)
    .bind(verifier.secret())
    .bind(now())
    .bind(now() + FLOW_TTL_SECS)
    .execute(&db.pool)
    .await?;
    Ok(url)
}

/// Takes the flow for `state` once: it must belong to this tenant, this admin and this step.
/// Whoever started it, the flow is spent: the answer that carried it cannot be replayed.
async fn take(
    db: &Db,
    tenant: &Tenant,
    admin: &User,
    state: &str,
    kind: &str,
) -> Result<Flow, SourceError> {
    let flow = sqlx::query_as::<_, Flow>(
        "SELECT nonce, pkce_verifier, entra_tid FROM oauth_flows \
         WHERE state = $1 AND tenant_id = $2 AND user_id = $3 AND kind = $4 AND expires_at > $5",
    )
    .bind(state)
    .bind(&tenant.id)
    .bind(&admin.id)
    .bind(kind)
    .bind(now())
    .fetch_optional(&db.pool)
    .await?;
    sqlx::query("DELETE FROM oauth_flows WHERE state = $1")
        .bind(state)
        .execute(&db.pool)
        .await?;
    flow.ok_or_else(not_started)
}

fn not_started() -> SourceError {
    SourceError::Refused("This answer from Microsoft does not belong to an authorization you started here (or it took more than 10 minutes). Click Authorize again.".into())
}

/// Step 2: the sign-in came back. Learn the Entra tenant from the validated id_token and
/// send the admin on to admin consent for that tenant.
#[allow(clippy::too_many_arguments)]
pub async fn signed_in(
    db: &Db,
    entra: &EntraClient,
    round: &Round,
    tenant: &Tenant,
    admin: &User,
    tenant_url: &str,
    state: &str,
    code: &str,
) -> Result<String, SourceError> {
    let flow = take(db, tenant, admin, state, round.sign_in).await?;
    let verifier = PkceCodeVerifier::new(flow.pkce_verifier.unwrap_or_default());
    let who = entra
        .redeem_code(
            code,
            verifier,
            &round.callback_uri(tenant_url),
            flow.nonce.as_deref().unwrap_or_default(),
        )
        .await?;
    let consent_state = random_id(24);
    sqlx::query(
        "INSERT INTO oauth_flows (state, tenant_id, user_id, kind, entra_tid, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&consent_state)
    .bind(&tenant.id)
    .bind(&admin.id)
    .bind(round.consent)
    .bind(&who.tid)
    .bind(now())
    .bind(now() + FLOW_TTL_SECS)
    .execute(&db.pool)
    .await?;
    Ok(entra.admin_consent_url(
        &who.tid,
        &round.consent_callback_uri(tenant_url),
        &consent_state,
    ))
}

/// Step 3: consent came back. The `tenant` parameter is not trusted (Microsoft warns it can
/// be forged): the Entra tenant is the one from the validated sign-in, and it must match.
pub async fn consented_tenant(
    db: &Db,
    round: &Round,
    tenant: &Tenant,
    admin: &User,
    state: &str,
    reported_tenant: Option<&str>,
) -> Result<EntraTenantId, SourceError> {
    let flow = take(db, tenant, admin, state, round.consent).await?;
    // The consent step's flow is made by a validated Entra sign-in, with its tenant.
    let Some(tid) = flow.entra_tid else {
        return Err(SourceError::Refused(
            "This consent did not follow an Entra sign-in; click Authorize again.".into(),
        ));
    };
    if let Some(reported) = reported_tenant {
        if !tid.is(reported) {
            return Err(SourceError::Refused(format!(
                "Consent came back for another Entra tenant ({reported}) than the one you signed in to ({tid}). Nothing was connected."
            )));
        }
    }
    Ok(tid)
}

/// Microsoft answered a step with an error: the admin cancelled, or a policy refused. Its
/// words are shown only for an authorization this admin started here, and the step's flow is
/// spent; an answer nobody started is told as such, so a link cannot make the page say what
/// Microsoft did not.
#[allow(clippy::too_many_arguments)]
pub async fn refused_by_microsoft(
    db: &Db,
    round: &Round,
    tenant: &Tenant,
    admin: &User,
    step: Step,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> String {
    let started = match state {
        Some(state) => take(db, tenant, admin, state, round.kind(step))
            .await
            .map(|_| ()),
        None => Err(not_started()),
    };
    if let Err(err) = started {
        return err.to_string();
    }
    // Microsoft's descriptions are a sentence or two; anything longer is cut.
    let words = |s: &str| s.chars().take(400).collect::<String>();
    let (error, description) = (words(error), words(description));
    match step {
        Step::Consent => format!("Consent was not granted: {error}. {description}"),
        Step::SignIn => format!("Microsoft refused the sign-in: {error} {description}"),
    }
}

/// Forgets sign-in and consent flows that expired before `before`, never finished
/// (housekeeping); how many.
pub async fn forget_expired(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM oauth_flows WHERE expires_at < $1")
        .bind(before)
        .execute(&db.pool)
        .await?
        .rows_affected())
}

/// Where the admin's session keeps the notice of their last round trip to Microsoft from the
/// page of `round`.
fn notice_key(round: &Round) -> String {
    format!("notice:{}", round.page)
}

/// Keeps what the round trip ended with for the page the admin lands on. A session that
/// cannot keep it loses only the message: the page shows the connection as it is.
pub async fn leave_notice(
    session: &tower_sessions::Session,
    round: &Round,
    ok: bool,
    message: &str,
) {
    let notice = super::view::Notice {
        ok,
        message: message.to_string(),
    };
    if let Err(err) = session.insert(&notice_key(round), notice).await {
        tracing::warn!(error = %err, page = round.page, "the page's notice could not be kept");
    }
}

/// The notice left for this admin on the page of `round`, forgotten as it is read.
pub async fn take_notice(
    session: &tower_sessions::Session,
    round: &Round,
) -> Option<super::view::Notice> {
    session.remove(&notice_key(round)).await.ok().flatten()
}
