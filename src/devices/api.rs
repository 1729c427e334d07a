use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One phone of a user, as the admin sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub id: String,
    /// The first characters of the id, as the audit log names the phone.
    pub short_id: String,
    pub added: String,
    pub last_used: Option<String>,
    /// Addresses of this tenant the phone has verified.
    pub emails: Vec<String>,
    /// How many other addresses it has verified (not named: they are not this tenant's).
    pub other_emails: usize,
    /// The phone has signed this user in here.
    pub signed_in_here: bool,
    /// When it was revoked (here by an admin, by an end of access, or forgotten in the app).
    pub revoked: Option<String>,
}

#[server(endpoint = "devices/of_user")]
pub async fn user_devices(user_id: String) -> Result<Vec<DeviceRow>, AppError> {
    let ctx = crate::server::context::admin().await?;
    super::service::of_user(&ctx.state.db, &ctx.tenant, &user_id).await
}

#[server(endpoint = "devices/revoke")]
pub async fn revoke_device(user_id: String, device_id: String) -> Result<String, AppError> {
    let ctx = crate::server::context::admin().await?;
    super::service::revoke(
        &ctx.state.db,
        &ctx.state.bus,
        &ctx.tenant,
        &ctx.user,
        &user_id,
        &device_id,
    )
    .await
}
