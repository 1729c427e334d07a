use super::api::{
    get_customers, take_notice, CustomerView, DisconnectCustomer, GrantRole, ProveCustomers,
    SaveCustomer, WithdrawRole,
};
use super::view::GROUP_PREFIX;
use crate::domain::{CustomerHealth, Role};
use crate::error::AppError;
use crate::ui::{latest, AdminLayout, Outcome};
use crate::user_source::api::{FindGroups, Notice};
use crate::user_source::page::GroupSearch;
use leptos::prelude::*;

/// The permissions the customers app asks of each customer, and why: said where the admin
/// decides to connect one.
const PERMISSIONS: &[(&str, &str)] = &[
    (
        "User.Read.All",
        "find an account of the same name Gatehouse did not make",
    ),
    ("User.Create", "make a technician's account"),
    ("User.EnableDisableAccount.All", "open and close it"),
    (
        "User-PasswordProfile.ReadWrite.All",
        "give it a password nobody keeps",
    ),
    (
        "User.RevokeSessions.All",
        "end its sign-ins when access ends",
    ),
    (
        "UserAuthenticationMethod.ReadWrite.All",
        "make and remove its Temporary Access Pass",
    ),
    (
        "Policy.Read.AuthenticationMethod",
        "learn whether the customer allows passes",
    ),
    (
        "RoleManagement.ReadWrite.Directory",
        "assign and remove the mapped roles",
    ),
    (
        "Domain.Read.All",
        "list the domains accounts can be made in",
    ),
];

/// Tenant → Customers.
#[component]
pub fn CustomersPage() -> impl IntoView {
    let save = ServerAction::<SaveCustomer>::new();
    let grant = ServerAction::<GrantRole>::new();
    let withdraw = ServerAction::<WithdrawRole>::new();
    let prove = ServerAction::<ProveCustomers>::new();
    let disconnect = ServerAction::<DisconnectCustomer>::new();
    let find = ServerAction::<FindGroups>::new();
    let customers = Resource::new(
        move || {
            (
                save.version().get(),
                grant.version().get(),
                withdraw.version().get(),
                prove.version().get(),
                disconnect.version().get(),
            )
        },
        |_| get_customers(),
    );
    let notice = Resource::new(|| (), |_| take_notice());
    let result = latest(vec![
        save.value().into(),
        grant.value().into(),
        withdraw.value().into(),
        disconnect.value().into(),
        Signal::derive(move || {
            prove.value().get().map(|r| {
                r.map(|waiting| match waiting {
                    0 => "Every consent is applied.".to_string(),
                    n => format!("{n} consent(s) still wait for Microsoft."),
                })
            })
        }),
    ]);
    view! {
        <AdminLayout current="customers">
            <h1>"Customers"</h1>
            <Outcome result />
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let notice = notice.await.ok().flatten();
                    match customers.await {
                        Ok(v) => {
                            let roles = v.offered_roles.clone();
                            let waiting = v.customers.iter().any(|c| c.health == CustomerHealth::Waiting);
                            let groups = group_options(&v.customers, find);
                            view! {
                                {notice.map(|n| view! { <RoundTrip n result /> })}
                                <Connect configured=v.app_configured />
                                {waiting.then(|| view! {
                                    <ActionForm action=prove attr:id="check-consents">
                                        <button type="submit" id="check-consent">"Check the waiting consents now"</button>
                                    </ActionForm>
                                })}
                                {v.customers.is_empty().then(|| view! {
                                    <p class="muted" id="no-customers">"No customer is connected yet."</p>
                                })}
                                {v.msp_groups.then(|| view! { <FindMspGroups find /> })}
                                {v.customers.into_iter().map(|c| view! {
                                    <Customer c roles=roles.clone() groups save grant withdraw disconnect />
                                }).collect_view()}
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

/// The MSP's Entra groups a mapping can name: those some mapping names already, then what
/// the last search found. (value as the form sends it, name.)
fn group_options(
    customers: &[CustomerView],
    find: ServerAction<FindGroups>,
) -> Signal<Vec<(String, String)>> {
    let mut mapped: Vec<(String, String)> = Vec::new();
    for g in customers.iter().flat_map(|c| &c.grants) {
        if g.holders.starts_with(GROUP_PREFIX) && !mapped.iter().any(|(v, _)| *v == g.holders) {
            mapped.push((g.holders.clone(), g.holders_text.clone()));
        }
    }
    Signal::derive(move || {
        let mut all = mapped.clone();
        for g in find.value().get().and_then(Result::ok).unwrap_or_default() {
            let value = format!("{GROUP_PREFIX}{}", g.id);
            if !all.iter().any(|(v, _)| *v == value) {
                all.push((value, format!("Members of \"{}\"", g.name)));
            }
        }
        all
    })
}

/// Finds groups of the MSP's own Entra ID by name, for the mappings below.
#[component]
fn FindMspGroups(find: ServerAction<FindGroups>) -> impl IntoView {
    view! {
        <section class="card" id="msp-groups">
            <h2>"Groups of your Entra ID"</h2>
            <p>"A mapping can let the members of a group in your own Entra ID request a role (nested groups count). Find the group here; it is then offered under \"Holders of\". Gatehouse asks Microsoft at every request whether the technician is in it, and a reconciliation run that finds them gone ends what only the group kept open."</p>
            <GroupSearch find prefix="msp-" />
        </section>
    }
}

/// How to connect a customer, and what Gatehouse will be allowed to do there.
#[component]
fn Connect(configured: bool) -> impl IntoView {
    view! {
        <section class="card" id="connect-customer">
            <p>
                "Technicians get admin accounts in your customers' Microsoft Entra tenants on request, for a window, and lose them the moment their access to Gatehouse ends. Connect a customer by signing in as one of its Entra admins and granting Gatehouse's customers app these application permissions:"
            </p>
            <ul id="customer-permissions">
                {PERMISSIONS.iter().map(|(p, why)| view! { <li><code>{*p}</code>": "{*why}</li> }).collect_view()}
            </ul>
            <p class="muted">
                "RoleManagement.ReadWrite.Directory would let the app assign any role, to anyone: Gatehouse only ever assigns the roles your mapping names, to accounts it made itself, and never Global Administrator or the privileged role and authentication administrators (an account with one could lock Gatehouse out and outlive its technician)."
            </p>
            {(!configured).then(|| view! {
                <p class="flash error" id="customers-app-missing">"No customers app is configured for this Gatehouse: register a second Entra app with these permissions and set ENTRA_CUSTOMERS_CLIENT_ID and ENTRA_CUSTOMERS_CLIENT_SECRET."</p>
            })}
            <p>
                <a class="button" id="connect" href="/adminportal/customers/authorize" rel="external">"Connect a customer"</a>
            </p>
        </section>
    }
}

/// One customer: its connection, its settings and its role mapping.
#[component]
fn Customer(
    c: CustomerView,
    roles: Vec<(String, String)>,
    groups: Signal<Vec<(String, String)>>,
    save: ServerAction<SaveCustomer>,
    grant: ServerAction<GrantRole>,
    withdraw: ServerAction<WithdrawRole>,
    disconnect: ServerAction<DisconnectCustomer>,
) -> impl IntoView {
    let health_class = if c.health == CustomerHealth::Ok {
        "ok"
    } else {
        "flash error"
    };
    let disconnected = c.health == CustomerHealth::Disconnected;
    let (disconnect_id, disconnect_label) = (c.id.clone(), format!("Disconnect {}", c.name));
    let connected = !disconnected && (c.health == CustomerHealth::Ok || !c.domains.is_empty());
    let chosen = c.domain.clone().unwrap_or_default();
    let summary = match &c.domain {
        Some(d) => format!("made in {d}, open {} at a time", c.window_text),
        None => "no domain chosen yet: nobody can request access here".to_string(),
    };
    let none_chosen = c.domain.is_none();
    let domain_options = c
        .domains
        .iter()
        .map(|d| view! { <option value=d.clone() selected=*d == chosen>{d.clone()}</option> })
        .collect_view();
    let role_options = roles
        .into_iter()
        .map(|(rid, name)| view! { <option value=rid>{name}</option> })
        .collect_view();
    let nobody = c.grants.is_empty();
    let customer_id = c.id.clone();
    let grant_lines = c
        .grants
        .iter()
        .map(|g| {
            let (id, holders, role) = (customer_id.clone(), g.holders.clone(), g.role_id.clone());
            let line = format!("{} → {}", g.holders_text, g.role_name);
            view! {
                <li>
                    {line}" "
                    <ActionForm action=withdraw attr:class="inline">
                        <input type="hidden" name="customer" value=id />
                        <input type="hidden" name="holders" value=holders />
                        <input type="hidden" name="role" value=role />
                        <button type="submit" class="link">"Withdraw"</button>
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    let accounts = c
        .accounts
        .iter()
        .map(|a| {
            let class = if a.text.contains("retrying") { "flash error" } else { "" };
            view! {
                <li class=format!("account {class}") data-upn=a.upn.clone() data-state=a.state.clone()>
                    <span class="mono">{a.upn.clone()}</span>
                    {format!(" ({}): {}", a.owner, a.text)}
                </li>
            }
        })
        .collect_view();
    let no_accounts = c.accounts.is_empty();
    let (id, name, window) = (c.id.clone(), c.name.clone(), c.window_minutes.to_string());
    let settings = connected.then(move || {
        let id_again = id.clone();
        view! {
            <ActionForm action=save attr:class="grid-form customer-settings">
                <input type="hidden" name="customer" value=id_again />
                <label>"Name"
                    <input name="name" maxlength="100" value=name />
                </label>
                <label>"Accounts are made in"
                    <select name="domain">
                        {none_chosen.then(|| view! { <option value="" selected=true>"Choose a domain"</option> })}
                        {domain_options}
                    </select>
                </label>
                <label>"Open for (minutes)"
                    <input name="window_minutes" type="number" min="15" max="720" value=window />
                    <small>"15 minutes to 12 hours; 240 is 4 hours. Then the account is disabled and its roles removed."</small>
                </label>
                <button type="submit">"Save"</button>
            </ActionForm>
            <h3>"Who may request which role"</h3>
            {nobody.then(|| view! { <p class="muted">"Nobody yet."</p> })}
            <ul class="grants">{grant_lines}</ul>
            <ActionForm action=grant attr:class="grid-form grant-form">
                <input type="hidden" name="customer" value=id />
                <label>"Holders of"
                    <select name="holders">
                        <option value=Role::Technician.as_str()>"Technicians"</option>
                        <option value=Role::Admin.as_str()>"Admins"</option>
                        {move || groups.get().into_iter().map(|(value, name)| view! { <option value=value>{name}</option> }).collect_view()}
                    </select>
                </label>
                <label>"may request"
                    <select name="role">{role_options}</select>
                </label>
                <button type="submit">"Allow"</button>
            </ActionForm>
        }
    });
    view! {
        <section class="card customer" data-customer=c.name.clone() data-tenant=c.tenant_id.clone()>
            <h2>{c.name.clone()}</h2>
            <dl>
                <dt>"Entra tenant"</dt><dd class="mono">{c.tenant_id.clone()}</dd>
                <dt>"Consent"</dt><dd>{c.consented.clone()}</dd>
                <dt>"Health"</dt><dd class=format!("customer-health {health_class}")>{c.health_text.clone()}</dd>
                <dt>"Accounts"</dt>
                <dd class="customer-settings-summary">{summary}</dd>
            </dl>
            <h3>"Open accounts"</h3>
            {no_accounts.then(|| view! { <p class="muted">"No account is open here."</p> })}
            <ul class="accounts">{accounts}</ul>
            {settings}
            {(!disconnected).then(move || view! {
                <ActionForm action=disconnect attr:class="disconnect-form">
                    <input type="hidden" name="customer" value=disconnect_id />
                    <p class="muted">"Disconnecting opens nothing more here and ends every account open here now."</p>
                    <button type="submit" class="danger disconnect">{disconnect_label}</button>
                </ActionForm>
            })}
        </section>
    }
}

/// How the round trip to Microsoft that led to this page ended, until the admin's next action
/// says something of its own.
#[component]
fn RoundTrip(n: Notice, result: Signal<Option<Result<String, AppError>>>) -> impl IntoView {
    let (class, role) = if n.ok {
        ("flash ok", "status")
    } else {
        ("flash error", "alert")
    };
    move || {
        result
            .get()
            .is_none()
            .then(|| view! { <p id="round-trip" class=class role=role>{n.message.clone()}</p> })
    }
}
