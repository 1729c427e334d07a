//! The Entra emulator: Microsoft's identity platform (v2.0) and Graph v1.0, as Gatehouse uses
//! them, in memory and offline. One router serves both, so `ENTRA_AUTHORITY_URL` and
//! `GRAPH_BASE_URL` point at the same address.
//!
//! Its endpoints, control API, seed file format, the behaviours copied from Microsoft (with
//! their sources) and the known differences are in this crate's README.md.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use gatehouse_emulator::{Emulator, Seed};
//! let emulator = Emulator::new(Seed::contoso())?;
//! let addr = emulator.spawn("127.0.0.1:0".parse()?).await?;
//! let app = emulator.demo_app().expect("Contoso has the demo app");
//! println!("authority and Graph at http://{addr}, client id {}", app.client_id);
//! # Ok(())
//! # }
//! ```

mod caller;
mod control;
mod errors;
mod faults;
mod graph;
mod graph_groups;
mod graph_roles;
mod graph_users_write;
mod group_delta;
mod html;
mod identity;
mod ids;
mod keys;
mod membership;
mod model;
mod portal;
mod roles;
mod secrets;
mod seed;
mod state;
mod subscriptions;
mod tap;
pub mod testing;

/// Public because Gatehouse's property tests check that every filter its Graph client writes
/// parses here and finds its user: the client and this parser must agree on OData.
pub mod filter;

pub use model::{ModelError, User};
pub use seed::{
    Seed, SeedError, CONTOSO_TENANT_ID, DEMO_CLIENT_ID, DEMO_CUSTOMERS_CLIENT_ID,
    FABRIKAM_TENANT_ID, NORTHWIND_TENANT_ID,
};
pub use state::{AppCredentials, Emulator};

use anyhow::Context;
use axum::Router;
use std::net::SocketAddr;

impl Emulator {
    /// The router serving the identity platform, Graph and the control API.
    pub(crate) fn router(&self) -> Router {
        let observed = Router::new()
            .merge(identity::routes())
            .merge(graph::routes())
            .merge(graph_users_write::routes())
            .merge(graph_groups::routes())
            .merge(graph_roles::routes())
            .merge(tap::routes())
            .merge(portal::routes())
            .merge(group_delta::routes())
            .merge(subscriptions::routes())
            .route_layer(axum::middleware::from_fn_with_state(
                self.faults().clone(),
                faults::observe,
            ));
        observed
            .merge(control::routes(self.clone()))
            .with_state(self.clone())
    }

    /// Binds `listen`, takes `http://{bound address}` as its base URL (unless one was set) and
    /// serves in a background task. Returns the bound address.
    pub async fn spawn(&self, listen: SocketAddr) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("bind the emulator to {listen}"))?;
        let addr = listener.local_addr()?;
        self.default_base_url(addr);
        let router = self.router();
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!("the Entra emulator stopped: {err}");
            }
        });
        Ok(addr)
    }

    /// Like [`Emulator::spawn`], but the background server stops when `shutdown` completes;
    /// the handle resolves once it has stopped (for a `select!` beside the main server).
    pub async fn spawn_until(
        &self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("bind the emulator to {listen}"))?;
        let addr = listener.local_addr()?;
        self.default_base_url(addr);
        let router = self.router();
        let handle = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("the Entra emulator stopped: {err}");
            }
        });
        Ok((addr, handle))
    }

    /// Serves on `listen` until `shutdown` completes.
    pub async fn serve(
        &self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("bind the emulator to {listen}"))?;
        let addr = listener.local_addr()?;
        self.default_base_url(addr);
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .context("serve the Entra emulator")
    }
}
