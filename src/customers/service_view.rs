//! Assembles the Customers page's view.

use super::store;
use super::view::{AccountView, CustomerView, CustomersView, GrantView};
use crate::domain::{CustomerHealth, EntraRole, JitState};
use crate::jit::store::JitAccount;
use crate::server::db::Db;
use crate::server::util::format_time;
use crate::tenants::Tenant;

pub async fn view(db: &Db, app_configured: bool, tenant: &Tenant) -> anyhow::Result<CustomersView> {
    let live = crate::jit::store::live_of_tenant(db, &tenant.id).await?;
    let mut customers = Vec::new();
    for c in store::list(db, &tenant.id).await? {
        let accounts = live
            .iter()
            .filter(|a| a.customer_id == c.id)
            .map(|a| account_view(&c.name, a))
            .collect();
        let grants = store::grants(&db.pool, &c.id)
            .await?
            .into_iter()
            .map(|g| GrantView {
                holders: g.holders.form_value(),
                holders_text: g.holders.words(),
                role_id: g.role.id().to_string(),
                role_name: g.role.name().to_string(),
            })
            .collect();
        let detail = c.health_detail.clone().unwrap_or_default();
        let health_text = match c.health {
            CustomerHealth::Ok => "Connected: Graph answers Gatehouse's customers app.".to_string(),
            CustomerHealth::Waiting => format!(
                "Waiting for Microsoft to apply the consent given at {}. {detail}",
                format_time(c.consented_at)
            ),
            CustomerHealth::Failing => format!("Microsoft refuses Gatehouse here: {detail}"),
            CustomerHealth::EndsRefused => format!(
                "Microsoft refuses to end accounts here: {detail}. Nothing opens here until an end goes through; Gatehouse retries every end. If the consent was revoked, connect the customer again."
            ),
            CustomerHealth::Disconnected => format!(
                "Disconnected {detail}. Gatehouse opens nothing here; connecting it again asks for consent anew. Gatehouse's consent stays in the customer's tenant until their admin removes the \"Gatehouse for customers\" enterprise application."
            ),
        };
        customers.push(CustomerView {
            id: c.id.to_string(),
            name: c.name.clone(),
            tenant_id: c.entra_tid.to_string(),
            health: c.health,
            health_text: health_text.trim().to_string(),
            consented: format!("{} by {}", format_time(c.consented_at), c.consented_by),
            domains: c.domains.clone(),
            domain: c.domain.clone(),
            window_minutes: c.window.minutes(),
            window_text: c.window.to_string(),
            grants,
            accounts,
        });
    }
    Ok(CustomersView {
        app_configured,
        customers,
        msp_groups: tenant.user_source == crate::domain::UserSource::AzureAd
            && tenant.entra_tenant_id.is_some(),
        offered_roles: EntraRole::offered()
            .map(|r| (r.id().to_string(), r.name().to_string()))
            .collect(),
    })
}

fn account_view(customer: &str, a: &JitAccount) -> AccountView {
    let at = |t: Option<i64>| t.map(format_time).unwrap_or_else(|| "?".into());
    let text = match a.state {
        JitState::Open => format!(
            "open until {} as {}",
            at(a.ends_at),
            a.roles
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        JitState::Making => "being made".to_string(),
        JitState::Ending => match &a.last_error {
            None => format!(
                "ending since {}: {}",
                at(a.end_requested_at),
                a.end_reason.as_deref().unwrap_or("access ended")
            ),
            Some(error) => format!(
                "still open at {customer} since {} — retrying: {error}",
                at(a.end_requested_at)
            ),
        },
        JitState::Ended => format!("ended at {}", at(a.ended_at)),
    };
    AccountView {
        upn: a.upn.clone(),
        owner: a.username.clone(),
        state: a.state.as_str().to_string(),
        text,
    }
}
