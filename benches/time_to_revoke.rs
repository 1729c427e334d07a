//! Time to revoke (issue 15; results in BENCHMARKS.md). 100 Contoso users onboard by a real
//! first scan and stay signed in; then they are removed in Entra one by one, one every
//! `REVOKE_PACE_MS` (default 1000), as an admin clicking through a list would. Twice: with
//! change notifications on (the emulator delivers them as Graph does), and with them off and
//! a 1-minute poll. For each, from the removal to the user's access ended (the offboarding
//! committed and every open page told): p50, p95 and the longest; and the reconcile runs and
//! Graph requests they cost.
//!
//! Set up with the API tests' own harness (tests/api/helpers.rs, tests/api/emulator).
//!
//! Run: `cargo bench --features ssr --bench time_to_revoke`

#[allow(dead_code, unused_imports)]
#[path = "../tests/api/emulator/mod.rs"]
mod emulator;
#[allow(dead_code, unused_imports)]
#[path = "../tests/api/helpers.rs"]
mod helpers;

use gatehouse::reconciler::schedule;
use gatehouse::server::bus::Event;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const USERS: usize = 100;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Notifications,
    PollEveryMinute,
}

#[tokio::main]
async fn main() {
    let pace = Duration::from_millis(
        std::env::var("REVOKE_PACE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
    );
    println!(
        "{USERS} users removed one by one, one every {} ms",
        pace.as_millis()
    );
    println!("mode | ended | p50 | p95 | longest | runs | Graph requests (runs)");
    for mode in [Mode::Notifications, Mode::PollEveryMinute] {
        phase(mode, pace).await;
    }
}

async fn phase(mode: Mode, pace: Duration) {
    let emu = emulator::spawn_emulator().await;
    emu.grant_consent().await;
    let entra = emulator::entra_config(&emu);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let app = helpers::spawn_app_with(move |c| {
        c.entra = entra;
        // A hundred phones enrol from this one address.
        c.limits.device_registrations_per_ip = 1_000_000;
        c.limits.phone_actions_per_ip = 1_000_000;
        c.limits.login_codes_per_ip = 1_000_000;
        c.limits.code_mails_per_ip = 1_000_000;
        if mode == Mode::Notifications {
            // As `spawn_app_with_notifications`: Graph (the emulator) delivers to loopback.
            c.listen = ([127, 0, 0, 1], port).into();
            c.public_url = format!("http://localhost:{port}");
            c.notify_over_http = true;
        }
    })
    .await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let tenant_id = emulator::connect_contoso(&app, "acme").await;
    let db = &app.state.db;
    // Removing everyone one by one is what this measures: no run is held for it.
    let mut tx = db.pool.begin().await.unwrap();
    schedule::set_reconcile_schedule(&mut tx, &tenant_id, 60, 1_000, 100, helpers::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut technicians = Vec::new();
    for i in 0..USERS {
        let email = format!("tech{i:03}@contoso.com");
        let oid = emu.add_in_entra(&email, &format!("Tech {i}")).await;
        let technician = app.onboard("acme", &email).await;
        technicians.push((oid, technician.user.id.clone(), technician));
    }
    // The delta link is fresh and, with notifications, the subscription is live.
    emulator::reconcile_now(&app, "acme").await;
    if mode == Mode::Notifications {
        let started = Instant::now();
        while gatehouse::notifications::store::of_tenant(db, &tenant_id)
            .await
            .unwrap()
            .is_none()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no subscription"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let since = helpers::now();
    match mode {
        // The first poll a minute from now, as if the last one had just run.
        Mode::PollEveryMinute => schedule::book_reconcile(&db.pool, &tenant_id, since + 60)
            .await
            .unwrap(),
        // Nothing but notifications brings a run.
        Mode::Notifications => schedule::book_reconcile(&db.pool, &tenant_id, since + 86_400)
            .await
            .unwrap(),
    }

    let mut events = app.state.bus.subscribe();
    let ended = tokio::spawn(async move {
        let mut at = HashMap::new();
        while at.len() < USERS {
            match events.recv().await {
                Ok(Event::UserOffboarded { user_id }) => {
                    at.insert(user_id, Instant::now());
                }
                Ok(_) => {}
                Err(e) => panic!("the bench lost events: {e}"),
            }
        }
        at
    });
    let mut removed = HashMap::new();
    for (oid, user_id, _) in &technicians {
        removed.insert(user_id.clone(), Instant::now());
        emu.remove_in_entra(oid).await;
        tokio::time::sleep(pace).await;
    }
    let wait = match mode {
        Mode::Notifications => Duration::from_secs(60),
        Mode::PollEveryMinute => Duration::from_secs(150),
    };
    let ended = tokio::time::timeout(wait, ended)
        .await
        .expect("every user's access ended")
        .unwrap();

    let mut took: Vec<f64> = removed
        .iter()
        .filter_map(|(id, at)| Some(ended.get(id)?.duration_since(*at).as_secs_f64()))
        .collect();
    took.sort_by(f64::total_cmp);
    let rank = |p: usize| took[((p * took.len()).div_ceil(100)).max(1) - 1];
    let (runs, requests): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), SUM(graph_requests) FROM reconcile_runs \
         WHERE tenant_id = $1 AND started_at >= $2",
    )
    .bind(&tenant_id)
    .bind(since)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    println!(
        "{} | {}/{USERS} | {:.1} s | {:.1} s | {:.1} s | {runs} | {}",
        match mode {
            Mode::Notifications => "notifications",
            Mode::PollEveryMinute => "1-minute poll",
        },
        took.len(),
        rank(50),
        rank(95),
        took.last().copied().unwrap_or_default(),
        requests.unwrap_or(0),
    );
}
