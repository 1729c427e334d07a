use super::api::{countdown_text, fetch_login_view, whoami, LoginView};
use crate::ui::{DemoBanner, SessionWatch};
use leptos::prelude::*;

/// The tenant's QR login page (DESIGN flow 3).
#[component]
pub fn LoginPage() -> impl IntoView {
    let view_data = Resource::new(|| (), |_| fetch_login_view());
    view! {
        <main class="login">
            // Without JavaScript the page reloads itself; the first load after approval
            // signs the browser in and redirects.
            <noscript>
                <meta http-equiv="refresh" content="3" />
            </noscript>
            <Suspense fallback=|| view! { <p>"Preparing your QR code…"</p> }>
                {move || Suspend::new(async move {
                    match view_data.await {
                        Ok(v) => view! { <Challenge v /> }.into_any(),
                        Err(e) => view! {
                            <p class="flash error">{e.to_string()}</p>
                            <a href="/">"Get a new QR code"</a>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn Challenge(v: LoginView) -> impl IntoView {
    let remaining = RwSignal::new(v.expires_in_secs);
    let notice = RwSignal::new(v.notice.clone());
    #[cfg(feature = "hydrate")]
    {
        let id = v.challenge_id.clone();
        Effect::new(move |_| live::start(id.clone(), remaining, notice));
    }
    let countdown = move || countdown_text(remaining.get());
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
            {move || notice.get().map(|n| view! { <p class="flash error" role="alert">{n}</p> })}
            {v.demo.then(|| view! {
                <p class="hint">
                    "No phone at hand? Open the scanned link on this computer: "
                    <a id="scan-link" href=v.scan_url.clone() target="_blank">"open in the Gatehouse app"</a>
                </p>
            })}
        </section>
    }
}

#[cfg(feature = "hydrate")]
mod live {
    //! The browser side: a countdown, and server-sent events that say when the phone acted.

    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    fn reload() {
        let _ = window().location().reload();
    }

    pub fn start(challenge_id: String, remaining: RwSignal<i64>, notice: RwSignal<Option<String>>) {
        // A fresh QR code replaces an expired one: the page reload asks the server for it.
        let _ = set_interval_with_handle(
            move || {
                remaining.update(|r| *r -= 1);
                if remaining.get_untracked() <= 0 {
                    reload();
                }
            },
            std::time::Duration::from_secs(1),
        );
        let Ok(source) =
            web_sys::EventSource::new(&format!("/login/events?challenge={challenge_id}"))
        else {
            return;
        };
        let approved = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
            // Loading the page again completes the login with this browser's binding cookie.
            let _ = window().location().replace("/");
        });
        let denied =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                let reason = ev
                    .data()
                    .as_string()
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                    .and_then(|v| v["reason"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "the request was refused".into());
                notice.set(Some(format!(
                    "Sign-in refused: {reason}. A new code follows in a moment."
                )));
                set_timeout(reload, std::time::Duration::from_secs(4));
            });
        let expired = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| reload());
        use crate::domain::ChallengeStatus;
        let _ = source.add_event_listener_with_callback(
            ChallengeStatus::Approved.as_str(),
            approved.as_ref().unchecked_ref(),
        );
        for refused in [ChallengeStatus::Denied, ChallengeStatus::Cancelled] {
            let _ = source.add_event_listener_with_callback(
                refused.as_str(),
                denied.as_ref().unchecked_ref(),
            );
        }
        let _ = source.add_event_listener_with_callback(
            crate::domain::PushOutcome::Expired.as_str(),
            expired.as_ref().unchecked_ref(),
        );
        // The listeners live as long as the page.
        approved.forget();
        denied.forget();
        expired.forget();
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
                                <form method="post" action="/logout">
                                    <button type="submit">"Sign out"</button>
                                </form>
                            </section>
                        }.into_any(),
                        Err(e) => view! {
                            <p class="flash error">{e.to_string()}</p>
                            <a href="/">"Sign in"</a>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}
