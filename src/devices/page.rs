use super::api::{user_devices, RevokeDevice};
use crate::ui::Outcome;
use leptos::prelude::*;

/// A user's phones under their row in User management, with "Revoke" for a lost one.
#[component]
pub fn Phones(user_id: String, username: String) -> impl IntoView {
    let revoke = ServerAction::<RevokeDevice>::new();
    let list_for = user_id.clone();
    let phones = Resource::new(
        move || revoke.version().get(),
        move |_| user_devices(list_for.clone()),
    );
    let result = Signal::derive(move || revoke.value().get());
    view! {
        <div class="phones">
            <p class="hint">
                "Revoking a phone ends the sessions it approved in this tenant and stops it from approving any more; "
                "the technician sets up the app anew to sign in again. Disabling or offboarding a user revokes all of their phones."
            </p>
            <Outcome result=result />
            <Transition fallback=|| view! { <p>"Loading phones…"</p> }>
                {move || {
                    let user_id = user_id.clone();
                    let username = username.clone();
                    Suspend::new(async move {
                    match phones.await {
                        Ok(list) if list.is_empty() => view! { <p>"No phone has verified this user's email."</p> }.into_any(),
                        Ok(list) => view! {
                            <ul class="phones-list">
                                {list.into_iter().map(|d| {
                                    let device_id = d.id.clone();
                                    let user_id = user_id.clone();
                                    let question = format!("Revoke phone {} of {}? It ends the sessions it approved.", d.short_id, username);
                                    let emails = if d.emails.is_empty() { "no address of this tenant".to_string() } else { d.emails.join(", ") };
                                    let revoked_attr = d.revoked.is_some().to_string();
                                    let others = (d.other_emails > 0).then(|| format!(" (+{} other address(es))", d.other_emails));
                                    view! {
                                        <li data-device=d.short_id.clone() data-revoked=revoked_attr>
                                            <span class="mono">{format!("Phone {}", d.short_id)}</span>
                                            {format!(" · added {} · last used {} · verified {}", d.added, d.last_used.clone().unwrap_or_else(|| "never".into()), emails)}
                                            {others}
                                            {d.signed_in_here.then_some(" · has signed in here")}
                                            " "
                                            {match d.revoked {
                                                Some(at) => view! { <span class="status disabled">{format!("revoked {at}")}</span> }.into_any(),
                                                None => view! {
                                                    <button type="button" class="small" data-action="revoke-phone"
                                                        on:click=move |_| {
                                                            if window().confirm_with_message(&question).unwrap_or(false) {
                                                                revoke.dispatch(RevokeDevice { user_id: user_id.clone(), device_id: device_id.clone() });
                                                            }
                                                        }>
                                                        "Revoke"
                                                    </button>
                                                }.into_any(),
                                            }}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p class="flash error">{e.to_string()}</p> }.into_any(),
                    }
                })}}
            </Transition>
        </div>
    }
}
