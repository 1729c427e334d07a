pub use super::view::{Authorized, Connection, GroupOption, Notice, SourceView};
use crate::error::AppError;
use leptos::prelude::*;

impl GroupOption {
    /// How the page lists it.
    pub fn label(&self) -> String {
        if self.kind.is_empty() {
            return self.name.clone();
        }
        let users = crate::domain::users_counted(self.users);
        format!("{} ({}, {users})", self.name, self.kind)
    }
}

#[server(endpoint = "user_source/get")]
pub async fn get_source() -> Result<SourceView, AppError> {
    let ctx = crate::server::context::admin().await?;
    Ok(super::service_view::view(
        &ctx.state.db,
        ctx.state.entra.as_ref(),
        &ctx.state.config,
        &ctx.tenant,
    )
    .await?)
}

/// How the admin's last round trip to Microsoft ended, once: reading it forgets it.
#[server(endpoint = "user_source/notice")]
pub async fn take_notice() -> Result<Option<Notice>, AppError> {
    crate::server::context::admin().await?;
    let session: tower_sessions::Session = leptos_axum::extract()
        .await
        .map_err(|_| AppError::internal())?;
    Ok(super::flows::take_notice(&session, &super::flows::USER_SOURCE).await)
}

/// One more try at proving a consent Microsoft has not applied yet. `Ok(true)` when the
/// Entra tenant is now authorized, `Ok(false)` while it is still waiting.
#[server(endpoint = "user_source/prove")]
pub async fn prove_consent() -> Result<bool, AppError> {
    let ctx = crate::server::context::admin().await?;
    let Some(entra) = &ctx.state.entra else {
        return Err(AppError::Invalid(
            "No Entra app is configured for this Gatehouse.".into(),
        ));
    };
    use super::service::{prove, Proof, SourceError};
    match prove(&ctx.state.db, entra, &ctx.tenant).await {
        Ok(Proof::Proven(_)) => Ok(true),
        Ok(Proof::Waiting { .. }) => Ok(false),
        Ok(Proof::Nothing) => Ok(true),
        Err(SourceError::Unexpected(e)) => Err(e.into()),
        Err(e) => Err(AppError::Invalid(e.to_string())),
    }
}

/// The JIT name an example address would get with `prefix` (the page's live preview).
#[server(endpoint = "user_source/preview")]
pub async fn preview_username(prefix: String, email: String) -> Result<String, AppError> {
    crate::server::context::admin().await?;
    let prefix = crate::domain::UsernamePrefix::parse(&prefix, false)
        .map_err(|e| AppError::Invalid(format!("JIT prefix: {e}.")))?;
    let email = crate::domain::Email::parse(&email)
        .map_err(|e| AppError::Invalid(format!("Example: {e}.")))?;
    Ok(crate::domain::JitUsername::derive(&prefix, &email).to_string())
}

#[server(endpoint = "user_source/save")]
pub async fn save_source(
    source: String,
    domain: String,
    prefix: String,
) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    super::service::save(
        &ctx.state.db,
        &ctx.state.bus,
        &ctx.tenant,
        &ctx.user,
        &source,
        &domain,
        &prefix,
    )
    .await
    .map_err(source_error)
}

/// The reconciler's schedule and deletion threshold for this tenant.
#[server(endpoint = "user_source/schedule")]
pub async fn save_schedule(
    interval_minutes: String,
    threshold_count: String,
    threshold_percent: String,
) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    let number = |label: &str, raw: &str, min: i64, max: i64| -> Result<i64, AppError> {
        raw.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                AppError::Invalid(format!(
                    "{label} must be a whole number from {min} to {max}."
                ))
            })
    };
    let shortest = super::service::shortest_interval_minutes(&ctx.state.config);
    let interval = number(
        "The offboarding interval (minutes)",
        &interval_minutes,
        shortest,
        1440,
    )
    .map_err(|e| match shortest {
        1 => e,
        _ => AppError::Invalid(format!(
            "{e} Microsoft tells Gatehouse of changes within seconds, so a shorter poll adds nothing."
        )),
    })?;
    let count = number(
        "The threshold's number of users",
        &threshold_count,
        0,
        1_000_000,
    )?;
    let percent = number("The threshold's share (%)", &threshold_percent, 0, 100)?;
    Ok(super::service::save_schedule(
        &ctx.state.db,
        &ctx.state.bus,
        &ctx.tenant,
        &ctx.user,
        interval,
        count,
        percent,
    )
    .await?)
}

/// Security and Microsoft 365 groups of the connected Entra tenant whose name starts with
/// `text`, with their user counts.
#[server(endpoint = "user_source/find_groups")]
pub async fn find_groups(text: String) -> Result<Vec<GroupOption>, AppError> {
    let ctx = crate::server::context::admin().await?;
    let found = super::groups::find(ctx.state.entra.as_ref(), &ctx.tenant, &text)
        .await
        .map_err(source_error)?;
    Ok(found
        .iter()
        .map(|g| GroupOption {
            id: g.id.to_string(),
            name: g.name().to_string(),
            kind: g.kind().to_string(),
            users: g.users.unwrap_or(0),
        })
        .collect())
}

/// Who may onboard and who is an admin, by Entra group (empty: none).
#[server(endpoint = "user_source/groups")]
pub async fn save_groups(scope_group: String, admin_group: String) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    super::groups::save(
        &ctx.state.db,
        &ctx.state.bus,
        ctx.state.entra.as_ref(),
        &ctx.tenant,
        &ctx.user,
        &scope_group,
        &admin_group,
    )
    .await
    .map_err(source_error)
}

#[cfg(feature = "ssr")]
fn source_error(e: super::service::SourceError) -> AppError {
    match e {
        super::service::SourceError::Unexpected(e) => e.into(),
        other => AppError::Invalid(other.to_string()),
    }
}
