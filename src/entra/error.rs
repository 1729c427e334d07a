/// What can go wrong talking to Entra. Graph errors keep Microsoft's `code`, which callers
/// branch on; the message is for people and logs only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntraError {
    #[error("no Entra app is configured (set ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET)")]
    NotConfigured,
    #[error("Entra could not be reached: {0}")]
    Network(String),
    #[error("Entra refused the token request: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Token {
        error: String,
        description: Option<String>,
    },
    #[error("the sign-in could not be verified: {0}")]
    InvalidIdToken(String),
    #[error("Graph answered {status} {code}: {message}")]
    Graph {
        status: u16,
        code: String,
        message: String,
    },
    #[error("Graph kept throttling after {0} attempts")]
    Throttled(u32),
    #[error("Graph sent a response Gatehouse does not understand: {0}")]
    Malformed(String),
}

impl EntraError {
    /// True for answers worth one more try: the token endpoint's `temporarily_unavailable`
    /// and `server_error`, and no answer at all.
    pub fn is_transient(&self) -> bool {
        match self {
            EntraError::Network(_) => true,
            EntraError::Token { error, .. } => {
                matches!(error.as_str(), "temporarily_unavailable" | "server_error")
            }
            _ => false,
        }
    }

    /// True when Graph no longer knows a delta link and only a full synchronization can go
    /// on: an expired link (`400 syncStateNotFound`, after seven days for directory objects)
    /// or a sync state reset during tenant maintenance (`410 Gone`).
    /// https://learn.microsoft.com/en-us/graph/delta-query-overview#token-duration
    pub fn sync_state_lost(&self) -> bool {
        matches!(self, EntraError::Graph { status: 410, .. })
            || matches!(self, EntraError::Graph { code, .. }
                if code == "syncStateNotFound" || code == "resyncRequired")
    }

    /// True when the app's authorization for the tenant is gone (consent revoked, app
    /// removed, secret expired): the admin must authorize again.
    pub fn authorization_lost(&self) -> bool {
        match self {
            EntraError::Token { error, .. } => {
                matches!(
                    error.as_str(),
                    "invalid_client" | "unauthorized_client" | "invalid_grant" | "access_denied"
                )
            }
            EntraError::Graph { status, code, .. } => {
                *status == 401
                    || *status == 403
                    || matches!(
                        code.as_str(),
                        "InvalidAuthenticationToken" | "Authorization_RequestDenied"
                    )
            }
            _ => false,
        }
    }
}
