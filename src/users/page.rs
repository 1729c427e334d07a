use super::api::{
    list_users, suggest_username, user_sessions, ActOnUser, AddUser, RevokeSession, UserRow,
};
use crate::devices::page::Phones;
use crate::domain::{Role, UserStatus};
use crate::ui::{AdminLayout, Outcome};
use leptos::prelude::*;

/// Users → User management.
#[component]
pub fn UsersPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let act = ServerAction::<ActOnUser>::new();
    let revoke = ServerAction::<RevokeSession>::new();
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                act.version().get(),
                revoke.version().get(),
            )
        },
        |_| list_users(),
    );
    let last = crate::ui::latest(vec![act.value().into(), add.value().into()]);
    let email = RwSignal::new(String::new());
    // An accepted invitation empties the form for the next one; a refused one keeps the input.
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = add.value().get() {
            if let Some(f) = form.get() {
                f.reset();
                email.set(String::new());
            }
        }
    });
    let suggestion = Resource::new(
        move || email.get(),
        |e| async move {
            if e.contains('@') {
                suggest_username(e).await.unwrap_or_default()
            } else {
                String::new()
            }
        },
    );
    view! {
        <AdminLayout current="users">
            <h1>"User management"</h1>
            <Outcome result=last />
            <section class="card">
                <h2>"Add a user"</h2>
                <ActionForm action=add node_ref=form attr:class="grid-form" attr:id="add-user">
                    <label>"First name" <input name="first_name" required autocomplete="off" /></label>
                    <label>"Last name" <input name="last_name" required autocomplete="off" /></label>
                    <label>"Work email"
                        <input name="email" type="email" required autocomplete="off"
                            on:input=move |ev| email.set(event_target_value(&ev)) />
                    </label>
                    <label>"Username"
                        <Transition fallback=|| ()>
                            {move || Suspend::new(async move {
                                let s = suggestion.await;
                                view! { <input name="username" placeholder=s maxlength="20" autocomplete="off" /> }
                            })}
                        </Transition>
                        <small>"Leave empty to use the suggested JIT account name."</small>
                    </label>
                    <button type="submit">"Invite user"</button>
                </ActionForm>
            </section>
            <section class="card">
                <h2>"Users"</h2>
                <Transition fallback=|| view! { <p>"Loading users…"</p> }>
                    {move || Suspend::new(async move {
                        match users.await {
                            Ok(rows) => view! { <UserTable rows act revoke /> }.into_any(),
                            Err(e) => view! { <p class="flash error">{e.to_string()}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        </AdminLayout>
    }
}

#[component]
fn UserTable(
    rows: Vec<UserRow>,
    act: ServerAction<ActOnUser>,
    revoke: ServerAction<RevokeSession>,
) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p>"No users yet."</p> }.into_any();
    }
    view! {
        <table class="users" id="users">
            <thead>
                <tr>
                    <th>"Name"</th><th>"Email"</th><th>"Username"</th><th>"Role"</th>
                    <th>"Status"</th><th>"Last login"</th><th>"Actions"</th>
                </tr>
            </thead>
            <tbody>
                {rows.into_iter().map(|u| view! { <UserLine u act revoke /> }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn UserLine(
    u: UserRow,
    act: ServerAction<ActOnUser>,
    revoke: ServerAction<RevokeSession>,
) -> impl IntoView {
    let show_sessions = RwSignal::new(false);
    let show_phones = RwSignal::new(false);
    let id = u.id.clone();
    let button = move |action: &'static str, label: &'static str, confirm: Option<String>| {
        let id = id.clone();
        view! {
            <button type="button" class="small" data-action=action
                on:click=move |_| {
                    if let Some(q) = &confirm {
                        if !window().confirm_with_message(q).unwrap_or(false) { return; }
                    }
                    act.dispatch(ActOnUser { user_id: id.clone(), action: action.to_string() });
                }>
                {label}
            </button>
        }
    };
    let status = u.status;
    let admin = u.role == Role::Admin;
    let actions = view! {
        {matches!(status, UserStatus::Active | UserStatus::Invited).then(|| button("disable", "Disable", Some(format!("Disable {} and end all their sessions? Their phones are revoked here too: after re-enabling, they set up the app anew.", u.username))))}
        {(status == UserStatus::Disabled).then(|| button("enable", "Re-enable", None))}
        {(status == UserStatus::Disabled).then(|| button("delete", "Delete", Some(format!("Delete {} for good?", u.username))))}
        {(!admin).then(|| button("make_admin", "Make admin", None))}
        {admin.then(|| button("make_technician", "Make technician", None))}
        <button type="button" class="small" on:click=move |_| show_sessions.update(|s| *s = !*s)>"Sessions"</button>
        <button type="button" class="small" data-action="phones" on:click=move |_| show_phones.update(|s| *s = !*s)>"Phones"</button>
    };
    let user_id = u.id.clone();
    let phones_of = u.id.clone();
    let username = u.username.clone();
    view! {
        <tr data-email=u.email.clone() data-status=u.status.as_str()>
            <td>{u.display_name.clone()}</td>
            <td>{u.email.clone()}</td>
            <td class="mono">{u.username.clone()}</td>
            <td>{u.role.as_str()}</td>
            <td>
                <span class=format!("status {}", u.status)>{u.status.as_str()}</span>
                {u.offboarded.clone().map(|why| view! { <div class="muted small offboarded-why">{why}</div> })}
            </td>
            <td>{u.last_login.clone().unwrap_or_else(|| "never".into())}</td>
            <td class="actions">{actions}</td>
        </tr>
        {move || show_sessions.get().then(|| view! {
            <tr class="sessions-row"><td colspan="7"><Sessions user_id=user_id.clone() revoke /></td></tr>
        })}
        {move || show_phones.get().then(|| view! {
            <tr class="phones-row"><td colspan="7"><Phones user_id=phones_of.clone() username=username.clone() /></td></tr>
        })}
    }
}

#[component]
fn Sessions(user_id: String, revoke: ServerAction<RevokeSession>) -> impl IntoView {
    let sessions = Resource::new(
        move || revoke.version().get(),
        move |_| user_sessions(user_id.clone()),
    );
    view! {
        <Transition fallback=|| view! { <p>"Loading sessions…"</p> }>
            {move || Suspend::new(async move {
                match sessions.await {
                    Ok(list) if list.is_empty() => view! { <p>"No signed-in sessions."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="sessions">
                            {list.into_iter().map(|s| {
                                let id = s.id.clone();
                                view! {
                                    <li>
                                        {format!("Since {} · last seen {} · {} · {}", s.started, s.last_seen, s.ip, s.user_agent)}
                                        " "
                                        <button type="button" class="small"
                                            on:click=move |_| { revoke.dispatch(RevokeSession { session_id: id.clone() }); }>
                                            "Revoke"
                                        </button>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(e) => view! { <p class="flash error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
