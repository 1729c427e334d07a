//! An operator's everyday faults, survived: PostgreSQL restarting while two replicas are busy.
//!
//! The restart is made the way PostgreSQL's own shutdown looks to a client: every session of
//! the database is ended by the server (`pg_terminate_backend`, the message a fast shutdown
//! sends), then nothing answers at its address for a while (a proxy in front of it stops
//! listening), then it accepts connections again.

use crate::emulator::{connect_contoso, entra_config, spawn_emulator, MEGAN};
use crate::helpers::*;
use gatehouse::domain::UserStatus;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const POSTGRES: &str = "127.0.0.1:5432";

/// PostgreSQL behind an address that can go away and come back.
struct Restartable {
    addr: SocketAddr,
    listening: Mutex<Option<JoinHandle<()>>>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Restartable {
    async fn start() -> Restartable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let accepting = tokio::spawn(relay(listener, pipes.clone()));
        Restartable {
            addr,
            listening: Mutex::new(Some(accepting)),
            pipes,
        }
    }

    /// Restarts PostgreSQL as database `name`'s clients see it: their sessions ended by the
    /// server, then `down` with nothing listening.
    async fn restart(&self, name: &str, down: Duration) {
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(
            "postgres://postgres@127.0.0.1:5432/postgres",
        )
        .await
        .unwrap();
        let ended: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
        )
        .bind(name)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(!ended.is_empty(), "the replicas had sessions to end");
        if let Some(accepting) = self.listening.lock().unwrap().take() {
            accepting.abort();
        }
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
        tokio::time::sleep(down).await;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        *self.listening.lock().unwrap() = Some(tokio::spawn(relay(listener, self.pipes.clone())));
    }
}

/// Accepts connections and pipes each to PostgreSQL.
async fn relay(listener: tokio::net::TcpListener, pipes: Arc<Mutex<Vec<JoinHandle<()>>>>) {
    while let Ok((mut client, _)) = listener.accept().await {
        let pipe = tokio::spawn(async move {
            if let Ok(mut server) = tokio::net::TcpStream::connect(POSTGRES).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        pipes.lock().unwrap().push(pipe);
    }
}

/// PostgreSQL restarts (3 s down) while two replicas serve tenant `acme`: a browser on one
/// waits for its code, a run on the other is reading Entra ID, and the push listeners are
/// connected. Afterwards the phone's approval, made on one replica the moment PostgreSQL is
/// back, works at once and signs the browser on the other in, once; both listeners come back by themselves; and
/// Megan, removed in Entra ID, is offboarded once.
#[tokio::test]
async fn postgres_restarting_under_load_loses_no_approval_and_service_comes_back() {
    if !on_postgres() {
        eprintln!("PostgreSQL's restart is tried in the PostgreSQL pass");
        return;
    }
    let pg = Restartable::start().await;
    let mut db = TestDb::new().await;
    let name = db.postgres_name().unwrap().to_string();
    db.url = db.url.replace(POSTGRES, &pg.addr.to_string());
    let url = db.url.clone();
    let emu = spawn_emulator().await;
    emu.grant_consent().await;
    let entra = entra_config(&emu);
    let a = spawn_app_in(db, |c| c.entra = entra.clone()).await;
    let b = spawn_app_on(url, |c| c.entra = entra).await;

    a.create_tenant("acme", "Acme MSP", "admin@acme.com").await;
    let admin_phone = a.phone_with_email("admin@acme.com").await;
    sign_in(&a, &a.browser(&["acme"]), &admin_phone, "acme").await;
    let tenant_id = connect_contoso(&a, "acme").await;
    let alex = a.onboard("acme", "alex@contoso.com").await;
    let megan = a.onboard("acme", "megan@contoso.com").await;
    let first = gatehouse::reconciler::reconcile(
        &a.state.db,
        &a.state.bus,
        a.state.entra.as_ref().unwrap(),
        &tenant_id,
        gatehouse::reconciler::Trigger::Manual,
        false,
    )
    .await
    .unwrap();
    assert_eq!(first.outcome, gatehouse::reconciler::Outcome::Ok);

    // Busy: Alex's new browser on B waits for its code; a run on A waits on Graph.
    let browser = b.browser(&["acme"]);
    let page = browser.login_page("acme").await;
    let pushes = browser
        .get(
            "acme",
            &format!("/login/events?challenge={}", page.challenge),
        )
        .await;
    assert_eq!(pushes.status(), 200);
    emu.remove_in_entra(MEGAN).await;
    emu.fault(json!({"route": "GET /v1.0/users/delta", "latencyMs": 1500}))
        .await;
    let run = {
        let (db, bus, entra, tenant_id) = (
            a.state.db.clone(),
            a.state.bus.clone(),
            a.state.entra.clone().unwrap(),
            tenant_id.clone(),
        );
        tokio::spawn(async move {
            gatehouse::reconciler::reconcile(
                &db,
                &bus,
                &entra,
                &tenant_id,
                gatehouse::reconciler::Trigger::Manual,
                false,
            )
            .await
        })
    };
    // Both replicas' pools hold open connections, as a busy server's do.
    assert_eq!(
        new_browsers(&a, &b).await,
        Vec::<u16>::new(),
        "all answered"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sign_ins_before = a.audited("login.completed").await;

    pg.restart(&name, Duration::from_secs(3)).await;
    let up = Instant::now();

    // The phone approves as soon as PostgreSQL is back: the first try works (connections
    // the restart closed are not handed out to fail it).
    let res = alex.phone.approve_page(&a, "acme", &page).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let approved_after = up.elapsed();
    assert_eq!(
        new_browsers(&a, &b).await,
        Vec::<u16>::new(),
        "no request fails once PostgreSQL is back"
    );
    // The browser on B hears of it, though B's listener was reconnecting.
    expect_event(pushes, "approved").await;
    let res = browser.get("acme", "/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/home");
    assert_eq!(
        a.audited("login.completed").await,
        sign_ins_before + 1,
        "signed in once"
    );
    for (replica, app) in [("A", &a), ("B", &b)] {
        let started = Instant::now();
        while !app.state.bus.is_listening() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "replica {replica} listens again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ready = app
            .base_client()
            .get(format!("http://localhost:{}/readyz", app.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "replica {replica} is ready");
    }
    eprintln!("approved {approved_after:?} after PostgreSQL came back");

    // The run cut by the restart may have failed; the next one offboards Megan, once.
    let cut = run.await.unwrap();
    eprintln!("the run during the restart: {cut:?}");
    let started = Instant::now();
    while a.user_of(&tenant_id, MEGAN).await.status != UserStatus::Offboarded {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Megan is offboarded by a run after the restart"
        );
        let _ = gatehouse::reconciler::reconcile(
            &a.state.db,
            &a.state.bus,
            a.state.entra.as_ref().unwrap(),
            &tenant_id,
            gatehouse::reconciler::Trigger::Manual,
            false,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(a.audited("user.offboarded").await, 1, "offboarded once");
    assert_eq!(
        megan.browser.get("acme", "/home").await.status(),
        303,
        "Megan's browser is signed out"
    );
}

/// Sixteen new browsers load the login page on each replica at once (a write each, so many
/// of the pools' connections at work): the statuses that were not 200.
async fn new_browsers(a: &TestApp, b: &TestApp) -> Vec<u16> {
    let loads = [a, b].into_iter().flat_map(|app| {
        (0..16).map(move |_| async move {
            let browser = app.browser(&["acme"]);
            browser.get("acme", "/").await.status().as_u16()
        })
    });
    futures::future::join_all(loads)
        .await
        .into_iter()
        .filter(|status| *status != 200)
        .collect()
}
