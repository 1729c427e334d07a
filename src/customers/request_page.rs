//! The home page's "Access at customers": the customers and roles the technician may request,
//! "Request access" (a code for their phone, number matching as at sign-in), and the opened
//! account with how to sign in, shown this once. "Show again" is a new request: a new phone
//! approval, and a new pass or password.

use super::request::{get_offers, AskedView, EndAccess, OfferView, OpenedView, RequestAccess};
use leptos::prelude::*;

/// The card on the home page.
#[component]
pub fn AccessAtCustomers() -> impl IntoView {
    let ask = ServerAction::<RequestAccess>::new();
    let end = ServerAction::<EndAccess>::new();
    let opened = RwSignal::new(None::<OpenedView>);
    let problem = RwSignal::new(None::<String>);
    let asked = RwSignal::new(None::<AskedView>);
    let ended = RwSignal::new(None::<String>);
    let offers = Resource::new(
        move || (opened.get().map(|o| o.upn), end.version().get()),
        |_| get_offers(),
    );
    // Ending early: the shown credential is no use any more; say what happens instead.
    Effect::new(move |_| match end.value().get() {
        Some(Ok(said)) => {
            opened.set(None);
            problem.set(None);
            ended.set(Some(said));
        }
        Some(Err(e)) => problem.set(Some(e.to_string())),
        None => {}
    });
    // A new answer to "Request access": the code to approve, or why not.
    Effect::new(move |_| match ask.value().get() {
        Some(Ok(a)) => {
            problem.set(None);
            opened.set(None);
            asked.set(Some(a));
        }
        Some(Err(e)) => {
            asked.set(None);
            problem.set(Some(e.to_string()));
        }
        None => {}
    });
    view! {
        <section class="card" id="customer-access">
            <h2>"Access at customers"</h2>
            {move || problem.get().map(|p| view! { <p class="flash error" id="access-problem" role="alert">{p}</p> })}
            {move || ended.get().map(|e| view! { <p class="flash ok" id="access-ended" role="status">{e}</p> })}
            {move || asked.get().map(|a| view! { <Approve a asked opened problem /> })}
            {move || opened.get().map(|o| view! { <Opened o /> })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match offers.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class="muted" id="no-offers">"No customer access is offered to you. An admin maps roles to technicians on the Customers page."</p>
                        }.into_any(),
                        Ok(list) => list
                            .into_iter()
                            .map(|offer| view! { <Offer offer ask end /> })
                            .collect_view()
                            .into_any(),
                        Err(e) => view! { <p class="flash error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// One customer: its roles to tick, the account if it is open, and the buttons.
#[component]
fn Offer(
    offer: OfferView,
    ask: ServerAction<RequestAccess>,
    end: ServerAction<EndAccess>,
) -> impl IntoView {
    // One role offered: it is what the request is for. Several: the technician picks.
    let chosen = RwSignal::new(if offer.roles.len() == 1 {
        vec![offer.roles[0].0.clone()]
    } else {
        Vec::new()
    });
    let customer = offer.customer_id.clone();
    let request = move |roles: Vec<String>| {
        ask.dispatch(RequestAccess {
            customer: customer.clone(),
            roles: roles.join(","),
        });
    };
    let again = request.clone();
    let open_roles = offer.open.as_ref().map(|o| o.role_ids.clone());
    view! {
        <div class="offer" data-customer=offer.customer.clone()>
            <h3>{offer.customer.clone()}</h3>
            <p class="muted">{offer.window_text.clone()}</p>
            {offer.open.clone().map(|o| view! {
                <p class="open-account">
                    <strong>{o.upn.clone()}</strong>
                    {format!(" is open until {} as {}.", o.until, o.role_names.join(", "))}
                </p>
            })}
            <fieldset>
                <legend>"Roles"</legend>
                {offer.roles.iter().map(|(id, name)| {
                    let id = id.clone();
                    let toggled = id.clone();
                    let checked = chosen.get_untracked().contains(&id);
                    view! {
                        <label class="check">
                            <input type="checkbox" value=id.clone() checked=checked
                                on:change=move |_| chosen.update(|c| {
                                    if let Some(i) = c.iter().position(|r| *r == toggled) {
                                        c.remove(i);
                                    } else {
                                        c.push(toggled.clone());
                                    }
                                }) />
                            {name.clone()}
                        </label>
                    }
                }).collect_view()}
            </fieldset>
            <div class="actions">
                <button type="button" class="request-access" disabled=move || ask.pending().get()
                    on:click=move |_| request(chosen.get_untracked())>
                    "Request access"
                </button>
                {open_roles.map(|roles| {
                    let customer = offer.customer_id.clone();
                    view! {
                        <button type="button" class="show-again secondary" disabled=move || ask.pending().get()
                            on:click=move |_| again(roles.clone())>
                            "Show again"
                        </button>
                        <button type="button" class="end-access danger" disabled=move || end.pending().get()
                            on:click=move |_| {
                                end.dispatch(EndAccess { customer: customer.clone() });
                            }>
                            "End my access now"
                        </button>
                    }
                })}
            </div>
        </div>
    }
}

/// The code the technician's phone approves, and the wait for it: the page asks every two
/// seconds until the phone answered or the code ran out.
#[component]
fn Approve(
    a: AskedView,
    asked: RwSignal<Option<AskedView>>,
    opened: RwSignal<Option<OpenedView>>,
    problem: RwSignal<Option<String>>,
) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        use super::request::{collect_access, CollectedView};
        let request = a.request.clone();
        let busy = StoredValue::new(false);
        let handle = set_interval_with_handle(
            move || {
                if busy.get_value() {
                    return;
                }
                busy.set_value(true);
                let request = request.clone();
                leptos::task::spawn_local(async move {
                    match collect_access(request).await {
                        Ok(CollectedView::Waiting { .. }) => {}
                        Ok(CollectedView::Opened(o)) => {
                            asked.set(None);
                            opened.set(Some(o));
                        }
                        Err(e) => {
                            asked.set(None);
                            problem.set(Some(e.to_string()));
                        }
                    }
                    busy.set_value(false);
                });
            },
            std::time::Duration::from_secs(2),
        );
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    }
    // The server renders the code; the browser does the waiting.
    #[cfg(not(feature = "hydrate"))]
    let _ = (opened, problem);
    view! {
        <div class="approve-access" id="access-approval" role="status">
            <p>
                <strong>{format!("Approve on your phone: {} at {}", a.role_names.join(", "), a.customer)}</strong>
            </p>
            <div id="access-qr" class="qr" data-request=a.request.clone() inner_html=a.qr_svg.clone()></div>
            <p class="match">
                "On your phone, pick "
                <strong id="access-match-number" class="match-number">{format!("{:02}", a.match_number)}</strong>
            </p>
            <p class="muted">{format!("This code expires in {} s.", a.expires_in_secs)}</p>
            {a.demo.then(|| view! {
                <p class="hint">
                    "No phone at hand? "
                    <a id="access-scan-link" href=a.scan_url.clone() target="_blank">"open in the Gatehouse app"</a>
                </p>
            })}
            <div class="actions">
                <button type="button" class="secondary" on:click=move |_| asked.set(None)>"Cancel"</button>
            </div>
        </div>
    }
}

/// The opened account and its credential: on this page, this once.
#[component]
fn Opened(o: OpenedView) -> impl IntoView {
    let what = o.kind.label();
    view! {
        <div class="opened-account" id="access-opened" role="status">
            <p class="flash ok">
                {format!("Your account at {} is open until {} as {}.", o.customer, o.until, o.role_names.join(", "))}
            </p>
            <dl>
                <dt>"Account"</dt>
                <dd id="jit-account">{o.upn.clone()}</dd>
                <dt>{what}</dt>
                <dd><code id="jit-credential" data-kind=o.kind.as_str()>{o.secret.clone()}</code></dd>
            </dl>
            <p>
                <a id="jit-sign-in" href=o.sign_in_url.clone() target="_blank" rel="noopener">
                    {format!("Sign in to {} as {}", o.customer, o.upn)}
                </a>
            </p>
            <p class="muted">
                "Sign in to Microsoft 365 or the Microsoft Entra admin center as this account. Gatehouse keeps no copy: this is the only time it is shown. \"Show again\" asks your phone again and makes a new one."
            </p>
        </div>
    }
}
