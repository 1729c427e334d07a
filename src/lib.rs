//! Gatehouse: a self-hosted identity portal for MSPs.

pub mod app;
pub mod audit;
pub mod customers;
pub mod devices;
pub mod domain;
pub mod error;
#[cfg(feature = "ssr")]
pub mod housekeeping;
#[cfg(feature = "ssr")]
pub mod jit;
pub mod login;
pub mod mobile;
pub mod notifications;
pub mod tenants;
pub mod ui;
pub mod user_source;
pub mod users;

#[cfg(feature = "ssr")]
pub mod entra;
pub mod reconciler;
#[cfg(feature = "ssr")]
pub mod server;

/// A page load makes many small, short-lived allocations on both worker threads; mimalloc
/// serves them faster than the system allocator (BENCHMARKS.md, the login page).
#[cfg(feature = "ssr")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Says the page's buttons now act in place (before, forms fall back to full-page posts):
    // the browser stories wait for it before they click.
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "");
    }
}
