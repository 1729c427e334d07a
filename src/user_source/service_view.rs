//! Assembles the User source page's view from the tenant and its authorization.

use super::view::{Authorized, Connection, SourceView};
use crate::domain::{EntraHealth, UserSource};
use crate::entra::EntraClient;
use crate::server::db::Db;
use crate::server::util::format_time;
use crate::tenants::Tenant;

pub async fn view(
    db: &Db,
    entra: Option<&EntraClient>,
    config: &crate::server::config::Config,
    tenant: &Tenant,
) -> anyhow::Result<SourceView> {
    let row = crate::tenants::store::connection(db, &tenant.id).await?;
    let health = match row.entra_health.as_deref() {
        None => Ok(EntraHealth::Ok),
        Some(stored) => stored.parse::<EntraHealth>().map_err(|e| e.value),
    };
    let connected = match (tenant.user_source, &tenant.entra_tenant_id) {
        (UserSource::AzureAd, Some(tid)) => Some(Connection {
            org_name: tenant.entra_org_name.clone().unwrap_or_default(),
            tenant_id: tid.to_string(),
            domain: tenant.entra_domain.clone().unwrap_or_default(),
            connected_at: row.entra_connected_at.map(format_time).unwrap_or_default(),
            connected_by: row.entra_connected_by.unwrap_or_default(),
            healthy: health == Ok(EntraHealth::Ok),
            health: match health {
                Ok(h) => h.describe().to_string(),
                // A value this version does not know (an older one's wording) is shown as stored.
                Err(stored) => stored,
            },
        }),
        _ => None,
    };
    let authorized = super::service::authorization(db, &tenant.id)
        .await?
        .map(|a| Authorized {
            org_name: a.org_name,
            tenant_id: a.entra_tid.to_string(),
            domains: a.domains,
            authorized_by: a.authorized_by,
        });
    Ok(SourceView {
        user_source: tenant.user_source,
        jit_prefix: tenant.jit_prefix.clone(),
        entra_configured: entra.is_some(),
        onboarded: super::service::onboarded_count(db, &tenant.id).await?,
        certificate_warning: entra
            .and_then(|e| e.certificate())
            .and_then(|c| c.warning(chrono::Utc::now().timestamp())),
        consent_waiting_since: super::service::waiting_since(db, &tenant.id)
            .await?
            .map(format_time),
        interval_minutes: row.offboard_interval_secs / 60,
        shortest_interval_minutes: super::service::shortest_interval_minutes(config),
        threshold_count: row.deletion_threshold_count,
        threshold_percent: row.deletion_threshold_percent,
        scope_group: tenant.scope_group().map(chosen),
        admin_group: tenant.admin_group().map(chosen),
        connected,
        authorized,
    })
}

/// A saved group as the page lists it (counted when it is searched or saved, not on every
/// page load).
fn chosen(g: crate::tenants::store::GroupRef) -> super::view::GroupOption {
    super::view::GroupOption {
        id: g.id.to_string(),
        name: g.name,
        kind: String::new(),
        users: 0,
    }
}
