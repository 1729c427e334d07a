use super::api::list_audit;
use crate::ui::AdminLayout;
use leptos::prelude::*;

/// The tenant's audit log, newest first.
#[component]
pub fn AuditPage() -> impl IntoView {
    let events = Resource::new(|| (), |_| list_audit());
    view! {
        <AdminLayout current="audit">
            <h1>"Audit log"</h1>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match events.await {
                        Ok(list) => view! {
                            <table class="audit" id="audit">
                                <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Subject"</th><th>"Details"</th><th>"Request"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|e| view! {
                                        <tr data-action=e.action.clone() data-id=e.id>
                                            <td>{e.at}</td><td>{e.actor}</td><td class="mono">{e.action.clone()}</td>
                                            <td>{e.subject}</td><td>{e.details}</td>
                                            <td class="mono">{e.request.unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => view! { <p class="flash error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </AdminLayout>
    }
}
