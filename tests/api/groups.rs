//! Entra groups decide who may onboard and who is an admin (nested groups count), against
//! the emulator's Contoso: "MSP Technicians" holds Alex, Isaiah and the nested "Tier 2"
//! (Patti); "MSP Admins" holds Megan; Lidia is in the domain and in neither.

use crate::emulator::{ALEX, ISAIAH, MEGAN, PATTI};
use crate::helpers::*;
use crate::reconcile::{connected, World};
use gatehouse::domain::{EntraHealth, Role, UserStatus};
use gatehouse::reconciler::Outcome;
use gatehouse_emulator::testing::{MSP_ADMINS, MSP_TECHNICIANS, SALES, TIER_2};

impl World {
    /// The admin chooses the groups on the User source page (empty: none). Saved, they make
    /// a run due at once: it has ended when this returns.
    async fn choose_groups(&self, scope: &str, admins: &str) -> (u16, String) {
        let before = self.page().await.runs.len();
        let (status, body) = self
            .admin
            .call(
                "acme",
                "user_source/groups",
                &[("scope_group", scope), ("admin_group", admins)],
            )
            .await;
        if status == 200 {
            self.app.until_runs_done(&self.tenant_id, before + 1).await;
        }
        (status, body)
    }

    /// A first scan by `email` that Gatehouse refuses: the phone's error code and message.
    async fn refused_scan(&self, email: &str) -> (u16, String, String) {
        let phone = self.app.phone_with_email(email).await;
        let browser = self.app.browser(&["acme"]);
        let page = browser.login_page("acme").await;
        error_code(phone.approve_page(&self.app, "acme", &page).await).await
    }

    async fn role(&self, oid: &str) -> Role {
        self.app.user_of(&self.tenant_id, oid).await.role
    }
}

/// Connected to Contoso with "Only members of MSP Technicians" saved, and the given users
/// onboarded before the groups were chosen.
async fn scoped(oids: &[&str], admins: &str) -> World {
    let w = connected(oids).await;
    let (status, body) = w.choose_groups(MSP_TECHNICIANS, admins).await;
    assert_eq!(status, 200, "{body}");
    w
}

/// Saving the groups makes a run due at once, and it starts at once: Megan, onboarded before
/// only "MSP Technicians" may onboard, loses access within seconds, nobody clicking Sync now.
#[tokio::test]
async fn saving_the_groups_ends_access_outside_them_within_seconds() {
    let w = connected(&[ALEX, MEGAN]).await;
    assert!(w.page().await.runs.is_empty());
    let (status, body) = w.choose_groups(MSP_TECHNICIANS, "").await;
    assert_eq!(status, 200, "{body}");
    let run = w.page().await.runs.remove(0);
    assert_eq!((run.trigger.as_str(), run.offboarded), ("schedule", 1));
    let megan = w.app.user_of(&w.tenant_id, MEGAN).await;
    assert_eq!(megan.status, UserStatus::Offboarded);
    assert_eq!(
        megan.offboarded_because().as_deref(),
        Some("left group \"MSP Technicians\"")
    );
    assert_eq!(
        w.app.user_of(&w.tenant_id, ALEX).await.status,
        UserStatus::Active
    );
}

#[tokio::test]
async fn members_and_nested_members_onboard_and_others_in_the_domain_are_refused() {
    let w = scoped(&[], "").await;
    // Alex is a member, Patti is one through "Tier 2".
    let alex = w.app.onboard("acme", "alex@contoso.com").await;
    assert_eq!(alex.user.role, Role::Technician);
    let patti = w.app.onboard("acme", "pattif@contoso.com").await;
    assert_eq!(
        patti.user.entra_oid.as_ref().map(|o| o.as_str()),
        Some(PATTI)
    );
    // Lidia is in contoso.com and enabled, but in neither group.
    let (status, code, message) = w.refused_scan("lidia@contoso.com").await;
    assert_eq!((status, code.as_str()), (403, "not_in_group"));
    assert!(
        message.contains("lidia@contoso.com") && message.contains("\"MSP Technicians\""),
        "{message}"
    );
    assert!(
        w.app
            .users("acme")
            .await
            .iter()
            .all(|u| u.email != "lidia@contoso.com"),
        "no record is made for a refused newcomer"
    );
    let audit = w.app.audit("acme").await;
    assert!(
        audit.iter().any(|e| e
            .details
            .contains("not a member of the Entra ID group \"MSP Technicians\"")),
        "the refusal and its reason are in the audit log: {:?}",
        audit.iter().map(|e| &e.details).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_admin_group_member_onboards_as_admin_and_lands_on_the_admin_portal() {
    let w = scoped(&[], MSP_ADMINS).await;
    // Megan is in "MSP Admins" only: that admits her too, as an admin.
    let phone = w.app.phone_with_email("megan@contoso.com").await;
    let browser = w.app.browser(&["acme"]);
    let landed = sign_in(&w.app, &browser, &phone, "acme").await;
    assert_eq!(landed, "/adminportal/users");
    assert_eq!(w.role(MEGAN).await, Role::Admin);
    assert!(w
        .app
        .last_audit("acme", "user.onboarded")
        .await
        .contains("admin as a member of \"MSP Admins\""));
    let alex = w.app.onboard("acme", "alex@contoso.com").await;
    assert_eq!(alex.user.role, Role::Technician);
}

/// Patti leaves "Tier 2" in Entra: she is no longer in "MSP Technicians" either, and the next
/// run offboards her, naming the group; Alex stays.
#[tokio::test]
async fn leaving_a_nested_group_offboards_with_the_groups_name() {
    let w = scoped(&[ALEX, PATTI], "").await;
    assert_eq!(w.run().await.outcome, Outcome::Ok, "a member stays");
    assert_eq!(w.status(PATTI).await, UserStatus::Active);
    w.emu.remove_from_group(TIER_2, PATTI).await;
    let report = w.run().await;
    assert_eq!(report.outcome, Outcome::Ok);
    assert_eq!(
        report.offboarded,
        vec![(
            "pattif@contoso.com".to_string(),
            "left group \"MSP Technicians\"".to_string()
        )]
    );
    assert_eq!(w.status(PATTI).await, UserStatus::Offboarded);
    assert_eq!(
        w.offboard_reason(PATTI).await,
        "left group \"MSP Technicians\""
    );
    assert_eq!(w.sessions(PATTI).await, 0, "her access ended");
    assert_eq!(w.status(ALEX).await, UserStatus::Active);
    // Gone from the group, she cannot come back by scanning again.
    let (_, code, _) = w.refused_scan("pattif@contoso.com").await;
    assert_eq!(code, "not_in_group");
}

impl World {
    /// `oid` is a member through `group` only: a run keeps them, and once they leave `group`
    /// the next run offboards them, and nobody else.
    async fn kept_until_they_leave(&self, oid: &str, group: &str) {
        let report = self.run().await;
        assert_eq!(report.outcome, Outcome::Ok, "{:?}", report.error);
        assert!(report.offboarded.is_empty(), "{:?}", report.offboarded);
        assert_eq!(self.status(oid).await, UserStatus::Active);
        self.emu.remove_from_group(group, oid).await;
        let report = self.run().await;
        assert_eq!(report.offboarded.len(), 1, "{:?}", report.offboarded);
        assert_eq!(self.status(oid).await, UserStatus::Offboarded);
    }

    /// A new security group in Contoso, with the given members (ids or sign-in names).
    async fn new_group(&self, id: &str, name: &str, members: &[&str]) {
        self.emu
            .contoso_group(
                reqwest::Method::POST,
                "",
                Some(serde_json::json!({ "id": id, "displayName": name, "members": members })),
            )
            .await;
    }
}

/// The Reconciliation page counts each run's Graph requests: with groups on, a run in which
/// nothing changed asks for the users' changes and the groups' changes, one request each,
/// whatever the size of the groups; a change is still seen.
#[tokio::test]
async fn a_run_without_changes_reads_the_groups_in_one_request() {
    let w = scoped(&[ALEX, PATTI, MEGAN], MSP_ADMINS).await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    let report = w.run().await;
    assert_eq!(report.outcome, Outcome::Ok);
    assert_eq!(report.graph_requests, 2, "users delta + groups delta");
    w.emu.remove_from_group(TIER_2, PATTI).await;
    let report = w.run().await;
    assert_eq!(report.graph_requests, 2);
    assert_eq!(
        report.offboarded,
        vec![(
            "pattif@contoso.com".to_string(),
            "left group \"MSP Technicians\"".to_string()
        )]
    );
    assert_eq!(w.status(ALEX).await, UserStatus::Active);
    assert_eq!(w.role(MEGAN).await, Role::Admin, "still in MSP Admins");
}

/// Entra moves Alex from "MSP Technicians" into a new group "Night shift" nested in it, all
/// between two runs. Still a member through the new group, he keeps his access; only when
/// he leaves "Night shift" too is he offboarded.
#[tokio::test]
async fn a_group_nested_between_runs_is_followed() {
    let w = scoped(&[ALEX], "").await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    const NIGHT_SHIFT: &str = "7c0d1e2f-3a4b-4c5d-8e6f-000000000001";
    w.new_group(NIGHT_SHIFT, "Night shift", &["alex@contoso.com"])
        .await;
    w.emu.add_to_group(MSP_TECHNICIANS, NIGHT_SHIFT).await;
    w.emu.remove_from_group(MSP_TECHNICIANS, ALEX).await;
    w.kept_until_they_leave(ALEX, NIGHT_SHIFT).await;
}

/// Patti sits six groups deep below "MSP Technicians": each round of the groups' delta
/// finds one more level, and the run goes on until it knows them all.
#[tokio::test]
async fn a_deep_chain_of_nested_groups_is_followed_to_the_end() {
    let w = scoped(&[ALEX, PATTI], "").await;
    let mut parent = MSP_TECHNICIANS.to_string();
    for n in 1..=6 {
        let id = format!("7c0d1e2f-3a4b-4c5d-8e6f-1000000000{n:02}");
        let members: &[&str] = if n == 6 { &["pattif@contoso.com"] } else { &[] };
        w.new_group(&id, &format!("Level {n}"), members).await;
        w.emu.add_to_group(&parent, &id).await;
        parent = id;
    }
    w.emu.remove_from_group(TIER_2, PATTI).await;
    w.kept_until_they_leave(PATTI, &parent).await;
    // All seven groups are followed through one delta link now.
    assert_eq!(
        w.run().await.graph_requests,
        2,
        "users delta + groups delta"
    );
}

/// More groups nested in "MSP Technicians" than one groups delta can follow (50): the run
/// reads the group's members whole and decides the same way.
#[tokio::test]
async fn groups_nested_wider_than_one_delta_are_read_whole() {
    let w = scoped(&[ALEX, PATTI], "").await;
    for n in 1..=50 {
        let id = format!("7c0d1e2f-3a4b-4c5d-8e6f-{n:012}");
        let members: &[&str] = if n == 37 {
            &["pattif@contoso.com"]
        } else {
            &[]
        };
        w.new_group(&id, &format!("Shift {n}"), members).await;
        w.emu.add_to_group(MSP_TECHNICIANS, &id).await;
    }
    w.emu.remove_from_group(TIER_2, PATTI).await;
    w.kept_until_they_leave(PATTI, "7c0d1e2f-3a4b-4c5d-8e6f-000000000037")
        .await;
    assert_eq!(w.status(ALEX).await, UserStatus::Active);
    // Read whole, not through a delta link: a run without changes costs more than two.
    assert!(w.run().await.graph_requests > 2);
}

/// Someone deletes "MSP Technicians" in Entra: the run fails and says why, the connection's
/// health says what to do, and nobody is offboarded.
#[tokio::test]
async fn a_deleted_scoping_group_fails_the_run_and_offboards_nobody() {
    let w = scoped(&[ALEX, ISAIAH], "").await;
    w.emu.delete_group(MSP_TECHNICIANS).await;
    let report = w.run().await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(
        error.contains("\"MSP Technicians\"") && error.contains("no longer exists"),
        "{error}"
    );
    assert_eq!(w.status(ALEX).await, UserStatus::Active);
    assert_eq!(w.status(ISAIAH).await, UserStatus::Active);
    assert_eq!(w.sessions(ALEX).await, 1);
    assert_eq!(
        w.app.entra_health(&w.tenant_id).await,
        Some(EntraHealth::GroupGone)
    );
}

/// The same after Gatehouse has followed the group for a while: the groups' delta reports it
/// deleted, and the run fails the same way, offboarding nobody, run after run.
#[tokio::test]
async fn a_scoping_group_deleted_after_runs_fails_them_the_same_way() {
    let w = scoped(&[ALEX, ISAIAH], "").await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    w.emu.delete_group(MSP_TECHNICIANS).await;
    for _ in 0..2 {
        let report = w.run().await;
        assert_eq!(report.outcome, Outcome::Failed);
        assert!(
            report
                .error
                .as_deref()
                .unwrap_or("")
                .contains("no longer exists"),
            "{:?}",
            report.error
        );
        assert_eq!(w.status(ALEX).await, UserStatus::Active);
        assert_eq!(w.status(ISAIAH).await, UserStatus::Active);
    }
    assert_eq!(
        w.app.entra_health(&w.tenant_id).await,
        Some(EntraHealth::GroupGone)
    );
}

/// Someone empties "MSP Technicians" in Entra (by mistake, or a dynamic rule being
/// re-evaluated): a run on the word of an empty group offboards nobody and says why.
#[tokio::test]
async fn an_emptied_scoping_group_offboards_nobody() {
    let w = scoped(&[ALEX, ISAIAH], "").await;
    for member in [ALEX, ISAIAH, TIER_2] {
        w.emu.remove_from_group(MSP_TECHNICIANS, member).await;
    }
    let report = w.run().await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(report.error.unwrap().contains("holds no users"));
    assert_eq!(w.status(ALEX).await, UserStatus::Active);
    assert_eq!(w.status(ISAIAH).await, UserStatus::Active);
}

/// Joining "MSP Admins" in Entra makes Alex an admin at the next run, and leaving it a
/// technician again; each change is audited with the group.
#[tokio::test]
async fn roles_follow_the_admin_group_on_each_run() {
    let w = scoped(&[ALEX], MSP_ADMINS).await;
    w.emu.add_to_group(MSP_ADMINS, ALEX).await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    assert_eq!(w.role(ALEX).await, Role::Admin);
    assert!(w
        .audit_details("user.role_changed")
        .await
        .contains("admin: a member of \"MSP Admins\""));
    w.emu.remove_from_group(MSP_ADMINS, ALEX).await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    assert_eq!(w.role(ALEX).await, Role::Technician);
    assert!(w
        .audit_details("user.role_changed")
        .await
        .contains("no longer a member of \"MSP Admins\""));
    assert_eq!(
        w.status(ALEX).await,
        UserStatus::Active,
        "still in MSP Technicians"
    );
}

/// Joining "MSP Admins" in Entra makes Alex an admin at his next sign-in, without waiting for
/// a run; leaving it makes him a technician again at the next one (the local admin remains).
#[tokio::test]
async fn a_sign_in_takes_the_role_the_admin_group_gives_now() {
    let w = scoped(&[], MSP_ADMINS).await;
    let alex = w.app.onboard("acme", "alex@contoso.com").await;
    assert_eq!(alex.user.role, Role::Technician);
    w.emu.add_to_group(MSP_ADMINS, ALEX).await;
    let res = alex.approve_a_new_sign_in(&w.app).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(w.role(ALEX).await, Role::Admin);
    assert!(w
        .audit_details("user.role_changed")
        .await
        .contains("a member of \"MSP Admins\" in Entra ID, seen at sign-in"));
    w.emu.remove_from_group(MSP_ADMINS, ALEX).await;
    let res = alex.approve_a_new_sign_in(&w.app).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(w.role(ALEX).await, Role::Technician);
    assert!(w
        .audit_details("user.role_changed")
        .await
        .contains("no longer a member of \"MSP Admins\" in Entra ID, seen at sign-in"));
}

/// Admins from "MSP Admins": Megan signs in as admin (her phone and browser), Alex and Isaiah
/// onboard as technicians, and Megan disables the local admin, which leaves her the tenant's
/// only admin.
async fn megan_the_only_admin() -> (World, Phone, Browser) {
    let w = scoped(&[], MSP_ADMINS).await;
    let megan_phone = w.app.phone_with_email("megan@contoso.com").await;
    let megan = w.app.browser(&["acme"]);
    sign_in(&w.app, &megan, &megan_phone, "acme").await;
    w.app.onboard("acme", "alex@contoso.com").await;
    w.app.onboard("acme", "isaiah@contoso.com").await;
    let local = w.app.user("acme", "admin@acme.com").await;
    let (status, body) = megan
        .call(
            "acme",
            "users/act",
            &[("user_id", local.id.as_str()), ("action", "disable")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (w, megan_phone, megan)
}

/// Megan is the tenant's only admin left (she disabled the local admin). Removing her from
/// "MSP Admins" in Entra would leave nobody to run the tenant: the run applies nothing and
/// says why, until someone else is an admin.
#[tokio::test]
async fn demoting_the_last_admin_is_held() {
    let (w, megan_phone, _megan) = megan_the_only_admin().await;

    // Megan is a technician too; taken out of "MSP Admins", she would only be demoted.
    w.emu.add_to_group(MSP_TECHNICIANS, MEGAN).await;
    w.emu.remove_from_group(MSP_ADMINS, MEGAN).await;
    // Signing in again does not demote her either.
    sign_in(&w.app, &w.app.browser(&["acme"]), &megan_phone, "acme").await;
    assert_eq!(w.role(MEGAN).await, Role::Admin, "still the only admin");
    // Meanwhile Isaiah is disabled in Entra: access Entra ended is never kept for an admin.
    w.emu.disable_in_entra(ISAIAH).await;
    let report = w.run().await;
    assert_eq!(report.outcome, Outcome::KeptLastAdmin);
    assert_eq!(w.status(ISAIAH).await, UserStatus::Offboarded);
    assert_eq!(w.sessions(ISAIAH).await, 0);
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or("")
            .contains("without an admin"),
        "{:?}",
        report.error
    );
    assert_eq!(w.role(MEGAN).await, Role::Admin, "nothing was applied");
    assert_eq!(w.status(MEGAN).await, UserStatus::Active);
    assert!(w
        .audit_details("reconcile.admin_kept")
        .await
        .contains("without an admin"));
    let page = w.page().await;
    assert!(page.runs.iter().any(|r| r
        .error
        .as_deref()
        .is_some_and(|e| e.contains("without an admin"))));

    // Alex joins "MSP Admins": the next run promotes him and demotes Megan together.
    w.emu.add_to_group(MSP_ADMINS, ALEX).await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    assert_eq!(w.role(ALEX).await, Role::Admin);
    assert_eq!(w.role(MEGAN).await, Role::Technician);
    assert_eq!(w.status(MEGAN).await, UserStatus::Active);
    assert_eq!(w.status(ALEX).await, UserStatus::Active);
}

/// Alex and Megan are the tenant's two admins, by "MSP Admins". Alex leaves the group in
/// Entra, and at the same moment, in the portal, demotes Megan: whichever lands second must
/// see the first. The run comes first here: it demotes Alex, and his request, which passed
/// the admin check before that, is refused under the tenant's lock. (The other order, a run
/// that would demote the last admin, is `demoting_the_last_admin_is_held`.)
#[tokio::test]
async fn a_demotion_by_hand_racing_a_group_demotion_leaves_the_tenant_an_admin() {
    let (w, _, _megan) = megan_the_only_admin().await;
    w.emu.add_to_group(MSP_ADMINS, ALEX).await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    assert_eq!(w.role(ALEX).await, Role::Admin);
    let tenant = w.app.tenant("acme").await;
    let by_hand = |actor: gatehouse::users::service::User, target: &str| {
        let (app, tenant, target) = (&w.app, tenant.clone(), target.to_string());
        async move {
            let user = app.user_of(&tenant.id, &target).await;
            gatehouse::users::service::act(
                &app.state.db,
                &app.state.bus,
                &tenant,
                &actor,
                &user.id,
                gatehouse::users::service::Action::MakeTechnician,
            )
            .await
        }
    };

    // Alex's request is past the admin check when the run demotes him.
    let alex_in_flight = w.app.user_of(&w.tenant_id, ALEX).await;
    w.emu.remove_from_group(MSP_ADMINS, ALEX).await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    assert_eq!(w.role(ALEX).await, Role::Technician);
    let refused = by_hand(alex_in_flight, MEGAN).await;
    let refused = refused.expect_err("a demoted admin's request demotes nobody");
    assert!(
        refused.to_string().contains("no longer an admin"),
        "{refused}"
    );
    assert_eq!(
        w.role(MEGAN).await,
        Role::Admin,
        "the tenant keeps an admin"
    );
}

/// Megan, the tenant's only admin, leaves "MSP Admins" in Entra while Alex and Isaiah are
/// deleted there, under a threshold of one: the run holds all three. Megan, signed in, and
/// her phone; the held run's report.
async fn megan_held_with_two_deletions() -> (World, Phone, Browser, gatehouse::reconciler::RunReport)
{
    let (w, megan_phone, megan) = megan_the_only_admin().await;
    let (status, body) = save_schedule(&megan, "240", "1", "1").await;
    assert_eq!(status, 200, "{body}");
    w.emu.remove_from_group(MSP_ADMINS, MEGAN).await;
    w.emu.remove_in_entra(ALEX).await;
    w.emu.remove_in_entra(ISAIAH).await;
    let report = w.run().await;
    assert_eq!(report.outcome, Outcome::Held, "{:?}", report.error);
    (w, megan_phone, megan, report)
}

/// Megan, the tenant's only admin, waits on a held run's list (she left both groups, along
/// with two deletions). Back in "MSP Technicians" but not in "MSP Admins", she signs in: the
/// sign-in does not demote her, or nobody would be left to decide the held run.
#[tokio::test]
async fn the_only_admin_on_a_held_list_is_not_demoted_at_sign_in() {
    let (w, megan_phone, _megan, _held) = megan_held_with_two_deletions().await;
    w.emu.add_to_group(MSP_TECHNICIANS, MEGAN).await;
    let landed = sign_in(&w.app, &w.app.browser(&["acme"]), &megan_phone, "acme").await;
    assert_eq!(w.role(MEGAN).await, Role::Admin, "still the only admin");
    assert_eq!(landed, "/adminportal/users");
}

/// A held run lists Megan, the tenant's only admin, because she left "MSP Admins" in Entra,
/// along with two deletions. Megan approves it: the deleted users go, Megan stays an active
/// admin, and the message says why; a group change never takes a tenant's last admin.
#[tokio::test]
async fn approving_a_held_run_never_takes_the_last_admin() {
    let (w, _, megan, report) = megan_held_with_two_deletions().await;
    assert_eq!(report.offboarded.len(), 3, "{:?}", report.offboarded);

    let run_id = report.run_id.unwrap().to_string();
    let seen = report.offboarded.len().to_string();
    let (status, message) = megan
        .call(
            "acme",
            "reconcile/decide",
            &[("run_id", &run_id), ("approve", "true"), ("seen", &seen)],
        )
        .await;
    assert_eq!(status, 200, "{message}");
    assert!(message.contains("2 user(s) offboarded"), "{message}");
    assert!(
        message.contains("kept") && message.contains("without an admin"),
        "{message}"
    );
    assert_eq!(w.status(ALEX).await, UserStatus::Offboarded);
    assert_eq!(w.status(ISAIAH).await, UserStatus::Offboarded);
    assert_eq!(w.status(MEGAN).await, UserStatus::Active);
    assert_eq!(w.role(MEGAN).await, Role::Admin);
    assert!(w
        .audit_details("reconcile.approved")
        .await
        .contains("without an admin"));
}

/// A tenant that consented before Gatehouse asked for GroupMember.Read.All: choosing a group
/// says to authorize again and saves nothing; once consented, the same choice saves.
#[tokio::test]
async fn a_consent_without_group_permission_is_told_to_authorize_again() {
    let w = connected(&[ALEX]).await;
    w.emu
        .grant_consent_for(&["User.Read.All", "Domain.Read.All"])
        .await;
    w.app
        .state
        .entra
        .as_ref()
        .unwrap()
        .forget_token(&gatehouse::domain::EntraTenantId::from_microsoft(
            gatehouse_emulator::CONTOSO_TENANT_ID,
        ))
        .await;
    let (status, body) = w.choose_groups(MSP_TECHNICIANS, "").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("GroupMember.Read.All") && body.contains("Authorize again"),
        "{body}"
    );
    assert!(
        w.app.tenant("acme").await.scope_group().is_none(),
        "nothing saved"
    );
    let (status, body) = w
        .admin
        .call("acme", "user_source/find_groups", &[("text", "MSP")])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Authorize again"), "{body}");
    // Onboarding and runs go on as before: the tenant uses no group yet.
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    assert_eq!(w.status(ALEX).await, UserStatus::Active);

    // The admin authorizes again (consent for everything the app asks for).
    w.emu.grant_consent().await;
    let (status, body) = w.choose_groups(MSP_TECHNICIANS, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("only members of \\\"MSP Technicians\\\" (3 users)"),
        "{body}"
    );
}

/// The search lists security and Microsoft 365 groups by the start of their name, each with
/// its users counted through nested groups; bad choices are refused and change nothing.
#[tokio::test]
async fn groups_are_found_by_name_with_their_users_and_bad_choices_are_refused() {
    let w = connected(&[]).await;
    let (status, body) = w
        .admin
        .call("acme", "user_source/find_groups", &[("text", "MSP")])
        .await;
    assert_eq!(status, 200, "{body}");
    let found: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<(String, String, u64)> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["kind"].as_str().unwrap().to_string(),
                g["users"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("MSP Technicians".to_string(), "Security".to_string(), 3),
            ("MSP Admins".to_string(), "Security".to_string(), 1),
        ]
    );
    let (_, body) = w
        .admin
        .call("acme", "user_source/find_groups", &[("text", "Sal")])
        .await;
    assert!(body.contains("Microsoft 365"), "{body}");

    for (scope, admins, says) in [
        ("not-a-group", "", "is not an Entra group id"),
        ("00000000-0000-0000-0000-000000000000", "", "has no group"),
        (
            "",
            "00000000-0000-0000-0000-00000000000z",
            "is not an Entra group id",
        ),
    ] {
        let (status, body) = w.choose_groups(scope, admins).await;
        assert_eq!(status, 400, "{scope} {admins}: {body}");
        assert!(body.contains(says), "{body}");
    }
    let (status, _) = w
        .admin
        .call("acme", "user_source/find_groups", &[("text", "  ")])
        .await;
    assert_eq!(status, 400);
    let tenant = w.app.tenant("acme").await;
    assert!(tenant.scope_group().is_none() && tenant.admin_group().is_none());
    // A Microsoft 365 group scopes as well as a security group.
    let (status, body) = w.choose_groups(SALES, "").await;
    assert_eq!(status, 200, "{body}");
}

/// Anyone in Contoso may join "Sales", a public Microsoft 365 group, without an owner's
/// approval: as the admin group, it would make whoever joins a Gatehouse admin at their next
/// sign-in. It is refused there (and listed as public), while it may still scope who signs
/// in; a private Microsoft 365 group, whose owners choose its members, may hold the admins.
#[tokio::test]
async fn a_group_anyone_can_join_cannot_hold_the_admins() {
    let w = connected(&[]).await;
    let (_, body) = w
        .admin
        .call("acme", "user_source/find_groups", &[("text", "Sal")])
        .await;
    assert!(body.contains("public Microsoft 365"), "{body}");

    let (status, body) = w.choose_groups(MSP_TECHNICIANS, SALES).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("can join it, and would be a Gatehouse admin at their next sign-in"),
        "the page says why: {body}"
    );
    let tenant = w.app.tenant("acme").await;
    assert!(
        tenant.scope_group().is_none() && tenant.admin_group().is_none(),
        "nothing was saved"
    );

    const PRIVATE: &str = "5b1d7c90-2e4f-4a6b-8c0d-1e2f3a4b5c09";
    w.emu
        .contoso_group(
            reqwest::Method::POST,
            "",
            Some(serde_json::json!({
                "id": PRIVATE, "displayName": "Gatehouse Admins",
                "groupTypes": ["Unified"], "securityEnabled": false, "mailEnabled": true,
                "visibility": "Private", "members": ["megan@contoso.com"]
            })),
        )
        .await;
    let (status, body) = w.choose_groups(MSP_TECHNICIANS, PRIVATE).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.choose_groups(SALES, "").await;
    assert_eq!(
        status, 200,
        "a public group may still scope sign-ins: {body}"
    );
}
