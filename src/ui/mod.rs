//! Layout and small shared components.

use crate::error::AppError;
use leptos::prelude::*;

/// The admin portal's frame: header, navigation, content.
#[component]
pub fn AdminLayout(
    /// Which navigation entry is current.
    current: &'static str,
    children: Children,
) -> impl IntoView {
    let me = Resource::new(|| (), |_| crate::login::api::whoami());
    let link = move |href: &'static str, key: &'static str, label: &'static str| {
        view! {
            <a href=href class:current=move || current == key aria-current=move || (current == key).then_some("page")>
                {label}
            </a>
        }
    };
    view! {
        <SessionWatch />
        <div class="portal">
            <header class="topbar">
                <span class="brand">"Gatehouse"</span>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        me.await.ok().map(|me| view! {
                            <span class="tenant">{me.tenant_name.clone()}</span>
                            <span class="who">{me.username.clone()}</span>
                            <form method="post" action="/logout" class="inline">
                                <button type="submit" class="link">"Sign out"</button>
                            </form>
                            {me.demo.then(|| view! { <DemoBanner base_url=me.base_url.clone() /> })}
                        })
                    })}
                </Suspense>
            </header>
            <div class="frame">
                <nav class="side" aria-label="Admin portal">
                    <p class="nav-group">"Users"</p>
                    {link("/adminportal/users", "users", "User management")}
                    {link("/adminportal/user-source", "source", "User source")}
                    <p class="nav-group">"Tenant"</p>
                    {link("/adminportal/reconciliation", "reconcile", "Reconciliation")}
                    {link("/adminportal/customers", "customers", "Customers")}
                    {link("/adminportal/audit", "audit", "Audit log")}
                    <p class="nav-group">"You"</p>
                    // Admins request access at customers too, where the mapping lets Admins.
                    <a href="/home" id="my-access">"Access at customers"</a>
                </nav>
                <main class="content">{children()}</main>
            </div>
        </div>
    }
}

/// Says plainly that this is a demo and where its mail goes.
#[component]
pub fn DemoBanner(
    /// The base domain's public URL, where the outbox and the phone app live.
    base_url: String,
) -> impl IntoView {
    view! {
        <div class="demo-banner" role="note">
            "Demo mode: data is local, mail goes to the "
            <a href=format!("{base_url}/_dev/outbox") target="_blank">"dev outbox"</a>
            ", and the phone app runs at "
            <a href=format!("{base_url}/app") target="_blank">"/app"</a>
            "."
        </div>
    }
}

/// What an action on a page brought: its message, or its error.
pub type ActionResult = Option<Result<String, AppError>>;

/// The result of whichever of `results` changed last. On a page with several forms, the
/// admin reads what their latest action did, not what an earlier form said.
pub fn latest(results: Vec<Signal<ActionResult>>) -> Signal<ActionResult> {
    let last = RwSignal::new(None);
    for result in results {
        Effect::new(move |_| {
            if let Some(r) = result.get() {
                last.set(Some(r));
            }
        });
    }
    last.into()
}

/// Shows the result of the last action: its message, or its error.
#[component]
pub fn Outcome(result: Signal<Option<Result<String, AppError>>>) -> impl IntoView {
    move || {
        result.get().map(|r| match r {
            Ok(msg) => view! { <p class="flash ok" role="status">{msg}</p> }.into_any(),
            Err(e) => view! { <p class="flash error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    }
}

/// Leaves a signed-in page as soon as the server says the user's access ended (offboarded,
/// disabled, or this session revoked): the reload lands on the sign-in page.
#[component]
pub fn SessionWatch() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        if let Ok(source) = web_sys::EventSource::new("/session/events") {
            let leave = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
                let _ = window().location().reload();
            });
            let _ = source.add_event_listener_with_callback(
                crate::domain::PushOutcome::SignedOut.as_str(),
                leave.as_ref().unchecked_ref(),
            );
            // The listener lives as long as the page.
            leave.forget();
        }
    });
}
