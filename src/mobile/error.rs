use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Every refusal of the mobile API, with the status and code clients branch on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidJws(String),
    #[error("the request was signed at {0}, more than 5 minutes from the server's clock; check the phone's time")]
    StaleJws(i64),
    #[error("this signature is for `{got}`, not `{expected}`")]
    WrongPurpose { expected: &'static str, got: String },
    #[error("the signed device_id does not match the device in the address")]
    DeviceMismatch,
    #[error("{0}")]
    InvalidPublicKey(String),
    #[error("there is no such device; enroll the phone again")]
    UnknownDevice,
    #[error("this device was revoked; enroll the phone again")]
    DeviceRevoked,
    #[error("{0}")]
    InvalidEmail(String),
    #[error("a code was sent less than {0} seconds ago; wait a moment before asking again")]
    TooSoon(i64),
    #[error("no code is waiting for this email on this device; ask for a new one")]
    NoCode,
    #[error("the code has expired; ask for a new one")]
    CodeExpired,
    #[error("too many wrong codes; ask for a new one")]
    TooManyAttempts,
    #[error("the code is wrong; {0} attempt(s) left")]
    WrongCode(i64),
    #[error("{what}; try again in {} minute(s)", (retry_after + 59) / 60)]
    RateLimited { what: String, retry_after: i64 },
    #[error("too many wrong codes were entered for this address; it can be verified again in {} minute(s)", (.0 + 59) / 60)]
    EmailLocked(i64),
    #[error("your verified email has expired; verify it again in the app")]
    ClaimExpired,
    #[error("the mail could not be sent; try again later")]
    MailFailed,
    #[error("there is no tenant `{0}`")]
    UnknownTenant(String),
    #[error("there is no such sign-in request; scan the code again")]
    UnknownChallenge,
    #[error("the sign-in request has expired; the screen shows a new code")]
    ChallengeExpired,
    #[error("this sign-in request was already {0}")]
    ChallengeUsed(String),
    #[error("that is not the number shown on the screen; this sign-in request is cancelled")]
    WrongNumber,
    #[error("{0}")]
    NotVerified(String),
    #[error("{0}")]
    NoAccount(String),
    #[error("{0}")]
    AccountDisabled(String),
    #[error("{0}")]
    OtherDomain(String),
    #[error("{0}")]
    Ambiguous(String),
    #[error("{0}")]
    AddressMoved(String),
    #[error("{0}")]
    NotInGroup(String),
    #[error("{0}")]
    EntraUnavailable(String),
    #[error("only the phone of the technician who asked may approve this access request; it is cancelled")]
    NotRequester,
    #[error("something went wrong on the server; try again")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::devices::email::ProofError> for ApiError {
    fn from(e: crate::devices::email::ProofError) -> Self {
        use crate::devices::email::ProofError as P;
        match e {
            P::TooSoon(secs) => ApiError::TooSoon(secs),
            P::RateLimited { what, retry_after } => ApiError::RateLimited { what, retry_after },
            P::MailFailed => ApiError::MailFailed,
            P::NoCode => ApiError::NoCode,
            P::CodeExpired => ApiError::CodeExpired,
            P::TooManyAttempts => ApiError::TooManyAttempts,
            P::WrongCode(left) => ApiError::WrongCode(left),
            P::EmailLocked(secs) => ApiError::EmailLocked(secs),
            P::Unexpected(err) => ApiError::Internal(err),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl ApiError {
    /// Seconds a throttled client should wait, sent as `Retry-After`.
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            ApiError::TooSoon(secs)
            | ApiError::EmailLocked(secs)
            | ApiError::RateLimited {
                retry_after: secs, ..
            } => Some(*secs),
            _ => None,
        }
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            InvalidJws(_) => (StatusCode::UNAUTHORIZED, "invalid_jws"),
            StaleJws(_) => (StatusCode::UNAUTHORIZED, "stale_jws"),
            WrongPurpose { .. } => (StatusCode::BAD_REQUEST, "wrong_purpose"),
            DeviceMismatch => (StatusCode::FORBIDDEN, "device_mismatch"),
            InvalidPublicKey(_) => (StatusCode::BAD_REQUEST, "invalid_public_key"),
            UnknownDevice => (StatusCode::NOT_FOUND, "unknown_device"),
            DeviceRevoked => (StatusCode::FORBIDDEN, "device_revoked"),
            InvalidEmail(_) => (StatusCode::BAD_REQUEST, "invalid_email"),
            TooSoon(_) => (StatusCode::TOO_MANY_REQUESTS, "too_soon"),
            NoCode => (StatusCode::NOT_FOUND, "no_code"),
            CodeExpired => (StatusCode::GONE, "code_expired"),
            TooManyAttempts => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            WrongCode(_) => (StatusCode::BAD_REQUEST, "wrong_code"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            EmailLocked(_) => (StatusCode::TOO_MANY_REQUESTS, "email_locked"),
            ClaimExpired => (StatusCode::FORBIDDEN, "email_unverified"),
            MailFailed => (StatusCode::BAD_GATEWAY, "mail_failed"),
            UnknownTenant(_) => (StatusCode::NOT_FOUND, "unknown_tenant"),
            UnknownChallenge => (StatusCode::NOT_FOUND, "unknown_challenge"),
            ChallengeExpired => (StatusCode::GONE, "challenge_expired"),
            ChallengeUsed(_) => (StatusCode::CONFLICT, "challenge_used"),
            WrongNumber => (StatusCode::FORBIDDEN, "wrong_number"),
            NotVerified(_) => (StatusCode::FORBIDDEN, "email_not_verified"),
            NoAccount(_) => (StatusCode::FORBIDDEN, "no_account"),
            AccountDisabled(_) => (StatusCode::FORBIDDEN, "account_disabled"),
            OtherDomain(_) => (StatusCode::FORBIDDEN, "other_domain"),
            Ambiguous(_) => (StatusCode::FORBIDDEN, "ambiguous_account"),
            AddressMoved(_) => (StatusCode::FORBIDDEN, "address_moved"),
            NotInGroup(_) => (StatusCode::FORBIDDEN, "not_in_group"),
            EntraUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "entra_unavailable"),
            NotRequester => (StatusCode::FORBIDDEN, "not_requester"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// `{"error":{"code","message"}}`
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `wrong_number`.
    pub code: String,
    /// A sentence for the person holding the phone.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "mobile API failed");
        }
        let message = match &self {
            // The request id lets whoever holds the phone point the operator at the log.
            ApiError::Internal(_) => format!(
                "something went wrong on the server{}; try again",
                crate::server::request_log::reference()
            ),
            _ => self.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
            },
        };
        let mut res = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
        }
        res
    }
}
