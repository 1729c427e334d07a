//! Connecting a tenant to Entra ID: sign-in (to learn the Entra tenant from a validated
//! id_token), admin consent, a client-credentials proof, then Save with the chosen domain
//! and JIT prefix. And switching back to the local directory.

use crate::audit::{self, Actor};
use crate::domain::{EntraTenantId, TenantId, UserSource, UsernamePrefix};
use crate::entra::{EntraClient, EntraError};
use crate::server::bus::{Bus, Event};
use crate::server::db::Db;
use crate::server::util::now;
use crate::tenants::store as tenants;
use crate::tenants::Tenant;
use crate::users::service::User;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Refused(String),
    #[error("Entra ID: {0}")]
    Entra(#[from] EntraError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for SourceError {
    fn from(e: sqlx::Error) -> Self {
        SourceError::Unexpected(e.into())
    }
}

/// A proven Entra tenant waiting for Save.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Authorization {
    pub entra_tid: EntraTenantId,
    pub org_name: String,
    pub domains: Vec<String>,
    pub authorized_by: String,
    pub authorized_at: i64,
}

/// How long Gatehouse keeps asking Graph after an admin consented: Microsoft applies a
/// consent within seconds to minutes, and tokens issued meanwhile lack the new roles.
pub const CONSENT_PATIENCE_SECS: i64 = 120;

/// Where an admin consent stands after a try.
#[derive(Debug)]
pub enum Proof {
    /// Graph answered with the new permissions: the Entra tenant waits for Save.
    Proven(Authorization),
    /// Microsoft has not applied the consent yet; the page tries again.
    Waiting { since: i64 },
    /// There is no consent waiting to be proven.
    Nothing,
}

/// Step 3: consent came back for `tid`, the Entra tenant the admin signed in to
/// (`flows::consented_tenant`); it is proven with client credentials (now, or within two
/// minutes).
pub async fn consented(
    db: &Db,
    entra: &EntraClient,
    tenant: &Tenant,
    admin: &User,
    tid: EntraTenantId,
) -> Result<Proof, SourceError> {
    sqlx::query(
        "INSERT INTO entra_consent_pending (tenant_id, entra_tid, consented_by, consented_at, tries) \
         VALUES ($1, $2, $3, $4, 0) ON CONFLICT (tenant_id) DO UPDATE SET entra_tid = excluded.entra_tid, \
         consented_by = excluded.consented_by, consented_at = excluded.consented_at, tries = 0, last_error = NULL",
    )
    .bind(&tenant.id)
    .bind(&tid)
    .bind(&admin.username)
    .bind(now())
    .execute(&db.pool)
    .await?;
    prove(db, entra, tenant).await
}

#[derive(sqlx::FromRow)]
struct Pending {
    entra_tid: EntraTenantId,
    consented_by: String,
    consented_at: i64,
}

/// The consent waiting for Microsoft, if any: since when.
pub async fn waiting_since(db: &Db, tenant_id: &TenantId) -> anyhow::Result<Option<i64>> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT consented_at FROM entra_consent_pending WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|(at,)| at))
}

/// True for answers that mean "Microsoft has not applied the consent yet": a token without
/// the roles (Graph `401`/`403`), or the app not yet known in the tenant.
pub(crate) fn not_applied_yet(e: &EntraError) -> bool {
    match e {
        EntraError::Graph { status, .. } => matches!(status, 401 | 403),
        EntraError::Token { error, codes, .. } => {
            error == "unauthorized_client" || codes.contains(&700016)
        }
        _ => false,
    }
}

/// One try at proving the waiting consent: read the verified domains with client
/// credentials. Within `CONSENT_PATIENCE_SECS`, a refusal means "not applied yet"; after it,
/// Microsoft's error is the answer and the consent is dropped.
pub async fn prove(db: &Db, entra: &EntraClient, tenant: &Tenant) -> Result<Proof, SourceError> {
    let Some(p) = sqlx::query_as::<_, Pending>(
        "SELECT entra_tid, consented_by, consented_at FROM entra_consent_pending WHERE tenant_id = $1",
    )
    .bind(&tenant.id)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(Proof::Nothing);
    };
    // A token issued before Microsoft applied the consent lacks its roles: ask for a new one.
    entra.forget_token(&p.entra_tid).await;
    let read = async { entra.graph(&p.entra_tid).await?.domains().await };
    let all = match read.await {
        Ok(all) => all,
        Err(e) if not_applied_yet(&e) && now() - p.consented_at < CONSENT_PATIENCE_SECS => {
            sqlx::query(
                "UPDATE entra_consent_pending SET tries = tries + 1, last_error = $1 WHERE tenant_id = $2",
            )
            .bind(e.to_string())
            .bind(&tenant.id)
            .execute(&db.pool)
            .await?;
            return Ok(Proof::Waiting {
                since: p.consented_at,
            });
        }
        Err(e) => {
            drop_pending(db, &tenant.id).await?;
            audit::record(
                &db.pool,
                Some(&tenant.id),
                Actor::User(&p.consented_by),
                audit::Event::EntraConsentFailed {
                    entra_tenant: &p.entra_tid,
                    error: &e.to_string(),
                },
            )
            .await?;
            return Err(e.into());
        }
    };
    let domains: Vec<String> = all
        .iter()
        .filter(|d| d.is_verified)
        .map(|d| d.id.clone())
        .collect();
    if domains.is_empty() {
        drop_pending(db, &tenant.id).await?;
        return Err(SourceError::Refused(
            "This Entra tenant has no verified domain.".into(),
        ));
    }
    // The organization's display name needs a permission Gatehouse does not ask for
    // (Organization.Read.All); the default domain names the tenant well enough.
    let org_name = all
        .iter()
        .find(|d| d.is_default)
        .map(|d| d.id.clone())
        .unwrap_or_else(|| domains[0].clone());
    let auth = Authorization {
        entra_tid: p.entra_tid,
        org_name,
        domains,
        authorized_by: p.consented_by,
        authorized_at: now(),
    };
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO entra_authorizations (tenant_id, entra_tid, org_name, domains, authorized_by, authorized_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id) DO UPDATE SET entra_tid = excluded.entra_tid, \
         org_name = excluded.org_name, domains = excluded.domains, authorized_by = excluded.authorized_by, \
         authorized_at = excluded.authorized_at",
    )
    .bind(&tenant.id)
    .bind(&auth.entra_tid)
    .bind(&auth.org_name)
    .bind(serde_json::to_string(&auth.domains).map_err(anyhow::Error::from)?)
    .bind(&auth.authorized_by)
    .bind(auth.authorized_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM entra_consent_pending WHERE tenant_id = $1")
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&auth.authorized_by),
        audit::Event::EntraAuthorized {
            org_name: &auth.org_name,
            entra_tenant: &auth.entra_tid,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Proof::Proven(auth))
}

async fn drop_pending(db: &Db, tenant_id: &TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM entra_consent_pending WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn authorization(db: &Db, tenant_id: &TenantId) -> anyhow::Result<Option<Authorization>> {
    let row: Option<(EntraTenantId, String, String, String, i64)> = sqlx::query_as(
        "SELECT entra_tid, org_name, domains, authorized_by, authorized_at FROM entra_authorizations WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(
        |(entra_tid, org_name, domains, authorized_by, authorized_at)| Authorization {
            entra_tid,
            org_name,
            domains: serde_json::from_str(&domains).unwrap_or_default(),
            authorized_by,
            authorized_at,
        },
    ))
}

/// Users who have signed in at least once: the source may change only while at most one has.
pub async fn onboarded_count(db: &Db, tenant_id: &TenantId) -> anyhow::Result<i64> {
    crate::users::store::count_onboarded(db, tenant_id).await
}

/// Save: the user source, and for Entra ID the domain and the JIT prefix. Every replica
/// hears the change (`TenantChanged`) once it is committed.
pub async fn save(
    db: &Db,
    bus: &Bus,
    tenant: &Tenant,
    admin: &User,
    source: &str,
    domain: &str,
    prefix: &str,
) -> Result<String, SourceError> {
    let source: UserSource = source.parse().map_err(|_| {
        SourceError::Refused(format!(
            "Unknown user source `{source}`: choose local or azuread."
        ))
    })?;
    let onboarded = onboarded_count(db, &tenant.id).await?;
    if source != tenant.user_source && onboarded > 1 {
        return Err(SourceError::Refused(format!(
            "The user source can change only while at most one user is onboarded; {onboarded} users have signed in here."
        )));
    }
    match source {
        UserSource::Local => {
            let prefix = UsernamePrefix::parse(prefix, true)
                .map_err(|e| SourceError::Refused(format!("JIT prefix: {e}.")))?;
            let mut tx = db.pool.begin().await?;
            tenants::use_local_directory(&mut tx, &tenant.id, &prefix).await?;
            let chosen = audit::Event::LocalDirectoryChosen {
                prefix: prefix.as_str(),
            };
            commit_setting(tx, bus, tenant, admin, chosen).await?;
            Ok("Saved: users come from Gatehouse's own directory.".into())
        }
        UserSource::AzureAd => {
            let prefix = UsernamePrefix::parse(prefix, false)
                .map_err(|e| SourceError::Refused(format!("JIT prefix: {e}.")))?;
            let Some(auth) = authorization(db, &tenant.id).await? else {
                return Err(SourceError::Refused(
                    "Authorize Gatehouse in your Entra tenant first.".into(),
                ));
            };
            let domain = domain.trim().to_ascii_lowercase();
            if !auth.domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
                return Err(SourceError::Refused(format!(
                    "{domain} is not a verified domain of {} (verified: {}).",
                    auth.org_name,
                    auth.domains.join(", ")
                )));
            }
            let mut tx = db.pool.begin().await?;
            tenants::connect_entra(
                &mut tx,
                &tenant.id,
                &tenants::EntraConnection {
                    prefix: &prefix,
                    entra_tenant_id: &auth.entra_tid,
                    domain: &domain,
                    org_name: &auth.org_name,
                    by: &admin.username,
                    at: now(),
                },
            )
            .await?;
            let connected = audit::Event::EntraConnected {
                org_name: &auth.org_name,
                entra_tenant: &auth.entra_tid,
                domain: &domain,
                prefix: prefix.as_str(),
            };
            commit_setting(tx, bus, tenant, admin, connected).await?;
            Ok(format!(
                "Saved: users of {domain} in {} onboard by scanning the QR code.",
                auth.org_name
            ))
        }
    }
}

/// Records an admin's saved setting of the tenant and commits it: every replica reads the
/// tenant afresh, and its scheduler looks at the run the setting may have made due.
pub(super) async fn commit_setting(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    bus: &Bus,
    tenant: &Tenant,
    admin: &User,
    saved: audit::Event<'_>,
) -> anyhow::Result<()> {
    audit::record(
        &mut *tx,
        Some(&tenant.id),
        Actor::User(&admin.username),
        saved,
    )
    .await?;
    bus.commit_and_publish(
        tx,
        Event::TenantChanged {
            tenant_id: tenant.id.clone(),
        },
    )
    .await?;
    Ok(())
}

/// The shortest reconcile schedule, in minutes. Where Graph's change notifications reach
/// Gatehouse (an https public URL, or the demo) they end access within seconds and the poll is
/// only a safety net: at least 5 minutes. Without them the poll is all there is, and a
/// no-change run costs one Graph request: down to 1 minute.
pub fn shortest_interval_minutes(config: &crate::server::config::Config) -> i64 {
    if config.notification_urls().is_some() {
        5
    } else {
        1
    }
}

/// Sets how often the reconciler runs and when a run is held for an admin; a shorter
/// interval counts from now, and every replica's scheduler looks again.
pub async fn save_schedule(
    db: &Db,
    bus: &Bus,
    tenant: &Tenant,
    admin: &User,
    minutes: i64,
    count: i64,
    percent: i64,
) -> anyhow::Result<String> {
    let mut tx = db.pool.begin().await?;
    crate::reconciler::schedule::set_reconcile_schedule(
        &mut tx,
        &tenant.id,
        minutes * 60,
        count,
        percent,
        now(),
    )
    .await?;
    let summary = format!("every {minutes} minutes; held above {count} users and {percent} %");
    let saved = audit::Event::ScheduleSaved {
        slug: &tenant.slug,
        summary: &summary,
    };
    commit_setting(tx, bus, tenant, admin, saved).await?;
    Ok(format!("Saved: reconcile {summary}."))
}
