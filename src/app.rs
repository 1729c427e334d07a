//! The Leptos application: the HTML shell and the portal's routes.

use crate::audit::page::AuditPage;
use crate::login::page::{HomePage, LoginPage};
use crate::reconciler::page::ReconciliationPage;
use crate::user_source::page::UserSourcePage;
use crate::users::page::UsersPage;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub fn shell(options: LeptosOptions) -> impl IntoView {
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
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
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
                <Route path=path!("/adminportal/audit") view=AuditPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
