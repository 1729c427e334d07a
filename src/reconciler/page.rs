use super::api::{reconciliation, DecideHeld, ReconcileView, SyncNow};
use crate::ui::{AdminLayout, Outcome};
use leptos::prelude::*;

/// Reconciliation: last and next run, Sync now, a dry-run preview, held runs, history.
#[component]
pub fn ReconciliationPage() -> impl IntoView {
    let sync = ServerAction::<SyncNow>::new();
    let decide = ServerAction::<DecideHeld>::new();
    let view_data = Resource::new(
        move || (sync.version().get(), decide.version().get()),
        |_| reconciliation(),
    );
    let result = Signal::derive(move || decide.value().get().or_else(|| sync.value().get()));
    view! {
        <AdminLayout current="reconcile">
            <h1>"Reconciliation"</h1>
            <Outcome result />
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match view_data.await {
                        Ok(v) => view! { <Status v sync decide /> }.into_any(),
                        Err(e) => view! { <p class="flash error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </AdminLayout>
    }
}

#[component]
fn Status(
    v: ReconcileView,
    sync: ServerAction<SyncNow>,
    decide: ServerAction<DecideHeld>,
) -> impl IntoView {
    if !v.connected {
        return view! {
            <section class="card">
                <p id="not-connected">"This tenant keeps its own users. Connect Microsoft Entra ID under "
                    <a href="/adminportal/user-source">"Users → User source"</a>
                    " and Gatehouse offboards anyone removed or disabled there."</p>
            </section>
        }
        .into_any();
    }
    let last = v.runs.first().cloned();
    let pending = sync.pending();
    let problem = v.problem.clone();
    view! {
        {problem.map(|p| view! { <p class="flash error" id="entra-problem" role="alert">{p}</p> })}
        <section class="card">
            <dl>
                <dt>"Last run"</dt>
                <dd id="last-run">{last.as_ref().map(|r| format!("{} · {} · {} request(s), {} checked, {} offboarded", r.started, r.outcome, r.graph_requests, r.users_checked, r.offboarded)).unwrap_or_else(|| "never".into())}</dd>
                <dt>"Last complete check"</dt>
                <dd id="last-check">{v.last_check.clone().unwrap_or_else(|| "never".into())}</dd>
                <dt>"Next run"</dt><dd>{v.next_run.clone().unwrap_or_else(|| "within a minute".into())}</dd>
                <dt>"Schedule"</dt><dd>{v.interval.clone()}</dd>
                <dt>"Change notifications"</dt>
                <dd id="notifications">{match &v.notifications {
                    Some(n) => format!(
                        "live: Microsoft tells Gatehouse of changes within seconds (subscription {}, renewed until {}; last heard {})",
                        n.subscription,
                        n.expires,
                        n.last_heard.clone().unwrap_or_else(|| "never".into())
                    ),
                    None => "off: changes are found by the scheduled runs only (Gatehouse subscribes when its public URL is https)".into(),
                }}</dd>
                <dt>"Safety"</dt><dd>{v.threshold.clone()}</dd>
            </dl>
            <p>
                <button type="button" id="sync-now" disabled=move || pending.get()
                    on:click=move |_| { sync.dispatch(SyncNow { dry_run: false }); }>"Sync now"</button>
                " "
                <button type="button" class="small" id="preview" disabled=move || pending.get()
                    on:click=move |_| { sync.dispatch(SyncNow { dry_run: true }); }>"Preview (dry run)"</button>
            </p>
        </section>
        {v.held.into_iter().map(|h| {
            let id = h.run_id;
            let seen = h.users.len();
            view! {
                <section class="card held" data-run=id>
                    <h2>{format!("Held run {} ({})", h.run_id, h.started)}</h2>
                    <p>"These offboardings exceed the deletion threshold. Nothing happens until you decide."</p>
                    <p class="hint">"Approving first looks up each of these users in Entra ID again: only those still deleted or disabled there are offboarded; anyone restored or re-enabled meanwhile keeps their access. Rejecting offboards nobody, and the next run sees the same changes again."</p>
                    <ul>{h.users.into_iter().map(|(u, why)| view! { <li>{format!("{u}: {why}")}</li> }).collect_view()}</ul>
                    <button type="button" class="approve" on:click=move |_| { decide.dispatch(DecideHeld { run_id: id, approve: true, seen }); }>"Approve: check again, then offboard"</button>
                    " "
                    <button type="button" class="small reject" on:click=move |_| { decide.dispatch(DecideHeld { run_id: id, approve: false, seen }); }>"Reject: offboard nobody"</button>
                </section>
            }
        }).collect_view()}
        <section class="card">
            <h2>"Time to revoke"</h2>
            <p id="time-to-revoke">{match &v.time_to_revoke {
                Some(t) => format!(
                    "From the change first seen to access ended, over the last 30 days: p50 {}, p95 {} ({} offboarding(s)).",
                    t.p50, t.p95, t.count
                ),
                None => "Nobody was offboarded in the last 30 days.".into(),
            }}</p>
            <p class="hint">"First seen: when Microsoft's notification arrived, or when the run that found the change began. Decided: when that run offboarded the user. Access ended: every sign-in and phone binding gone, open pages sent to the sign-in page. Accounts at customers: when Microsoft confirmed each was ended (roles removed, sessions revoked, disabled)."</p>
            {(!v.offboardings.is_empty()).then(|| view! {
                <table id="offboardings">
                    <thead><tr><th>"User"</th><th>"Why"</th><th>"First seen"</th><th>"Decided"</th><th>"Access ended"</th><th>"Accounts at customers ended"</th></tr></thead>
                    <tbody>
                        {v.offboardings.into_iter().map(|o| view! {
                            <tr>
                                <td>{o.user}</td><td>{o.reason}</td><td>{o.seen}</td><td>{o.decided_after}</td>
                                <td>{o.ended_after.unwrap_or_else(|| "ending…".into())}</td>
                                <td class="customer-ends">{if o.customer_accounts.is_empty() { "none".to_string() } else { o.customer_accounts.join("; ") }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
        <section class="card">
            <h2>"History"</h2>
            <table id="runs">
                <thead><tr><th>"Started"</th><th>"Trigger"</th><th>"Outcome"</th><th>"Requests"</th><th>"Checked"</th><th>"Offboarded"</th><th>"Error"</th></tr></thead>
                <tbody>
                    {v.runs.into_iter().map(|r| view! {
                        <tr data-outcome=r.outcome.as_str()>
                            <td>{r.started}</td><td>{r.trigger}</td><td>{r.outcome.as_str()}</td><td>{r.graph_requests}</td>
                            <td>{r.users_checked}</td><td>{r.offboarded}</td><td>{r.error.unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}
