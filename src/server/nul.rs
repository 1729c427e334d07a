//! No Gatehouse input holds a NUL character, and PostgreSQL refuses one in any text value
//! (where SQLite keeps it): a NUL in an address, a query or a form would reach the database
//! and come back as a 500. This refuses such a request at the door, with a 400 that says why,
//! before any handler reads it.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest body this looks into; the extractors refuse larger ones anyway (axum's 2 MB).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// True when `bytes` carry a NUL as written on the wire: raw, percent-encoded (`%00`, in an
/// address or a form) or JSON-escaped (`\u0000`).
fn carries_nul(bytes: &[u8]) -> bool {
    bytes.contains(&0)
        || bytes.windows(3).any(|w| w == b"%00")
        || bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

fn refuse(path: &str, what: &str) -> Response {
    metrics::counter!("gatehouse_bad_requests_total", "why" => "nul").increment(1);
    let message =
        format!("The request's {what} contains a NUL character, which no Gatehouse field takes.");
    if path.starts_with("/api/mobile/") {
        let body =
            serde_json::json!({ "error": { "code": "invalid_request", "message": message } });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    } else if path.starts_with("/api/") {
        // A server function's error, as its caller decodes it.
        let body = crate::error::AppError::Invalid(message);
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    } else {
        (StatusCode::BAD_REQUEST, message).into_response()
    }
}

/// The middleware. Bodies are read only for form, JSON and text requests, which are all
/// Gatehouse takes.
pub async fn refuse_nul(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if carries_nul(req.uri().to_string().as_bytes()) {
        return refuse(&path, "address");
    }
    let textual = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.starts_with("application/x-www-form-urlencoded")
                || t.contains("json")
                || t.starts_with("text/")
        });
    if !textual {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        let message = "The request's body is larger than Gatehouse takes (2 MB).";
        return if path.starts_with("/api/mobile/") {
            let body =
                serde_json::json!({ "error": { "code": "body_too_large", "message": message } });
            (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
        } else {
            (StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
        };
    };
    if carries_nul(&bytes) {
        return refuse(&path, "body");
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_found_however_it_is_written() {
        assert!(carries_nul(b"a\0b"));
        assert!(carries_nul(b"/challenges/%00?tenant=acme"));
        assert!(carries_nul(br#"{"email":"a\u0000@b.c"}"#));
        assert!(carries_nul(br#"{"email":"a\U0000@b.c"}"#));
        assert!(!carries_nul(b"first_name=Ann&count=100"));
        assert!(!carries_nul(br#"{"n": "\u00e9"}"#));
    }
}
