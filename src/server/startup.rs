//! `Application::build(config)` → `.port()` → `.run_until_stopped(shutdown)`.

use super::bus::Bus;
use super::client_ip;
use super::config::Config;
use super::csrf;
use super::db::{Db, Engine};
use super::headers;
use super::host::{resolve_site, Site};
use super::mail::{self, Mailer};
use super::render::use_request_nonce;
use super::state::AppState;
use super::telemetry::metrics_handle;
use super::util::format_time;
use crate::app::{shell, App};
use crate::tenants::store as tenants;
use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use secrecy::ExposeSecret as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::services::ServeDir;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Connects the database (migrating it), seeds demo data when asked, and binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database_url).await?;
        let mailer = Mailer::from_config(&config)?;
        // A relay that cannot be used now may be fixed later: warn, and start anyway.
        if let Err(err) = mailer.check().await {
            tracing::warn!("{err:#}; verification mails will fail until the relay works (SMTP_URL, SMTP_CA_FILE)");
        }
        if mailer.is_outbox() && !config.demo {
            tracing::warn!("--dev-outbox: mail goes to /_dev/outbox on the base domain, readable by anyone who can reach it, verification codes included. Never run this on the internet; set SMTP_URL.");
        }
        if config.demo {
            seed_demo(&db).await?;
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let leptos_options = LeptosOptions::builder()
            .output_name("gatehouse")
            .site_root(config.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .hash_files(super::caching::site_is_hashed())
            .site_addr(addr)
            .build();
        let (entra, customers_entra) = match crate::entra::EntraClient::from_config(&config.entra) {
            Ok(client) => {
                if let Some(cert) = client.certificate() {
                    announce_certificate(cert);
                }
                let customers = crate::entra::EntraClient::for_customers(&config.entra).ok();
                (Some(client), customers)
            }
            Err(_) if config.demo => {
                let (own, customers) = start_demo_emulator(&config).await?;
                (Some(own), Some(customers))
            }
            Err(_) => (None, None),
        };
        let binding_key = crate::login::binding::BindingKey::load_or_create(&db).await?;
        let throttles = Arc::new(super::throttle::Throttles::new(super::throttle::Rates {
            login_codes_per_minute: config.limits.login_codes_per_ip,
            registrations_per_hour: config.limits.device_registrations_per_ip,
            phone_actions_per_minute: config.limits.phone_actions_per_ip,
            refused_notifications_per_minute: config.limits.refused_notifications_per_ip,
        }));
        let bus = Bus::new(db.clone());
        let pages = Arc::new(crate::login::page_cache::PageCache::default());
        let tenants = Arc::new(crate::tenants::cache::TenantCache::default());
        bus.attach(pages.clone());
        bus.attach(tenants.clone());
        let state = AppState {
            throttles,
            binding_key,
            db,
            config: Arc::new(config),
            mailer: Arc::new(mailer),
            bus,
            pages,
            tenants,
            qr_codes: Arc::default(),
            leptos_options,
            metrics: metrics_handle(),
            entra,
            customers_entra,
        };
        let router = router(state.clone()).await?;
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets open requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let bus = self.state.bus.clone().run_until_stopped();
        let housekeeping = crate::housekeeping::run_until_stopped(
            self.state.db.clone(),
            self.state.throttles.clone(),
        );
        let reconciler = crate::reconciler::scheduler::run_until_stopped(
            self.state.db.clone(),
            self.state.bus.clone(),
            self.state.entra.clone(),
        );
        let keeper = crate::notifications::keeper::run_until_stopped(
            self.state.db.clone(),
            self.state.bus.clone(),
            self.state.entra.clone(),
            self.state
                .config
                .notification_urls()
                .map(
                    |(notifications, lifecycle)| crate::notifications::keeper::Urls {
                        notifications,
                        lifecycle,
                    },
                ),
        );
        let customer_accounts = crate::jit::worker::run_until_stopped(
            self.state.db.clone(),
            self.state.bus.clone(),
            self.state.customers_entra.clone(),
        );
        let server = super::serve::serve(
            self.listener,
            self.router,
            self.state.config.connections,
            shutdown,
        );
        tokio::select! {
            res = server => res.context("the HTTP server failed"),
            res = bus => res,
            res = reconciler => res,
            res = customer_accounts => res,
            res = housekeeping => res,
            () = keeper => Ok(()),
        }
    }
}

/// The portal's Leptos routes, walked once per process. While they are walked, leptos_server
/// stops every resource in the process from loading, and a resource that first runs then
/// never finishes (a process-wide switch; leptos-rs/leptos#4773): a page rendered meanwhile by
/// another server of the process (tests, replicas) would never answer.
fn routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

async fn router(state: AppState) -> anyhow::Result<Router> {
    let routes = routes();
    let leptos_options = state.leptos_options.clone();
    let site_root = state.config.site_root.clone();
    let app: Router<AppState> = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/_dev/outbox", get(outbox))
        .merge(crate::mobile::routes::router())
        .merge(crate::login::routes::router())
        .merge(crate::user_source::routes::router())
        .merge(crate::customers::routes::router())
        .merge(crate::notifications::routes::router())
        .leptos_routes_with_context(&state, routes, use_request_nonce, {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback_service(
            // A release site holds a Brotli and a gzip copy of each asset (--precompress).
            ServeDir::new(site_root)
                .append_index_html_on_directories(false)
                .precompressed_br()
                .precompressed_gzip(),
        );

    let app = app
        .layer(middleware::from_fn(super::context::error_status))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::login::routes::page_gate,
        ));
    let app = match &state.db.engine {
        Engine::Sqlite(pool) => {
            let store = SqliteStore::new(pool.clone());
            store
                .migrate()
                .await
                .context("cannot create the session table")?;
            app.layer(session_layer(store, &state))
        }
        Engine::Postgres(pool) => {
            let store = PostgresStore::new(pool.clone());
            store
                .migrate()
                .await
                .context("cannot create the session table")?;
            app.layer(session_layer(store, &state))
        }
    };
    Ok(app
        .layer(middleware::from_fn_with_state(state.clone(), resolve_site))
        .layer(middleware::from_fn(super::nul::refuse_nul))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            csrf::same_origin_only,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(client_ip::Proxies {
                trusted: state.config.trusted_proxies.clone(),
                header: state.config.client_ip_header,
            }),
            client_ip::identify,
        ))
        // A body that trickles in is cut off (408); headers have their own deadline, in
        // `serve`.
        .layer(RequestBodyTimeoutLayer::new(
            state.config.connections.body_timeout,
        ))
        // Pages and what has no compressed copy, compressed as the browser asks; event
        // streams are left alone (tower-http's default predicate), so pushes arrive at once.
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)))
        .layer(middleware::from_fn_with_state(
            state.leptos_options.hash_files,
            super::caching::cache_policy,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            headers::secure,
        ))
        .layer(middleware::from_fn(count_requests))
        .layer(middleware::from_fn(super::request_log::trace))
        .with_state(state))
}

fn session_layer<S: tower_sessions::SessionStore + Clone>(
    store: S,
    state: &AppState,
) -> SessionManagerLayer<S> {
    SessionManagerLayer::new(store)
        .with_name(if state.config.secure_cookies() {
            // Over https: only this exact host may set it (no planting from a sibling host).
            "__Host-gatehouse_session"
        } else {
            "gatehouse_session"
        })
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookies())
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::seconds(
                crate::login::session::SIGN_IN_LASTS_SECS,
            ),
        ))
}

async fn count_requests(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    metrics::counter!("gatehouse_http_requests_total", "status" => res.status().as_u16().to_string()).increment(1);
    res
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.db.is_ready().await {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database not reachable").into_response()
    }
}

/// Prometheus text, on the base domain only, and behind `GATEHOUSE_METRICS_TOKEN` when set.
async fn metrics(
    State(state): State<AppState>,
    Extension(site): Extension<Site>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !matches!(site, Site::Base) {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(token) = &state.config.metrics_token {
        use sha2::{Digest, Sha256};
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Digests, so the comparison time does not tell where a guess goes wrong.
        if Sha256::digest(given.as_bytes())
            != Sha256::digest(secrecy::ExposeSecret::expose_secret(token).as_bytes())
        {
            return (
                StatusCode::UNAUTHORIZED,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            )
                .into_response();
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Mail that would have been sent, for demos and tests without an SMTP relay.
async fn outbox(State(state): State<AppState>, Extension(site): Extension<Site>) -> Response {
    // The outbox exists in demo mode (or with --dev-outbox) only: elsewhere anyone could read
    // every verification code and sign in as anyone.
    let asked = state.config.demo || state.config.dev_outbox;
    if !asked || !state.mailer.is_outbox() || !matches!(site, Site::Base) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let messages = match mail::outbox(&state.db, 50).await {
        Ok(m) => m,
        Err(err) => {
            tracing::error!(error = ?err, "outbox read failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let items: String = messages
        .iter()
        .map(|m| {
            format!(
                "<li class=mail data-to=\"{to}\"><p class=meta>{at} · to <strong>{to}</strong></p>\
                 <p class=subject>{subject}</p><pre>{body}</pre></li>",
                at = format_time(m.created_at),
                to = escape(&m.to_addr),
                subject = escape(&m.subject),
                body = escape(&m.body),
            )
        })
        .collect();
    let list = if items.is_empty() {
        "<p>No mail yet.</p>".to_string()
    } else {
        format!("<ol class=outbox>{items}</ol>")
    };
    Html(format!(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>Dev outbox · Gatehouse</title><link rel=icon type=image/svg+xml href=/favicon.svg><link rel=stylesheet href=\"{css}\">\
         <main class=narrow><h1>Dev outbox</h1>\
         <p class=demo-banner>SMTP_URL is not set, so Gatehouse keeps its mail here instead of sending it. Newest first.</p>\
         {list}</main></html>",
        css = super::caching::stylesheet_href()
    ))
    .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Demo mode without an Entra app: the emulator's Contoso (and the MSP's customers), in this
/// process, on the port after Gatehouse's plus 100 (3100 beside 3000). Returns clients for its
/// two demo apps: Gatehouse's own, and the one customers consent to.
async fn start_demo_emulator(
    config: &Config,
) -> anyhow::Result<(crate::entra::EntraClient, crate::entra::EntraClient)> {
    use gatehouse_emulator::{Emulator, Seed};
    let port = match config.listen.port() {
        0 => 0,
        p => p
            .checked_add(100)
            .context("no port above GATEHOUSE_LISTEN for the demo's emulator")?,
    };
    // Whoever holds the control token can add users to Contoso and make Graph misbehave: it
    // is random unless the operator chose one, and the emulator answers on loopback only.
    let token = match &config.demo_emulator_token {
        Some(t) => t.expose_secret().to_string(),
        None => crate::server::util::random_id(24),
    };
    let emulator = Emulator::with_control_token(Seed::contoso(), token.clone())?;
    if port != 0 {
        emulator.set_base_url(&format!("http://localhost:{port}"));
    }
    let addr = emulator
        .spawn(SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port,
        ))
        .await?;
    let app = emulator
        .demo_app()
        .context("the Contoso seed has the demo app")?;
    let customers_app = emulator
        .customers_app()
        .context("the Contoso seed has the customers app")?;
    // Whatever host and port the demo runs on, its callbacks are registered.
    let tenant_url = config.tenant_url("demo");
    for (client_id, round) in [
        (&app.client_id, &crate::user_source::flows::USER_SOURCE),
        (
            &customers_app.client_id,
            &crate::user_source::flows::CUSTOMER,
        ),
    ] {
        for uri in [
            round.callback_uri(&tenant_url),
            round.consent_callback_uri(&tenant_url),
        ] {
            emulator
                .register_redirect_uri(client_id, &uri)
                .context("register the demo's callbacks with its emulator")?;
        }
    }
    let base = emulator.base_url();
    // Printed, not logged: the token belongs on the operator's screen, not in log storage.
    println!(
        "demo mode: the Entra emulator (Contoso) serves at {base} (loopback only, {addr}); \
         its control page is {base}/_emulator/ui?token={token}"
    );
    Ok((
        crate::entra::EntraClient::new(&base, &base, &app.client_id, app.secret),
        crate::entra::EntraClient::new(
            &base,
            &base,
            &customers_app.client_id,
            customers_app.secret,
        ),
    ))
}

/// The demo tenant and its admin, created once.
pub const DEMO_ADMIN: &str = "admin@demo-msp.example";

async fn seed_demo(db: &Db) -> anyhow::Result<()> {
    if tenants::find_by_slug(db, "demo").await?.is_some() {
        return Ok(());
    }
    crate::tenants::service::create(
        db,
        "demo",
        "Demo MSP",
        DEMO_ADMIN,
        crate::audit::Actor::Command("demo seed"),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot seed the demo tenant: {e}"))?;
    tracing::info!(admin = DEMO_ADMIN, "seeded the demo tenant `demo`");
    Ok(())
}

/// Publishes when Gatehouse's Entra certificate expires (`/metrics`), and warns in the log
/// from 30 days before: after that day no tenant can be reached.
fn announce_certificate(cert: &crate::entra::ClientCertificate) {
    metrics::gauge!("gatehouse_entra_certificate_not_after_seconds").set(cert.not_after() as f64);
    let left = cert.not_after() - chrono::Utc::now().timestamp();
    if left < crate::entra::CERTIFICATE_WARNING_SECS {
        tracing::warn!(
            thumbprint = cert.thumbprint_s256(),
            days_left = left / 86_400,
            "the Entra client certificate expires soon (or has): upload a new one to the app registration and set ENTRA_CLIENT_CERTIFICATE_FILE"
        );
    }
}
