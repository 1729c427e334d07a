//! Sign-in benchmark (results in BENCHMARKS.md).
//!
//! 1. approve → browser signed in: 50 browsers wait on their QR code's push stream while 50
//!    phones approve at once; the latency runs from sending the approval to the browser's
//!    completed sign-in (push received, then the page load that answers 303). On SQLite and,
//!    when it is reachable, on PostgreSQL at 127.0.0.1:5432.
//! 2. the login page's requests per second against a bare axum "hello" on the same machine:
//!    browsers reloading their page while its code waits (the no-JavaScript refresh), and
//!    new browsers' first loads (each draws a new code).
//!
//!    With the security headers and the default per-IP rates on, behind a proxy at
//!    127.0.0.1 (each client names its own network).
//! 3. a flood of new browsers' first loads from one network, held at its rate, while someone
//!    on another network signs in; the same sign-ins without the flood.
//! 4. approve → signed in for an Entra user (Graph asked at every sign-in, against the
//!    in-process emulator): one sign-in at a time, with the app-only token cached and with the
//!    cache emptied before each approval.
//!
//! Set up with the API tests' own harness (tests/api/helpers.rs, tests/api/emulator).
//!
//! Run: `cargo bench --features ssr --bench login_latency` (append `-- latency`, `-- rps`,
//! `-- flood` or `-- entra` for one part).

#[allow(dead_code, unused_imports)]
#[path = "../tests/api/emulator/mod.rs"]
mod emulator;
#[allow(dead_code, unused_imports)]
#[path = "../tests/api/helpers.rs"]
mod helpers;

use futures::StreamExt;
use gatehouse_emulator::testing::Fetch as _;
use helpers::{Phone, TestApp};
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LOGINS: usize = 50;
/// Bursts per engine: the first meets cold connections (new database sessions, statements
/// not yet prepared); the later ones show the steady state.
const ROUNDS: usize = 3;
const RPS_SECONDS: u64 = 5;
const RPS_CLIENTS: usize = 32;

#[tokio::main]
async fn main() {
    // `-- latency` or `-- rps` runs one part only.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wants = |part: &str| {
        let named = args
            .iter()
            .any(|a| a == "latency" || a == "rps" || a == "flood" || a == "entra");
        !named || args.iter().any(|a| a == part)
    };
    let dir = tempfile::tempdir().unwrap();
    if wants("latency") {
        latency_parts(&dir).await;
    }
    if wants("rps") {
        requests_per_second(&dir).await;
    }
    if wants("flood") {
        flood(&dir).await;
    }
    if wants("entra") {
        entra_sign_ins(&dir).await;
    }
}

/// Sign-ins per mode in the Entra part.
const ENTRA_SIGN_INS: usize = 40;

async fn entra_sign_ins(dir: &tempfile::TempDir) {
    use gatehouse_emulator::CONTOSO_TENANT_ID;
    println!("approve -> signed in for an Entra user, one at a time, {ENTRA_SIGN_INS} per mode (SQLite, emulator in process)");
    let emu = emulator::spawn_emulator().await;
    emu.grant_consent().await;
    let entra = emulator::entra_config(&emu);
    let app = helpers::spawn_app_on(
        format!("sqlite://{}", dir.path().join("entra.db").display()),
        move |c| c.entra = entra,
    )
    .await;
    let addr = app.addr;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    emulator::connect_contoso(&app, "acme").await;
    let mut phones = Vec::new();
    for email in [
        "alex@contoso.com",
        "megan@contoso.com",
        "isaiah@contoso.com",
    ] {
        phones.push(app.phone_with_email(email).await);
    }
    let state = &app.state;
    let entra = state.entra.clone().unwrap();
    // The first sign-ins onboard; the measured ones are returning technicians.
    for phone in &phones {
        one_sign_in(addr, phone).await;
    }
    for cached in [true, false] {
        let mut times = Vec::new();
        for i in 0..ENTRA_SIGN_INS {
            if !cached {
                entra
                    .forget_token(&gatehouse::domain::EntraTenantId::from_microsoft(
                        CONTOSO_TENANT_ID,
                    ))
                    .await;
            }
            times.push(one_sign_in(addr, &phones[i % phones.len()]).await);
        }
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        println!(
            "  token {}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            if cached {
                "cached"
            } else {
                "requested every time"
            },
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.95).as_secs_f64() * 1e3,
            pct(1.0).as_secs_f64() * 1e3
        );
    }
}

/// One phone approves one browser's QR code; the time from the approval to the browser's
/// completed sign-in.
async fn one_sign_in(addr: SocketAddr, phone: &Phone) -> Duration {
    one_sign_in_from(addr, phone, None).await
}

/// The same, with the browser and the phone naming `network` in X-Forwarded-For.
async fn one_sign_in_from(addr: SocketAddr, phone: &Phone, network: Option<&str>) -> Duration {
    let port = addr.port();
    let browser = client(addr);
    let phone_client = client(addr);
    let forwarded = |r: reqwest::RequestBuilder| match network {
        Some(ip) => r.header("x-forwarded-for", ip),
        None => r,
    };
    let html = forwarded(browser.get(format!("http://acme.localhost:{port}/")))
        .text_body()
        .await;
    let challenge = between(&html, "data-challenge=\"", "\"");
    let number: i64 = between(&html, "id=\"match-number\"", "</strong>")
        .rsplit('>')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let jws = phone.sign(json!({ "purpose": "approve", "device_id": phone.id(), "tenant": "acme", "challenge": challenge, "number": number }));
    let t0 = Instant::now();
    let res = forwarded(phone_client.post(format!(
        "http://localhost:{port}/api/mobile/v1/challenges/{challenge}/approve"
    )))
    .json(&json!({ "jws": jws }))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let done = forwarded(browser.get(format!("http://acme.localhost:{port}/")))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    t0.elapsed()
}

async fn latency_parts(dir: &tempfile::TempDir) {
    println!("approve -> browser signed in, {LOGINS} concurrent logins");
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    latency("SQLite", sqlite).await;
    let pg_admin = "postgres://postgres@127.0.0.1:5432/postgres";
    match <sqlx::PgConnection as sqlx::Connection>::connect(pg_admin).await {
        Ok(mut conn) => {
            let _ = sqlx::Executor::execute(
                &mut conn,
                "DROP DATABASE IF EXISTS gatehouse_bench WITH (FORCE)",
            )
            .await;
            sqlx::Executor::execute(&mut conn, "CREATE DATABASE gatehouse_bench")
                .await
                .unwrap();
            latency(
                "PostgreSQL",
                "postgres://postgres@127.0.0.1:5432/gatehouse_bench".into(),
            )
            .await;
            let _ = sqlx::Executor::execute(
                &mut conn,
                "DROP DATABASE IF EXISTS gatehouse_bench WITH (FORCE)",
            )
            .await;
        }
        Err(e) => println!("PostgreSQL: skipped ({e})"),
    }
}

async fn requests_per_second(dir: &tempfile::TempDir) {
    println!("\nrequests per second, {RPS_CLIENTS} clients, {RPS_SECONDS} s each, security headers and default per-IP rates on");
    let app = start_behind_proxy(format!("sqlite://{}", dir.path().join("rps.db").display())).await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let pages = &app.state.pages;
    let from_memory = pages.served_from_memory();
    let login = rps(app.addr, "acme.localhost", "/", Cookies::Kept, Network::Own).await;
    let from_memory = pages.served_from_memory() - from_memory;
    let first_loads = rps(
        app.addr,
        "acme.localhost",
        "/",
        Cookies::None,
        Network::NewEachTime,
    )
    .await;
    let hello = rps(
        hello_server("hello".into()).await,
        "localhost",
        "/",
        Cookies::Kept,
        Network::Own,
    )
    .await;
    // The same page's bytes from a bare handler: what sending a page of this size costs
    // here, with no rendering and no database at all.
    let page = client(app.addr)
        .get(format!("http://acme.localhost:{}/", app.addr.port()))
        .text_body()
        .await;
    let size = page.len();
    let same_bytes = rps(
        hello_server(page).await,
        "localhost",
        "/",
        Cookies::Kept,
        Network::Own,
    )
    .await;
    println!(
        "  login page, reloads (GET / on a tenant): {:.0} req/s",
        login.per_sec
    );
    println!(
        "    of {} loads, {from_memory} answered from memory ({:.1} %), {} held",
        login.total,
        from_memory as f64 * 100.0 / login.total as f64,
        login.held
    );
    println!(
        "  login page, new browsers' first loads, each from its own network: {:.0} req/s ({} held)",
        first_loads.per_sec, first_loads.held
    );
    println!(
        "  bare axum hello:                {:.0} req/s",
        hello.per_sec
    );
    println!(
        "  the page's {size} bytes, static:  {:.0} req/s",
        same_bytes.per_sec
    );
    println!(
        "  ratio: {:.2}x (goal >= 0.3x)",
        login.per_sec / hello.per_sec
    );
    println!(
        "  static page of the same size against hello: {:.2}x",
        same_bytes.per_sec / hello.per_sec
    );
}

/// A flood of new browsers' first loads from one network, while someone on another network
/// signs in, one sign-in after another; the same sign-ins without the flood for comparison.
async fn flood(dir: &tempfile::TempDir) {
    println!("\nflood: {RPS_CLIENTS} cookieless clients from one network for {RPS_SECONDS} s, default rates");
    let app = start_behind_proxy(format!(
        "sqlite://{}",
        dir.path().join("flood.db").display()
    ))
    .await;
    let (addr, db) = (app.addr, &app.state.db);
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let phone = app.phone_with_email("admin@acme.com").await;
    let quiet = sign_ins_for(
        addr,
        &phone,
        "203.0.113.7",
        Duration::from_secs(RPS_SECONDS),
    )
    .await;
    let codes_before = challenges(db).await;
    let (flood, during) = tokio::join!(
        rps(addr, "acme.localhost", "/", Cookies::None, Network::One),
        sign_ins_for(
            addr,
            &phone,
            "203.0.113.8",
            Duration::from_secs(RPS_SECONDS)
        ),
    );
    let codes = challenges(db).await - codes_before - during.len() as i64;
    println!(
        "  the flood: {} loads, {} shown, {} held (429); {codes} codes written for it (the limit: {} a minute)",
        flood.total,
        flood.total - flood.held,
        flood.held,
        gatehouse::server::config::Limits::default().login_codes_per_ip
    );
    for (label, mut times) in [("without the flood", quiet), ("during the flood", during)] {
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        println!(
            "  sign-ins from another network {label}: {} done, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            times.len(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.95).as_secs_f64() * 1e3,
            pct(1.0).as_secs_f64() * 1e3
        );
    }
}

async fn challenges(db: &gatehouse::server::db::Db) -> i64 {
    sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM login_challenges")
        .fetch_one(&db.pool)
        .await
        .unwrap()
        .0
}

/// Complete sign-ins (page, approval, signed-in load) from `network`, one every 100 ms for
/// `span` (an office's pace, within its rates); the time of each from its first page load.
async fn sign_ins_for(
    addr: SocketAddr,
    phone: &Phone,
    network: &str,
    span: Duration,
) -> Vec<Duration> {
    let deadline = Instant::now() + span;
    let mut times = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    while Instant::now() < deadline {
        pace.tick().await;
        let t0 = Instant::now();
        one_sign_in_from(addr, phone, Some(network)).await;
        times.push(t0.elapsed());
    }
    times
}

/// A Gatehouse whose per-IP rates no part measuring latency can reach (every request of
/// the bench comes from 127.0.0.1).
async fn start(url: String) -> TestApp {
    helpers::spawn_app_on(url, |c| {
        c.limits.login_codes_per_ip = 1_000_000;
        c.limits.device_registrations_per_ip = 1_000_000;
        c.limits.phone_actions_per_ip = 1_000_000;
    })
    .await
}

/// A Gatehouse with the default per-IP rates, behind a proxy at 127.0.0.1: each client
/// names its own address in X-Forwarded-For.
async fn start_behind_proxy(url: String) -> TestApp {
    helpers::spawn_app_on(url, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
}

fn client(addr: SocketAddr) -> reqwest::Client {
    client_with(addr, Cookies::Kept)
}

/// Whether a client keeps its cookies: a browser reloading, or a new browser every time.
#[derive(Clone, Copy, PartialEq)]
enum Cookies {
    Kept,
    None,
}

fn client_with(addr: SocketAddr, cookies: Cookies) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(cookies == Cookies::Kept)
        .redirect(reqwest::redirect::Policy::none())
        .resolve("localhost", addr)
        .resolve("acme.localhost", addr)
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

async fn latency(label: &str, url: String) {
    let app = start(url).await;
    let addr = app.addr;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    let mut phones = Vec::new();
    for i in 0..LOGINS {
        let email = format!("tech{i}@acme.com");
        app.add_user("acme", "Tech", &email).await;
        phones.push(app.phone_with_email(&email).await);
    }
    let phones: Vec<std::sync::Arc<Phone>> = phones.into_iter().map(std::sync::Arc::new).collect();
    for round in 1..=ROUNDS {
        let mut times = burst(addr, &phones).await;
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        println!(
            "  {label}, round {round}{}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            if round == 1 { " (cold)" } else { "" },
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.95).as_secs_f64() * 1e3,
            pct(1.0).as_secs_f64() * 1e3
        );
    }
}

/// One burst: every phone approves its browser's QR code at the same moment.
async fn burst(addr: SocketAddr, phones: &[std::sync::Arc<Phone>]) -> Vec<Duration> {
    let port = addr.port();
    let start_gate = std::sync::Arc::new(tokio::sync::Barrier::new(phones.len()));
    let mut tasks = Vec::new();
    for phone in phones {
        let phone = std::sync::Arc::clone(phone);
        let gate = start_gate.clone();
        tasks.push(tokio::spawn(async move {
            let browser = client(addr);
            let phone_client = client(addr);
            let html = browser.get(format!("http://acme.localhost:{port}/")).text_body().await;
            let challenge = between(&html, "data-challenge=\"", "\"");
            let number: i64 = between(&html, "id=\"match-number\"", "</strong>").rsplit('>').next().unwrap().trim().parse().unwrap();
            let events = browser
                .get(format!("http://acme.localhost:{port}/login/events?challenge={challenge}"))
                .send()
                .await
                .unwrap();
            let mut stream = events.bytes_stream();
            let jws = phone.sign(json!({ "purpose": "approve", "device_id": phone.id(), "tenant": "acme", "challenge": challenge, "number": number }));
            gate.wait().await;
            let t0 = Instant::now();
            let approve = phone_client
                .post(format!("http://localhost:{port}/api/mobile/v1/challenges/{challenge}/approve"))
                .json(&json!({ "jws": jws }))
                .send();
            let wait_push = async {
                let mut seen = String::new();
                while let Some(chunk) = stream.next().await {
                    seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                    if seen.contains("event: approved") {
                        return;
                    }
                }
                panic!("push stream ended without approval: {seen}");
            };
            let (res, ()) = tokio::join!(approve, wait_push);
            assert_eq!(res.unwrap().status(), 200);
            let done = browser.get(format!("http://acme.localhost:{port}/")).send().await.unwrap();
            assert_eq!(done.status(), 303);
            t0.elapsed()
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.push(t.await.unwrap());
    }
    times
}

fn between(s: &str, start: &str, end: &str) -> String {
    helpers::between(s, start, end).expect("the marker is on the page")
}

/// A bare axum server answering `GET /` with `body`.
async fn hello_server(body: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = axum::body::Bytes::from(body);
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Where the requests of an `rps` run say they come from (X-Forwarded-For, read only by a
/// Gatehouse behind the proxy at 127.0.0.1).
#[derive(Clone, Copy, PartialEq)]
enum Network {
    /// Each client its own network.
    Own,
    /// Every request a network of its own: as many anonymous clients as requests.
    NewEachTime,
    /// One network for all: a flood from one address.
    One,
}

/// What an `rps` run got: answers per second, how many requests, how many were held (429).
struct Tally {
    per_sec: f64,
    total: u64,
    held: u64,
}

/// Requests per second of GET `path` on `host` by `RPS_CLIENTS` clients.
async fn rps(addr: SocketAddr, host: &str, path: &str, cookies: Cookies, from: Network) -> Tally {
    let url = format!("http://{host}:{}{path}", addr.port());
    let deadline = Instant::now() + Duration::from_secs(RPS_SECONDS);
    let mut tasks = Vec::new();
    for client_no in 0..RPS_CLIENTS {
        let c = client_with(addr, cookies);
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (mut n, mut held) = (0u64, 0u64);
            while Instant::now() < deadline {
                let ip = match from {
                    Network::Own => format!("10.1.0.{client_no}"),
                    Network::NewEachTime => {
                        format!("10.{}.{}.{}", client_no, (n >> 8) & 255, n & 255)
                    }
                    Network::One => "198.51.100.66".to_string(),
                };
                let res = c
                    .get(&url)
                    .header("x-forwarded-for", ip)
                    .send()
                    .await
                    .unwrap();
                if res.status() == 429 {
                    held += 1;
                } else {
                    assert!(res.status().is_success(), "{}", res.status());
                }
                res.bytes().await.unwrap();
                n += 1;
            }
            (n, held)
        }));
    }
    let (mut total, mut held) = (0, 0);
    for t in tasks {
        let (n, h) = t.await.unwrap();
        total += n;
        held += h;
    }
    Tally {
        per_sec: total as f64 / RPS_SECONDS as f64,
        total,
        held,
    }
}
