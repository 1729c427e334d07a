pub use super::view::DeviceRow;
use crate::error::AppError;
use leptos::prelude::*;

#[server(endpoint = "devices/of_user")]
pub async fn user_devices(user_id: String) -> Result<Vec<DeviceRow>, AppError> {
    let ctx = crate::server::context::admin().await?;
    let user_id = crate::domain::UserId::from_outside(user_id);
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
        &crate::domain::UserId::from_outside(user_id),
        &crate::domain::DeviceId::from_outside(device_id),
    )
    .await
}
