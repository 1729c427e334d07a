//! The offboarding reconciler against the emulator: who is offboarded, and that nobody is
//! when anything goes wrong.

use crate::emulator::{spawn_emulator, Emu, ALEX, MEGAN};
use crate::helpers::*;
use gatehouse::emulator::CONTOSO_TENANT_ID;
use gatehouse::entra::EntraClient;
use gatehouse::reconciler::{self, Outcome, Trigger};
use serde_json::json;

const ISAIAH: &str = "1f0c5a52-7d1e-4b8a-9f3c-0a1b2c3d4e03";

struct World {
    app: TestApp,
    emu: Emu,
    entra: EntraClient,
    tenant_id: String,
}

/// Gatehouse with tenant `acme` connected to Contoso, consent granted, and onboarded users
/// for the given Contoso object ids.
async fn connected(oids: &[&str]) -> World {
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    let app = spawn_app().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let (tenant_id,): (String,) = sqlx::query_as("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE tenants SET user_source = 'azuread', entra_tenant_id = $1, entra_domain = 'contoso.com' WHERE id = $2")
        .bind(CONTOSO_TENANT_ID)
        .bind(&tenant_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    for (i, oid) in oids.iter().enumerate() {
        onboard(&app, &tenant_id, oid, &format!("user{i}@contoso.com")).await;
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
    }
}

/// An Entra user onboarded into the tenant, with a signed-in session.
async fn onboard(app: &TestApp, tenant_id: &str, oid: &str, email: &str) {
    let id = format!("user-{oid}");
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, first_name, last_name, username, role, source, status, entra_oid, created_at, onboarded_at) \
         VALUES ($1, $2, $3, 'E', 'U', $4, 'technician', 'azuread', 'active', $5, $6, $7)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(email)
    .bind(format!("msp-{}", &oid[oid.len() - 6..]))
    .bind(oid)
    .bind(now())
    .bind(now())
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO user_sessions (id, tenant_id, user_id, created_at, last_seen_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, '127.0.0.1', 'test')")
        .bind(format!("s-{oid}"))
        .bind(tenant_id)
        .bind(&id)
        .bind(now())
        .bind(now())
        .execute(&app.state.db.pool)
        .await
        .unwrap();
}

impl World {
    async fn run(&self) -> reconciler::RunReport {
        reconciler::reconcile(
            &self.app.state.db,
            &self.app.state.hub,
            &self.entra,
            &self.tenant_id,
            Trigger::Manual,
            false,
        )
        .await
        .unwrap()
    }

    async fn status(&self, oid: &str) -> String {
        let (s,): (String,) = sqlx::query_as("SELECT status FROM users WHERE entra_oid = $1")
            .bind(oid)
            .fetch_one(&self.app.state.db.pool)
            .await
            .unwrap();
        s
    }

    async fn sessions(&self, oid: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM user_sessions WHERE user_id = $1")
            .bind(format!("user-{oid}"))
            .fetch_one(&self.app.state.db.pool)
            .await
            .unwrap();
        n
    }

    async fn entra(&self, method: reqwest::Method, path: &str) {
        let res = self
            .emu
            .control(
                method,
                &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{path}"),
                None,
            )
            .await;
        assert!(
            res.status().is_success(),
            "control {path}: {}",
            res.status()
        );
    }

    async fn fault(&self, spec: serde_json::Value) {
        let res = self
            .emu
            .control(reqwest::Method::POST, "/_emulator/faults", Some(spec))
            .await;
        assert!(res.status().is_success(), "fault: {}", res.status());
    }

    async fn active_everyone(&self, oids: &[&str]) {
        for oid in oids {
            assert_eq!(self.status(oid).await, "active", "{oid} was offboarded");
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

    w.entra(reqwest::Method::DELETE, ALEX).await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.offboarded.len(), 1);
    assert_eq!(w.status(ALEX).await, "offboarded");
    assert_eq!(w.sessions(ALEX).await, 0, "every session ended");
    assert_eq!(w.status(MEGAN).await, "active");
    let (reason,): (String,) =
        sqlx::query_as("SELECT offboard_reason FROM users WHERE entra_oid = $1")
            .bind(ALEX)
            .fetch_one(&w.app.state.db.pool)
            .await
            .unwrap();
    assert!(reason.contains("deleted in Entra ID"), "{reason}");
    assert!(w
        .app
        .audit_actions()
        .await
        .contains(&"user.offboarded".to_string()));
}

#[tokio::test]
async fn hard_delete_and_disable_each_offboard() {
    let w = connected(&[ALEX, MEGAN, ISAIAH]).await;
    w.run().await;
    w.entra(reqwest::Method::DELETE, &format!("{ALEX}?permanent=true"))
        .await;
    w.entra(reqwest::Method::POST, &format!("{MEGAN}/disable"))
        .await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(w.status(ALEX).await, "offboarded");
    assert_eq!(w.status(MEGAN).await, "offboarded");
    assert_eq!(w.status(ISAIAH).await, "active");
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
    w.entra(reqwest::Method::DELETE, ALEX).await;
    w.run().await;
    let actions = w
        .app
        .audit_actions()
        .await
        .iter()
        .filter(|a| *a == "user.offboarded")
        .count();
    // A restore and a second delete show the same user again; the record stays offboarded once.
    w.entra(reqwest::Method::POST, &format!("{ALEX}/restore"))
        .await;
    w.entra(reqwest::Method::DELETE, ALEX).await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok);
    let again = w
        .app
        .audit_actions()
        .await
        .iter()
        .filter(|a| *a == "user.offboarded")
        .count();
    assert_eq!(actions, again);
}

#[tokio::test]
async fn graph_failures_offboard_nobody_and_say_why() {
    let cases = [
        (
            json!({"route": "GET /v1.0/users/delta", "status": 500}),
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
        (
            json!({"route": "GET /v1.0/users/delta", "status": 401}),
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
        w.entra(reqwest::Method::DELETE, ALEX).await;
        w.fault(fault.clone()).await;
        let r = w.run().await;
        assert_eq!(r.outcome, Outcome::Failed, "{fault}");
        let error = r.error.unwrap_or_default();
        assert!(error.contains(expected), "{fault}: {error}");
        w.active_everyone(&[ALEX, MEGAN]).await;
        let (outcome, stored): (String, Option<String>) =
            sqlx::query_as("SELECT outcome, error FROM reconcile_runs ORDER BY id DESC LIMIT 1")
                .fetch_one(&w.app.state.db.pool)
                .await
                .unwrap();
        assert_eq!(outcome, "failed");
        assert!(stored.unwrap_or_default().contains(expected));
    }
}

#[tokio::test]
async fn lost_consent_fails_the_run_and_asks_for_reauthorization() {
    let w = connected(&[ALEX]).await;
    w.run().await;
    w.entra(reqwest::Method::DELETE, ALEX).await;
    let res = w
        .emu
        .control(
            reqwest::Method::DELETE,
            &format!(
                "/_emulator/directories/{CONTOSO_TENANT_ID}/consents/{}",
                w.emu.app.client_id
            ),
            None,
        )
        .await;
    assert!(res.status().is_success());
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Failed);
    w.active_everyone(&[ALEX]).await;
    let (health,): (Option<String>,) =
        sqlx::query_as("SELECT entra_health FROM tenants WHERE id = $1")
            .bind(&w.tenant_id)
            .fetch_one(&w.app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(health.as_deref(), Some("authorization lost — re-authorize"));
}

#[tokio::test]
async fn a_retry_after_429_is_honoured_and_the_run_succeeds() {
    let w = connected(&[ALEX]).await;
    w.run().await;
    w.entra(reqwest::Method::DELETE, ALEX).await;
    w.fault(json!({"route": "GET /v1.0/users/delta", "status": 429, "retryAfter": 1}))
        .await;
    let started = std::time::Instant::now();
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(w.status(ALEX).await, "offboarded");
}

#[tokio::test]
async fn an_expired_delta_link_means_a_full_resync() {
    let w = connected(&[ALEX, MEGAN]).await;
    w.run().await;
    w.entra(reqwest::Method::DELETE, &format!("{ALEX}?permanent=true"))
        .await;
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
        "offboarded",
        "a full listing without Alex offboards Alex"
    );
    assert_eq!(w.status(MEGAN).await, "active");
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let w = connected(&[ALEX]).await;
    w.run().await;
    w.entra(reqwest::Method::DELETE, ALEX).await;
    let r = reconciler::reconcile(
        &w.app.state.db,
        &w.app.state.hub,
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

/// Ten onboarded users of whom seven disappear: more than 5 and more than 20 %.
async fn mass_deletion() -> (World, Vec<String>) {
    let emu_users: Vec<String> = Vec::new();
    let w = connected(&[]).await;
    let mut oids = emu_users;
    for i in 0..10 {
        let res = w
            .emu
            .control(
                reqwest::Method::POST,
                &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users"),
                Some(json!({"userPrincipalName": format!("tech{i}@contoso.com"), "displayName": format!("Tech {i}"), "mail": format!("tech{i}@contoso.com")})),
            )
            .await;
        assert!(res.status().is_success(), "add user: {}", res.status());
        let body: serde_json::Value = res.json().await.unwrap();
        let oid = body["id"].as_str().expect("the new user's id").to_string();
        onboard(&w.app, &w.tenant_id, &oid, &format!("tech{i}@contoso.com")).await;
        oids.push(oid);
    }
    assert_eq!(w.run().await.outcome, Outcome::Ok);
    for oid in &oids[..7] {
        w.entra(reqwest::Method::DELETE, oid).await;
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
        assert_eq!(w.status(oid).await, "active");
    }
    // While held, further runs wait for the decision.
    assert_eq!(w.run().await.outcome, Outcome::Skipped);
    let run_id = r.run_id.unwrap();
    let n = reconciler::decide(
        &w.app.state.db,
        &w.app.state.hub,
        &w.tenant_id,
        run_id,
        true,
        "msp-admin",
    )
    .await
    .unwrap();
    assert_eq!(n, 7);
    for oid in &oids[..7] {
        assert_eq!(w.status(oid).await, "offboarded");
    }
    assert_eq!(w.status(&oids[9]).await, "active");
    assert!(
        reconciler::decide(
            &w.app.state.db,
            &w.app.state.hub,
            &w.tenant_id,
            run_id,
            true,
            "msp-admin"
        )
        .await
        .is_err(),
        "decided once"
    );
    let next = w.run().await;
    assert_eq!(next.outcome, Outcome::Ok);
    assert!(next.offboarded.is_empty());
    assert!(w
        .app
        .audit_actions()
        .await
        .contains(&"reconcile.approved".to_string()));
}

#[tokio::test]
async fn a_rejected_hold_offboards_nobody() {
    let (w, oids) = mass_deletion().await;
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Held);
    let n = reconciler::decide(
        &w.app.state.db,
        &w.app.state.hub,
        &w.tenant_id,
        r.run_id.unwrap(),
        false,
        "msp-admin",
    )
    .await
    .unwrap();
    assert_eq!(n, 0);
    for oid in &oids {
        assert_eq!(w.status(oid).await, "active");
    }
    let next = w.run().await;
    assert_eq!(
        next.outcome,
        Outcome::Ok,
        "the dismissed changes are not held again"
    );
    assert!(w
        .app
        .audit_actions()
        .await
        .contains(&"reconcile.rejected".to_string()));
}

#[tokio::test]
async fn a_tenant_is_reconciled_by_one_run_at_a_time() {
    let w = connected(&[ALEX]).await;
    w.fault(json!({"route": "GET /v1.0/users/delta", "latencyMs": 1500}))
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

#[tokio::test]
async fn a_graph_call_that_times_out_offboards_nobody() {
    let mut w = connected(&[ALEX, MEGAN]).await;
    w.entra = w
        .entra
        .clone()
        .with_timeout(std::time::Duration::from_secs(1));
    w.run().await;
    w.entra(reqwest::Method::DELETE, ALEX).await;
    w.fault(json!({"route": "GET /v1.0/users/delta", "latencyMs": 3000}))
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
    let res = w
        .emu
        .control(
            reqwest::Method::PATCH,
            &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{ALEX}"),
            Some(json!({"mail": "alex.wilber@contoso.com"})),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let r = w.run().await;
    assert_eq!(r.outcome, Outcome::Ok);
    let (email, status): (String, String) =
        sqlx::query_as("SELECT email, status FROM users WHERE entra_oid = $1")
            .bind(ALEX)
            .fetch_one(&w.app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (email.as_str(), status.as_str()),
        ("alex.wilber@contoso.com", "active")
    );
    assert!(w
        .app
        .audit_actions()
        .await
        .contains(&"user.renamed".to_string()));
}
