//! The one error type server functions return; users see its message, logs get the detail.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("You are not signed in, or your session has ended. Sign in again.")]
    NotSignedIn,
    #[error("Only tenant admins may do this.")]
    Forbidden,
    /// Input that was refused; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A fault on Gatehouse's side; it carries the request id (or nothing) so the person who
    /// met it can point the operator at the log lines.
    #[error("Something went wrong on our side and has been logged{0}. Try again.")]
    Internal(String),
    #[error("The request did not reach the server: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // On the server these are the request's arguments that could not be read (wrong
        // types, a missing field, invalid UTF-8, the wrong method): the caller's input,
        // answered 400. In the browser they are the trip itself going wrong.
        #[cfg(feature = "ssr")]
        if let ServerFnErrorErr::Args(e)
        | ServerFnErrorErr::MissingArg(e)
        | ServerFnErrorErr::Deserialization(e)
        | ServerFnErrorErr::UnsupportedRequestMethod(e) = &value
        {
            return AppError::Invalid(format!("The request could not be read: {e}"));
        }
        AppError::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    /// A fault on our side, naming the request being handled.
    pub fn internal() -> Self {
        AppError::Internal(crate::server::request_log::reference())
    }
}

#[cfg(feature = "ssr")]
impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        tracing::error!(error = ?err, "unexpected error in a server function");
        AppError::internal()
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        anyhow::Error::from(err).into()
    }
}
