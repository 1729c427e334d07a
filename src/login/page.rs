use super::api::whoami;
use super::view::{countdown_text, LoginView};
use crate::customers::request_page::AccessAtCustomers;
use crate::ui::{DemoBanner, SessionWatch};
use leptos::prelude::*;

/// The tenant's QR login page (DESIGN flow 3). Only the server renders it, with the code its
/// gate drew for this browser in context (`page_load`); the page hydrates nothing.
#[component]
pub fn LoginPage() -> impl IntoView {
    let code = use_context::<LoginView>();
    view! {
        <main class="login">
            // Without JavaScript the page reloads itself; the first load after approval
            // signs the browser in and redirects.
            <noscript>
                <meta http-equiv="refresh" content="3" />
            </noscript>
            {match code {
                Some(v) => view! { <Challenge v /> }.into_any(),
                // Reached without its gate: the portal's own links to `/` within a hydrated
                // page. A full load draws the code.
                None => view! {
                    <p class="flash error">"Reload the page for a new QR code."</p>
                    <a href="/" rel="external">"Get a new QR code"</a>
                }.into_any(),
            }}
        </main>
    }
}

/// The code and its match number. The page hydrates nothing: `public/login.js` counts the
/// time down and follows the phone's answer over `/login/events`.
#[component]
fn Challenge(v: LoginView) -> impl IntoView {
    let countdown = countdown_text(v.expires_in_secs);
    view! {
        {v.demo.then(|| view! { <DemoBanner base_url=v.base_url.clone() /> })}
        <section class="card login-card">
            <h1>{format!("Sign in to {}", v.tenant_name)}</h1>
            <p class="lead">"Scan this code with the Gatehouse app on your phone."</p>
            <div id="login-qr" class="qr" data-challenge=v.challenge_id.clone() inner_html=v.qr_svg.clone()></div>
            <p class="match">
                "On your phone, pick "
                <strong id="match-number" class="match-number">{format!("{:02}", v.match_number)}</strong>
            </p>
            <p class="countdown">
                "This code expires in " <span id="countdown">{countdown}</span>
                <noscript>{format!(" (at {})", v.expires_at)}</noscript>
                "."
            </p>
            {v.notice.clone().map(|n| view! { <p id="login-notice" class="flash error" role="alert">{n}</p> })}
            {v.demo.then(|| view! {
                <p class="hint">
                    "No phone at hand? Open the scanned link on this computer: "
                    <a id="scan-link" href=v.scan_url.clone() target="_blank">"open in the Gatehouse app"</a>
                </p>
            })}
        </section>
    }
}

/// A technician's landing page: who they are signed in as.
#[component]
pub fn HomePage() -> impl IntoView {
    let me = Resource::new(|| (), |_| whoami());
    view! {
        <SessionWatch />
        <main class="narrow">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(me) => view! {
                            {me.demo.then(|| view! { <DemoBanner base_url=me.base_url.clone() /> })}
                            <section class="card">
                                <p class="eyebrow">{me.tenant_name.clone()}</p>
                                <h1>{format!("Welcome, {}", me.display_name)}</h1>
                                <p>"Your account name is"</p>
                                <p class="account" id="account-name">{me.username.clone()}</p>
                                <p class="muted">{format!("Signed in as {}", me.email)}</p>
                                {(me.role == crate::domain::Role::Admin).then(|| view! {
                                    <p><a href="/adminportal/users" id="admin-portal">"Admin portal"</a></p>
                                })}
                                <form method="post" action="/logout">
                                    <button type="submit">"Sign out"</button>
                                </form>
                            </section>
                            <AccessAtCustomers />
                        }.into_any(),
                        Err(e) => view! {
                            <p class="flash error">{e.to_string()}</p>
                            <a href="/" rel="external">"Sign in"</a>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}
