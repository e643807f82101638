//! The coordinator's web dashboard (`run --dashboard ADDR`, always on `serve`): a live
//! page of the run fed by server-sent events from the hub's merged per-second windows,
//! the run list and a stop button on `serve`, and the run as Prometheus text on
//! `/metrics`. Every asset is embedded in the binary: no CDN, works offline.
//!
//! - [`feed`]: what the hub publishes, bounded history and broadcast.
//! - [`routes`]: the HTTP routes; [`sse`]: the event stream; [`metrics`]: `/metrics`.
//! - [`auth`]: loopback needs nothing, any other address the control token (header or
//!   a login form setting an HttpOnly cookie; never in a URL).
//! - [`assets`]: the page, its script and style.

pub mod assets;
pub mod auth;
pub mod feed;
pub mod metrics;
pub mod routes;
pub mod sse;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::hub::Hub;
pub use feed::Feed;

/// Where `serve` puts its dashboard unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7780";

/// Why the dashboard cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// A non-loopback address without a control token.
    #[error("--dashboard {0} is not a loopback address: it needs the control token (--token), not --insecure")]
    NeedsToken(SocketAddr),
    /// The address cannot be bound.
    #[error("cannot listen on {addr} for the dashboard: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Everything the routes need.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The live data.
    pub feed: Feed,
    /// The hub (stop runs).
    pub hub: Hub,
    /// Who may look.
    pub auth: auth::DashAuth,
    /// Closes the event streams at shutdown.
    pub cancel: CancellationToken,
}

/// A bound dashboard listener with its access policy.
#[derive(Debug)]
pub struct Bound {
    /// The listener.
    pub listener: TcpListener,
    /// The policy derived from its address.
    pub auth: auth::DashAuth,
}

impl Bound {
    /// The address it listens on.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The URL to print.
    pub fn url(&self) -> String {
        match self.addr() {
            Some(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}/", a.port()),
            Some(a) => format!("http://{a}/"),
            None => "(unknown)".into(),
        }
    }
}

/// Binds `addr`; a non-loopback address requires `control` to hold a token.
pub async fn bind(addr: SocketAddr, control: &Auth) -> Result<Bound, DashboardError> {
    let auth = auth::DashAuth::for_addr(addr, control)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DashboardError::Bind { addr, source })?;
    Ok(Bound { listener, auth })
}

/// Serves the dashboard on `bound` until `cancel`.
pub async fn serve(bound: Bound, feed: Feed, hub: Hub, cancel: CancellationToken) -> std::io::Result<()> {
    let state = Dashboard {
        feed,
        hub,
        auth: bound.auth,
        cancel: cancel.clone(),
    };
    axum::serve(bound.listener, routes::router(state))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}
