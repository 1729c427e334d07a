//! Rendering the portal's pages: every page carries the script nonce of its own response,
//! and a page whose data its gate already prepared (the login page) gets it as context.

use super::headers::CspNonce;
use super::state::AppState;
use crate::app::shell;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use leptos::prelude::{provide_context, use_context};

/// Leptos draws its own script nonce per page; the page must carry the one the
/// Content-Security-Policy of this response names instead.
pub fn use_request_nonce() {
    let nonce = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(nonce)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

/// Renders the page `req` asks for, as the portal's routes would, with `data` in its
/// context: the page reads it with `use_context`, so nothing but the page sees it.
pub async fn page_with<T>(state: &AppState, data: T, req: Request) -> Response
where
    T: Clone + Send + Sync + 'static,
{
    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            provide_context(data.clone());
            use_request_nonce();
        }
    };
    let options = state.leptos_options.clone();
    let render =
        leptos_axum::render_app_async_with_context(context, move || shell(options.clone()));
    render(req).await.into_response()
}
