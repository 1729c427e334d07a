//! The Reconciliation page's reads, its Sync now and its decisions on held runs.

use super::held::{self, DecideError};
use super::run::{reconcile, Outcome, Trigger};
use super::store;
use super::timeline;
use super::view::{
    HeldRun, NotificationsLive, OffboardingRow, ReconcileView, RunRow, TimeToRevoke,
};
use crate::audit::{self, Actor};
use crate::domain::{EntraHealth, Reason, TenantId, UserSource};
use crate::entra::{EntraClient, EntraError};
use crate::error::AppError;
use crate::server::bus::Bus;
use crate::server::db::Db;
use crate::server::util::format_time;
use crate::tenants::store as tenants;
use crate::tenants::Tenant;
use crate::users::service::User;

pub async fn view(db: &Db, tenant_id: &TenantId) -> anyhow::Result<ReconcileView> {
    let s = super::schedule::reconcile_settings(db, tenant_id).await?;
    let runs = store::recent(db, tenant_id, 30).await?;
    // The run waiting for a decision, however many runs came after it (runs go on while
    // one is held, so it soon leaves the recent list).
    let mut held = Vec::new();
    if let Some(run) = store::undecided_run(db, tenant_id).await? {
        let users = store::held_users(db, run.id)
            .await?
            .into_iter()
            .map(|u| (format!("{} <{}>", u.username, u.email), u.worded_reason()))
            .collect();
        held.push(HeldRun {
            run_id: run.id,
            started: format_time(run.started_at),
            users,
        });
    }
    let offboardings = crate::users::store::offboardings_since(
        db,
        tenant_id,
        crate::server::util::now() - timeline::WINDOW_SECS,
    )
    .await?;
    let mut customer_accounts = Vec::with_capacity(offboardings.len());
    for o in &offboardings {
        customer_accounts.push(customer_ends(db, o).await?);
    }
    Ok(ReconcileView {
        time_to_revoke: timeline::percentiles(&offboardings).map(|t| TimeToRevoke {
            p50: timeline::duration(t.p50),
            p95: timeline::duration(t.p95),
            count: t.count,
        }),
        offboardings: offboardings
            .iter()
            .zip(customer_accounts)
            .map(|(o, customer_accounts)| OffboardingRow {
                user: format!("{} <{}>", o.username, o.email),
                reason: o
                    .reason
                    .as_deref()
                    .map(|r| Reason::worded(r, o.group_name.as_deref()))
                    .unwrap_or_default(),
                seen: format_time(o.seen_at),
                decided_after: timeline::after_seen(o, o.decided_at),
                ended_after: o.access_ended_at.map(|at| timeline::after_seen(o, at)),
                customer_accounts,
            })
            .collect(),
        connected: s.user_source == UserSource::AzureAd && s.entra_tenant_id.is_some(),
        interval: format!("every {}", timeline::duration(s.offboard_interval_secs)),
        threshold: format!(
            "held when more than {} users and more than {} % would be offboarded at once",
            s.deletion_threshold_count, s.deletion_threshold_percent
        ),
        next_run: s.next_reconcile_at.map(format_time),
        last_check: store::last_complete_check(db, tenant_id)
            .await?
            .map(format_time),
        problem: tenants::connection(db, tenant_id)
            .await?
            .entra_health
            .and_then(|h| h.parse::<EntraHealth>().ok())
            .filter(|h| *h != EntraHealth::Ok)
            .map(|h| h.describe().to_string()),
        held,
        notifications: crate::notifications::store::of_tenant(db, tenant_id)
            .await?
            .map(|s| NotificationsLive {
                subscription: s.subscription_id.to_string(),
                expires: format_time(s.expires_at),
                last_heard: s.last_notification_at.map(format_time),
            }),
        runs: runs
            .into_iter()
            .map(|r| RunRow {
                id: r.id,
                started: format_time(r.started_at),
                trigger: r.trigger,
                outcome: r.outcome,
                graph_requests: r.graph_requests,
                users_checked: r.users_checked,
                offboarded: r.offboarded,
                error: r.error,
            })
            .collect(),
    })
}

/// Audits a reconciliation someone asked for (an admin's Sync now or preview, the CLI): who,
/// and what it found. Scheduled runs are listed on the Reconciliation page instead.
pub async fn record_request(
    db: &Db,
    tenant_id: &TenantId,
    actor: Actor<'_>,
    dry_run: bool,
    r: &super::RunReport,
) -> anyhow::Result<()> {
    crate::audit::record(
        &db.pool,
        Some(tenant_id),
        actor,
        audit::Event::RunRequested {
            dry_run,
            outcome: r.outcome.as_str(),
            checked: r.users_checked,
            offboarded: r.offboarded.len(),
        },
    )
    .await
}

pub async fn sync_now(
    db: &Db,
    bus: &Bus,
    entra: Option<&EntraClient>,
    tenant: &Tenant,
    admin: &User,
    dry_run: bool,
) -> Result<String, AppError> {
    let Some(entra) = entra else {
        return Err(AppError::Invalid(
            "No Entra app is configured for this Gatehouse.".into(),
        ));
    };
    if tenant.user_source != UserSource::AzureAd || tenant.entra_tenant_id.is_none() {
        return Err(AppError::Invalid(
            "Connect Entra ID under Users → User source first.".into(),
        ));
    }
    let r = reconcile(db, bus, entra, &tenant.id, Trigger::Manual, dry_run).await?;
    tracing::info!(tenant = %tenant.slug, by = %admin.username, outcome = r.outcome.as_str(), "manual reconciliation");
    record_request(db, &tenant.id, Actor::User(&admin.username), dry_run, &r).await?;
    let names = |list: &[(String, String)]| {
        list.iter()
            .map(|(u, why)| format!("{u} ({why})"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Ok(match r.outcome {
        Outcome::Ok => format!(
            "Synced: {} user(s) checked with {} Graph request(s); {} offboarded{}",
            r.users_checked,
            r.graph_requests,
            r.offboarded.len(),
            if r.offboarded.is_empty() {
                ".".to_string()
            } else {
                format!(": {}.", names(&r.offboarded))
            }
        ),
        Outcome::DryRun => format!(
            "Preview: {} would be offboarded{}",
            r.offboarded.len(),
            if r.offboarded.is_empty() {
                ".".to_string()
            } else {
                format!(": {}.", names(&r.offboarded))
            }
        ),
        Outcome::Held => format!(
            "Held: {} offboardings exceed the deletion threshold; approve or reject them below.",
            r.offboarded.len()
        ),
        Outcome::KeptLastAdmin => {
            return Err(AppError::Invalid(format!(
                "Synced with {} offboarded, but the group changes were {}.",
                r.offboarded.len(),
                r.error.unwrap_or_default()
            )))
        }
        Outcome::Failed => {
            return Err(AppError::Invalid(format!(
                "The sync failed and nobody was offboarded: {}",
                r.error.unwrap_or_default()
            )))
        }
        Outcome::Skipped => {
            return Err(AppError::Invalid(format!(
                "Not run: {}.",
                r.error.unwrap_or_default()
            )))
        }
    })
}

/// What an admin decided on a held run.
#[derive(Debug, Clone, Copy)]
pub enum Decision {
    /// Approve the list as the page showed it.
    Approve(held::Shown),
    Reject {
        run_id: i64,
    },
}

/// An admin approves or rejects a held run; the answer says what happened.
pub async fn decide(
    db: &Db,
    bus: &Bus,
    entra: Option<&EntraClient>,
    tenant: &Tenant,
    admin: &User,
    decision: Decision,
) -> Result<String, AppError> {
    let run_id = match decision {
        Decision::Approve(shown) => shown.run_id,
        Decision::Reject { run_id } => run_id,
    };
    let decided = if let Decision::Approve(shown) = decision {
        let Some(entra) = entra else {
            return Err(AppError::Invalid(
                "No Entra app is configured for this Gatehouse, so the held users cannot be checked again; the run is still held.".into(),
            ));
        };
        held::approve(db, bus, entra, &tenant.id, shown, &admin.username)
        .await
        .map(|a| {
            format!(
                "Approved after checking Entra ID again: {} user(s) offboarded; {} left active because Entra ID no longer shows them deleted or disabled{}{}.",
                a.offboarded.len(),
                a.back.len(),
                if a.back.is_empty() {
                    String::new()
                } else {
                    format!(": {}", a.back.join(", "))
                },
                held::kept_text(&a.kept),
            )
        })
    } else {
        held::reject(db, &tenant.id, run_id, &admin.username)
            .await
            .map(|n| format!("Rejected: nobody was offboarded. The next run sees these {n} change(s) again; fix them in Entra ID or raise the deletion threshold."))
    };
    decided.map_err(|e| match e {
        DecideError::NotHeld(id) => {
            AppError::Invalid(format!("Run {id} is not waiting for a decision."))
        }
        DecideError::Busy => AppError::Invalid(
            "A reconciliation of this tenant is running; decide again in a moment.".into(),
        ),
        DecideError::NotConnected => AppError::Invalid(
            "Connect Entra ID under Users → User source first.".into(),
        ),
        DecideError::Entra(EntraError::Graph { status: 403, .. }) => AppError::Invalid(
            "Nothing was offboarded and the run is still held: Entra ID refused to show the users or their groups (the consent lacks a permission Gatehouse needs, such as GroupMember.Read.All). Authorize Gatehouse again under Users → User source, then decide again.".into(),
        ),
        DecideError::Entra(err) => {
            tracing::warn!(tenant = %tenant.slug, run = run_id, error = %err, "a held run could not be approved: Entra ID could not be asked");
            AppError::Invalid(format!(
                "Nothing was offboarded and the run is still held: Entra ID could not be asked whether these users are still gone ({err}). Try again in a moment."
            ))
        }
        DecideError::GroupGone(name) => AppError::Invalid(format!(
            "Nothing was offboarded and the run is still held: the group \"{name}\" that decides who may sign in no longer exists in Entra ID. Choose another group (or none) under Users → User source, then decide again."
        )),
        DecideError::ListChanged { shown, now } => AppError::Invalid(format!(
            "Nothing was offboarded and the run is still held: its list changed since you looked ({shown} when you looked, {now} now), as a later run's offboardings joined it. Look at the list again, then decide."
        )),
        DecideError::Unexpected(err) => err.into(),
    })
}

/// The user's accounts at customers that this offboarding ended (asked to end when it was
/// decided, or after), each with when Microsoft confirmed it, counted from first sight.
async fn customer_ends(
    db: &Db,
    o: &crate::users::store::Offboarding,
) -> anyhow::Result<Vec<String>> {
    let mut ends = Vec::new();
    for a in crate::jit::store::of_user(db, &o.id).await? {
        if a.end_requested_at.is_none_or(|at| at < o.decided_at) {
            continue;
        }
        let at = a.upn.split_once('@').map_or(a.upn.as_str(), |(_, d)| d);
        ends.push(match (a.ended_at, &a.last_error) {
            (Some(ended), _) => format!("{at} {}", timeline::after_seen(o, ended)),
            (None, Some(error)) => format!("{at}: still open, retrying: {error}"),
            (None, None) => format!("{at}: ending…"),
        });
    }
    Ok(ends)
}
