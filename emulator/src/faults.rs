//! Request counting and injected faults, per route (`"GET /v1.0/users/delta"`, with the route
//! pattern as registered, e.g. `"POST /{tenant}/oauth2/v2.0/token"`).

use crate::errors::{AadError, GraphError, RequestIds};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// A fault for the next `count` requests to `route`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpec {
    /// `"METHOD /pattern"`, as listed by the request counts.
    pub route: String,
    #[serde(default = "one")]
    pub count: u32,
    /// Answer with this status (in the route's error shape) instead of running the handler.
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` seconds on that answer.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Wait this long before answering.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Answer normally but drop `value` from the JSON page.
    #[serde(default)]
    pub drop_value: bool,
    /// Answer normally but drop `@odata.deltaLink` (a delta chain that never ends properly).
    #[serde(default)]
    pub drop_delta_link: bool,
    /// Answer normally but point `@odata.nextLink` and `@odata.deltaLink` at this origin
    /// (`http://host:port`): a Graph that sends its client elsewhere.
    #[serde(default)]
    pub links_to: Option<String>,
}

fn one() -> u32 {
    1
}

/// Pending faults and request counts. Plain mutexes: short sections, no awaits inside.
#[derive(Default)]
pub struct Faults {
    pending: Mutex<HashMap<String, VecDeque<FaultSpec>>>,
    counts: Mutex<HashMap<String, u64>>,
}

impl Faults {
    /// Queues a fault.
    pub fn add(&self, spec: FaultSpec) {
        if spec.count == 0 {
            return;
        }
        if let Ok(mut p) = self.pending.lock() {
            p.entry(spec.route.clone()).or_default().push_back(spec);
        }
    }

    /// Drops every pending fault.
    pub fn clear(&self) {
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
        }
    }

    /// Requests seen per route since start (or the last reset).
    pub fn counts(&self) -> HashMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Forgets the request counts.
    pub fn reset_counts(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
    }

    fn take(&self, route: &str) -> Option<FaultSpec> {
        let mut pending = self.pending.lock().ok()?;
        let queue = pending.get_mut(route)?;
        let front = queue.front_mut()?;
        let spec = front.clone();
        front.count -= 1;
        if front.count == 0 {
            queue.pop_front();
        }
        Some(spec)
    }

    fn count(&self, route: &str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(route.to_string()).or_default() += 1;
        }
    }
}

/// Middleware on every identity and Graph route: request ids, counts, faults.
pub async fn observe(State(faults): State<Arc<Faults>>, mut req: Request, next: Next) -> Response {
    let route = format!(
        "{} {}",
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| req.uri().path().to_string())
    );
    let is_graph = req.uri().path().starts_with("/v1.0");
    let ids = RequestIds::new(
        req.headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok()),
    );
    req.extensions_mut().insert(ids.clone());
    faults.count(&route);
    let fault = faults.take(&route);
    if let Some(ms) = fault.as_ref().and_then(|f| f.latency_ms) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let mut res = match fault.as_ref().and_then(|f| f.status) {
        Some(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let retry_after = fault.as_ref().and_then(|f| f.retry_after);
            if is_graph {
                let mut e = GraphError::for_status(&ids, status);
                e.retry_after = retry_after;
                e.into_response()
            } else {
                let mut e = AadError::new(
                    status,
                    "temporarily_unavailable",
                    90033,
                    "A transient error has occurred. Please try again.",
                );
                e.retry_after = retry_after;
                e.into_response()
            }
        }
        None => {
            let res = next.run(req).await;
            match fault {
                Some(f) if f.drop_value || f.drop_delta_link || f.links_to.is_some() => {
                    alter(res, &f).await
                }
                _ => res,
            }
        }
    };
    if is_graph {
        let headers = res.headers_mut();
        for (name, value) in [
            ("request-id", &ids.request_id),
            ("client-request-id", &ids.client_request_id),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
    }
    res
}

async fn alter(res: Response, f: &FaultSpec) -> Response {
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "body too large to alter").into_response();
    };
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(obj) = json.as_object_mut() {
        if f.drop_value {
            obj.remove("value");
        }
        if f.drop_delta_link {
            obj.remove("@odata.deltaLink");
        }
        if let Some(origin) = &f.links_to {
            for key in ["@odata.nextLink", "@odata.deltaLink"] {
                if let Some(serde_json::Value::String(link)) = obj.get_mut(key) {
                    if let Ok(mut url) = reqwest::Url::parse(link) {
                        if let Ok(to) = reqwest::Url::parse(origin) {
                            let _ = url.set_scheme(to.scheme());
                            let _ = url.set_host(to.host_str());
                            let _ = url.set_port(to.port());
                        }
                        *link = url.to_string();
                    }
                }
            }
        }
    }
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(json.to_string()))
}
