use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the login page shows: the QR code, the match number and how long they are valid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoginView {
    pub tenant_name: String,
    pub challenge_id: String,
    pub match_number: u8,
    pub expires_in_secs: i64,
    pub expires_at: String,
    /// Drawn into the page by the server; hydration leaves the markup in place, so the
    /// code is not sent a second time in the page's serialised data.
    #[serde(skip)]
    pub qr_svg: String,
    pub scan_url: String,
    pub demo: bool,
    pub base_url: String,
    /// Why the last sign-in did not happen, when the page has something to say.
    pub notice: Option<String>,
}

/// The login page's countdown, `m:ss`.
pub fn countdown_text(secs_left: i64) -> String {
    let s = secs_left.max(0);
    format!("{}:{:02}", s / 60, s % 60)
}

/// The signed-in person, as pages show them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub role: crate::domain::Role,
    pub tenant_name: String,
    pub demo: bool,
    pub base_url: String,
}

/// The challenge the login-page request prepared for this browser.
#[server(endpoint = "login_view")]
pub async fn fetch_login_view() -> Result<LoginView, AppError> {
    let parts = use_context::<axum::http::request::Parts>().ok_or(AppError::Internal)?;
    parts
        .extensions
        .get::<LoginView>()
        .cloned()
        .ok_or_else(|| AppError::NotFound("Reload the page for a new QR code.".into()))
}

/// Who is signed in on this tenant.
#[server(endpoint = "me")]
pub async fn whoami() -> Result<Me, AppError> {
    let ctx = crate::server::context::signed_in().await?;
    Ok(Me {
        username: ctx.user.username.clone(),
        email: ctx.user.email.clone(),
        display_name: ctx.user.display_name(),
        role: ctx.user.role,
        tenant_name: ctx.tenant.name.clone(),
        demo: ctx.state.config.demo,
        base_url: ctx.state.config.public_url.clone(),
    })
}
