//! The login page of a signed-out browser: each load (its binding cookie, then either the
//! sign-in its phone approved, which is also the no-JavaScript path, or the QR code to show,
//! from memory while the code waits: `PageCache`, else rendered with the code in the page's
//! context), and the push stream that tells the page when the phone has answered.

use super::binding;
use super::challenge::{self, Challenge, ForBrowser};
use super::page_cache::{self, Page};
use super::session::{self, Completion};
use crate::domain::{ChallengeId, ChallengeStatus, PushOutcome, Role};
use crate::server::bus;
use crate::server::client_ip::ClientIp;
use crate::server::db::Db;
use crate::server::headers::CspNonce;
use crate::server::render;
use crate::server::state::AppState;
use crate::server::throttle::Throttled;
use crate::server::util::{now, sha256_hex};
use crate::tenants::Tenant;
use axum::extract::{Extension, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tower_sessions::Session;

/// Answers `GET /` for a signed-out browser of `tenant`; `next` renders the page.
pub async fn serve(
    state: &AppState,
    session: &Session,
    jar: CookieJar,
    client: ClientIp,
    tenant: &Tenant,
    req: Request,
) -> Response {
    let name = binding::cookie_name(state.config.secure_cookies());
    let (jar, binding) = match jar.get(name) {
        Some(c) if state.binding_key.is_minted(c.value(), &tenant.id) => {
            (jar.clone(), c.value().to_string())
        }
        // Absent, or a value this server never minted for this tenant (planted, or fetched
        // from another tenant's page): a new one replaces it.
        _ => new_binding(state, tenant, jar.clone()),
    };
    let binding_hash = sha256_hex(&binding);
    let ip = client.to_string();
    let agent = user_agent(req.headers());

    // A reload while the code still waits is answered from memory (see `PageCache`), with
    // this answer's script nonce.
    let nonce = req
        .extensions()
        .get::<CspNonce>()
        .map(|n| n.0.clone())
        .unwrap_or_default();
    let pages = &state.pages;
    if let Some(page) = pages.page(&binding_hash, &tenant.id, now(), &nonce) {
        return login_page(jar, page);
    }
    let epoch = pages.epoch();

    // The first load after approval signs the browser in (this is also the no-JS path).
    match challenge::for_browser(
        &state.db,
        &state.throttles,
        tenant,
        &binding_hash,
        client,
        &agent,
    )
    .await
    {
        Ok(ForBrowser::Approved(challenge)) => {
            match session::complete(&state.db, session, tenant, &challenge, &ip, &agent).await {
                Ok(Completion::SignedIn { role }) => {
                    metrics::counter!("gatehouse_logins_total").increment(1);
                    // The value that bound this sign-in is spent with it: the next sign-in
                    // of this browser is bound to a value nobody else has seen.
                    let (jar, _) = new_binding(state, tenant, jar);
                    (
                        StatusCode::SEE_OTHER,
                        jar,
                        [(header::LOCATION, landing_for(role))],
                    )
                        .into_response()
                }
                // A refused approval is spent, and a racing request of this browser may have
                // signed it in: the next load shows what is true now (and says why).
                Ok(Completion::Refused | Completion::AlreadyUsed) => {
                    Redirect::to("/").into_response()
                }
                Err(err) => internal(err),
            }
        }
        Ok(ForBrowser::Show(challenge, None)) => {
            let page = match pages.confirm(&challenge, now(), epoch, &nonce) {
                Some(page) => page,
                None => match render_to_keep(state, tenant, &challenge, epoch, nonce, req).await {
                    Ok(page) => page,
                    Err(res) => return no_store((jar, res).into_response()),
                },
            };
            login_page(jar, page)
        }
        // A new code after a refused one says why, once: that page is not kept.
        Ok(ForBrowser::Show(challenge, Some(reason))) => {
            let mut view = challenge::view(&state.config, &state.qr_codes, tenant, &challenge);
            view.notice = Some(format!(
                "Sign-in refused: {reason}. Scan the new code to try again."
            ));
            no_store((jar, render::page_with(state, view, req).await).into_response())
        }
        Ok(ForBrowser::Throttled(throttled)) => too_many_codes(throttled),
        Err(err) => internal(err),
    }
}

/// A binding cookie minted for `tenant`'s login page, added to `jar`; and its value.
fn new_binding(state: &AppState, tenant: &Tenant, jar: CookieJar) -> (CookieJar, String) {
    let value = state.binding_key.mint(&tenant.id);
    let cookie = Cookie::build((
        binding::cookie_name(state.config.secure_cookies()),
        value.clone(),
    ))
    .http_only(true)
    .same_site(SameSite::Lax)
    .secure(state.config.secure_cookies())
    .path("/")
    .build();
    (jar.add(cookie), value)
}

/// Where a signed-in browser starts.
pub fn landing_for(role: Role) -> &'static str {
    if role == Role::Admin {
        "/adminportal/users"
    } else {
        "/home"
    }
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown browser")
        .to_string()
}

/// Nothing was written: the browser is told when it may draw a code again.
fn too_many_codes(throttled: Throttled) -> Response {
    let wait = throttled.retry_after;
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, wait.to_string())],
        Html(format!(
            "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
             <title>Too many sign-in codes · Gatehouse</title><link rel=stylesheet href=\"{css}\">\
             <main class=narrow><h1>Too many sign-in codes</h1>\
             <p>Your network asked for more sign-in codes this minute than Gatehouse hands out. \
             Reload the page in {wait} seconds.</p></main></html>",
            css = crate::server::caching::stylesheet_href()
        )),
    )
        .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

/// The rendered login page is a few kilobytes; anything near this is a fault.
const MAX_PAGE_BYTES: usize = 1 << 20;

/// Renders the page of a waiting code with marks where the time left goes, keeps it for the
/// browser's reloads, and returns it with the time left filled in.
async fn render_to_keep(
    state: &AppState,
    tenant: &Tenant,
    challenge: &Challenge,
    epoch: u64,
    nonce: String,
    req: Request,
) -> Result<Page, Response> {
    let mut view = challenge::view(&state.config, &state.qr_codes, tenant, challenge);
    view.expires_in_secs = page_cache::TEMPLATE_SECS;
    let res = render::page_with(state, view, req).await;
    if res.status() != StatusCode::OK {
        return Err(res);
    }
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/html; charset=utf-8")
        .to_string();
    let body = axum::body::to_bytes(res.into_body(), MAX_PAGE_BYTES)
        .await
        .map_err(|err| internal(anyhow::anyhow!("the login page did not render: {err}")))?;
    let rendered = Page {
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
        nonce,
    };
    state.pages.keep(challenge, &rendered, epoch);
    Ok(page_cache::fill_once(
        rendered,
        challenge.expires_at - now(),
    ))
}

fn login_page(jar: CookieJar, page: Page) -> Response {
    no_store((jar, [(header::CONTENT_TYPE, page.content_type)], page.body).into_response())
}

/// A QR code must never come from an HTTP cache: it is single-use and bound to this browser.
fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

pub(super) fn internal(err: anyhow::Error) -> Response {
    tracing::error!(error = ?err, "login page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "Something went wrong on our side{}; reload the page.",
            crate::server::request_log::reference()
        ),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
pub struct EventsQuery {
    pub challenge: String,
}

/// Server-sent events for one challenge, to the browser that holds its binding cookie.
pub async fn events(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    jar: CookieJar,
    Query(q): Query<EventsQuery>,
) -> Response {
    let Some(binding) = jar
        .get(binding::cookie_name(state.config.secure_cookies()))
        .filter(|c| state.binding_key.is_minted(c.value(), &tenant.id))
        .map(|c| sha256_hex(c.value()))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Subscribe before reading the status, so an approval between the two is not missed.
    let mut rx = state.bus.subscribe();
    let challenge: Challenge = match challenge::find(
        &state.db,
        &tenant.id,
        &ChallengeId::from_outside(q.challenge.clone()),
    )
    .await
    {
        Ok(Some(c)) if c.binding_hash == binding => c,
        Ok(_) => return StatusCode::NOT_FOUND.into_response(),
        Err(err) => return internal(err),
    };
    if challenge.status != ChallengeStatus::Pending {
        // Decided where this instance did not hear of it yet (another replica): the page
        // the browser loads next must be read afresh.
        state.pages.forget_browser(&binding);
    }
    let db = state.db.clone();
    let (tx, out) = tokio::sync::mpsc::channel::<Event>(4);
    tokio::spawn(async move {
        let first = match challenge.status {
            ChallengeStatus::Pending if challenge.expires_at <= now() => {
                Some(outcome_event(PushOutcome::Expired.as_str(), None))
            }
            ChallengeStatus::Pending => None,
            other => Some(outcome_event(other.as_str(), challenge.reason.as_deref())),
        };
        if let Some(ev) = first {
            let _ = tx.send(ev).await;
            return;
        }
        let wait = std::time::Duration::from_secs((challenge.expires_at - now()).max(0) as u64);
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    let _ = tx.send(outcome_event(PushOutcome::Expired.as_str(), None)).await;
                    return;
                }
                _ = tx.closed() => return,
                msg = rx.recv() => match msg {
                    Ok(bus::Event::MayHaveMissed) | Err(RecvError::Lagged(_)) => {
                        // The approval may have been among the events lost: ask the database.
                        if let Some(outcome) = decided(&db, &challenge).await {
                            let _ = tx.send(outcome).await;
                            return;
                        }
                    }
                    Ok(event) => {
                        if let Some(outcome) = challenge_outcome(&event, &challenge.id) {
                            let _ = tx.send(outcome).await;
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        }
    });
    let stream = ReceiverStream::new(out).map(Ok::<_, Infallible>);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// What the browser waiting on `challenge` hears when its code was decided meanwhile, read
/// from the database (nothing while it waits, or when the database cannot say).
async fn decided(db: &Db, challenge: &Challenge) -> Option<Event> {
    match challenge::find(db, &challenge.tenant_id, &challenge.id).await {
        Ok(Some(now)) if now.status != ChallengeStatus::Pending => {
            Some(outcome_event(now.status.as_str(), now.reason.as_deref()))
        }
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(error = %err, "could not read a waiting code again");
            None
        }
    }
}

/// What the browser that shows `challenge_id` hears of `event`, if it is about that code.
fn challenge_outcome(event: &bus::Event, challenge_id: &ChallengeId) -> Option<Event> {
    match event {
        bus::Event::Approved {
            challenge_id: id, ..
        } if id == challenge_id => Some(outcome_event(PushOutcome::Approved.as_str(), None)),
        bus::Event::Denied {
            challenge_id: id,
            reason,
            ..
        } if id == challenge_id => Some(outcome_event(PushOutcome::Denied.as_str(), Some(reason))),
        _ => None,
    }
}

pub(super) fn outcome_event(outcome: &str, reason: Option<&str>) -> Event {
    Event::default()
        .event(outcome)
        .data(serde_json::json!({ "outcome": outcome, "reason": reason }).to_string())
}
