//! Entra benchmarks (results in BENCHMARKS.md):
//! 1. the emulator: a full `/users/delta` walk over 100 000 users, then after 1 % changed;
//! 2. the reconciler: the first run over that directory with 5 000 onboarded users, then a
//!    run without changes. Graph requests, wall time, peak RSS of this whole process
//!    (emulator, Gatehouse and the client together).
//!
//! Run: `cargo bench --features ssr --bench entra`

use gatehouse::entra::EntraClient;
use gatehouse::reconciler::{self, Trigger};
use gatehouse::server::config::Config;
use gatehouse::server::startup::Application;
use gatehouse_emulator::{Emulator, Seed, CONTOSO_TENANT_ID};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::time::Instant;

const USERS: usize = 100_000;
const ONBOARDED: usize = 5_000;

fn current_rss_mb() -> f64 {
    status_mb("VmRSS:")
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

struct Graph {
    http: reqwest::Client,
    token: String,
}

impl Graph {
    async fn get(&self, url: &str) -> Value {
        self.http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Follows a delta chain: (entries, pages, deltaLink).
    async fn walk(&self, start: &str) -> (usize, usize, String) {
        let (mut items, mut pages, mut url) = (0usize, 0usize, start.to_string());
        loop {
            let body = self.get(&url).await;
            pages += 1;
            items += body["value"].as_array().map(Vec::len).unwrap_or(0);
            match body["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => {
                    return (
                        items,
                        pages,
                        body["@odata.deltaLink"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                }
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let emulator = Emulator::with_control_token(Seed::contoso(), "bench".into()).unwrap();
    let addr = emulator
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{addr}");
    let app = emulator.demo_app().unwrap();
    let http = reqwest::Client::new();
    let control = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth("bench")
    };
    let consent = format!(
        "/_emulator/directories/{CONTOSO_TENANT_ID}/consents/{}",
        app.client_id
    );
    assert!(control(reqwest::Method::PUT, &consent)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let token: Value = http
        .post(format!("{base}/{CONTOSO_TENANT_ID}/oauth2/v2.0/token"))
        .form(&[
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.secret.expose_secret()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let graph = Graph {
        http: http.clone(),
        token: token["access_token"].as_str().unwrap().to_string(),
    };

    let started = Instant::now();
    let res = control(
        reqwest::Method::POST,
        &format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/generate"),
    )
    .json(&json!({ "count": USERS }))
    .send()
    .await
    .unwrap();
    assert!(res.status().is_success());
    println!(
        "emulator: generated {USERS} users in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // 1. The emulator's delta walk.
    let started = Instant::now();
    let (items, pages, link) = graph
        .walk(&format!(
            "{base}/v1.0/users/delta?$select=id,accountEnabled,userPrincipalName,mail"
        ))
        .await;
    println!(
        "emulator: full delta walk, {items} users in {pages} pages, {:.2} s, peak RSS {:.0} MB",
        started.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    let mut ids = Vec::new();
    let mut url = Some(format!("{base}/v1.0/users?$top=999&$select=id"));
    while let Some(u) = url {
        let body = graph.get(&u).await;
        ids.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_string()),
        );
        url = body["@odata.nextLink"].as_str().map(String::from);
    }
    for id in ids.iter().step_by(100) {
        let path = format!("/_emulator/directories/{CONTOSO_TENANT_ID}/users/{id}/disable");
        assert!(control(reqwest::Method::POST, &path)
            .send()
            .await
            .unwrap()
            .status()
            .is_success());
    }
    let started = Instant::now();
    let (items, pages, _) = graph.walk(&link).await;
    println!(
        "emulator: delta walk after 1 % changed, {items} users in {pages} pages, {:.3} s",
        started.elapsed().as_secs_f64()
    );

    // 2. The reconciler, on SQLite, over the same directory with 5 000 onboarded users
    //    (none among the disabled ones, so the first run offboards nobody).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let gatehouse = Application::build(Config::for_tests(url)).await.unwrap();
    let db = gatehouse.state().db.clone();
    gatehouse::tenants::service::create(&db, "acme", "Acme MSP", "admin@acme.com", "bench")
        .await
        .unwrap();
    let tenant = gatehouse::tenants::service::find_by_slug(&db, "acme")
        .await
        .unwrap()
        .unwrap();
    sqlx::query(
        "UPDATE tenants SET user_source = 'azuread', entra_tenant_id = $1, entra_domain = 'contoso.com', \
         deletion_threshold_count = 100000 WHERE id = $2",
    )
    .bind(CONTOSO_TENANT_ID)
    .bind(&tenant.id)
    .execute(&db.pool)
    .await
    .unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    for (i, oid) in ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 != 0)
        .take(ONBOARDED)
    {
        sqlx::query(
            "INSERT INTO users (id, tenant_id, email, first_name, last_name, username, role, source, status, entra_oid, created_at, onboarded_at) \
             VALUES ($1, $2, $3, 'B', 'U', $4, 'technician', 'azuread', 'active', $5, 0, 0)",
        )
        .bind(format!("u{i}"))
        .bind(&tenant.id)
        .bind(format!("user{i}@contoso.com"))
        .bind(format!("msp-u{i}"))
        .bind(oid)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let entra = EntraClient::new(&base, &base, &app.client_id, app.secret.clone());
    // Reset the peak (Linux: writing 5 to clear_refs resets VmHWM), so the peak below is the
    // run's own, on top of the emulator and the client already resident.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = current_rss_mb();
    let started = Instant::now();
    let first = reconciler::reconcile(
        &db,
        &gatehouse.state().bus,
        &entra,
        &tenant.id,
        Trigger::Cli,
        false,
    )
    .await
    .unwrap();
    println!(
        "reconciler: first run, {} Graph requests, {} users checked, {} offboarded, {:.2} s; \
         RSS {before:.0} MB before the run (emulator and client), peak {:.0} MB during it: the run adds {:.0} MB",
        first.graph_requests,
        first.users_checked,
        first.offboarded.len(),
        started.elapsed().as_secs_f64(),
        peak_rss_mb(),
        peak_rss_mb() - before
    );
    let started = Instant::now();
    let quiet = reconciler::reconcile(
        &db,
        &gatehouse.state().bus,
        &entra,
        &tenant.id,
        Trigger::Cli,
        false,
    )
    .await
    .unwrap();
    println!(
        "reconciler: no-change run, {} Graph request(s), {:.3} s, outcome {}",
        quiet.graph_requests,
        started.elapsed().as_secs_f64(),
        quiet.outcome.as_str()
    );
}
