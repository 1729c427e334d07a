//! Test harness: the real app on port 0 with a fresh database, a phone that signs with a
//! real P-256 key, and browsers with their own cookie jars.

use base64::Engine as _;
use gatehouse::server::config::Config;
use gatehouse::server::startup::Application;
use gatehouse::server::state::AppState;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    db_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// `TEST_DATABASE=postgres` runs the suite on PostgreSQL at 127.0.0.1:5432, one database
/// per test; anything else runs it on a SQLite file in a temporary folder.
pub fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE")
        .map(|v| v == "postgres")
        .unwrap_or(false)
}

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A fresh Gatehouse with one tenant, Acme MSP at `acme`, whose admin is admin@acme.com.
pub async fn spawn_acme() -> TestApp {
    let app = spawn_app().await;
    app.create_tenant("acme", "Acme MSP", "admin@acme.com")
        .await;
    app
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_in(TestDb::new().await, tweak).await
}

/// A database of the test's own, dropped with the app that runs on it: a PostgreSQL
/// database (`TEST_DATABASE=postgres`) or a SQLite file in a temporary folder. Nothing is in
/// it until the app starts, so a test may fill it first (an earlier release's data).
pub struct TestDb {
    pub url: String,
    db_name: Option<String>,
    dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        if on_postgres() {
            let name = format!("gatehouse_test_{}", uuid_like());
            let admin_url =
                std::env::var("TEST_PG_ADMIN_URL").unwrap_or_else(|_| PG_ADMIN_URL.into());
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
                .await
                .expect("PostgreSQL at 127.0.0.1:5432 must be running for TEST_DATABASE=postgres");
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap();
            TestDb {
                url: format!("{base}/{name}"),
                db_name: Some(name),
                dir: None,
            }
        } else {
            let dir = tempfile::tempdir().expect("temp dir");
            TestDb {
                url: format!("sqlite://{}", dir.path().join("gatehouse.db").display()),
                db_name: None,
                dir: Some(dir),
            }
        }
    }

    /// The PostgreSQL database's name (on SQLite, `None`).
    pub fn postgres_name(&self) -> Option<&str> {
        self.db_name.as_deref()
    }

    /// The SQLite file's path (on PostgreSQL, `None`).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("gatehouse.db"))
    }
}

/// The app on a database of the test's own, which it drops afterwards.
pub async fn spawn_app_in(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::for_tests(db.url);
    tweak(&mut config);
    start(config, db.db_name, db.dir).await
}

/// The app on a database the caller made (a bench's, or a replica's): nothing is dropped
/// afterwards.
pub async fn spawn_app_on(
    url: impl Into<gatehouse::server::config::DatabaseUrl>,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::for_tests(url);
    tweak(&mut config);
    start(config, None, None).await
}

async fn start(config: Config, db_name: Option<String>, dir: Option<tempfile::TempDir>) -> TestApp {
    let app = Application::build(config).await.expect("app builds");
    let port = app.port();
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    // On PostgreSQL the instance starts listening for the others a moment after it answers;
    // its first LISTEN forgets the login pages kept before. Tests begin once it hears.
    if state.db.is_postgres() {
        for _ in 0..200 {
            if state.bus.is_listening() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(state.bus.is_listening(), "the push listener started");
    }
    TestApp {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        state,
        db_name,
        _dir: dir,
        shutdown: Some(tx),
    }
}

impl TestApp {
    /// A second instance of the portal on this app's database, as behind a load balancer.
    pub async fn replica(&self) -> TestApp {
        spawn_app_on(self.state.config.database_url.clone(), |_| {}).await
    }

    /// A second instance configured as this one (its Entra app, public URL, notifications),
    /// listening on a port of its own: the same deployment scaled out.
    pub async fn twin(&self) -> TestApp {
        let this = self.state.config.clone();
        spawn_app_on(this.database_url.clone(), move |c| {
            *c = Config {
                listen: c.listen,
                ..(*this).clone()
            }
        })
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(name) = self.db_name.take() {
            // Drop the per-test database from a thread of its own: Drop cannot await.
            let admin_url =
                std::env::var("TEST_PG_ADMIN_URL").unwrap_or_else(|_| PG_ADMIN_URL.into());
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(mut conn) =
                        <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await
                    {
                        let _ = sqlx::Executor::execute(
                            &mut conn,
                            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                        )
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

fn uuid_like() -> String {
    gatehouse::server::util::random_id(9)
        .to_ascii_lowercase()
        .replace(['-', '_'], "x")
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl TestApp {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A browser: its own cookie jar, no automatic redirects, tenant hosts resolved here.
    pub fn browser(&self, slugs: &[&str]) -> Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let mut builder = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0")
            // A request the app never answers fails the test instead of hanging the suite.
            .timeout(std::time::Duration::from_secs(60))
            .resolve("localhost", self.addr);
        for slug in slugs {
            builder = builder.resolve(&format!("{slug}.localhost"), self.addr);
        }
        Browser {
            client: builder.build().unwrap(),
            port: self.port(),
            jar,
        }
    }

    /// A browser that kept the cookies `cookies` (a `Cookie` header, as
    /// `Browser::cookies` reads it) for tenant `slug`.
    pub fn browser_with_cookies(&self, slug: &str, cookies: &str) -> Browser {
        let browser = self.browser(&[slug]);
        let url: reqwest::Url = browser.url(slug, "/").parse().unwrap();
        for cookie in cookies.split("; ").filter(|c| !c.is_empty()) {
            browser
                .jar
                .add_cookie_str(&format!("{cookie}; Path=/"), &url);
        }
        browser
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://localhost:{}/api/mobile/v1{}", self.port(), path)
    }

    pub fn base_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve("localhost", self.addr)
            .build()
            .unwrap()
    }

    pub async fn create_tenant(&self, slug: &str, name: &str, admin: &str) {
        gatehouse::tenants::service::create(
            &self.state.db,
            slug,
            name,
            admin,
            gatehouse::audit::Actor::Command("test"),
        )
        .await
        .expect("tenant created");
    }

    /// The newest code mailed to `email`, read from the dev outbox.
    pub async fn last_code(&self, email: &str) -> String {
        let (body,): (String,) =
            sqlx::query_as("SELECT body FROM outbox WHERE to_addr = $1 ORDER BY id DESC LIMIT 1")
                .bind(email)
                .fetch_one(&self.state.db.pool)
                .await
                .expect("a mail was sent");
        body.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a 6-digit code in the mail")
            .to_string()
    }

    /// Tenant `acme`, its technician Alex (invited, alex@acme.com), and Alex's phone with the
    /// address verified: the start of most sign-in stories.
    pub async fn acme_with_alex(&self) -> Phone {
        self.create_tenant("acme", "Acme MSP", "admin@acme.com")
            .await;
        self.add_user("acme", "Alex", "alex@acme.com").await;
        self.phone_with_email("alex@acme.com").await
    }

    /// A phone with its device registered and `email` verified.
    pub async fn phone_with_email(&self, email: &str) -> Phone {
        let mut phone = Phone::new();
        phone.register(self).await;
        let res = phone.request_code(self, email).await;
        assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
        let code = self.last_code(email).await;
        let res = phone.confirm(self, email, &code).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        phone
    }

    /// A technician's first scan on `slug`: a phone with `email` verified approves a browser's
    /// login page, which lands signed in. What onboarding does is the product's own (Entra
    /// lookup, JIT username, audit); nothing is written around it.
    pub async fn onboard(&self, slug: &str, email: &str) -> Technician {
        let phone = self.phone_with_email(email).await;
        let browser = self.browser(&[slug]);
        let landed = sign_in(self, &browser, &phone, slug).await;
        assert_eq!(landed, "/home", "{email} signed in to {slug}");
        let tenant = self.tenant(slug).await;
        let email = gatehouse::domain::Email::parse(email).unwrap();
        let user = gatehouse::users::service::find_by_email(&self.state.db, &tenant.id, &email)
            .await
            .unwrap()
            .expect("the record the sign-in made");
        Technician {
            slug: slug.to_string(),
            phone,
            browser,
            user,
        }
    }

    pub async fn tenant(&self, slug: &str) -> gatehouse::tenants::Tenant {
        gatehouse::tenants::store::find_by_slug(&self.state.db, slug)
            .await
            .unwrap()
            .expect("the tenant exists")
    }

    /// The newest record of Entra account `oid` in the tenant, as the product reads it.
    pub async fn user_of(&self, tenant_id: &gatehouse::domain::TenantId, oid: &str) -> User {
        let oid = gatehouse::domain::EntraUserId::from_microsoft(oid);
        gatehouse::users::service::find_by_oid(&self.state.db, tenant_id, &oid)
            .await
            .unwrap()
            .expect("a record of this Entra account")
    }

    /// Waits (up to 10 s) until at least `count` runs of the tenant are recorded and none is
    /// still going: the scheduler's own, made due by what the test did (connecting, saving
    /// the groups), which the test's own runs must not race.
    pub async fn until_runs_done(&self, tenant_id: &gatehouse::domain::TenantId, count: usize) {
        let started = std::time::Instant::now();
        loop {
            let runs = gatehouse::reconciler::view(&self.state.db, tenant_id)
                .await
                .unwrap()
                .runs;
            let going = runs
                .iter()
                .any(|r| r.outcome == gatehouse::domain::RunOutcome::Running);
            if runs.len() >= count && !going {
                return;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{} of {count} runs recorded, one still going: {going}",
                runs.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Every record of the tenant, whatever its state, as the product reads them.
    pub async fn users(&self, slug: &str) -> Vec<User> {
        let tenant = self.tenant(slug).await;
        gatehouse::users::store::list(&self.state.db, &tenant.id)
            .await
            .unwrap()
    }

    /// The tenant's audit log as its Audit page shows it, newest first.
    pub async fn audit(&self, slug: &str) -> Vec<gatehouse::audit::api::AuditEntry> {
        let tenant = self.tenant(slug).await;
        gatehouse::audit::service::list(&self.state.db, &tenant.id, 500)
            .await
            .unwrap()
    }

    /// The details of the tenant's newest audit event of `action`.
    pub async fn last_audit(&self, slug: &str, action: &str) -> String {
        self.audit(slug)
            .await
            .into_iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("no {action} in the audit log"))
            .details
    }

    /// The tenant's admin does `action` to the user holding `email`, as on the Users page.
    pub async fn admin_does(
        &self,
        slug: &str,
        action: gatehouse::users::service::Action,
        email: &str,
    ) {
        let tenant = self.tenant(slug).await;
        let users = self.users(slug).await;
        let admin = users
            .iter()
            .find(|u| u.role == gatehouse::domain::Role::Admin)
            .expect("the tenant has an admin");
        let user = users
            .iter()
            .find(|u| u.email == email)
            .unwrap_or_else(|| panic!("{email} is a user of {slug}"));
        gatehouse::users::service::act(
            &self.state.db,
            &self.state.bus,
            &tenant,
            admin,
            &user.id,
            action,
        )
        .await
        .unwrap_or_else(|e| panic!("{action:?} {email}: {e}"));
    }

    /// What the tenant's last call to Microsoft said about the connection.
    pub async fn entra_health(
        &self,
        tenant_id: &gatehouse::domain::TenantId,
    ) -> Option<gatehouse::domain::EntraHealth> {
        gatehouse::tenants::store::connection(&self.state.db, tenant_id)
            .await
            .unwrap()
            .entra_health
            .map(|h| h.parse().expect("a known health state"))
    }

    /// The tenant's live record holding `email`.
    pub async fn user(&self, slug: &str, email: &str) -> User {
        let tenant = self.tenant(slug).await;
        let email = gatehouse::domain::Email::parse(email).expect("a valid address");
        gatehouse::users::service::find_by_email(&self.state.db, &tenant.id, &email)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{email} is a user of {slug}"))
    }

    /// The sessions the Users page lists for a user.
    pub async fn session_count(&self, slug: &str, user_id: &gatehouse::domain::UserId) -> usize {
        let tenant = self.tenant(slug).await;
        gatehouse::users::service::sessions(&self.state.db, &tenant, user_id)
            .await
            .unwrap()
            .len()
    }

    /// Adds a local technician directly through the service, as an admin would.
    pub async fn add_user(&self, slug: &str, first: &str, email: &str) -> String {
        let tenant = gatehouse::tenants::store::find_by_slug(&self.state.db, slug)
            .await
            .unwrap()
            .unwrap();
        let user = gatehouse::users::service::add(
            &self.state.db,
            &tenant,
            gatehouse::audit::Actor::Command("test"),
            gatehouse::users::service::NewUser {
                first_name: first,
                last_name: "Tester",
                email,
                username: "",
            },
        )
        .await
        .expect("user added");
        user.id.to_string()
    }

    pub async fn user_status(&self, email: &str) -> String {
        let (s,): (String,) = sqlx::query_as("SELECT status FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap();
        s
    }

    /// How many audit events of `action` there are, in every tenant and none.
    pub async fn audited(&self, action: &str) -> usize {
        self.audit_actions()
            .await
            .iter()
            .filter(|a| *a == action)
            .count()
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        sqlx::query_as::<_, (String,)>("SELECT action FROM audit_events ORDER BY id")
            .fetch_all(&self.state.db.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }
}

/// Someone onboarded by a real scan: their phone, the browser they signed in with, and the
/// record the product made for them.
pub struct Technician {
    pub slug: String,
    pub phone: Phone,
    pub browser: Browser,
    pub user: User,
}

pub use gatehouse::users::service::User;

/// Tenant `acme`'s admin saves the User source page's Offboarding form (how often Entra is
/// checked, and when a run is held); the status and the message.
pub async fn save_schedule(
    admin: &Browser,
    minutes: &str,
    count: &str,
    percent: &str,
) -> (u16, String) {
    admin
        .call(
            "acme",
            "user_source/schedule",
            &[
                ("interval_minutes", minutes),
                ("threshold_count", count),
                ("threshold_percent", percent),
            ],
        )
        .await
}

impl Technician {
    /// The technician's phone approving a fresh login page of their tenant, in a browser
    /// of its own.
    pub async fn approve_a_new_sign_in(&self, app: &TestApp) -> reqwest::Response {
        let browser = app.browser(&[&self.slug]);
        let page = browser.login_page(&self.slug).await;
        self.phone.approve_page(app, &self.slug, &page).await
    }
}

pub struct Browser {
    pub client: reqwest::Client,
    port: u16,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
}

/// What the login page showed.
#[derive(Debug, Clone)]
pub struct LoginPage {
    pub challenge: String,
    pub match_number: i64,
    pub html: String,
}

impl Browser {
    /// The `Cookie` header this browser sends to `slug`'s host (to plant it elsewhere).
    pub fn cookies(&self, slug: &str) -> String {
        use reqwest::cookie::CookieStore as _;
        let url = self.url(slug, "/").parse().unwrap();
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    pub fn url(&self, slug: &str, path: &str) -> String {
        format!("http://{slug}.localhost:{}{path}", self.port)
    }

    /// Calls a server function of tenant `slug`'s portal as its page does (`/api/{endpoint}`,
    /// the form's fields, a JSON answer): the status and the message.
    pub async fn call(&self, slug: &str, endpoint: &str, form: &[(&str, &str)]) -> (u16, String) {
        let res = self
            .client
            .post(self.url(slug, &format!("/api/{endpoint}")))
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub async fn get(&self, slug: &str, path: &str) -> reqwest::Response {
        self.client.get(self.url(slug, path)).send().await.unwrap()
    }

    /// Loads the login page and reads the challenge id and the match number off it.
    pub async fn login_page(&self, slug: &str) -> LoginPage {
        let res = self.get(slug, "/").await;
        assert_eq!(res.status(), 200, "login page");
        let html = res.text().await.unwrap();
        LoginPage {
            challenge: between(&html, "data-challenge=\"", "\"").expect("challenge id on the page"),
            match_number: between(&html, "id=\"match-number\"", "</strong>")
                .and_then(|s| s.rsplit('>').next().map(str::to_string))
                .and_then(|s| s.trim().parse().ok())
                .expect("match number on the page"),
            html,
        }
    }
}

pub fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(s[i..j].to_string())
}

/// A phone: a P-256 key like the app's, signing compact ES256 JWS.
pub struct Phone {
    key: SigningKey,
    pub device_id: Option<String>,
}

impl Phone {
    pub fn new() -> Self {
        Self {
            key: SigningKey::random(&mut rand::rngs::OsRng),
            device_id: None,
        }
    }

    /// The phone's key as PKCS#8 in base64, to keep it beside a database it registered in.
    pub fn key_pkcs8(&self) -> String {
        let der = self.key.to_pkcs8_der().unwrap();
        base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
    }

    /// The phone registered as `device_id` with the key `key_pkcs8` gave.
    pub fn restored(key_pkcs8: &str, device_id: &str) -> Self {
        use p256::pkcs8::DecodePrivateKey as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(key_pkcs8)
            .expect("base64");
        Self {
            key: SigningKey::from_pkcs8_der(&der).expect("a P-256 key"),
            device_id: Some(device_id.to_string()),
        }
    }

    pub fn jwk(&self) -> Value {
        let point = self.key.verifying_key().to_encoded_point(false);
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        json!({ "kty": "EC", "crv": "P-256", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()) })
    }

    pub fn sign(&self, mut payload: Value) -> String {
        if payload.get("iat").is_none() {
            payload["iat"] = json!(now());
        }
        let der = self.key.to_pkcs8_der().unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &payload,
            &EncodingKey::from_ec_der(der.as_bytes()),
        )
        .unwrap()
    }

    pub fn id(&self) -> &str {
        self.device_id.as_deref().expect("registered")
    }

    pub async fn register(&mut self, app: &TestApp) -> u16 {
        let jws = self.sign(json!({ "purpose": "register" }));
        let res = app
            .base_client()
            .post(app.api("/devices"))
            .json(&json!({ "public_key": self.jwk(), "jws": jws }))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(res.status().is_success(), "registration: {status}");
        let body: Value = res.json().await.unwrap();
        self.device_id = Some(body["device_id"].as_str().unwrap().to_string());
        status
    }

    pub async fn post(&self, app: &TestApp, path: &str, payload: Value) -> reqwest::Response {
        let jws = self.sign(payload);
        app.base_client()
            .post(app.api(path))
            .json(&json!({ "jws": jws }))
            .send()
            .await
            .unwrap()
    }

    pub async fn request_code(&self, app: &TestApp, email: &str) -> reqwest::Response {
        let id = self.id().to_string();
        self.post(
            app,
            &format!("/devices/{id}/emails"),
            json!({ "purpose": "verify_email", "device_id": id, "email": email }),
        )
        .await
    }

    pub async fn confirm(&self, app: &TestApp, email: &str, code: &str) -> reqwest::Response {
        let id = self.id().to_string();
        self.post(
            app,
            &format!("/devices/{id}/emails/confirm"),
            json!({ "purpose": "confirm_email", "device_id": id, "email": email, "code": code }),
        )
        .await
    }

    pub async fn approve(
        &self,
        app: &TestApp,
        slug: &str,
        challenge: &str,
        number: i64,
    ) -> reqwest::Response {
        let id = self.id().to_string();
        self.post(
            app,
            &format!("/challenges/{challenge}/approve"),
            json!({ "purpose": "approve", "device_id": id, "tenant": slug, "challenge": challenge, "number": number }),
        )
        .await
    }

    /// Approves the code a browser's login page shows, with the number it shows.
    pub async fn approve_page(
        &self,
        app: &TestApp,
        slug: &str,
        page: &LoginPage,
    ) -> reqwest::Response {
        self.approve(app, slug, &page.challenge, page.match_number)
            .await
    }

    pub async fn deny(&self, app: &TestApp, slug: &str, challenge: &str) -> reqwest::Response {
        let id = self.id().to_string();
        self.post(
            app,
            &format!("/challenges/{challenge}/deny"),
            json!({ "purpose": "deny", "device_id": id, "tenant": slug, "challenge": challenge }),
        )
        .await
    }
}

/// The `error.code` of a mobile API error response.
pub async fn error_code(res: reqwest::Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("error body is JSON");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Signs `browser` in to `slug` as the owner of `phone`; returns where the browser landed.
pub async fn sign_in(app: &TestApp, browser: &Browser, phone: &Phone, slug: &str) -> String {
    let page = browser.login_page(slug).await;
    let res = phone.approve_page(app, slug, &page).await;
    assert_eq!(res.status(), 200, "approve: {}", res.text().await.unwrap());
    let res = browser.get(slug, "/").await;
    assert_eq!(res.status(), 303, "the first load after approval redirects");
    res.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

/// Reads a push stream until `event` arrives (or fails after 5 s).
pub async fn expect_event(res: reqwest::Response, event: &str) {
    use futures::StreamExt;
    let mut stream = res.bytes_stream();
    let mut seen = String::new();
    while let Some(chunk) = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5 s")
    {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if seen.contains(&format!("event: {event}")) {
            return;
        }
    }
    panic!("no {event} in {seen}");
}
