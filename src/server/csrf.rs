//! Refuses state-changing requests that a browser sent on behalf of another site. Tenants
//! share one site (`acme.gatehouse.example` and `evil.gatehouse.example` are same-site), so
//! SameSite cookies alone do not keep one tenant's page from posting to another's: the
//! request's `Origin` must be this very host.

use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Why a request was refused, in words for the log and the answer.
#[derive(Debug, PartialEq, Eq)]
pub enum CrossSite {
    /// `Origin` names another host (or scheme).
    ForeignOrigin(String),
    /// `Origin: null` (sandboxed frames, some redirects): nothing says where it came from.
    OpaqueOrigin,
    /// No `Origin`, and the browser said the request came from another site.
    FetchSite(String),
}

impl std::fmt::Display for CrossSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrossSite::ForeignOrigin(o) => write!(f, "the request came from {o}, not this site"),
            CrossSite::OpaqueOrigin => write!(f, "the request came from an unnamed origin"),
            CrossSite::FetchSite(s) => {
                write!(
                    f,
                    "the browser reported the request as {s}, not same-origin"
                )
            }
        }
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Decides for one request: `scheme` is how browsers reach Gatehouse (`https` behind the
/// documented proxy). A named `Origin` must be this very host. `Sec-Fetch-Site` must say
/// `same-origin` when a browser sent it; it is what vouches for a form posted under
/// `Referrer-Policy: no-referrer`, which makes the browser send `Origin: null` even to its
/// own site. Requests with neither header are not from a browser (the native mobile apps,
/// curl) and carry no ambient credentials a page could borrow.
pub fn check(method: &Method, headers: &HeaderMap, scheme: &str) -> Result<(), CrossSite> {
    if !changes_state(method) {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("an unreadable origin"));
    if let Some(origin) = origin.filter(|o| *o != "null") {
        let expected = format!("{scheme}://{host}");
        if host.is_empty() || !origin.eq_ignore_ascii_case(&expected) {
            return Err(CrossSite::ForeignOrigin(origin.to_string()));
        }
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin") | Some("none") => Ok(()),
        Some(other) => Err(CrossSite::FetchSite(other.to_string())),
        None if origin == Some("null") => Err(CrossSite::OpaqueOrigin),
        None => Ok(()),
    }
}

/// The middleware: `403` and nothing done for a cross-site state change.
pub async fn same_origin_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check(req.method(), req.headers(), state.config.scheme()) {
        Ok(()) => next.run(req).await,
        Err(why) => {
            tracing::warn!(path = %req.uri().path(), reason = %why, "cross-site request refused");
            metrics::counter!("gatehouse_cross_site_refused_total").increment(1);
            let message = format!("Refused: {why}.");
            if req.uri().path().starts_with("/api/") {
                let body = serde_json::json!({
                    "error": { "code": "cross_site_request", "message": message }
                });
                (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
            } else {
                (StatusCode::FORBIDDEN, message).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn same_host_passes_and_a_sibling_tenant_does_not() {
        let own = headers(&[("host", "acme.gh.test"), ("origin", "https://acme.gh.test")]);
        assert_eq!(check(&Method::POST, &own, "https"), Ok(()));
        let sibling = headers(&[("host", "acme.gh.test"), ("origin", "https://evil.gh.test")]);
        assert!(matches!(
            check(&Method::POST, &sibling, "https"),
            Err(CrossSite::ForeignOrigin(_))
        ));
        // The same host over the other scheme is another origin.
        let plain = headers(&[("host", "acme.gh.test"), ("origin", "http://acme.gh.test")]);
        assert!(check(&Method::POST, &plain, "https").is_err());
        let port = headers(&[
            ("host", "acme.gh.test:3000"),
            ("origin", "http://acme.gh.test"),
        ]);
        assert!(check(&Method::POST, &port, "http").is_err());
    }

    #[test]
    fn reads_are_never_refused_and_clients_without_a_browser_pass() {
        let foreign = headers(&[("host", "acme.gh.test"), ("origin", "https://evil.test")]);
        assert_eq!(check(&Method::GET, &foreign, "https"), Ok(()));
        assert_eq!(
            check(&Method::POST, &headers(&[("host", "a")]), "https"),
            Ok(())
        );
    }

    #[test]
    fn null_origins_and_cross_site_fetches_are_refused() {
        let null = headers(&[("host", "acme.gh.test"), ("origin", "null")]);
        assert_eq!(
            check(&Method::DELETE, &null, "https"),
            Err(CrossSite::OpaqueOrigin)
        );
        // A same-origin form under no-referrer: Origin is null, Sec-Fetch-Site vouches.
        let own_form = headers(&[
            ("host", "acme.gh.test"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(check(&Method::POST, &own_form, "https"), Ok(()));
        let sandboxed = headers(&[
            ("host", "acme.gh.test"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(check(&Method::POST, &sandboxed, "https").is_err());
        // A named foreign origin is refused whatever else the request says.
        let lying = headers(&[
            ("host", "acme.gh.test"),
            ("origin", "https://evil.test"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(check(&Method::POST, &lying, "https").is_err());
        let site = headers(&[("host", "acme.gh.test"), ("sec-fetch-site", "same-site")]);
        assert!(check(&Method::POST, &site, "https").is_err());
        let own = headers(&[("host", "acme.gh.test"), ("sec-fetch-site", "same-origin")]);
        assert_eq!(check(&Method::POST, &own, "https"), Ok(()));
    }
}
