//! Which site a request is for: the base domain (mobile app and API) or a tenant's host.

use super::state::AppState;
use super::util::strip_port;
use crate::tenants::Tenant;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

/// The site a request addresses.
#[derive(Clone, Debug)]
pub enum Site {
    Base,
    Tenant(Box<Tenant>),
}

/// Resolves the Host header to a site; an unknown host is a 404, before any handler runs.
/// Ports are ignored so that tests on port 0 and proxies on 443 resolve alike.
pub async fn resolve_site(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| strip_port(h).to_ascii_lowercase())
        .or_else(|| req.uri().host().map(|h| h.to_ascii_lowercase()))
        .unwrap_or_default();
    let path = req.uri().path();
    // Probes answer on any host: load balancers rarely send a tenant's name. Metrics go
    // through the usual resolution and answer on the base domain only.
    if matches!(path, "/healthz" | "/readyz") {
        return next.run(req).await;
    }
    let base = state.config.base_host().to_ascii_lowercase();
    if host == base {
        req.extensions_mut().insert(Site::Base);
        return next.run(req).await;
    }
    let Some(label) = host.strip_suffix(&format!(".{base}")) else {
        return not_found("This host is not served by Gatehouse.");
    };
    match state.tenants.find_by_slug(&state.db, label).await {
        Ok(Some(tenant)) => {
            super::request_log::record_tenant(&tenant.slug);
            req.extensions_mut().insert(tenant.clone());
            req.extensions_mut().insert(Site::Tenant(Box::new(tenant)));
            next.run(req).await
        }
        Ok(None) => not_found("There is no Gatehouse tenant at this address."),
        Err(err) => {
            tracing::error!(error = ?err, "tenant lookup failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is not answering; try again shortly.",
            )
                .into_response()
        }
    }
}

fn not_found(message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>Not found</title>\
             <h1>Not found</h1><p>{message}</p>"
        )),
    )
        .into_response()
}
