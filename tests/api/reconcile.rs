//! The offboarding reconciler against the emulator: who is offboarded, and that nobody is
//! when anything goes wrong.

use crate::emulator::{connect_contoso, spawn_app_with_entra, Emu, ALEX, ISAIAH, MEGAN, PATTI};
use crate::helpers::*;
use gatehouse::domain::UserStatus;
use gatehouse::entra::EntraClient;
use gatehouse::reconciler::{self, DecideError, Outcome, Trigger};
use gatehouse_emulator::CONTOSO_TENANT_ID;
use serde_json::json;

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) emu: Emu,
    pub(crate) entra: EntraClient,
    pub(crate) tenant_id: gatehouse::domain::TenantId,
    /// The tenant's admin, signed in to the portal.
    pub(crate) admin: Browser,
    /// The technicians `connected` onboarded, by object id.
    pub(crate) technicians: std::collections::HashMap<String, Technician>,
}

/// Gatehouse (its Entra app on the emulator) with tenant `acme` connected to Contoso,
/// consent granted, its admin signed in, and onboarded users for the given Contoso object ids.
pub(crate) async fn connected(oids: &[&str]) -> World {
    let (app, emu) = spawn_app_with_entra().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let admin = app.browser(&["acme"]);
    sign_in(&app, &admin, &phone, "acme").await;
    let tenant_id = connect_contoso(&app, "acme").await;
    // Each onboards by a first scan and stays signed in: one session each.
    let mut technicians = std::collections::HashMap::new();
    for oid in oids {
        let technician = app.onboard("acme", seeded_email(oid)).await;
        assert_eq!(
            technician.user.entra_oid.as_ref().map(|o| o.as_str()),
            Some(*oid)
        );
        technicians.insert(oid.to_string(), technician);
    }
    let entra = EntraClient::new(
        &emu.base,
        &emu.base,
        &emu.app.client_id,
        emu.app.secret.clone(),
    );
    World {
        app,
        emu,
        entra,
        tenant_id,
        admin,
        technicians,
    }
}

/// The address each of Contoso's seeded users verifies on their phone.
pub(crate) fn seeded_email(oid: &str) -> &'static str {
    match oid {
        ALEX => "alex@contoso.com",
        MEGAN => "megan@contoso.com",
        ISAIAH => "isaiah@contoso.com",
        PATTI => "pattif@contoso.com",
        other => panic!("{other} is not one of the seeded users these tests onboard"),
    }
}

impl World {
    pub(crate) async fn run(&self) -> reconciler::RunReport {
        reconciler::reconcile(
            &self.app.state.db,
            &self.app.state.bus,
            &self.entra,
            &self.tenant_id,
            Trigger::Manual,
            false,
        )
        .await
        .unwrap()
    }

    pub(crate) async fn status(&self, oid: &str) -> UserStatus {
        self.app.user_of(&self.tenant_id, oid).await.status
    }

    /// Why the user was offboarded, as the Users page shows it.
    pub(crate) async fn offboard_reason(&self, oid: &str) -> String {
        let user = self.app.user_of(&self.tenant_id, oid).await;
        user.offboarded_because()
            .expect("an offboarded user has a reason")
    }

    pub(crate) async fn sessions(&self, oid: &str) -> usize {
        let user = self.app.user_of(&self.tenant_id, oid).await;
        self.app.session_count("acme", &user.id).await
    }

    /// What the Reconciliation page shows.
    pub(crate) async fn page(&self) -> reconciler::api::ReconcileView {
        reconciler::view(&self.app.state.db, &self.tenant_id)
            .await
            .unwrap()
    }

    pub(crate) async fn audit_details(&self, action: &str) -> String {
        self.app.last_audit("acme", action).await
    }

    /// Whether the run is still held, waiting for an admin's decision.
    async fn still_held(&self, run_id: i64) -> bool {
        self.page().await.held.iter().any(|h| h.run_id == run_id)
    }

    /// The admin looks at the Reconciliation page and approves or rejects a held run as it
    /// shows it: the status and the message the page shows.
    async fn decide(&self, run_id: i64, approve: bool) -> (u16, String) {
        let seen = self.held_list(run_id).await.len();
        self.decide_seen(run_id, approve, seen).await
    }

    /// The users the page shows on the held run's list (none when it is not held).
    async fn held_list(&self, run_id: i64) -> Vec<(String, String)> {
        let page = self.page().await;
        let held = page.held.into_iter().find(|h| h.run_id == run_id);
        held.map(|h| h.users).unwrap_or_default()
    }

    /// The admin decides on a held run whose list they saw with `seen` users.
    async fn decide_seen(&self, run_id: i64, approve: bool, seen: usize) -> (u16, String) {
        let (run_id, approve, seen) = (run_id.to_string(), approve.to_string(), seen.to_string());
        self.admin
            .call(
                "acme",
                "reconcile/decide",
                &[("run_id", &run_id), ("approve", &approve), ("seen", &seen)],
            )
            .await
    }

    /// Gatehouse's Entra client as a new process has it: no token cached.
    fn fresh_client(&self) -> EntraClient {
        EntraClient::new(
            &self.emu.base,
            &self.emu.base,
            &self.emu.app.client_id,
            self.emu.app.secret.clone(),
        )
    }

    async fn active_everyone(&self, oids: &[&str]) {
        for oid in oids {
            assert_eq!(
                self.status(oid).await,
                UserStatus::Active,
                "{oid} was offboarded"
            );
            assert_eq!(self.sessions(oid).await, 1, "{oid} lost a session");
        }
    }
}

#[tokio::test]
async fn offboards_a_user_soft_deleted_in_entra_and_ends_their_sessions() {
    let w = connected(&[ALEX, MEGAN]).await;
    let first = w.run().await;
    assert_eq!(first.outcome, Outcome::Ok, "{:?}", first.error);
    assert!(first.offboarded.is_empty());
    assert_eq!(first.users_checked, 2);

    w.emu.remove_in_entra(ALEX).await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.offboarded.len(), 1);
    assert_eq!(w.status(ALEX).await, UserStatus::Offboarded);
    assert_eq!(w.sessions(ALEX).await, 0, "every session ended");
    let alex = &w.technicians[ALEX];
    let home = alex.browser.get("acme", "/home").await;
    assert_eq!(home.status(), 303, "Alex's browser is signed out");
    let (status, code, _) = error_code(alex.approve_a_new_sign_in(&w.app).await).await;
    assert_eq!(
        (status, code.as_str()),
        (403, "device_revoked"),
        "and Alex's phone approves nothing any more"
    );
    assert_eq!(w.status(MEGAN).await, UserStatus::Active);
    let reason = w.offboard_reason(ALEX).await;
    assert!(reason.contains("deleted in Entra ID"), "{reason}");
    assert!(w.app.audited("user.offboarded").await > 0);
}

#[tokio::test]
async fn hard_delete_and_disable_each_offboard() {
    let w = connected(&[ALEX, MEGAN, ISAIAH]).await;
    w.run().await;
    w.emu.purge_in_entra(ALEX).await;
    w.emu.disable_in_entra(MEGAN).await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(w.status(ALEX).await, UserStatus::Offboarded);
    assert_eq!(w.status(MEGAN).await, UserStatus::Offboarded);
    assert_eq!(w.status(ISAIAH).await, UserStatus::Active);
    let reasons: Vec<String> = r.offboarded.iter().map(|o| o.1.clone()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("permanently deleted")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("disabled")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_run_without_changes_is_one_graph_request() {
    let w = connected(&[ALEX]).await;
    w.run().await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(
        r.graph_requests, 1,
        "a stored delta link answers in one page"
    );
}

#[tokio::test]
async fn a_user_offboarded_once_is_not_offboarded_again() {
    let w = connected(&[ALEX]).await;
    w.run().await;
    w.emu.remove_in_entra(ALEX).await;
    w.run().await;
    let actions = w.app.audited("user.offboarded").await;
    // A restore and a second delete show the same user again; the record stays offboarded once.
    w.emu.restore_in_entra(ALEX).await;
    w.emu.remove_in_entra(ALEX).await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok);
    let again = w.app.audited("user.offboarded").await;
    assert_eq!(actions, again);
}

#[tokio::test]
async fn graph_failures_offboard_nobody_and_say_why() {
    let cases = [
        (
            json!({"route": "GET /v1.0/users/delta", "status": 500, "count": 10}),
            "500",
        ),
        (
            json!({"route": "GET /v1.0/users/delta", "status": 503, "count": 10, "retryAfter": 1}),
            "503",
        ),
        (
            json!({"route": "GET /v1.0/users/delta", "status": 429, "count": 10, "retryAfter": 1}),
            "throttling",
        ),
        (
            json!({"route": "GET /v1.0/users/delta", "dropValue": true}),
            "without `value`",
        ),
        (
            json!({"route": "GET /v1.0/users/delta", "dropDeltaLink": true}),
            "deltaLink",
        ),
        // A 401 gets one new token and one more try; a second 401 fails the run.
        (
            json!({"route": "GET /v1.0/users/delta", "status": 401, "count": 2}),
            "401",
        ),
        (
            json!({"route": "GET /v1.0/users/delta", "status": 403}),
            "403",
        ),
    ];
    for (fault, expected) in cases {
        let w = connected(&[ALEX, MEGAN]).await;
        w.run().await;
        w.emu.remove_in_entra(ALEX).await;
        w.emu.fault(fault.clone()).await;
        let r = w.run().await;
        assert_eq!(r.outcome, Outcome::Failed, "{fault}");
        let error = r.error.unwrap_or_default();
        assert!(error.contains(expected), "{fault}: {error}");
        w.active_everyone(&[ALEX, MEGAN]).await;
        let last = w.page().await.runs.remove(0);
        assert_eq!(last.outcome, gatehouse::domain::RunOutcome::Failed);
        assert!(last.error.unwrap_or_default().contains(expected));
    }
}

#[tokio::test]
async fn lost_consent_fails_the_run_and_asks_for_reauthorization() {
    let mut w = connected(&[ALEX]).await;
    w.run().await;
    w.emu.remove_in_entra(ALEX).await;
    w.emu.revoke_consent().await;
    // The token Gatehouse holds keeps its roles until it expires, as Microsoft's do; the
    // next token (a new process here) is issued without them.
    w.entra = w.fresh_client();
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Failed);
    w.active_everyone(&[ALEX]).await;
    assert_eq!(
        w.app.entra_health(&w.tenant_id).await,
        Some(gatehouse::domain::EntraHealth::ConsentRevoked)
    );
    // The Reconciliation page says what is wrong and who must act.
    let page = w
        .admin
        .get("acme", "/adminportal/reconciliation")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("admin consent for Gatehouse was revoked"),
        "the page names the problem"
    );
}

#[tokio::test]
async fn a_retry_after_429_is_honoured_and_the_run_succeeds() {
    let w = connected(&[ALEX]).await;
    w.run().await;
    w.emu.remove_in_entra(ALEX).await;
    w.emu
        .fault(json!({"route": "GET /v1.0/users/delta", "status": 429, "retryAfter": 1}))
        .await;
    let started = std::time::Instant::now();
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(w.status(ALEX).await, UserStatus::Offboarded);
}

#[tokio::test]
async fn an_expired_delta_link_means_a_full_resync() {
    let w = connected(&[ALEX, MEGAN]).await;
    w.run().await;
    w.emu.purge_in_entra(ALEX).await;
    let res = w
        .emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/expire-delta-tokens"),
            None,
        )
        .await;
    assert!(res.status().is_success());
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(
        w.status(ALEX).await,
        UserStatus::Offboarded,
        "a full listing without Alex offboards Alex"
    );
    assert_eq!(w.status(MEGAN).await, UserStatus::Active);
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let w = connected(&[ALEX]).await;
    w.run().await;
    w.emu.remove_in_entra(ALEX).await;
    let r = reconciler::reconcile(
        &w.app.state.db,
        &w.app.state.bus,
        &w.entra,
        &w.tenant_id,
        Trigger::Cli,
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::DryRun);
    assert_eq!(r.offboarded.len(), 1);
    w.active_everyone(&[ALEX]).await;
    assert_eq!(
        w.run().await.offboarded.len(),
        1,
        "the real run still sees the change"
    );
}

/// Adds `tech{i}@contoso.com` to Contoso in Entra and onboards them; their object id.
async fn add_technician(w: &World, i: usize) -> String {
    let email = format!("tech{i}@contoso.com");
    let oid = w.emu.add_in_entra(&email, &format!("Tech {i}")).await;
    w.app.onboard("acme", &email).await;
    oid
}

/// Ten onboarded users of whom seven disappear: more than 5 and more than 20 %.
async fn mass_deletion() -> (World, Vec<String>) {
    let w = connected(&[]).await;
    let mut oids = Vec::new();
    for i in 0..10 {
        oids.push(add_technician(&w, i).await);
    }
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    for oid in &oids[..7] {
        w.emu.remove_in_entra(oid).await;
    }
    (w, oids)
}

#[tokio::test]
async fn a_mass_deletion_is_held_until_an_admin_approves() {
    let (w, oids) = mass_deletion().await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Held);
    assert_eq!(r.offboarded.len(), 7, "the held list names who would go");
    for oid in &oids {
        assert_eq!(w.status(oid).await, UserStatus::Active);
    }
    // While held, runs go on and leave the held users to the admin.
    let during = w.run().await;
    assert_eq!(during.outcome, Outcome::Ok, "{:?}", during.error);
    assert!(during.offboarded.is_empty(), "{:?}", during.offboarded);
    let run_id = r.run_id.unwrap();
    let (status, message) = w.decide(run_id, true).await;
    assert_eq!(status, 200, "{message}");
    assert!(message.contains("7 user(s) offboarded"), "{message}");
    for oid in &oids[..7] {
        assert_eq!(w.status(oid).await, UserStatus::Offboarded);
        assert_eq!(w.sessions(oid).await, 0);
    }
    assert_eq!(w.status(&oids[9]).await, UserStatus::Active);
    let (status, message) = w.decide(run_id, true).await;
    assert_ne!(status, 200, "decided once");
    assert!(message.contains("not waiting for a decision"), "{message}");
    let next = w.run().await;
    assert_eq!(next.outcome, Outcome::Ok, "{:?}", next.error);
    assert!(next.offboarded.is_empty());
    assert!(w.app.audited("reconcile.approved").await > 0);
}

#[tokio::test]
async fn approving_a_held_run_spares_the_users_entra_brought_back_meanwhile() {
    let (w, oids) = mass_deletion().await;
    w.emu.disable_in_entra(&oids[7]).await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Held);
    assert_eq!(r.offboarded.len(), 8);

    // Before the admin decides, the Entra admin restores one deleted user, restores
    // another but leaves it disabled, and re-enables the disabled one.
    w.emu.restore_in_entra(&oids[0]).await;
    w.emu.restore_in_entra(&oids[1]).await;
    w.emu.disable_in_entra(&oids[1]).await;
    w.emu.enable_in_entra(&oids[7]).await;

    let (status, message) = w.decide(r.run_id.unwrap(), true).await;
    assert_eq!(status, 200, "{message}");
    assert!(
        message.contains("6 user(s) offboarded")
            && message.contains(
                "2 left active because Entra ID no longer shows them deleted or disabled"
            ),
        "{message}"
    );
    w.active_everyone(&[&oids[0], &oids[7]]).await;
    for oid in &oids[1..7] {
        assert_eq!(w.status(oid).await, UserStatus::Offboarded, "{oid}");
        assert_eq!(w.sessions(oid).await, 0, "{oid}");
    }
    let reason = w.offboard_reason(&oids[1]).await;
    assert!(
        reason.contains("disabled"),
        "offboarded for what Entra shows now: {reason}"
    );
    let details = w.audit_details("reconcile.approved").await;
    assert!(
        details.contains("6 offboarded, 2 left"),
        "the audit log says who was spared: {details}"
    );

    // The next run reads the same changes again and finds nothing more to do.
    let next = w.run().await;
    assert_eq!(next.outcome, Outcome::Ok, "{:?}", next.error);
    assert!(next.offboarded.is_empty(), "{:?}", next.offboarded);
    w.active_everyone(&[&oids[0], &oids[7]]).await;
}

#[tokio::test]
async fn approving_while_graph_fails_offboards_nobody_and_the_run_stays_held() {
    let (w, oids) = mass_deletion().await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Held);
    let run_id = r.run_id.unwrap();
    // The first lookups answer; a later one fails: nothing may be applied halfway.
    w.emu
        .fault(json!({"route": "GET /v1.0/users/{id}", "count": 3}))
        .await;
    w.emu
        .fault(json!({"route": "GET /v1.0/users/{id}", "status": 500, "count": 100}))
        .await;
    let (status, message) = w.decide(run_id, true).await;
    assert_ne!(status, 200);
    assert!(
        message.contains("Nothing was offboarded and the run is still held")
            && message.contains("Entra ID could not be asked"),
        "{message}"
    );
    let everyone: Vec<&str> = oids.iter().map(String::as_str).collect();
    w.active_everyone(&everyone).await;
    assert!(w.still_held(run_id).await);
    assert!(w.app.audited("reconcile.approved").await == 0);

    // Throttled past its retries is no different.
    w.emu.clear_faults().await;
    w.emu
        .fault(
            json!({"route": "GET /v1.0/users/{id}", "status": 429, "retryAfter": 1, "count": 100}),
        )
        .await;
    let shown = reconciler::Shown {
        run_id,
        users: w.held_list(run_id).await.len(),
    };
    let err = reconciler::approve(
        &w.app.state.db,
        &w.app.state.bus,
        &w.entra,
        &w.tenant_id,
        shown,
        "msp-admin",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DecideError::Entra(_)), "{err}");
    w.active_everyone(&everyone).await;
    assert!(w.still_held(run_id).await);

    // Once Graph answers, the same run can be approved.
    w.emu.clear_faults().await;
    let (status, message) = w.decide(run_id, true).await;
    assert_eq!(status, 200, "{message}");
    assert!(message.contains("7 user(s) offboarded"), "{message}");
}

#[tokio::test]
async fn a_rejected_hold_offboards_nobody_and_the_next_run_sees_the_changes_again() {
    let (w, oids) = mass_deletion().await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Held);
    let (status, message) = w.decide(r.run_id.unwrap(), false).await;
    assert_eq!(status, 200, "{message}");
    assert!(message.contains("nobody was offboarded"), "{message}");
    let everyone: Vec<&str> = oids.iter().map(String::as_str).collect();
    w.active_everyone(&everyone).await;
    assert!(w.app.audited("reconcile.rejected").await > 0);

    // The deletions were not forgotten: under the same threshold they are held again.
    let again = w.run().await;
    assert_eq!(again.outcome, Outcome::Held, "{:?}", again.error);
    assert_eq!(again.offboarded.len(), 7);
    let (status, message) = w.decide(again.run_id.unwrap(), false).await;
    assert_eq!(status, 200, "{message}");

    // The admin raises the threshold instead: the next run offboards them.
    let (status, message) = w.save_schedule("240", "10", "80").await;
    assert_eq!(status, 200, "{message}");
    let next = w.run().await;
    assert_eq!(next.outcome, Outcome::Ok, "{:?}", next.error);
    assert_eq!(next.offboarded.len(), 7);
    for oid in &oids[..7] {
        assert_eq!(w.status(oid).await, UserStatus::Offboarded);
    }
    w.active_everyone(&[&oids[7], &oids[8], &oids[9]]).await;
}

impl World {
    /// The admin saves the User source page's Offboarding form; its status and message.
    async fn save_schedule(&self, minutes: &str, count: &str, percent: &str) -> (u16, String) {
        save_schedule(&self.admin, minutes, count, percent).await
    }
}

/// This Gatehouse's public URL is not https, so Microsoft cannot notify it of changes and the
/// poll is all there is: the admin may check Entra every minute, and the scheduler keeps to it.
#[tokio::test]
async fn without_change_notifications_entra_may_be_checked_every_minute() {
    let w = connected(&[ALEX]).await;
    let (status, message) = w.save_schedule("0", "5", "20").await;
    assert_eq!(status, 400);
    assert!(message.contains("from 1 to 1440"), "{message}");
    let (status, message) = w.save_schedule("1", "5", "20").await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(w.page().await.interval, "every 1 min");

    // The run comes due; the scheduler takes it and books the next a minute on.
    let db = &w.app.state.db;
    gatehouse::reconciler::schedule::book_reconcile(&db.pool, &w.tenant_id, now())
        .await
        .unwrap();
    let before = now();
    gatehouse::reconciler::scheduler::try_once(db, &w.app.state.bus, &w.entra)
        .await
        .unwrap();
    let next = gatehouse::reconciler::schedule::reconcile_settings(db, &w.tenant_id)
        .await
        .unwrap()
        .next_reconcile_at
        .unwrap();
    assert!(
        (before + 60..=now() + 60).contains(&next),
        "next run at {next}, polled at {before}"
    );
}

/// A shorter schedule brings the next run forward: "every 5 minutes" is kept from now, not
/// after the run booked under the old schedule (here a day out).
#[tokio::test]
async fn a_shorter_schedule_takes_effect_now() {
    let w = connected(&[ALEX]).await;
    let db = &w.app.state.db;
    let settings = || gatehouse::reconciler::schedule::reconcile_settings(db, &w.tenant_id);
    let booked = settings().await.unwrap().next_reconcile_at.unwrap();
    assert!(booked > now() + 3600, "the next run is a day on: {booked}");

    let (status, message) = w.save_schedule("5", "5", "20").await;
    assert_eq!(status, 200, "{message}");
    let booked = settings().await.unwrap().next_reconcile_at.unwrap();
    assert!(
        booked <= now() + 300,
        "the next run is at most five minutes on: {booked}, now {}",
        now()
    );
    // A longer schedule leaves a sooner run where it is.
    let (status, message) = w.save_schedule("600", "5", "20").await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(settings().await.unwrap().next_reconcile_at.unwrap(), booked);
}

#[tokio::test]
async fn a_tenant_is_reconciled_by_one_run_at_a_time() {
    let w = connected(&[ALEX]).await;
    w.emu
        .fault(json!({"route": "GET /v1.0/users/delta", "latencyMs": 1500}))
        .await;
    let (a, b) = tokio::join!(w.run(), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        w.run().await
    });
    let outcomes = [a.outcome, b.outcome];
    assert!(
        outcomes.contains(&Outcome::Ok) && outcomes.contains(&Outcome::Skipped),
        "{outcomes:?}"
    );
}

/// How many runs of the tenant were recorded.
async fn runs(w: &World) -> usize {
    w.page().await.runs.len()
}

#[tokio::test]
async fn two_instances_starting_a_run_of_one_tenant_at_once_run_it_once() {
    let w = connected(&[ALEX, MEGAN]).await;
    w.run().await;
    w.emu.remove_in_entra(ALEX).await;
    // On SQLite this is `gatehouse reconcile` beside `gatehouse serve`: another pool on the
    // same file. Whoever wins is slowed down, so the other certainly starts meanwhile.
    let other = w.app.replica().await;
    w.emu
        .fault(json!({"route": "GET /v1.0/users/delta", "latencyMs": 1500}))
        .await;
    let before = runs(&w).await;
    let on = |app: &TestApp| {
        let (db, hub, entra, tenant) = (
            app.state.db.clone(),
            app.state.bus.clone(),
            w.entra.clone(),
            w.tenant_id.clone(),
        );
        tokio::spawn(async move {
            reconciler::reconcile(&db, &hub, &entra, &tenant, Trigger::Cli, false)
                .await
                .unwrap()
        })
    };
    let (a, b) = tokio::join!(on(&w.app), on(&other));
    let outcomes = [a.unwrap().outcome, b.unwrap().outcome];
    assert!(
        outcomes.contains(&Outcome::Ok) && outcomes.contains(&Outcome::Skipped),
        "{outcomes:?}"
    );
    assert_eq!(runs(&w).await, before + 1, "one run was recorded");
    assert_eq!(w.status(ALEX).await, UserStatus::Offboarded);
    let offboardings = w.app.audited("user.offboarded").await;
    assert_eq!(offboardings, 1, "Alex was offboarded once");

    // The winner gave the tenant back: the next run, on either instance, runs.
    let again = on(&other).await.unwrap();
    assert_eq!(again.outcome, Outcome::Ok, "{:?}", again.error);
}

#[tokio::test]
async fn the_reconcile_cli_beside_a_running_server_skips_the_tenant_it_is_reconciling() {
    let w = connected(&[ALEX, MEGAN]).await;
    w.run().await;
    w.emu.remove_in_entra(ALEX).await;
    // The server's run is slow to hear from Graph, so the operator's command comes meanwhile.
    w.emu
        .fault(json!({"route": "GET /v1.0/users/delta", "latencyMs": 4000}))
        .await;
    let serving = {
        let (db, hub, entra, tenant) = (
            w.app.state.db.clone(),
            w.app.state.bus.clone(),
            w.entra.clone(),
            w.tenant_id.clone(),
        );
        tokio::spawn(async move {
            reconciler::reconcile(&db, &hub, &entra, &tenant, Trigger::Schedule, false)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut command = reconcile_command(&w);
    // The server's run goes on in this process while the command runs.
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("gatehouse runs");
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !out.status.success(),
        "a skipped tenant is no success for a script"
    );
    assert!(
        printed.contains("acme: skipped"),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = serving.await.unwrap();
    assert_eq!(served.outcome, Outcome::Ok, "{:?}", served.error);
    assert_eq!(w.status(ALEX).await, UserStatus::Offboarded);
    let offboardings = w.app.audited("user.offboarded").await;
    assert_eq!(offboardings, 1, "Alex was offboarded once");
}

#[tokio::test]
async fn a_lease_left_by_a_crashed_instance_does_not_stop_the_next_run() {
    let w = connected(&[ALEX]).await;
    w.run().await;
    w.emu.remove_in_entra(ALEX).await;
    // An instance died mid-run a while ago; its lease has run out. (Planted: no code path of
    // a live process leaves a lease behind.)
    sqlx::query(
        "INSERT INTO reconcile_leases (tenant_id, holder, expires_at) VALUES ($1, 'crashed', $2)",
    )
    .bind(&w.tenant_id)
    .bind(now() - 1)
    .execute(&w.app.state.db.pool)
    .await
    .unwrap();
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(w.status(ALEX).await, UserStatus::Offboarded);
    let next = reconciler::lease::Lease::acquire(&w.app.state.db, &w.tenant_id)
        .await
        .unwrap();
    assert!(next.is_some(), "the run gave its lease back");
}

/// `gatehouse reconcile` against the world's database and emulator, as an operator runs it.
fn reconcile_command(w: &World) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .args(["reconcile", "--tenant", "acme"])
        .env("DATABASE_URL", w.app.state.config.database_url.as_str())
        .env("ENTRA_CLIENT_ID", &w.emu.app.client_id)
        .env("ENTRA_CLIENT_SECRET", w.emu.secret())
        .env("ENTRA_AUTHORITY_URL", &w.emu.base)
        .env("GRAPH_BASE_URL", &w.emu.base)
        .env("RUST_LOG", "warn");
    command
}

/// When the tenant's lease runs out, if anyone holds it.
async fn lease_expiry(w: &World) -> Option<i64> {
    sqlx::query_as::<_, (i64,)>("SELECT expires_at FROM reconcile_leases WHERE tenant_id = $1")
        .bind(&w.tenant_id)
        .fetch_optional(&w.app.state.db.pool)
        .await
        .unwrap()
        .map(|(at,)| at)
}

/// A `gatehouse reconcile` killed outright in the middle of its walk (SIGKILL: no chance to
/// give its lease back) keeps the tenant from Sync now, notifications and the schedule for
/// at most 30 seconds; then the next run completes and offboards whom Entra removed.
#[tokio::test]
async fn a_run_killed_mid_walk_frees_its_tenant_within_thirty_seconds() {
    let w = connected(&[ALEX, MEGAN]).await;
    w.run().await;
    w.emu.remove_in_entra(ALEX).await;
    // The command's walk waits on Graph long enough to be killed in the middle of it.
    w.emu
        .fault(json!({"route": "GET /v1.0/users/delta", "latencyMs": 60000}))
        .await;
    let walks = || async {
        w.emu.counts().await["GET /v1.0/users/delta"]
            .as_u64()
            .unwrap_or(0)
    };
    let walked_before = walks().await;
    let mut command = reconcile_command(&w);
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().expect("gatehouse runs");
    // Killed once it holds the lease and its walk waits on Graph.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while lease_expiry(&w).await.is_none() || walks().await == walked_before {
        assert!(
            std::time::Instant::now() < deadline,
            "the command took the lease and began its walk"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let killed_at = now();
    assert_eq!(
        w.run().await.outcome,
        Outcome::Skipped,
        "the dead holder's lease still stands"
    );
    let expires = lease_expiry(&w).await.expect("the dead holder's lease");
    assert!(
        expires - killed_at <= 30,
        "the lease outlives its holder by {} s",
        expires - killed_at
    );
    let next = loop {
        let r = w.run().await;
        if r.outcome != Outcome::Skipped || now() - killed_at > 35 {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    assert_eq!(next.outcome, Outcome::Ok, "{:?}", next.error);
    assert!(
        now() - killed_at <= 31,
        "the tenant was free again {} s after the kill",
        now() - killed_at
    );
    assert_eq!(w.status(ALEX).await, UserStatus::Offboarded);
    assert_eq!(w.status(MEGAN).await, UserStatus::Active);
}

#[tokio::test]
async fn a_held_run_cannot_be_decided_while_another_instance_reconciles_the_tenant() {
    let (w, oids) = mass_deletion().await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Held);
    // Another instance holds the tenant's lease, as during a run of its own.
    let _held = reconciler::lease::Lease::acquire(&w.app.state.db, &w.tenant_id)
        .await
        .unwrap()
        .expect("the lease was free");
    let (status, message) = w.decide(r.run_id.unwrap(), true).await;
    assert_ne!(status, 200);
    assert!(message.contains("decide again in a moment"), "{message}");
    let everyone: Vec<&str> = oids.iter().map(String::as_str).collect();
    w.active_everyone(&everyone).await;
    assert!(w.still_held(r.run_id.unwrap()).await);
    assert_eq!(w.run().await.outcome, Outcome::Skipped);
}

#[tokio::test]
async fn a_graph_call_that_times_out_offboards_nobody() {
    let mut w = connected(&[ALEX, MEGAN]).await;
    w.entra = w
        .entra
        .clone()
        .with_timeout(std::time::Duration::from_secs(1));
    w.run().await;
    w.emu.remove_in_entra(ALEX).await;
    w.emu
        .fault(json!({"route": "GET /v1.0/users/delta", "latencyMs": 3000}))
        .await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Failed);
    let error = r.error.unwrap_or_default();
    assert!(error.contains("could not be reached"), "{error}");
    w.active_everyone(&[ALEX, MEGAN]).await;
}

#[tokio::test]
async fn a_changed_mail_in_entra_updates_the_record() {
    let w = connected(&[ALEX]).await;
    w.run().await;
    let renames = || async { w.app.audited("user.renamed").await };
    let renamed_before = renames().await;
    let email_and_status = || async {
        let alex = w.app.user_of(&w.tenant_id, ALEX).await;
        (alex.email, alex.status)
    };
    // A new mail while the verified address is still the account's sign-in name: the
    // address stays the technician's, and nothing is renamed.
    w.emu
        .patch_in_entra(ALEX, json!({"mail": "alex.wilber@contoso.com"}))
        .await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    assert_eq!(
        email_and_status().await,
        ("alex@contoso.com".to_string(), UserStatus::Active)
    );
    assert_eq!(renames().await, renamed_before, "no rename is audited");

    // The old address leaves the account altogether: the record follows its mail.
    w.emu
        .patch_in_entra(
            ALEX,
            json!({
                "userPrincipalName": "alex.wilber@contoso.com",
                "proxyAddresses": ["SMTP:alex.wilber@contoso.com"],
            }),
        )
        .await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    assert_eq!(
        email_and_status().await,
        ("alex.wilber@contoso.com".to_string(), UserStatus::Active)
    );
    assert_eq!(renames().await, renamed_before + 1, "the rename is audited");
}

#[tokio::test]
async fn an_account_whose_addresses_all_leave_the_connected_domain_is_offboarded() {
    let w = connected(&[ALEX, MEGAN]).await;
    w.run().await;
    let patch = |oid, body| w.emu.patch_in_entra(oid, body);
    // Alex's every address moves to the directory's initial domain, as when contoso.com is
    // taken off the directory; Megan keeps one alias in contoso.com.
    patch(
        ALEX,
        json!({
            "userPrincipalName": "alex@contoso.onmicrosoft.com",
            "mail": "alex@contoso.onmicrosoft.com",
            "proxyAddresses": ["SMTP:alex@contoso.onmicrosoft.com"],
            "otherMails": [],
        }),
    )
    .await;
    patch(
        MEGAN,
        json!({
            "userPrincipalName": "megan@contoso.onmicrosoft.com",
            "mail": "megan@contoso.onmicrosoft.com",
            "proxyAddresses": ["SMTP:megan@contoso.onmicrosoft.com", "smtp:megan.b@contoso.com"],
        }),
    )
    .await;
    let report = w.run().await;
    assert_eq!(report.outcome, Outcome::Ok);
    assert_eq!(w.status(ALEX).await, UserStatus::Offboarded);
    assert_eq!(w.sessions(ALEX).await, 0, "Alex's sessions end");
    assert_eq!(
        w.offboard_reason(ALEX).await,
        "no address in the connected domain any more"
    );
    // Megan stays, and her record now holds the address she still has in the domain.
    assert_eq!(w.status(MEGAN).await, UserStatus::Active);
    assert_eq!(w.sessions(MEGAN).await, 1);
    assert_eq!(
        w.app.user_of(&w.tenant_id, MEGAN).await.email,
        "megan.b@contoso.com"
    );
}

/// Graph answers a delta link older than seven days `400 syncStateNotFound` (not `410`):
/// after a week without a run the next one must start over, not fail forever.
#[tokio::test]
async fn a_delta_link_that_expired_during_a_week_of_downtime_is_resynced_and_offboards_who_left() {
    let w = connected(&[ALEX, MEGAN]).await;
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    w.emu.delta_links_last(1).await;
    w.emu.purge_in_entra(ALEX).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(
        w.status(ALEX).await,
        UserStatus::Offboarded,
        "Alex left meanwhile"
    );
    assert_eq!(w.sessions(ALEX).await, 0);
    assert_eq!(w.status(MEGAN).await, UserStatus::Active);
    assert_eq!(w.sessions(MEGAN).await, 1);
}

/// A held run left undecided past the delta link's lifetime with no run after it (Gatehouse
/// was down): the decision and the runs after it still work.
#[tokio::test]
async fn a_held_run_left_past_the_delta_link_lifetime_does_not_break_the_next_run() {
    let (w, oids) = mass_deletion().await;
    let held = w.run().await;
    assert_eq!(held.outcome, Outcome::Held);
    w.emu.delta_links_last(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, message) = w.decide(held.run_id.unwrap(), true).await;
    assert_eq!(status, 200, "{message}");
    for oid in &oids[..7] {
        assert_eq!(w.status(oid).await, UserStatus::Offboarded);
    }
    // The stored link has expired: the next run reads the whole directory again, finds
    // the same people gone, and offboards nobody else.
    let next = w.run().await;
    assert_eq!(next.outcome, Outcome::Ok, "{:?}", next.error);
    assert!(next.offboarded.is_empty(), "{:?}", next.offboarded);
    for oid in &oids[7..] {
        assert_eq!(w.status(oid).await, UserStatus::Active);
    }
}

/// While a run waits for an admin for days, the runs after it keep the delta link fresh
/// (no resync when the decision finally comes), still offboard a technician who leaves
/// meanwhile, and a second mass deletion joins the held list instead of going through.
#[tokio::test]
async fn runs_go_on_while_a_run_is_held_and_keep_the_delta_link_fresh() {
    let (w, oids) = mass_deletion().await;
    let held = w.run().await;
    assert_eq!(held.outcome, Outcome::Held);
    let held_run = held.run_id.unwrap();
    w.emu.delta_links_last(2).await;

    // Three scheduled runs over more than the link's lifetime: each walks from the link the
    // one before it left, one request each, none of them a resync.
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
        let r = w.run().await;
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_eq!(
            r.graph_requests, 1,
            "a no-change run from a fresh delta link, not a resync"
        );
        assert!(r.offboarded.is_empty(), "{:?}", r.offboarded);
    }
    let everyone: Vec<&str> = oids.iter().map(String::as_str).collect();
    w.active_everyone(&everyone).await;

    // One more technician is disabled in Entra: under the threshold, offboarded now.
    w.emu.disable_in_entra(&oids[7]).await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.offboarded.len(), 1, "{:?}", r.offboarded);
    assert_eq!(w.status(&oids[7]).await, UserStatus::Offboarded);
    assert_eq!(w.sessions(&oids[7]).await, 0);
    for oid in &oids[..7] {
        assert_eq!(
            w.status(oid).await,
            UserStatus::Active,
            "held users wait for the admin"
        );
    }

    // A restored held user shows up in the walk, and changes nothing before the decision.
    w.emu.restore_in_entra(&oids[0]).await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert!(r.offboarded.is_empty(), "{:?}", r.offboarded);

    // The admin approves days later: the held users are looked up again, the restored one
    // is spared, and the run after the decision is an ordinary one-request run.
    let (status, message) = w.decide(held_run, true).await;
    assert_eq!(status, 200, "{message}");
    assert!(message.contains("6 user(s) offboarded"), "{message}");
    assert_eq!(w.status(&oids[0]).await, UserStatus::Active);
    for oid in &oids[1..7] {
        assert_eq!(w.status(oid).await, UserStatus::Offboarded, "{oid}");
    }
    let next = w.run().await;
    assert_eq!(next.outcome, Outcome::Ok, "{:?}", next.error);
    assert_eq!(next.graph_requests, 1);
    assert!(next.offboarded.is_empty(), "{:?}", next.offboarded);
    assert_eq!(w.status(&oids[0]).await, UserStatus::Active);
}

/// Runs go on while one is held, so it soon leaves the page's list of recent runs; the page
/// must still offer the decision (its users are left alone until someone decides).
#[tokio::test]
async fn a_held_run_stays_on_the_page_however_many_runs_follow() {
    let (w, _) = mass_deletion().await;
    let held = w.run().await;
    assert_eq!(held.outcome, Outcome::Held);
    for _ in 0..35 {
        assert_eq!(w.run().await.outcome, Outcome::Ok);
    }
    let page = w
        .admin
        .get("acme", "/adminportal/reconciliation")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("Held run {}", held.run_id.unwrap())),
        "the held run is still offered for a decision"
    );
}

/// A second mass deletion while the first waits joins the held list: it is not applied
/// on its own, and the admin decides once for both.
#[tokio::test]
async fn a_second_mass_deletion_while_one_is_held_joins_the_held_list() {
    let (w, oids) = mass_deletion().await;
    let first = w.run().await;
    assert_eq!(first.outcome, Outcome::Held);
    let held_run = first.run_id.unwrap();
    // Three more technicians are added and onboarded, then the last three originals and
    // the newcomers are deleted: six more, over the threshold of five.
    let mut more = Vec::new();
    for i in 10..13 {
        more.push(add_technician(&w, i).await);
    }
    for oid in oids[7..].iter().chain(&more) {
        w.emu.remove_in_entra(oid).await;
    }
    let second = w.run().await;
    assert_eq!(second.outcome, Outcome::Held, "{:?}", second.error);
    assert_eq!(second.offboarded.len(), 6, "{:?}", second.offboarded);
    for oid in oids.iter().chain(&more) {
        assert_eq!(
            w.status(oid).await,
            UserStatus::Active,
            "nothing applied past the threshold"
        );
    }
    let (status, message) = w.decide(held_run, true).await;
    assert_eq!(status, 200, "{message}");
    assert!(message.contains("13 user(s) offboarded"), "{message}");
    for oid in oids.iter().chain(&more) {
        assert_eq!(w.status(oid).await, UserStatus::Offboarded, "{oid}");
    }
}

/// The admin approves the held list they were shown. Offboardings that joined it after they
/// looked (a second mass deletion meanwhile) are not approved unseen: the approval is refused
/// and says how the list changed, nothing is applied, and approving the list as it is now
/// offboards everyone on it.
#[tokio::test]
async fn an_approval_covers_only_the_held_list_the_admin_saw() {
    let (w, oids) = mass_deletion().await;
    let held_run = w.run().await.run_id.unwrap();
    let seen = w.held_list(held_run).await.len();
    assert_eq!(seen, 7);
    let mut more = Vec::new();
    for i in 10..13 {
        more.push(add_technician(&w, i).await);
    }
    for oid in oids[7..].iter().chain(&more) {
        w.emu.remove_in_entra(oid).await;
    }
    assert_eq!(w.run().await.outcome, Outcome::Held);

    let (status, message) = w.decide_seen(held_run, true, seen).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("7 when you looked, 13 now"), "{message}");
    for oid in oids.iter().chain(&more) {
        assert_eq!(w.status(oid).await, UserStatus::Active, "nothing applied");
    }
    assert!(w.still_held(held_run).await);

    let (status, message) = w.decide(held_run, true).await;
    assert_eq!(status, 200, "{message}");
    assert!(message.contains("13 user(s) offboarded"), "{message}");
}

/// A Graph page whose nextLink or deltaLink points at another host (a compromised proxy, a
/// bug) fails the run: the bearer token goes to `GRAPH_BASE_URL` and nowhere else.
#[tokio::test]
async fn a_link_to_another_host_is_not_followed_and_gets_no_token() {
    // The other host: a listener that records whether anything reached it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere = format!("http://{}", listener.local_addr().unwrap());
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = reached.clone();
    tokio::spawn(async move {
        while let Ok((_, _)) = listener.accept().await {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });

    let w = connected(&[ALEX, MEGAN]).await;
    // The first walk's deltaLink points elsewhere: the run fails before storing it.
    w.emu
        .fault(json!({"route": "GET /v1.0/users/delta", "linksTo": elsewhere}))
        .await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(w.status(ALEX).await, UserStatus::Active);
    // A walk of more changes than one page holds: its nextLink points elsewhere.
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    let res = w
        .emu
        .control(
            reqwest::Method::POST,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/generate"),
            Some(json!({"count": 150})),
        )
        .await;
    assert!(res.status().is_success());
    w.emu.remove_in_entra(ALEX).await;
    w.emu
        .fault(json!({"route": "GET /v1.0/users/delta", "linksTo": elsewhere}))
        .await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Failed);
    let error = r.error.unwrap_or_default();
    assert!(error.contains("outside GRAPH_BASE_URL"), "{error}");
    w.active_everyone(&[ALEX, MEGAN]).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !reached.load(std::sync::atomic::Ordering::SeqCst),
        "nothing was sent to the other host"
    );
}
