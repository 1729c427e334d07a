//! The plain HTTP side of login: the page gate, the push streams, sign-out.

use super::page_load::{self, internal, landing_for, outcome_event};
use super::session;
use crate::domain::{PushOutcome, Role};
use crate::server::bus;
use crate::server::client_ip::ClientIp;
use crate::server::host::Site;
use crate::server::state::AppState;
use crate::tenants::Tenant;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use axum_extra::extract::cookie::CookieJar;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login/events", get(page_load::events))
        .route("/logout", post(logout))
        .route("/session/events", get(session_events))
}

/// Runs before the portal's pages: a signed-in browser goes to its landing page and stays
/// off pages its role may not see; a signed-out one only ever sees the login page
/// (`page_load::serve`).
pub async fn page_gate(
    State(state): State<AppState>,
    session: Session,
    jar: CookieJar,
    Extension(client): Extension<ClientIp>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    let is_page = path == "/"
        || path == "/home"
        || path == "/adminportal"
        || path.starts_with("/adminportal/");
    if req.method() != Method::GET || !is_page {
        return next.run(req).await;
    }
    let tenant = match req.extensions().get::<Site>() {
        Some(Site::Tenant(t)) => (**t).clone(),
        _ => return base_home(&state).into_response(),
    };
    let signed_in = match session::current(&state.db, &session, &tenant).await {
        Ok(s) => s,
        Err(err) => return internal(err),
    };
    match (signed_in, path.as_str()) {
        (Some(s), "/") => Redirect::to(landing_for(s.user.role)).into_response(),
        (Some(_), "/adminportal") => Redirect::to("/adminportal/users").into_response(),
        (Some(s), p) if p.starts_with("/adminportal") && s.user.role != Role::Admin => {
            Redirect::to("/home").into_response()
        }
        (Some(_), _) => next.run(req).await,
        (None, "/") => page_load::serve(&state, &session, jar, client, &tenant, req).await,
        (None, _) => Redirect::to("/").into_response(),
    }
}

/// Server-sent events for a signed-in page: `signed_out` when the user's access ends
/// (offboarded, disabled, or this session revoked), so an open page leaves at once. A page
/// whose session ended before it connected (access revoked while the page was still loading)
/// is told at once.
async fn session_events(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    session: Session,
) -> Response {
    // Subscribe before reading the session, so an ending between the two is not missed.
    let mut rx = state.bus.subscribe();
    let (tx, out) = tokio::sync::mpsc::channel::<Event>(1);
    let signed_in = match session::current(&state.db, &session, &tenant).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let ended = outcome_event(
                PushOutcome::SignedOut.as_str(),
                Some("this sign-in has ended"),
            );
            return Sse::new(tokio_stream::once(Ok::<_, Infallible>(ended))).into_response();
        }
        Err(err) => return internal(err),
    };
    let user_id = signed_in.user.id;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                msg = rx.recv() => match msg {
                    Ok(bus::Event::MayHaveMissed) | Err(RecvError::Lagged(_)) => {
                        // The ending may have been among the events lost: ask the database.
                        if let Ok(None) = session::current(&state.db, &session, &tenant).await {
                            let ended = outcome_event(
                                PushOutcome::SignedOut.as_str(),
                                Some("this sign-in has ended"),
                            );
                            let _ = tx.send(ended).await;
                            return;
                        }
                    }
                    Ok(event) => {
                        if let Some((_, reason)) = event.signed_out_user().filter(|(u, _)| **u == user_id) {
                            let _ = tx.send(outcome_event(PushOutcome::SignedOut.as_str(), Some(reason))).await;
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        }
    });
    Sse::new(ReceiverStream::new(out).map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn logout(State(state): State<AppState>, session: Session) -> Response {
    if let Err(err) = session::end(&state.db, &session).await {
        return internal(err);
    }
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response()
}

/// The base domain's front page: where to go from here.
fn base_home(state: &AppState) -> Html<String> {
    let demo = if state.config.demo {
        format!(
            "<p class=demo-banner>Demo mode. Try the demo tenant at <a href=\"{0}\">{0}</a>.</p>",
            state.config.tenant_url("demo")
        )
    } else {
        String::new()
    };
    Html(format!(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>Gatehouse</title><link rel=icon type=image/svg+xml href=/favicon.svg><link rel=stylesheet href=\"{css}\">\
         <main class=narrow><h1>Gatehouse</h1>{demo}\
         <p>Each organisation signs in at its own address, <code>{{tenant}}.{base}</code>.</p>\
         <p>Technicians: open <a href=\"/app\">the Gatehouse phone app</a> on your phone to enroll it and verify your work email.</p>\
         </main></html>",
        base = state.config.base_domain,
        css = crate::server::caching::stylesheet_href()
    ))
}
