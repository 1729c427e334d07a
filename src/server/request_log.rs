//! One span per request, so an operator can follow one sign-in through the logs: a request
//! id (also sent back as `x-request-id`), the method, host and route, the tenant once the host
//! names one, and the status. Everything logged while the request is handled carries them,
//! and so do the audit events it writes and the error pages it answers with.

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, for handlers that show it (error pages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being handled by this task, if it is one (the scheduled reconciler
/// and the CLI have none).
pub fn current_id() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// "(request 3fZ…)", for an error message the operator can find in the logs.
pub fn reference() -> String {
    match current_id() {
        Some(id) => format!(" (request {id})"),
        None => String::new(),
    }
}

/// The middleware. The id is drawn here, never taken from the client: a client could
/// otherwise make its requests look like someone else's in the logs.
pub async fn trace(mut req: Request, next: Next) -> Response {
    let id = crate::server::util::random_id(9);
    req.extensions_mut().insert(RequestId(id.clone()));
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %req.method(),
        host = %host,
        route = %route,
        tenant = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut res = CURRENT
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    span.record("status", res.status().as_u16());
    span.in_scope(|| tracing::debug!(ms = started.elapsed().as_secs_f64() * 1000.0, "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    res
}

/// Names the tenant on the current request's span, once the host has been resolved.
pub fn record_tenant(slug: &str) {
    tracing::Span::current().record("tenant", slug);
}
