use super::api::get_source;
use crate::ui::AdminLayout;
use leptos::prelude::*;

/// Users → User source. Connecting Entra ID is built on the emulator and Graph client
/// (issues 3 and 4); until then the page shows the current source honestly.
#[component]
pub fn UserSourcePage() -> impl IntoView {
    let source = Resource::new(|| (), |_| get_source());
    view! {
        <AdminLayout current="source">
            <h1>"User source"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match source.await {
                        Ok(s) => view! {
                            <section class="card">
                                <label>"User source "
                                    <select id="user-source" disabled=true>
                                        <option value="local" selected=s.user_source == "local">"Local directory"</option>
                                        <option value="azuread" selected=s.user_source == "azuread">"Microsoft Entra ID (azuread)"</option>
                                    </select>
                                </label>
                                <p id="current-source">
                                    {if s.user_source == "local" {
                                        "Users of this tenant are kept in Gatehouse's own directory: admins invite them under User management.".to_string()
                                    } else {
                                        "Users of this tenant come from Microsoft Entra ID.".to_string()
                                    }}
                                </p>
                                <p>"JIT username prefix: " <code>{s.jit_prefix.clone()}</code></p>
                                <p class="muted">"Connecting a Microsoft Entra ID tenant is not available in this version yet."</p>
                            </section>
                        }.into_any(),
                        Err(e) => view! { <p class="flash error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </AdminLayout>
    }
}
