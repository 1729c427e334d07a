//! Entra groups of the MSP as holders in a customer's mapping (issue 29): "Members of Tier 2
//! → User Administrator". Microsoft says who is in the group at every request; a run that
//! finds a technician gone from it ends what only the group kept open, and a change to their
//! role or to another line of the mapping does not end what the group still allows.

use crate::customers::{customers, named, ADELE, HELPDESK_ADMINISTRATOR};
use crate::emulator::{ALEX, PATTI};
use crate::jit::{
    accounts_of, approved_request, customer_id, helpdesk, msp_with, secret_of, sign_in_at,
    USER_ADMINISTRATOR,
};
use crate::reconcile::World;
use gatehouse::domain::{EntraRole, JitState};
use gatehouse::jit::service::JitError;
use gatehouse::reconciler::Outcome;
use gatehouse_emulator::testing::{SALES, TIER_2};
use gatehouse_emulator::FABRIKAM_TENANT_ID;
use serde_json::Value;
use std::time::Duration;

fn user_administrator() -> Vec<EntraRole> {
    vec![EntraRole::parse(USER_ADMINISTRATOR).unwrap()]
}

/// The admin adds "Members of `group` may request `role`" to a customer's mapping: the
/// answer's status and message.
async fn map_group(w: &World, customer: &str, group: &str, role: &str) -> (u16, String) {
    let id = customer_id(w, customer).await;
    let holders = format!("group:{group}");
    let form = [
        ("customer", id.as_str()),
        ("holders", holders.as_str()),
        ("role", role),
    ];
    admin_call(w, "customers/grant", &form).await
}

/// An admin's call on the Customers page: its status and what it says, unquoted (the
/// message, or the reason it was refused).
async fn admin_call(w: &World, endpoint: &str, form: &[(&str, &str)]) -> (u16, String) {
    let (status, body) = w.admin.call("acme", endpoint, form).await;
    let said = match serde_json::from_str::<Value>(&body) {
        Ok(Value::String(s)) => s,
        Ok(v) if v["Invalid"].is_string() => v["Invalid"].as_str().unwrap().to_string(),
        _ => body,
    };
    (status, said)
}

/// The mapping's lines as the Customers page shows them.
async fn lines(w: &World, customer: &str) -> Vec<String> {
    let view = customers(&w.admin, "acme").await;
    named(&view, customer)["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{} → {}",
                g["holders_text"].as_str().unwrap(),
                g["role_name"].as_str().unwrap()
            )
        })
        .collect()
}

/// The roles the technician's home page offers at the customer (none: not offered).
async fn offered(w: &World, oid: &str, customer: &str) -> Vec<String> {
    let (status, body) = w.technicians[oid]
        .browser
        .call("acme", "access/offers", &[])
        .await;
    assert_eq!(status, 200, "{body}");
    let offers: Value = serde_json::from_str(&body).unwrap();
    offers
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["customer"] == customer)
        .flat_map(|o| o["roles"].as_array().unwrap().clone())
        .map(|r| r[1].as_str().unwrap().to_string())
        .collect()
}

/// Waits (at most 20 s) until `oid`'s account at Fabrikam is in `state`.
async fn until_state(w: &World, oid: &str, state: JitState) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = accounts_of(w, oid).await[0].state;
        if now == state {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {now}, not {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_members_of_a_mapped_group_may_request_its_roles_until_they_leave_it() {
    let w = msp_with(
        &[ALEX, PATTI],
        &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")],
    )
    .await;
    let (status, said) = map_group(&w, "fabrikam.com", TIER_2, USER_ADMINISTRATOR).await;
    assert_eq!(status, 200, "{said}");
    assert_eq!(
        said,
        "Members of \"Tier 2\" may now request User Administrator at fabrikam.com."
    );
    assert_eq!(
        lines(&w, "fabrikam.com").await,
        vec![
            "Technicians → Helpdesk Administrator",
            "Members of \"Tier 2\" → User Administrator"
        ]
    );
    let granted = w.app.last_audit("acme", "customer.role_granted").await;
    assert!(
        granted.contains("Members of \"Tier 2\" may request User Administrator"),
        "{granted}"
    );

    // Patti is in Tier 2, Alex is not: the home page offers each what they may request.
    assert_eq!(
        offered(&w, PATTI, "fabrikam.com").await,
        vec!["Helpdesk Administrator", "User Administrator"]
    );
    assert_eq!(
        offered(&w, ALEX, "fabrikam.com").await,
        vec!["Helpdesk Administrator"]
    );
    let patti = approved_request(&w, "fabrikam.com", PATTI, &user_administrator())
        .await
        .expect("Tier 2 may request User Administrator");
    match approved_request(&w, "fabrikam.com", ALEX, &user_administrator()).await {
        Err(JitError::Refused(why)) => assert_eq!(
            why,
            "Technicians may not request User Administrator at fabrikam.com, and you are in no group that may."
        ),
        other => panic!("Alex is in no group that may: {other:?}"),
    }
    let refused = w.app.last_audit("acme", "jit.refused").await;
    assert!(refused.contains("no group that may"), "{refused}");
    approved_request(&w, "fabrikam.com", ALEX, &helpdesk())
        .await
        .expect("technicians may request Helpdesk Administrator");

    // Patti leaves Tier 2 in Entra: the next run ends her account, and only hers.
    w.emu.remove_from_group(TIER_2, PATTI).await;
    let report = w.run().await;
    assert_eq!(report.outcome, Outcome::Ok, "{:?}", report.error);
    assert!(report.offboarded.is_empty(), "{:?}", report.offboarded);
    assert_eq!(
        report.graph_requests, 3,
        "the users' changes, then one question per owner of an account open at Fabrikam"
    );
    until_state(&w, PATTI, JitState::Ended).await;
    assert_eq!(accounts_of(&w, ALEX).await[0].state, JitState::Open);
    let ended = w.app.last_audit("acme", "jit.ended").await;
    assert!(
        ended.contains("no longer in a group of the MSP that may hold these roles there"),
        "{ended}"
    );
    assert_eq!(
        sign_in_at(&w.emu, FABRIKAM_TENANT_ID, &patti.upn, &secret_of(&patti)).await,
        401,
        "the pass no longer signs in"
    );
    assert_eq!(
        offered(&w, PATTI, "fabrikam.com").await,
        vec!["Helpdesk Administrator"]
    );
}

#[tokio::test]
async fn an_account_a_group_keeps_open_outlives_a_new_role_and_a_withdrawn_line() {
    let w = msp_with(&[PATTI], &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")]).await;
    let (status, said) = map_group(&w, "fabrikam.com", TIER_2, HELPDESK_ADMINISTRATOR).await;
    assert_eq!(status, 200, "{said}");
    // Patti may hold Helpdesk Administrator twice over: as a technician and through Tier 2.
    approved_request(&w, "fabrikam.com", PATTI, &helpdesk())
        .await
        .expect("opened");

    let fabrikam = customer_id(&w, "fabrikam.com").await;
    let form = [
        ("customer", fabrikam.as_str()),
        ("holders", "technician"),
        ("role", HELPDESK_ADMINISTRATOR),
    ];
    let (status, said) = admin_call(&w, "customers/withdraw", &form).await;
    assert_eq!(status, 200, "{said}");
    assert_eq!(
        said,
        "Technicians may no longer request Helpdesk Administrator at fabrikam.com."
    );
    let user_id = w.technicians[PATTI].user.id.to_string();
    let act = [("user_id", user_id.as_str()), ("action", "make_admin")];
    let (status, said) = admin_call(&w, "users/act", &act).await;
    assert_eq!(status, 200, "{said}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        accounts_of(&w, PATTI).await[0].state,
        JitState::Open,
        "Tier 2 still allows it"
    );

    // Withdrawing the group's line ends it.
    let holders = format!("group:{TIER_2}");
    let form = [
        ("customer", fabrikam.as_str()),
        ("holders", holders.as_str()),
        ("role", HELPDESK_ADMINISTRATOR),
    ];
    let (status, said) = admin_call(&w, "customers/withdraw", &form).await;
    assert_eq!(status, 200, "{said}");
    assert_eq!(
        said,
        "Members of \"Tier 2\" may no longer request Helpdesk Administrator at fabrikam.com. 1 account(s) holding it are ending."
    );
    until_state(&w, PATTI, JitState::Ended).await;
}

#[tokio::test]
async fn a_group_anyone_may_join_or_that_is_not_in_entra_is_refused_and_changes_nothing() {
    let w = msp_with(&[ALEX], &[(FABRIKAM_TENANT_ID, ADELE, "fabrikam.com")]).await;
    let cases = [
        (
            SALES,
            "Members of: \"Sales\" is a public Microsoft 365 group: anyone in Contoso can join it, and could request admin roles at your customers.",
        ),
        (
            "0b0b0b0b-0000-4000-8000-000000000000",
            "Members of: Contoso has no group 0b0b0b0b-0000-4000-8000-000000000000 (was it deleted?).",
        ),
        (
            "not-a-group",
            "Members of: `not-a-group` is not an Entra group id; choose the group from the list.",
        ),
    ];
    for (group, expected) in cases {
        let (status, said) = map_group(&w, "fabrikam.com", group, USER_ADMINISTRATOR).await;
        assert_eq!(status, 400, "{said}");
        assert!(said.contains(expected), "{group}: {said}");
    }
    assert_eq!(
        lines(&w, "fabrikam.com").await,
        vec!["Technicians → Helpdesk Administrator"]
    );
    assert_eq!(w.app.audited("customer.role_granted").await, 1);
}
