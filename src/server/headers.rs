//! The headers every answer carries so that a browser keeps Gatehouse's pages to themselves:
//! a Content-Security-Policy whose scripts need this response's nonce, no framing, no
//! sniffing, no referrer, the camera for the phone app only, and HSTS behind https.

use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use rand::RngCore as _;

/// The script nonce of one response, drawn before the page renders. Leptos marks its
/// hydration and resource scripts with it (see `app::nonce_from_request`), a kept login page
/// has it filled in, and the policy names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CspNonce(pub String);

impl CspNonce {
    pub fn draw() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// The policy for a page whose scripts carry `nonce`. Scripts come from this origin or carry
/// the nonce; WebAssembly may compile only where `wasm` says a page hydrates; styles, images
/// and fetches stay on this origin (the QR code is inline SVG, an element, not an image); no
/// page may frame ours.
pub fn policy(nonce: &CspNonce, wasm: bool) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{}'{}; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        nonce.0,
        if wasm { " 'wasm-unsafe-eval'" } else { "" }
    )
}

/// A year, the value browsers' preload lists ask for.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Draws the nonce, lets the request through, and sets the headers the answer lacks.
pub async fn secure(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let nonce = CspNonce::draw();
    req.extensions_mut().insert(nonce.clone());
    // `/` is a tenant's login page or the base domain's: neither runs WebAssembly (the login
    // page's script is public/login.js), so neither may compile any.
    let wasm = req.uri().path() != "/";
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    let mut set = |name: HeaderName, value: HeaderValue| {
        headers.entry(name).or_insert(value);
    };
    if let Ok(value) = HeaderValue::from_str(&policy(&nonce, wasm)) {
        set(header::CONTENT_SECURITY_POLICY, value);
    }
    // For browsers that predate frame-ancestors.
    set(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    set(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    set(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    set(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(
            "camera=(self), microphone=(), geolocation=(), payment=(), usb=()",
        ),
    );
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if state.config.secure_cookies() {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_and_are_safe_in_a_header() {
        let (a, b) = (CspNonce::draw(), CspNonce::draw());
        assert_ne!(a, b);
        assert_eq!(a.0.len(), 22);
        for wasm in [true, false] {
            assert!(HeaderValue::from_str(&policy(&a, wasm)).is_ok());
            assert!(policy(&a, wasm).contains(&format!("'nonce-{}'", a.0)));
            assert!(!policy(&a, wasm).contains("unsafe-inline"));
        }
        assert!(policy(&a, true).contains("'wasm-unsafe-eval'"));
        assert!(!policy(&a, false).contains("wasm"));
    }
}
