use crate::domain::EntraHealth;

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
        /// Microsoft's AADSTS numbers (`error_codes`), which tell apart what `error` lumps
        /// together. https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
        codes: Vec<u32>,
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

    /// What this error says about the connection, when it says something lasting: Gatehouse's
    /// own credentials refused (`invalid_client`, AADSTS7000215 wrong secret, 7000222 expired
    /// secret, 700027 bad certificate assertion), the tenant gone (AADSTS90002), the consent
    /// revoked (app not in the tenant, AADSTS700016; Graph `403 Authorization_RequestDenied`),
    /// or Graph refusing the token. Timeouts, throttling and 5xx say nothing lasting.
    pub fn health(&self) -> Option<EntraHealth> {
        match self {
            EntraError::Token { error, codes, .. } => {
                let has = |c: u32| codes.contains(&c);
                if error == "invalid_client" || has(7000215) || has(7000222) || has(700027) {
                    Some(EntraHealth::AppCredentials)
                } else if has(90002) || error == "invalid_tenant" {
                    Some(EntraHealth::TenantGone)
                } else if error == "unauthorized_client" || has(700016) {
                    Some(EntraHealth::ConsentRevoked)
                } else {
                    None
                }
            }
            EntraError::Graph { status: 403, .. } => Some(EntraHealth::ConsentRevoked),
            EntraError::Graph { status: 401, .. } => Some(EntraHealth::TokenRefused),
            _ => None,
        }
    }
}
