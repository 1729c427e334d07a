//! The Customers page's round trip to Microsoft: the same three routes as the User source
//! page's, with the customers app and a customer at the end.

use super::service::{self, Proof};
use crate::domain::EntraTenantId;
use crate::entra::EntraClient;
use crate::server::state::AppState;
use crate::tenants::Tenant;
use crate::user_source::flows::{self, Round};
use crate::user_source::routes::{connecting, Connects};
use crate::user_source::service::SourceError;
use crate::users::service::User;
use axum::Router;

/// Customers: a customer's Entra tenant, consented to Gatehouse's customers app.
pub struct CustomersPage;

impl Connects for CustomersPage {
    const ROUND: &'static Round = &flows::CUSTOMER;
    const NOT_CONFIGURED: &'static str = "No customers app is configured for this Gatehouse: register a second Entra app with the permissions the README lists and set ENTRA_CUSTOMERS_CLIENT_ID and ENTRA_CUSTOMERS_CLIENT_SECRET.";

    fn client(state: &AppState) -> Option<&EntraClient> {
        state.customers_entra.as_ref()
    }

    async fn consented(
        state: &AppState,
        tenant: &Tenant,
        admin: &User,
        tid: EntraTenantId,
    ) -> Result<Option<String>, SourceError> {
        let entra =
            Self::client(state).ok_or_else(|| SourceError::Refused(Self::NOT_CONFIGURED.into()))?;
        match service::consented(&state.db, entra, tenant, admin, tid).await? {
            Proof::Proven { name } => Ok(Some(format!(
                "Connected {name}. Choose the domain its accounts are made in, the access window and who may request which roles."
            ))),
            Proof::Waiting => Ok(None),
        }
    }
}

pub fn router() -> Router<AppState> {
    connecting::<CustomersPage>()
}
