use super::api::{
    get_source, take_notice, FindGroups, GroupOption, Notice, ProveConsent, SaveGroups,
    SaveSchedule, SaveSource, SourceView,
};
use crate::domain::{Email, JitUsername, UserSource, UsernamePrefix};
use crate::ui::{AdminLayout, Outcome};
use leptos::prelude::*;

/// Users → User source.
#[component]
pub fn UserSourcePage() -> impl IntoView {
    let save = ServerAction::<SaveSource>::new();
    let schedule = ServerAction::<SaveSchedule>::new();
    let prove = ServerAction::<ProveConsent>::new();
    let groups = ServerAction::<SaveGroups>::new();
    let source = Resource::new(
        move || {
            (
                save.version().get(),
                schedule.version().get(),
                prove.version().get(),
                groups.version().get(),
            )
        },
        |_| get_source(),
    );
    // Read once, with the page: how the round trip to Microsoft that led here ended.
    let notice = Resource::new(|| (), |_| take_notice());
    let result = crate::ui::latest(vec![
        schedule.value().into(),
        groups.value().into(),
        save.value().into(),
        Signal::derive(move || {
            prove.value().get().and_then(|r| match r {
                Ok(true) => Some(Ok(
                    "Authorized. Choose the domain and the JIT prefix, then Save.".into(),
                )),
                Ok(false) => None,
                Err(e) => Some(Err(e)),
            })
        }),
    ]);
    view! {
        <AdminLayout current="source">
            <h1>"User source"</h1>
            <Outcome result />
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let notice = notice.await.ok().flatten();
                    match source.await {
                        Ok(v) => {
                            let connected = v.connected.is_some();
                            let (minutes, shortest, count, percent) = (v.interval_minutes, v.shortest_interval_minutes, v.threshold_count, v.threshold_percent);
                            let waiting = v.consent_waiting_since.clone();
                            let warning = v.certificate_warning.clone();
                            let (scope, admins) = (v.scope_group.clone(), v.admin_group.clone());
                            view! {
                                {notice.map(|n| view! { <RoundTrip n result /> })}
                                {warning.map(|w| view! { <p class="flash error" id="certificate-warning" role="alert">{w}</p> })}
                                {waiting.map(|since| view! { <ConsentWait since prove /> })}
                                <SourceForm v save />
                                {connected.then(|| view! { <Groups scope admins groups /> })}
                                {connected.then(|| view! { <Schedule minutes shortest count percent schedule /> })}
                            }
                            .into_any()
                        }
                        Err(e) => view! { <p class="flash error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </AdminLayout>
    }
}

/// Microsoft has not applied the admin's consent yet: say so, and try again every few
/// seconds (the server gives up after two minutes and the page shows Microsoft's answer).
#[component]
fn ConsentWait(since: String, prove: ServerAction<ProveConsent>) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || {
                if !prove.pending().get_untracked() {
                    prove.dispatch(ProveConsent {});
                }
            },
            std::time::Duration::from_secs(3),
        );
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    }
    view! {
        <section class="card" id="consent-waiting" role="status">
            <p><strong>"Waiting for Microsoft to apply the consent…"</strong></p>
            <p class="muted">
                {format!(
                    "Consent given at {since}. Microsoft can take a minute to apply it; Gatehouse checks again every few seconds for two minutes, then shows Microsoft's answer."
                )}
            </p>
            <ActionForm action=prove>
                <button type="submit" id="check-consent">"Check now"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn SourceForm(v: SourceView, save: ServerAction<SaveSource>) -> impl IntoView {
    let choice = RwSignal::new(v.user_source);
    // An admin on a slow line may choose before the page has come alive: once it has, the
    // page follows the choice the select shows, not the one it was rendered with.
    let source_select = NodeRef::<leptos::html::Select>::new();
    Effect::new(move |_| {
        if let Some(select) = source_select.get() {
            if let Ok(shown) = select.value().parse() {
                choice.set(shown);
            }
        }
    });
    let default_prefix = if v.jit_prefix.is_empty() {
        "msp-".to_string()
    } else {
        v.jit_prefix.clone()
    };
    let prefix = RwSignal::new(default_prefix.clone());
    let first_domain = v
        .connected
        .as_ref()
        .map(|c| c.domain.clone())
        .or_else(|| {
            v.authorized
                .as_ref()
                .and_then(|a| a.domains.first().cloned())
        })
        .unwrap_or_default();
    let domain = RwSignal::new(first_domain);
    // The preview uses the same domain type as the server, compiled into the page.
    let preview = move || {
        let d = domain.get();
        let example = format!(
            "alex@{}",
            if d.is_empty() {
                "example.com"
            } else {
                d.as_str()
            }
        );
        match (
            UsernamePrefix::parse(&prefix.get(), choice.get() == UserSource::Local),
            Email::parse(&example),
        ) {
            (Ok(p), Ok(e)) => format!("{example} → {}", JitUsername::derive(&p, &e)),
            (Err(err), _) => format!("JIT prefix: {err}"),
            (_, Err(err)) => err.to_string(),
        }
    };
    let connected = v.connected.clone();
    let authorized = v.authorized.clone();
    let entra_configured = v.entra_configured;
    let onboarded = v.onboarded;
    view! {
        <section class="card">
            <ActionForm action=save attr:id="user-source-form">
                <label>"User source"
                    <select id="user-source" name="source" node_ref=source_select on:change=move |ev| {
                        if let Ok(source) = event_target_value(&ev).parse() {
                            choice.set(source);
                        }
                    }>
                        <option value=UserSource::Local.as_str() selected=v.user_source == UserSource::Local>"Local directory"</option>
                        <option value=UserSource::AzureAd.as_str() selected=v.user_source == UserSource::AzureAd>"Microsoft Entra ID (azuread)"</option>
                    </select>
                </label>
                <p class="muted" id="onboarded-rule">
                    {format!(
                        "The user source can change only while at most one user is onboarded ({onboarded} so far)."
                    )}
                </p>
                <Show when=move || choice.get() == UserSource::AzureAd>
                    {
                        let connected = connected.clone();
                        let authorized = authorized.clone();
                        view! {
                            {connected.clone().map(|c| view! {
                                <div class="connection" id="connection">
                                    <h2>"Connected"</h2>
                                    <dl>
                                        <dt>"Entra tenant"</dt><dd id="connected-org">{c.org_name.clone()}</dd>
                                        <dt>"Tenant id"</dt><dd class="mono">{c.tenant_id.clone()}</dd>
                                        <dt>"Domain"</dt><dd>{c.domain.clone()}</dd>
                                        <dt>"Connected"</dt><dd>{format!("{} by {}", c.connected_at, c.connected_by)}</dd>
                                        <dt>"Health"</dt>
                                        <dd id="connection-health" class=if c.healthy { "ok" } else { "flash error" }>{c.health.clone()}</dd>
                                    </dl>
                                </div>
                            })}
                            {(!entra_configured).then(|| view! {
                                <p class="flash error">"No Entra app is configured for this Gatehouse: set ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET."</p>
                            })}
                            <p>
                                <a class="button" id="authorize" href="/adminportal/user-source/authorize" rel="external">
                                    {if authorized.is_some() { "Authorize again" } else { "Authorize" }}
                                </a>
                                " Sign in as an Entra admin and grant Gatehouse read access to users and domains."
                            </p>
                            {authorized.clone().map(|a| view! {
                                <p id="authorized">{format!("Authorized in {} ({}) by {}.", a.org_name, a.tenant_id, a.authorized_by)}</p>
                                <label>"Domain"
                                    <select id="domain" name="domain" on:change=move |ev| domain.set(event_target_value(&ev))>
                                        {a.domains.iter().map(|d| {
                                            let selected = d == &domain.get_untracked();
                                            view! { <option value=d.clone() selected=selected>{d.clone()}</option> }
                                        }).collect_view()}
                                    </select>
                                </label>
                            })}
                            {authorized.is_none().then(|| view! { <input type="hidden" name="domain" value="" /> })}
                        }
                    }
                </Show>
                <Show when=move || choice.get() != UserSource::AzureAd>
                    <input type="hidden" name="domain" value="" />
                </Show>
                <label>"JIT username prefix"
                    <input id="prefix" name="prefix" maxlength="10" value=default_prefix.clone()
                        on:input=move |ev| prefix.set(event_target_value(&ev)) />
                    <small id="prefix-preview">{preview}</small>
                </label>
                <button type="submit" id="save-source">"Save"</button>
            </ActionForm>
        </section>
    }
}

/// Who may onboard and who is an admin, by Entra group: find groups by name (each with how
/// many users it holds, nested groups counted), choose, save.
#[component]
fn Groups(
    scope: Option<GroupOption>,
    admins: Option<GroupOption>,
    groups: ServerAction<SaveGroups>,
) -> impl IntoView {
    let find = ServerAction::<FindGroups>::new();
    let found = move || find.value().get().and_then(Result::ok).unwrap_or_default();
    // The saved group first (chosen), then what the search found.
    let options = move |current: Option<GroupOption>| {
        let mut all: Vec<(GroupOption, bool)> =
            current.clone().map(|g| (g, true)).into_iter().collect();
        for g in found() {
            if current.as_ref().is_none_or(|c| c.id != g.id) {
                all.push((g, false));
            }
        }
        all.into_iter()
            .map(|(g, selected)| view! { <option value=g.id.clone() selected=selected>{g.label()}</option> })
            .collect_view()
    };
    let summary = format!(
        "{} {}",
        scope.as_ref().map_or(
            "Anyone in the domain may onboard.".to_string(),
            |g| format!("Only members of \"{}\" may onboard.", g.name)
        ),
        admins
            .as_ref()
            .map_or("Admins are set by hand.".to_string(), |g| format!(
                "Members of \"{}\" are admins.",
                g.name
            )),
    );
    let (scope_now, admins_now) = (scope.clone(), admins.clone());
    view! {
        <section class="card" id="groups">
            <h2>"Who may onboard"</h2>
            <p id="groups-summary">{summary}</p>
            <p class="muted">"Members count through nested groups. Members of the admin group may onboard too, as admins. With an \"Only members of\" group, someone in neither group is offboarded at the next run; joining or leaving the admin group changes the role at the next run or sign-in, whichever comes first, never taking the tenant's last admin."</p>
            <GroupSearch find prefix="" />
            <ActionForm action=groups attr:id="groups-form">
                <label>"Only members of"
                    <select name="scope_group" id="scope-group">
                        <option value="">"Anyone in the domain"</option>
                        {move || options(scope_now.clone())}
                    </select>
                </label>
                <label>"Admins are members of"
                    <select name="admin_group" id="admin-group">
                        <option value="">"Nobody: admins are set by hand"</option>
                        {move || options(admins_now.clone())}
                    </select>
                </label>
                <button type="submit" id="save-groups">"Save groups"</button>
            </ActionForm>
        </section>
    }
}

/// Finds groups of the tenant's Entra ID by the start of their name, and lists them with
/// their kind and user count. `prefix` tells the element ids of two searches on one site
/// apart (`{prefix}group-search-text`, `{prefix}find-groups`, `{prefix}found-groups`).
#[component]
pub fn GroupSearch(find: ServerAction<FindGroups>, prefix: &'static str) -> impl IntoView {
    let found = move || find.value().get().and_then(Result::ok).unwrap_or_default();
    let error = move || {
        find.value().get().and_then(Result::err).map(|e| {
            view! { <p class="flash error" id=format!("{prefix}group-search-error") role="alert">{e.to_string()}</p> }
        })
    };
    view! {
        <ActionForm action=find attr:id=format!("{prefix}group-search")>
            <label>"Find groups whose name starts with"
                <input name="text" id=format!("{prefix}group-search-text") maxlength="120" />
            </label>
            <button type="submit" id=format!("{prefix}find-groups")>"Find"</button>
        </ActionForm>
        {error}
        <ul id=format!("{prefix}found-groups")>
            {move || found().into_iter().map(|g| view! { <li>{g.label()}</li> }).collect_view()}
        </ul>
    }
}

/// How often the reconciler runs, and when a run is held for an admin.
#[component]
fn Schedule(
    minutes: i64,
    shortest: i64,
    count: i64,
    percent: i64,
    schedule: ServerAction<SaveSchedule>,
) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Offboarding"</h2>
            <ActionForm action=schedule attr:class="grid-form" attr:id="schedule-form">
                <label>"Check Entra every (minutes)"
                    <input name="interval_minutes" type="number" min=shortest.to_string() max="1440" value=minutes.to_string() />
                    <small>{if shortest == 1 {
                        "1 minute to 24 hours; 240 is every 4 hours. Microsoft cannot notify this Gatehouse of changes (its public URL is not https), so this schedule is how soon an offboarding happens."
                    } else {
                        "5 minutes to 24 hours; 240 is every 4 hours. Microsoft notifies Gatehouse of changes within seconds; this schedule is the safety net."
                    }}</small>
                </label>
                <label>"Hold a run that offboards more than (users)"
                    <input name="threshold_count" type="number" min="0" value=count.to_string() />
                </label>
                <label>"… and more than (% of users)"
                    <input name="threshold_percent" type="number" min="0" max="100" value=percent.to_string() />
                    <small>"A held run waits for an admin on the Reconciliation page."</small>
                </label>
                <button type="submit" id="save-schedule">"Save schedule"</button>
            </ActionForm>
        </section>
    }
}

/// How the round trip to Microsoft that led to this page ended, until the admin's next action
/// says something of its own.
#[component]
fn RoundTrip(
    n: Notice,
    result: Signal<Option<Result<String, crate::error::AppError>>>,
) -> impl IntoView {
    let (class, role) = if n.ok {
        ("flash ok", "status")
    } else {
        ("flash error", "alert")
    };
    move || {
        result.get().is_none().then(|| {
            view! { <p id="round-trip" class=class role=role>{n.message.clone()}</p> }
        })
    }
}
