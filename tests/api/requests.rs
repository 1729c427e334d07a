//! A technician's request for access at a customer, as the home page makes it (issue 29):
//! what they may request, "Request access", their own phone approving it by number matching,
//! and the page that asked collecting the opened account and its credential, once.

use crate::customers::ADELE;
use crate::customers::{named, HELPDESK_ADMINISTRATOR};
use crate::emulator::{ALEX, MEGAN};
use crate::helpers::*;
use crate::jit::{
    account_at, accounts_of, assert_not_stored, customer_id, msp_with, roles_at, sign_in_at,
    USER_ADMINISTRATOR,
};
use crate::reconcile::World;
use gatehouse_emulator::FABRIKAM_TENANT_ID;
use serde_json::Value;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything this test process logs from the first call on (every test's, Gatehouse at
/// debug), kept in memory as the log an operator would ship. Installed once, as the global
/// subscriber.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,sqlx=info,hyper=info,hyper_util=info,h2=info,rustls=info,tower=info",
            ))
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init()
            .expect("the only subscriber of the test process");
        buffer
    })
    .clone()
}

/// What "Request access" answered: the request id and the number the phone must pick.
struct Asked {
    request: String,
    match_number: i64,
}

fn technician<'a>(w: &'a World, oid: &str) -> &'a Technician {
    &w.technicians[oid]
}

async fn ask(w: &World, oid: &str, customer: &str, roles: &str) -> Result<Asked, String> {
    let (status, body) = technician(w, oid)
        .browser
        .call(
            "acme",
            "access/request",
            &[("customer", customer), ("roles", roles)],
        )
        .await;
    if status != 200 {
        return Err(format!("{status} {body}"));
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["qr_svg"].as_str().unwrap().contains("<svg"),
        "a code to scan: {v}"
    );
    Ok(Asked {
        request: v["request"].as_str().unwrap().to_string(),
        match_number: v["match_number"].as_i64().unwrap(),
    })
}

/// What the page that asked learns when it comes back: `Waiting`, `Opened` (with the
/// account and credential) or the refusal.
async fn collect(w: &World, oid: &str, request: &str) -> (u16, Value) {
    let (status, body) = technician(w, oid)
        .browser
        .call("acme", "access/collect", &[("request", request)])
        .await;
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, v)
}

async fn approve(w: &World, phone_of: &str, asked: &Asked) -> reqwest::Response {
    technician(w, phone_of)
        .phone
        .approve(&w.app, "acme", &asked.request, asked.match_number)
        .await
}

#[tokio::test]
async fn a_request_approved_on_the_phone_opens_the_account_and_shows_its_pass_once() {
    let logged = logs();
    let w = msp_with(&[ALEX], &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")]).await;
    let fabrikam = customer_id(&w, "fabrikam.com").await;

    // The home page offers Fabrikam with the mapped role.
    let (status, body) = technician(&w, ALEX)
        .browser
        .call("acme", "access/offers", &[])
        .await;
    assert_eq!(status, 200, "{body}");
    let offers: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(offers[0]["customer"], "fabrikam.com");
    assert_eq!(offers[0]["roles"][0][1], "Helpdesk Administrator");
    assert!(offers[0]["open"].is_null());

    let asked = ask(&w, ALEX, &fabrikam, HELPDESK_ADMINISTRATOR)
        .await
        .unwrap();
    // The phone names the customer, the account and the role before anyone approves.
    let info: Value = w
        .app
        .base_client()
        .get(
            w.app
                .api(&format!("/challenges/{}?tenant=acme", asked.request)),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["access"]["customer"], "fabrikam.com", "{info}");
    assert_eq!(info["access"]["account"], "msp-alex@fabrikam.com");
    assert_eq!(info["access"]["roles"][0], "Helpdesk Administrator");
    assert_eq!(info["access"]["window_minutes"], 240);

    // Nothing is made before the phone approves.
    let (status, waiting) = collect(&w, ALEX, &asked.request).await;
    assert_eq!(status, 200);
    assert!(waiting.get("Waiting").is_some(), "{waiting}");
    assert!(account_at(&w, FABRIKAM_TENANT_ID, "msp-alex@fabrikam.com")
        .await
        .is_none());

    let res = approve(&w, ALEX, &asked).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (status, opened) = collect(&w, ALEX, &asked.request).await;
    assert_eq!(status, 200, "{opened}");
    let opened = &opened["Opened"];
    assert_eq!(opened["upn"], "msp-alex@fabrikam.com");
    assert_eq!(opened["kind"], "pass");
    assert!(
        opened["sign_in_url"]
            .as_str()
            .unwrap()
            .ends_with("/fabrikam.com/signin"),
        "the emulator's sign-in page for Fabrikam: {opened}"
    );
    assert_eq!(opened["role_names"][0], "Helpdesk Administrator");
    let pass = opened["secret"].as_str().unwrap().to_string();
    assert_eq!(
        sign_in_at(&w.emu, FABRIKAM_TENANT_ID, "msp-alex@fabrikam.com", &pass).await,
        204,
        "the pass shown signs in at Fabrikam"
    );
    assert_eq!(
        roles_at(&w, FABRIKAM_TENANT_ID, "msp-alex@fabrikam.com").await,
        1
    );

    // The page coming back again gets no second look at it, and opens nothing.
    let (status, again) = collect(&w, ALEX, &asked.request).await;
    assert_eq!(status, 400);
    assert!(again.to_string().contains("used already"), "{again}");
    assert_eq!(w.app.audited("jit.opened").await, 1);
    assert_eq!(w.app.audited("jit.approved").await, 1);
    assert_not_stored(&w, &pass).await;
    let logged = String::from_utf8_lossy(&logged.lock().unwrap()).to_string();
    assert!(
        logged.contains("/api/access/collect"),
        "the log has the requests that showed the pass"
    );
    assert!(!logged.contains(&pass), "the pass is in the log");

    // The home page now shows the account open, with its end.
    let (_, body) = technician(&w, ALEX)
        .browser
        .call("acme", "access/offers", &[])
        .await;
    let offers: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        offers[0]["open"]["upn"], "msp-alex@fabrikam.com",
        "{offers}"
    );
}

#[tokio::test]
async fn a_replayed_phone_approval_makes_nothing() {
    let w = msp_with(&[ALEX], &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")]).await;
    let fabrikam = customer_id(&w, "fabrikam.com").await;
    let asked = ask(&w, ALEX, &fabrikam, HELPDESK_ADMINISTRATOR)
        .await
        .unwrap();
    // The very request the phone sent, captured and sent again.
    let phone = &technician(&w, ALEX).phone;
    let jws = phone.sign(serde_json::json!({
        "purpose": "approve", "device_id": phone.id(), "tenant": "acme",
        "challenge": asked.request, "number": asked.match_number
    }));
    let send = || async {
        w.app
            .base_client()
            .post(w.app.api(&format!("/challenges/{}/approve", asked.request)))
            .json(&serde_json::json!({ "jws": jws }))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(send().await.status(), 200);
    let (status, _) = collect(&w, ALEX, &asked.request).await;
    assert_eq!(status, 200);
    assert_eq!(accounts_of(&w, ALEX).await.len(), 1);

    let (status, code, _) = error_code(send().await).await;
    assert_eq!((status, code.as_str()), (409, "challenge_used"));
    let (status, _) = collect(&w, ALEX, &asked.request).await;
    assert_eq!(status, 400, "the approval was used");
    assert_eq!(w.app.audited("jit.opened").await, 1, "opened once");
    assert_eq!(w.app.audited("jit.approved").await, 1);
}

#[tokio::test]
async fn only_the_requesters_phone_approves_and_only_the_asking_session_collects() {
    let w = msp_with(
        &[ALEX, MEGAN],
        &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")],
    )
    .await;
    let fabrikam = customer_id(&w, "fabrikam.com").await;
    let asked = ask(&w, ALEX, &fabrikam, HELPDESK_ADMINISTRATOR)
        .await
        .unwrap();

    // Megan's session cannot see Alex's request.
    let (status, told) = collect(&w, MEGAN, &asked.request).await;
    assert_eq!(status, 400);
    assert!(told.to_string().contains("no such request"), "{told}");

    // Megan's phone scanning the code on Alex's screen is refused, and the request with it.
    let (status, code, _) = error_code(approve(&w, MEGAN, &asked).await).await;
    assert_eq!((status, code.as_str()), (403, "not_requester"));
    let (status, told) = collect(&w, ALEX, &asked.request).await;
    assert_eq!(status, 400);
    assert!(told.to_string().contains("refused"), "{told}");
    let (status, code, _) = error_code(approve(&w, ALEX, &asked).await).await;
    assert_eq!((status, code.as_str()), (409, "challenge_used"));
    assert!(accounts_of(&w, ALEX).await.is_empty());
    assert!(account_at(&w, FABRIKAM_TENANT_ID, "msp-alex@fabrikam.com")
        .await
        .is_none());
}

#[tokio::test]
async fn a_role_the_mapping_does_not_allow_is_refused_before_the_phone_is_asked() {
    let w = msp_with(&[ALEX], &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")]).await;
    let fabrikam = customer_id(&w, "fabrikam.com").await;
    let refused = ask(&w, ALEX, &fabrikam, USER_ADMINISTRATOR)
        .await
        .err()
        .expect("refused");
    assert!(refused.starts_with("400"), "{refused}");
    assert!(
        refused.contains("may not request User Administrator"),
        "{refused}"
    );
    assert_eq!(w.app.audited("jit.refused").await, 1);
    for (customer, roles, says) in [
        (
            "no-such-customer",
            HELPDESK_ADMINISTRATOR,
            "no such customer",
        ),
        (fabrikam.as_str(), "not-a-role", "not-a-role"),
        (fabrikam.as_str(), "", "at least one role"),
    ] {
        let refused = ask(&w, ALEX, customer, roles).await.err().expect("refused");
        assert!(
            refused.starts_with("400") && refused.contains(says),
            "{customer} {roles}: {refused}"
        );
    }
    let (status, _) = collect(&w, ALEX, "no-such-request").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn show_again_is_a_new_approval_and_a_new_pass_and_the_old_one_stops_working() {
    let w = msp_with(&[ALEX], &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")]).await;
    let fabrikam = customer_id(&w, "fabrikam.com").await;
    let mut passes = Vec::new();
    for _ in 0..2 {
        let asked = ask(&w, ALEX, &fabrikam, HELPDESK_ADMINISTRATOR)
            .await
            .unwrap();
        assert_eq!(approve(&w, ALEX, &asked).await.status(), 200);
        let (status, opened) = collect(&w, ALEX, &asked.request).await;
        assert_eq!(status, 200, "{opened}");
        passes.push(opened["Opened"]["secret"].as_str().unwrap().to_string());
    }
    assert_ne!(passes[0], passes[1]);
    let upn = "msp-alex@fabrikam.com";
    assert_eq!(
        sign_in_at(&w.emu, FABRIKAM_TENANT_ID, upn, &passes[0]).await,
        401
    );
    assert_eq!(
        sign_in_at(&w.emu, FABRIKAM_TENANT_ID, upn, &passes[1]).await,
        204
    );
    assert_eq!(
        roles_at(&w, FABRIKAM_TENANT_ID, upn).await,
        1,
        "one role, not two"
    );
    assert_eq!(accounts_of(&w, ALEX).await.len(), 1);
    let view = crate::customers::customers(&w.admin, "acme").await;
    assert_eq!(
        named(&view, "fabrikam.com")["accounts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_technician_ends_their_own_access_early_and_microsoft_confirms_it() {
    let w = msp_with(&[ALEX], &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")]).await;
    let fabrikam = customer_id(&w, "fabrikam.com").await;
    let end = || async {
        technician(&w, ALEX)
            .browser
            .call("acme", "access/end", &[("customer", fabrikam.as_str())])
            .await
    };
    let (status, said) = end().await;
    assert_eq!(status, 400);
    assert!(
        said.contains("You have no open account at fabrikam.com"),
        "{said}"
    );

    let asked = ask(&w, ALEX, &fabrikam, HELPDESK_ADMINISTRATOR)
        .await
        .unwrap();
    assert_eq!(approve(&w, ALEX, &asked).await.status(), 200);
    let (_, opened) = collect(&w, ALEX, &asked.request).await;
    let pass = opened["Opened"]["secret"].as_str().unwrap().to_string();
    let (status, said) = end().await;
    assert_eq!(status, 200, "{said}");
    assert!(said.contains("msp-alex@fabrikam.com is ending"), "{said}");

    let upn = "msp-alex@fabrikam.com";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while account_at(&w, FABRIKAM_TENANT_ID, upn)
        .await
        .unwrap()
        .account_enabled
        != Some(false)
    {
        assert!(std::time::Instant::now() < deadline, "not disabled in 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        sign_in_at(&w.emu, FABRIKAM_TENANT_ID, upn, &pass).await,
        401
    );
    let (_, body) = technician(&w, ALEX)
        .browser
        .call("acme", "access/offers", &[])
        .await;
    let offers: Value = serde_json::from_str(&body).unwrap();
    assert!(offers[0]["open"].is_null(), "{offers}");
}

/// Asking again (another click, another tab, a script) replaces the request still waiting for
/// the phone: one code waits at a time, and the phone cannot approve the old one.
#[tokio::test]
async fn a_new_request_replaces_the_one_still_waiting_for_the_phone() {
    let w = msp_with(&[ALEX], &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")]).await;
    let fabrikam = customer_id(&w, "fabrikam.com").await;
    let mut asked = Vec::new();
    for _ in 0..5 {
        asked.push(
            ask(&w, ALEX, &fabrikam, HELPDESK_ADMINISTRATOR)
                .await
                .unwrap(),
        );
    }
    let (last, earlier) = asked.split_last().unwrap();
    for old in earlier {
        let (status, said) = collect(&w, ALEX, &old.request).await;
        assert_eq!(status, 400);
        assert!(
            said.to_string().contains("replaced by a newer request"),
            "{said}"
        );
        let res = approve(&w, ALEX, old).await;
        assert!(!res.status().is_success(), "{}", res.status());
    }
    assert_eq!(accounts_of(&w, ALEX).await.len(), 0, "nothing was made");
    let res = approve(&w, ALEX, last).await;
    assert!(res.status().is_success(), "{}", res.status());
    let (status, opened) = collect(&w, ALEX, &last.request).await;
    assert_eq!(status, 200, "{opened}");
    assert!(
        opened.to_string().contains("msp-alex@fabrikam.com"),
        "{opened}"
    );
}
