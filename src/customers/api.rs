//! The Customers page's server functions: each checks the admin, calls the service, maps
//! the result.

pub use super::view::{CustomerView, CustomersView, GrantView};
use crate::error::AppError;
use crate::user_source::api::Notice;
use leptos::prelude::*;

#[server(endpoint = "customers/get")]
pub async fn get_customers() -> Result<CustomersView, AppError> {
    let ctx = crate::server::context::admin().await?;
    Ok(super::service_view::view(
        &ctx.state.db,
        ctx.state.customers_entra.is_some(),
        &ctx.tenant,
    )
    .await?)
}

/// How the admin's last round trip to Microsoft from this page ended, once.
#[server(endpoint = "customers/notice")]
pub async fn take_notice() -> Result<Option<Notice>, AppError> {
    crate::server::context::admin().await?;
    let session: tower_sessions::Session = leptos_axum::extract()
        .await
        .map_err(|_| AppError::internal())?;
    Ok(
        crate::user_source::flows::take_notice(&session, &crate::user_source::flows::CUSTOMER)
            .await,
    )
}

/// One more try at every consent Microsoft has not applied yet; how many still wait.
#[server(endpoint = "customers/prove")]
pub async fn prove_customers() -> Result<usize, AppError> {
    let ctx = crate::server::context::admin().await?;
    let Some(entra) = &ctx.state.customers_entra else {
        return Err(AppError::Invalid(
            "No customers app is configured for this Gatehouse.".into(),
        ));
    };
    super::service::prove_waiting(&ctx.state.db, entra, &ctx.tenant)
        .await
        .map_err(refused)
}

#[server(endpoint = "customers/save")]
pub async fn save_customer(
    customer: String,
    name: String,
    domain: String,
    window_minutes: String,
) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    super::service::save(
        &ctx.state.db,
        &ctx.tenant,
        &ctx.user,
        &customer,
        &name,
        &domain,
        &window_minutes,
    )
    .await
    .map_err(refused)
}

#[server(endpoint = "customers/grant")]
pub async fn grant_role(
    customer: String,
    holders: String,
    role: String,
) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    super::service::grant(
        &ctx.state.db,
        ctx.state.entra.as_ref(),
        &ctx.tenant,
        &ctx.user,
        &customer,
        &holders,
        &role,
    )
    .await
    .map_err(refused)
}

#[server(endpoint = "customers/withdraw")]
pub async fn withdraw_role(
    customer: String,
    holders: String,
    role: String,
) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    super::service::withdraw(
        &ctx.state.db,
        &ctx.state.bus,
        &ctx.tenant,
        &ctx.user,
        &customer,
        &holders,
        &role,
    )
    .await
    .map_err(refused)
}

#[server(endpoint = "customers/disconnect")]
pub async fn disconnect_customer(customer: String) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    super::service::disconnect(
        &ctx.state.db,
        &ctx.state.bus,
        &ctx.tenant,
        &ctx.user,
        &customer,
    )
    .await
    .map_err(refused)
}

#[cfg(feature = "ssr")]
fn refused(e: crate::user_source::service::SourceError) -> AppError {
    match e {
        crate::user_source::service::SourceError::Unexpected(e) => e.into(),
        other => AppError::Invalid(other.to_string()),
    }
}
