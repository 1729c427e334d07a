//! Errors in the two shapes Microsoft uses: the identity platform's AADSTS JSON and Graph's
//! `{"error":{"code","message","innerError"}}`.

use crate::ids::new_guid;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Identifiers Graph puts on every response, as headers and inside `innerError`.
#[derive(Clone, Debug)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    /// Fresh ids; `client-request-id` echoes the caller's header when it sent one, as Graph does.
    pub fn new(client_request_id: Option<&str>) -> Self {
        let request_id = new_guid();
        Self {
            client_request_id: client_request_id
                .map(str::to_string)
                .unwrap_or_else(|| request_id.clone()),
            request_id,
        }
    }
}

/// A Graph error.
///
/// Shape: https://learn.microsoft.com/en-us/graph/errors
#[derive(Debug)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Boxed to keep `Result<_, GraphError>` small.
    pub ids: Box<RequestIds>,
    pub retry_after: Option<u64>,
    pub location: Option<String>,
}

impl GraphError {
    pub fn new(
        ids: &RequestIds,
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            ids: Box::new(ids.clone()),
            retry_after: None,
            location: None,
        }
    }

    pub fn unauthenticated(ids: &RequestIds, message: impl Into<String>) -> Self {
        Self::new(
            ids,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }

    pub fn denied(ids: &RequestIds) -> Self {
        Self::new(
            ids,
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    pub fn unsupported_query(ids: &RequestIds, message: impl Into<String>) -> Self {
        Self::new(
            ids,
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            message,
        )
    }

    pub fn not_found(ids: &RequestIds, what: &str) -> Self {
        Self::new(
            ids,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{what}' does not exist or one of its queried reference-property objects are not present."),
        )
    }

    /// The code Graph uses for a status, for injected faults.
    ///
    /// Throttling: https://learn.microsoft.com/en-us/graph/throttling
    pub fn for_status(ids: &RequestIds, status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            429 => (
                "TooManyRequests",
                "Too many requests. Please retry after the time given in the Retry-After header.",
            ),
            503 => (
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            ),
            504 => (
                "gatewayTimeout",
                "The server, while acting as a proxy, did not receive a timely response.",
            ),
            401 => (
                "InvalidAuthenticationToken",
                "Access token validation failure.",
            ),
            403 => (
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ),
            404 => ("Request_ResourceNotFound", "Resource does not exist."),
            s if s >= 500 => ("generalException", "An unspecified error has occurred."),
            _ => ("invalidRequest", "The request is malformed or incorrect."),
        };
        Self::new(ids, status, code, message)
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": self.ids.request_id,
                    "client-request-id": self.ids.client_request_id,
                }
            }
        });
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            res.headers_mut().insert("location", location);
        }
        res
    }
}

/// An identity-platform (token endpoint) error with its AADSTS code.
///
/// Shape: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-response-1
/// Codes: https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
#[derive(Debug)]
pub struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl AadError {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn invalid_grant(code: u32, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", code, description)
    }

    pub fn invalid_request(code: u32, description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            code,
            description,
        )
    }

    /// The `AADSTS…: text` line Microsoft puts in `error_description`.
    pub fn line(&self) -> String {
        format!("AADSTS{}: {}", self.code, self.description)
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let trace_id = new_guid();
        let correlation_id = new_guid();
        let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "{} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.line()
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        res
    }
}
