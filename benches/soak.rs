//! The soak (issue 28; figures in BENCHMARKS.md): mixed traffic against one Gatehouse for
//! `SOAK_SECS` (default an hour), on SQLite or PostgreSQL (`TEST_DATABASE`, as the tests).
//! Gatehouse runs in this process, built as for release, its Entra app on the emulator with
//! change notifications, its housekeeping and scheduler running as in production. At once:
//!
//! - **sign-in**: a technician's new browser loads the login page, the phone approves, the
//!   browser lands on /home; then it signs out. Two a second.
//! - **reload**: ten browsers whose codes wait reload the login page, each once a second
//!   (a new code when theirs expires).
//! - **page**: ten signed-in technicians load /home, each once a second.
//! - **phone**: a phone reads a fresh code's details and refuses it. One a second.
//! - **revoke**: every 15 s a new user is made in Contoso, onboards by a first scan, and is
//!   removed in Contoso; Microsoft's change notification ends their access. Timed from the
//!   removal to the offboarding.
//! - **runs**: the tenant is reconciled every minute besides (its schedule), and after each
//!   notification.
//!
//! Every minute: the process's RSS (server, client and emulator together), the database's
//! size and its tables' rows. At the end: each kind's count, failures and p50/p95 in the
//! first and the last tenth of the soak.
//!
//! Run: `SOAK_SECS=3600 TEST_DATABASE=sqlite cargo bench --features ssr --bench soak`

#[allow(dead_code, unused_imports)]
#[path = "../tests/api/emulator/mod.rs"]
mod emulator;
#[allow(dead_code, unused_imports)]
#[path = "../tests/api/helpers.rs"]
mod helpers;

use gatehouse::domain::UserStatus;
use helpers::{Phone, Technician, TestApp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request: seconds into the soak, milliseconds it took, whether it worked.
type Sample = (f64, f64, bool);

/// What each kind of request took.
#[derive(Default)]
struct Record {
    samples: Mutex<BTreeMap<&'static str, Vec<Sample>>>,
    failures: Mutex<Vec<String>>,
}

impl Record {
    fn add(&self, start: Instant, kind: &'static str, took: Duration, ok: Result<(), String>) {
        let at = start.elapsed().as_secs_f64();
        let worked = ok.is_ok();
        if let Err(why) = ok {
            let mut failures = self.failures.lock().unwrap();
            if failures.len() < 20 {
                failures.push(format!("{at:.0}s {kind}: {why}"));
            }
        }
        self.samples.lock().unwrap().entry(kind).or_default().push((
            at,
            took.as_secs_f64() * 1000.0,
            worked,
        ));
    }
}

type Shared = Arc<(TestApp, emulator::Emu, Record, Instant)>;

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600);
    let engine = if helpers::on_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let emu = emulator::spawn_emulator().await;
    emu.grant_consent().await;
    let entra = emulator::entra_config(&emu);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let app = helpers::spawn_app_with(move |c| {
        c.entra = entra;
        // Every phone and browser comes from this one address.
        c.limits.device_registrations_per_ip = 1_000_000;
        c.limits.phone_actions_per_ip = 1_000_000;
        c.limits.login_codes_per_ip = 1_000_000;
        c.limits.code_mails_per_ip = 1_000_000;
        c.listen = ([127, 0, 0, 1], port).into();
        c.public_url = format!("http://localhost:{port}");
        c.notify_over_http = true;
    })
    .await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let tenant_id = emulator::connect_contoso(&app, "acme").await;
    let mut tx = app.state.db.pool.begin().await.unwrap();
    gatehouse::reconciler::schedule::set_reconcile_schedule(
        &mut tx,
        &tenant_id,
        1,
        1_000,
        100,
        helpers::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut technicians = Vec::new();
    for i in 0..20 {
        let email = format!("tech{i:02}@contoso.com");
        emu.add_in_entra(&email, &format!("Tech {i}")).await;
        technicians.push(app.onboard("acme", &email).await);
    }
    emulator::reconcile_now(&app, "acme").await;
    println!("soak: {secs} s on {engine}, 20 technicians onboarded");

    let shared: Shared = Arc::new((app, emu, Record::default(), Instant::now()));
    let technicians = Arc::new(technicians);
    let until = Instant::now() + Duration::from_secs(secs);
    let mut workers = Vec::new();
    workers.push(tokio::spawn(sign_ins(
        shared.clone(),
        technicians.clone(),
        until,
    )));
    for i in 0..10 {
        workers.push(tokio::spawn(reloads(shared.clone(), i, until)));
        workers.push(tokio::spawn(pages(
            shared.clone(),
            technicians.clone(),
            i,
            until,
        )));
    }
    workers.push(tokio::spawn(phones(
        shared.clone(),
        technicians.clone(),
        until,
    )));
    workers.push(tokio::spawn(revokes(shared.clone(), until)));
    let sampler = tokio::spawn(sample(shared.clone(), until));
    for worker in workers {
        worker.await.unwrap();
    }
    let samples = sampler.await.unwrap();

    let (app, _, record, _) = &*shared;
    println!("\nminute | RSS MB | database MB | rows: users, sign-ins, codes, phones, audit, mail, runs, sessions");
    for line in samples {
        println!("{line}");
    }
    let (runs, failed): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END), 0) \
         FROM reconcile_runs",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    println!("\nruns: {runs}, failed {failed}");
    let tenth = secs as f64 / 10.0;
    println!("\nkind | requests | failed | first tenth p50 / p95 ms | last tenth p50 / p95 ms");
    for (kind, all) in record.samples.lock().unwrap().iter() {
        let failed = all.iter().filter(|s| !s.2).count();
        let window = |from: f64, to: f64| {
            let mut took: Vec<f64> = all
                .iter()
                .filter(|s| s.2 && s.0 >= from && s.0 < to)
                .map(|s| s.1)
                .collect();
            took.sort_by(f64::total_cmp);
            if took.is_empty() {
                return "-".to_string();
            }
            let rank = |p: usize| took[((p * took.len()).div_ceil(100)).max(1) - 1];
            format!("{:.0} / {:.0}", rank(50), rank(95))
        };
        println!(
            "{kind} | {} | {failed} | {} | {}",
            all.len(),
            window(0.0, tenth),
            window(secs as f64 - tenth, secs as f64 + 60.0),
        );
    }
    for failure in record.failures.lock().unwrap().iter() {
        println!("failure: {failure}");
    }
}

async fn sign_ins(shared: Shared, technicians: Arc<Vec<Technician>>, until: Instant) {
    let (app, _, record, start) = &*shared;
    let mut turn = 0;
    while Instant::now() < until {
        let technician = &technicians[turn % technicians.len()];
        turn += 1;
        let began = Instant::now();
        let browser = app.browser(&["acme"]);
        let page = browser.login_page("acme").await;
        let approved = technician.phone.approve_page(app, "acme", &page).await;
        let landed = browser.get("acme", "/").await;
        let outcome = if approved.status() != 200 {
            Err(format!("approve {}", approved.status()))
        } else if landed.status() != 303 || landed.headers()["location"] != "/home" {
            Err(format!("landed {}", landed.status()))
        } else {
            Ok(())
        };
        record.add(*start, "sign-in", began.elapsed(), outcome);
        let out = browser
            .client
            .post(browser.url("acme", "/logout"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok();
        if out != Some(303) {
            record.add(*start, "sign-out", Duration::ZERO, Err(format!("{out:?}")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn reloads(shared: Shared, i: u64, until: Instant) {
    let (app, _, record, start) = &*shared;
    tokio::time::sleep(Duration::from_millis(i * 100)).await;
    let browser = app.browser(&["acme"]);
    while Instant::now() < until {
        let began = Instant::now();
        let res = browser.get("acme", "/").await;
        let outcome = match res.status().as_u16() {
            200 => res.text().await.map(|_| ()).map_err(|e| e.to_string()),
            other => Err(format!("{other}")),
        };
        record.add(*start, "reload", began.elapsed(), outcome);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn pages(shared: Shared, technicians: Arc<Vec<Technician>>, i: u64, until: Instant) {
    let (app, _, record, start) = &*shared;
    tokio::time::sleep(Duration::from_millis(i * 100 + 50)).await;
    // Technicians 10 to 19 stay signed in (the sign-in worker's browsers are others).
    let technician = &technicians[10 + i as usize];
    while Instant::now() < until {
        let began = Instant::now();
        let res = technician.browser.get("acme", "/home").await;
        let outcome = match res.status().as_u16() {
            200 => res.text().await.map(|_| ()).map_err(|e| e.to_string()),
            other => Err(format!("{other}")),
        };
        record.add(*start, "page", began.elapsed(), outcome);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = app;
}

async fn phones(shared: Shared, technicians: Arc<Vec<Technician>>, until: Instant) {
    let (app, _, record, start) = &*shared;
    let phone: &Phone = &technicians[0].phone;
    while Instant::now() < until {
        let browser = app.browser(&["acme"]);
        let page = browser.login_page("acme").await;
        let began = Instant::now();
        let info = app
            .base_client()
            .get(app.api(&format!("/challenges/{}?tenant=acme", page.challenge)))
            .send()
            .await
            .map(|r| r.status().as_u16());
        let denied = phone.deny(app, "acme", &page.challenge).await.status();
        let outcome = match (info, denied.as_u16()) {
            (Ok(200), 200) => Ok(()),
            other => Err(format!("{other:?}")),
        };
        record.add(*start, "phone", began.elapsed(), outcome);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn revokes(shared: Shared, until: Instant) {
    let (app, emu, record, start) = &*shared;
    let tenant = app.tenant("acme").await;
    let mut n = 0;
    while Instant::now() + Duration::from_secs(75) < until {
        n += 1;
        let email = format!("passing{n:04}@contoso.com");
        let oid = emu.add_in_entra(&email, &format!("Passing {n}")).await;
        app.onboard("acme", &email).await;
        let began = Instant::now();
        emu.remove_in_entra(&oid).await;
        let outcome = loop {
            if app.user_of(&tenant.id, &oid).await.status == UserStatus::Offboarded {
                break Ok(());
            }
            if began.elapsed() > Duration::from_secs(60) {
                break Err("still active after 60 s".to_string());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        record.add(*start, "revoke", began.elapsed(), outcome);
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}

/// Every minute: RSS, the database's size, and its tables' rows.
async fn sample(shared: Shared, until: Instant) -> Vec<String> {
    let (app, _, _, start) = &*shared;
    let mut lines = Vec::new();
    loop {
        let rss = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .unwrap_or(0.0)
            / 1024.0;
        let db = &app.state.db;
        let size = if db.is_postgres() {
            let (bytes,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
                .fetch_one(&db.pool)
                .await
                .unwrap();
            bytes as f64
        } else {
            let file = app
                .state
                .config
                .database_url
                .as_str()
                .trim_start_matches("sqlite://")
                .to_string();
            ["", "-wal"]
                .iter()
                .filter_map(|suffix| std::fs::metadata(format!("{file}{suffix}")).ok())
                .map(|m| m.len() as f64)
                .sum()
        } / 1_048_576.0;
        let sessions = if db.is_postgres() {
            "tower_sessions.session"
        } else {
            "tower_sessions"
        };
        let mut rows = Vec::new();
        for table in [
            "users",
            "user_sessions",
            "login_challenges",
            "devices",
            "audit_events",
            "outbox",
            "reconcile_runs",
            sessions,
        ] {
            let (count,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&db.pool)
                .await
                .unwrap();
            rows.push(count.to_string());
        }
        let line = format!(
            "{:.0} | {rss:.0} | {size:.1} | {}",
            start.elapsed().as_secs_f64() / 60.0,
            rows.join(", ")
        );
        eprintln!("{line}");
        lines.push(line);
        if Instant::now() >= until {
            return lines;
        }
        tokio::time::sleep(Duration::from_secs(60).min(until - Instant::now())).await;
    }
}
