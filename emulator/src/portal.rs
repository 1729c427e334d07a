//! A customer's own sign-in, for the accounts made in it through Graph: what a technician
//! sees when they sign in to Fabrikam with the pass or password Gatehouse showed them. It
//! stands in for Microsoft's sign-in to the customer's portals (no tokens: the page says who
//! signed in and with which roles).

use crate::html::{esc, page};
use crate::roles;
use crate::state::Emulator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

pub fn routes() -> Router<Emulator> {
    Router::new().route("/{tenant}/signin", get(form).post(submit))
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// The directory named by id or verified domain, with its display name.
fn named(em: &Emulator, tenant: &str) -> Option<(String, String)> {
    let world = em.read();
    world
        .directory(&tenant.to_ascii_lowercase())
        .ok()
        .or_else(|| world.directory_by_name(tenant))
        .map(|d| (d.tenant_id.clone(), d.display_name.clone()))
}

fn sign_in_page(org: &str, username: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p id="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    format!(
        r#"<p>Sign in to {org}</p>{error}<form method="post">
<label>Email <input name="username" id="username" type="email" value="{user}" autocomplete="username"></label>
<label>Password or Temporary Access Pass <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button type="submit" id="sign-in">Sign in</button></form>"#,
        org = esc(org),
        user = esc(username),
    )
}

async fn form(State(em): State<Emulator>, Path(tenant): Path<String>) -> Response {
    match named(&em, &tenant) {
        Some((_, org)) => page("Sign in", &sign_in_page(&org, "", None)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            page("Sign in", "<p>No such organisation.</p>"),
        )
            .into_response(),
    }
}

async fn submit(
    State(em): State<Emulator>,
    Path(tenant): Path<String>,
    Form(c): Form<Credentials>,
) -> Response {
    let Some((tenant_id, org)) = named(&em, &tenant) else {
        return (
            StatusCode::NOT_FOUND,
            page("Sign in", "<p>No such organisation.</p>"),
        )
            .into_response();
    };
    let mut world = em.write();
    let Ok(d) = world.directory_mut(&tenant_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match d.sign_in(c.username.trim(), &c.password) {
        Ok(user) => {
            let held: Vec<String> = d
                .roles_of(&user.id)
                .iter()
                .filter_map(|id| roles::built_in(id).map(|r| esc(r.name)))
                .collect();
            let roles = if held.is_empty() {
                "no admin role".to_string()
            } else {
                held.join(", ")
            };
            page(
                "Signed in",
                &format!(
                    r#"<p id="signed-in">Signed in to {org} as <strong>{upn}</strong>.</p><p>Roles: <span id="roles">{roles}</span></p>"#,
                    org = esc(&org),
                    upn = esc(&user.user_principal_name),
                ),
            )
            .into_response()
        }
        // Microsoft's sign-in page shows a refusal as the form again, with its words, on an
        // ordinary page.
        Err(why) => page("Sign in", &sign_in_page(&org, &c.username, Some(why))).into_response(),
    }
}
