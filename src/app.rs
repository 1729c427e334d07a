//! The Leptos application: the HTML shell and the portal's routes.

use crate::audit::page::AuditPage;
use crate::customers::page::CustomersPage;
use crate::login::page::{HomePage, LoginPage};
use crate::reconciler::page::ReconciliationPage;
use crate::user_source::page::UserSourcePage;
use crate::users::page::UsersPage;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The login page hydrates nothing: its live part is a small script (public/login.js), so
    // the page anyone on the internet can load never downloads the portal's WebAssembly.
    let scripts = if serves_login_page() {
        view! { <script src="/login.js" defer></script> }.into_any()
    } else {
        view! { <HydrationScripts options=options.clone() /> }.into_any()
    };
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                // Without it browsers ask for /favicon.ico, a 404 in every page's console.
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <AutoReload options=options.clone() />
                <HashedStylesheet options=options.clone() id="leptos" />
                {scripts}
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Whether this answer is a tenant's login page (the Leptos route `/`).
#[cfg(feature = "ssr")]
fn serves_login_page() -> bool {
    use_context::<axum::http::request::Parts>().is_some_and(|parts| parts.uri.path() == "/")
}

#[cfg(not(feature = "ssr"))]
fn serves_login_page() -> bool {
    false
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Gatehouse" />
        <Router>
            <Routes fallback=|| view! { <main class="narrow"><h1>"Not found"</h1><p>"There is no such page."</p></main> }>
                // Async rendering sends each page whole: the login page must work without
                // JavaScript, and every page then reads correctly before hydration.
                <Route path=path!("/") view=LoginPage ssr=SsrMode::Async />
                <Route path=path!("/home") view=HomePage ssr=SsrMode::Async />
                <Route path=path!("/adminportal/users") view=UsersPage ssr=SsrMode::Async />
                <Route path=path!("/adminportal/user-source") view=UserSourcePage ssr=SsrMode::Async />
                <Route path=path!("/adminportal/reconciliation") view=ReconciliationPage ssr=SsrMode::Async />
                <Route path=path!("/adminportal/customers") view=CustomersPage ssr=SsrMode::Async />
                <Route path=path!("/adminportal/audit") view=AuditPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
