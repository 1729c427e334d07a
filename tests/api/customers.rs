//! Customers (issue 29): an MSP admin connects a customer's Entra tenant to Gatehouse's
//! customers app, chooses where accounts are made and for how long, and who may request
//! which role. Every refusal changes nothing; one tenant never sees another's customers.

use crate::emulator::{entra_config, spawn_emulator, Emu};
use crate::helpers::*;
use gatehouse_emulator::{CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID, NORTHWIND_TENANT_ID};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// Fabrikam's admin, Adele Vance, and Northwind's, Nestor Wilke.
pub(crate) const ADELE: &str = "b3a9d2c4-0000-4a8b-9c7d-00000000fa01";
const BEN: &str = "b3a9d2c4-0000-4a8b-9c7d-00000000fa02";
pub(crate) const NESTOR: &str = "c8e4f1a2-0000-4c6e-8f7a-00000000a701";
pub(crate) const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

struct Setup {
    app: TestApp,
    emu: Emu,
    admin: Browser,
}

/// Gatehouse with both its Entra apps on an emulator of its own, tenant `acme` and its admin
/// signed in.
async fn setup() -> Setup {
    let emu = spawn_emulator().await;
    let entra = entra_config(&emu);
    let app = spawn_app_with(move |c| c.entra = entra).await;
    register_callbacks(&emu, &["acme", "globex"]).await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let admin = app.browser(&["acme"]);
    sign_in(&app, &admin, &phone, "acme").await;
    Setup { app, emu, admin }
}

/// Registers the Customers page's callbacks of tenants `slugs` with the customers app (tests
/// run on a random port; the app calls its tenants `http://{slug}.localhost`).
pub(crate) async fn register_callbacks(emu: &Emu, slugs: &[&str]) {
    for slug in slugs {
        for path in ["callback", "consent-callback"] {
            let uri = format!("http://{slug}.localhost/adminportal/customers/{path}");
            let res = emu
                .control(
                    reqwest::Method::POST,
                    &format!(
                        "/_emulator/apps/{}/redirect-uris",
                        emu.customers_app.client_id
                    ),
                    Some(json!({ "uri": uri })),
                )
                .await;
            assert!(res.status().is_success());
        }
    }
}

fn query_of(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Follows a redirect back to the tenant's host, as the admin's browser.
async fn to_tenant(admin: &Browser, slug: &str, location: &str) -> reqwest::Response {
    let url = url::Url::parse(location).unwrap();
    let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    admin.get(slug, &path).await
}

/// Connect a customer → sign in as `user` of Entra tenant `tid` → admin consent there, with
/// the consent's answer changed by `forge`. Returns what the Customers page then says.
pub(crate) async fn connect_as(
    emu: &Emu,
    admin: &Browser,
    slug: &str,
    tid: &str,
    user: &str,
    forge: impl FnOnce(String) -> String,
) -> String {
    let res = admin.get(slug, "/adminportal/customers/authorize").await;
    assert_eq!(res.status(), 303);
    let to_microsoft = res.headers()["location"].to_str().unwrap().to_string();
    let params = query_of(&to_microsoft);
    assert!(
        params
            .iter()
            .any(|(k, v)| k == "client_id" && v == &emu.customers_app.client_id),
        "customers sign in to the customers app, not Gatehouse's own: {to_microsoft}"
    );
    let url = to_microsoft.split('?').next().unwrap();
    let res = emu.pick_and_consent_in(tid, url, &params, user).await;
    assert_eq!(res.status(), 302, "back to Gatehouse with a code");
    let callback = res.headers()["location"].to_str().unwrap().to_string();
    let res = to_tenant(admin, slug, &callback).await;
    assert_eq!(res.status(), 303);
    let consent = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        consent.contains(&format!("/{tid}/v2.0/adminconsent")),
        "{consent}"
    );
    let mut form = query_of(&consent);
    form.push(("account".into(), format!("{tid}/{user}")));
    form.push(("decision".into(), "accept".into()));
    let res = emu
        .http
        .post(consent.split('?').next().unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let back = forge(res.headers()["location"].to_str().unwrap().to_string());
    let res = to_tenant(admin, slug, &back).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/adminportal/customers");
    let page = admin.get(slug, "/adminportal/customers").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    between(&html, "id=\"round-trip\"", "</p>")
        .and_then(|p| p.split_once('>').map(|(_, text)| text.to_string()))
        .unwrap_or_default()
}

async fn connect(s: &Setup, tid: &str, user: &str) -> String {
    connect_as(&s.emu, &s.admin, "acme", tid, user, |back| back).await
}

/// The Customers page's view, as its page reads it.
pub(crate) async fn customers(admin: &Browser, slug: &str) -> Value {
    let (status, body) = admin.call(slug, "customers/get", &[]).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

pub(crate) fn named<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} is listed: {view}"))
}

async fn save(s: &Setup, id: &str, name: &str, domain: &str, minutes: &str) -> (u16, String) {
    s.admin
        .call(
            "acme",
            "customers/save",
            &[
                ("customer", id),
                ("name", name),
                ("domain", domain),
                ("window_minutes", minutes),
            ],
        )
        .await
}

async fn grant(s: &Setup, id: &str, holders: &str, role: &str) -> (u16, String) {
    s.admin
        .call(
            "acme",
            "customers/grant",
            &[("customer", id), ("holders", holders), ("role", role)],
        )
        .await
}

#[tokio::test]
async fn an_admin_connects_fabrikam_and_lets_technicians_request_helpdesk_administrator() {
    let s = setup().await;
    let told = connect(&s, FABRIKAM_TENANT_ID, ADELE).await;
    assert!(told.starts_with("Connected fabrikam.com."), "{told}");

    let view = customers(&s.admin, "acme").await;
    let fabrikam = named(&view, "fabrikam.com");
    assert_eq!(fabrikam["tenant_id"], FABRIKAM_TENANT_ID);
    assert_eq!(fabrikam["health"], "ok");
    assert_eq!(
        fabrikam["domains"],
        json!(["fabrikam.com", "fabrikam.onmicrosoft.com"])
    );
    assert_eq!(fabrikam["domain"], Value::Null, "the admin chooses");
    assert_eq!(fabrikam["window_minutes"], 240, "four hours unless chosen");
    let id = fabrikam["id"].as_str().unwrap().to_string();

    let (status, said) = save(&s, &id, "Fabrikam", "Fabrikam.com", "120").await;
    assert_eq!(status, 200, "{said}");
    assert!(
        said.contains("made in fabrikam.com and stay open 2 hours"),
        "{said}"
    );
    let (status, said) = grant(&s, &id, "technician", HELPDESK_ADMINISTRATOR).await;
    assert_eq!(status, 200, "{said}");
    assert!(
        said.contains("Technicians may now request Helpdesk Administrator at Fabrikam"),
        "{said}"
    );

    let view = customers(&s.admin, "acme").await;
    let fabrikam = named(&view, "Fabrikam");
    assert_eq!(fabrikam["domain"], "fabrikam.com");
    assert_eq!(fabrikam["window_text"], "2 hours");
    assert_eq!(
        fabrikam["grants"],
        json!([{ "holders": "technician", "holders_text": "Technicians",
                 "role_id": HELPDESK_ADMINISTRATOR, "role_name": "Helpdesk Administrator" }])
    );
    let page = s.admin.get("acme", "/adminportal/customers").await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Technicians → Helpdesk Administrator"));
    assert!(html.contains("made in fabrikam.com, open 2 hours at a time"));

    // Consenting again (say, after Microsoft's consent was revoked) keeps the customer and
    // what its admin chose.
    connect(&s, FABRIKAM_TENANT_ID, ADELE).await;
    let view = customers(&s.admin, "acme").await;
    assert_eq!(view["customers"].as_array().unwrap().len(), 1);
    assert_eq!(
        named(&view, "Fabrikam")["grants"].as_array().unwrap().len(),
        1
    );

    let actions = s.app.audit_actions().await;
    for action in [
        "customer.connected",
        "customer.saved",
        "customer.role_granted",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn customers_consent_to_their_own_app_and_the_msps_directory_never_grants_its_permissions() {
    let s = setup().await;
    connect(&s, NORTHWIND_TENANT_ID, NESTOR).await;
    // Northwind consented to the customers app; Contoso (the MSP's own directory) never did,
    // so the app that makes and ends accounts gets no token there.
    let token = |tid: &'static str| {
        let emu = &s.emu;
        async move {
            let res = emu
                .http
                .post(emu.url(&format!("/{tid}/oauth2/v2.0/token")))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", emu.customers_app.client_id.as_str()),
                    ("client_secret", emu.customers_app.secret.expose_secret()),
                    ("scope", "https://graph.microsoft.com/.default"),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = token(NORTHWIND_TENANT_ID).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = token(CONTOSO_TENANT_ID).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    let view = customers(&s.admin, "acme").await;
    assert_eq!(named(&view, "northwindtraders.com")["health"], "ok");
}

#[tokio::test]
async fn bad_settings_and_mappings_are_refused_with_the_reason_and_change_nothing() {
    let s = setup().await;
    connect(&s, FABRIKAM_TENANT_ID, ADELE).await;
    let before = customers(&s.admin, "acme").await;
    let id = named(&before, "fabrikam.com")["id"]
        .as_str()
        .unwrap()
        .to_string();

    for (name, domain, minutes, says) in [
        (
            "Fabrikam",
            "contoso.com",
            "240",
            "contoso.com is not a verified domain of this customer's Entra tenant",
        ),
        ("Fabrikam", "", "240", "is not a verified domain"),
        ("Fabrikam", "fabrikam.com", "14", "from 15 to 720"),
        ("Fabrikam", "fabrikam.com", "721", "from 15 to 720"),
        ("Fabrikam", "fabrikam.com", "4h", "whole number of minutes"),
        ("   ", "fabrikam.com", "240", "1 to 100 characters"),
        ("Fabrikam\nInc", "fabrikam.com", "240", "on one line"),
    ] {
        let (status, said) = save(&s, &id, name, domain, minutes).await;
        assert_eq!(status, 400, "{name:?} {domain} {minutes}: {said}");
        assert!(said.contains(says), "{said} should say {says}");
    }
    for (holders, role, says) in [
        (
            "technician",
            GLOBAL_ADMINISTRATOR,
            "is not an Entra built-in role Gatehouse assigns",
        ),
        (
            "technician",
            "helpdesk",
            "is not an Entra built-in role Gatehouse assigns",
        ),
        ("root", HELPDESK_ADMINISTRATOR, "is not a Gatehouse role"),
    ] {
        let (status, said) = grant(&s, &id, holders, role).await;
        assert_eq!(status, 400, "{holders} {role}: {said}");
        assert!(said.contains(says), "{said} should say {says}");
    }
    let (status, said) = s
        .admin
        .call(
            "acme",
            "customers/withdraw",
            &[
                ("customer", &id),
                ("holders", "technician"),
                ("role", HELPDESK_ADMINISTRATOR),
            ],
        )
        .await;
    assert_eq!(status, 400, "nothing to withdraw: {said}");
    assert_eq!(customers(&s.admin, "acme").await, before, "nothing changed");
}

#[tokio::test]
async fn another_tenants_admin_neither_sees_nor_changes_a_customer() {
    let s = setup().await;
    connect(&s, FABRIKAM_TENANT_ID, ADELE).await;
    let view = customers(&s.admin, "acme").await;
    let id = named(&view, "fabrikam.com")["id"]
        .as_str()
        .unwrap()
        .to_string();

    s.app
        .create_tenant("globex", "Globex MSP", "admin@globex.com")
        .await;
    let phone = s.app.phone_with_email("admin@globex.com").await;
    let other = s.app.browser(&["globex"]);
    sign_in(&s.app, &other, &phone, "globex").await;
    assert_eq!(customers(&other, "globex").await["customers"], json!([]));
    let (status, said) = other
        .call(
            "globex",
            "customers/save",
            &[
                ("customer", &id),
                ("name", "Mine now"),
                ("domain", "fabrikam.com"),
                ("window_minutes", "720"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(said.contains("There is no such customer here."), "{said}");
    let (status, _) = other
        .call(
            "globex",
            "customers/grant",
            &[
                ("customer", &id),
                ("holders", "technician"),
                ("role", HELPDESK_ADMINISTRATOR),
            ],
        )
        .await;
    assert_eq!(status, 400);
    let (status, said) = other
        .call("globex", "customers/disconnect", &[("customer", &id)])
        .await;
    assert_eq!(status, 400);
    assert!(said.contains("There is no such customer here."), "{said}");
    assert_eq!(
        customers(&s.admin, "acme").await,
        view,
        "Acme's customer is as it was"
    );

    // A technician is not an admin: the page's functions refuse them.
    s.app.add_user("acme", "Alex", "alex@acme.com").await;
    let tech_phone = s.app.phone_with_email("alex@acme.com").await;
    let tech = s.app.browser(&["acme"]);
    sign_in(&s.app, &tech, &tech_phone, "acme").await;
    let (status, _) = tech.call("acme", "customers/get", &[]).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_consent_answer_naming_another_tenant_connects_no_customer() {
    let s = setup().await;
    let told = connect_as(
        &s.emu,
        &s.admin,
        "acme",
        FABRIKAM_TENANT_ID,
        ADELE,
        |back| back.replace(FABRIKAM_TENANT_ID, NORTHWIND_TENANT_ID),
    )
    .await;
    assert!(
        told.contains("Consent came back for another Entra tenant"),
        "{told}"
    );
    assert_eq!(customers(&s.admin, "acme").await["customers"], json!([]));
}

#[tokio::test]
async fn only_an_admin_of_the_customers_directory_can_connect_it() {
    let s = setup().await;
    let res = s
        .admin
        .get("acme", "/adminportal/customers/authorize")
        .await;
    let to_microsoft = res.headers()["location"].to_str().unwrap().to_string();
    let params = query_of(&to_microsoft);
    let url = to_microsoft.split('?').next().unwrap();
    let res = s
        .emu
        .pick_and_consent_in(FABRIKAM_TENANT_ID, url, &params, BEN)
        .await;
    let callback = res.headers()["location"].to_str().unwrap().to_string();
    let res = to_tenant(&s.admin, "acme", &callback).await;
    let consent = res.headers()["location"].to_str().unwrap().to_string();
    let mut form = query_of(&consent);
    form.push(("account".into(), format!("{FABRIKAM_TENANT_ID}/{BEN}")));
    form.push(("decision".into(), "accept".into()));
    let res = s
        .emu
        .http
        .post(consent.split('?').next().unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "Ben is no admin: Microsoft refuses the grant"
    );
    assert_eq!(customers(&s.admin, "acme").await["customers"], json!([]));
}
