//! One WebSocket instance: a bound listener, its clients, and the background tasks
//! (keep-alive, server-event relay and publisher, session cleanup).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::Admission;
use crate::broker::{Broker, SessionInfo};
use crate::cleanup::{self, Cleanup};
use crate::config::ServerOpts;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::ws::DeflatePool;
use crate::{events, http};

/// Everything a connection of this instance needs.
pub struct Instance {
    /// Server options.
    pub opts: Arc<ServerOpts>,
    /// 1-based index of this instance.
    pub index: u32,
    /// Port it listens on.
    pub port: u16,
    /// Host name, recorded in session hashes.
    pub host: String,
    /// Shared broker.
    pub broker: Broker,
    /// Connected clients.
    pub hub: Arc<Hub>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Closed sessions waiting for deletion.
    pub cleanup: Arc<Cleanup>,
    /// Sheds new upgrades while the broker is behind.
    pub admission: Arc<Admission>,
    /// The process's compressors when permessage-deflate is offered (`--compression`).
    pub deflate: Option<DeflatePool>,
    /// Cancelled when the instance shuts down; the accept loop then closes every connection.
    pub shutdown: CancellationToken,
}

impl Instance {
    /// The location fields of a new session hash.
    pub fn session_info(&self, created: &str) -> SessionInfo {
        SessionInfo {
            instance: self.index,
            host: self.host.clone(),
            port: self.port,
            created: created.to_owned(),
        }
    }
}

/// Host name of this machine, for session hashes and the publisher's lease holder.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Serves `listener` until `shutdown`, then closes every client with 1001, waits
/// for their close handshakes (bounded) and flushes the cleanup queue.
pub async fn run(
    listener: TcpListener,
    index: u32,
    opts: Arc<ServerOpts>,
    broker: Broker,
    pool: Option<DeflatePool>,
    shutdown: CancellationToken,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let metrics = Arc::new(Metrics::default());
    let instance = Arc::new(Instance {
        index,
        port,
        host: hostname(),
        hub: Arc::new(Hub::new(opts.max_backpressure, opts.fan_out_rate, metrics.clone())),
        cleanup: Arc::new(Cleanup::new(opts.cleanup_batch_size as usize, metrics.clone())),
        deflate: pool,
        admission: Arc::new(Admission::new(
            u64::from(opts.max_pending_upgrades),
            opts.shed_latency(),
        )),
        metrics,
        broker: broker.clone(),
        shutdown: shutdown.clone(),
        opts: opts.clone(),
    });
    let background = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(
        instance
            .cleanup
            .clone()
            .run(broker.clone(), opts.cleanup_interval, background.clone()),
    );
    tasks.spawn(cleanup::refresh_ttls(
        instance.hub.clone(),
        broker.clone(),
        opts.session_ttl,
        background.clone(),
    ));
    tasks.spawn(events::relay(instance.hub.clone(), broker.clone(), background.clone()));
    if !opts.server_event_interval.is_zero() {
        let holder = format!(
            "{}:{}:{}:{}",
            instance.host,
            port,
            std::process::id(),
            uuid::Uuid::new_v4()
        );
        tasks.spawn(events::publish_periodically(
            broker.clone(),
            holder,
            opts.server_event_interval,
            background.clone(),
        ));
    }
    tasks.spawn(keepalive(
        instance.hub.clone(),
        opts.ping_interval,
        opts.idle_timeout,
        background.clone(),
    ));

    tracing::info!(port, index, broker = ?opts.broker_kind(), "instance listening");
    let connections = http::accept_loop(listener, instance.clone()).await;

    let open = instance.hub.len();
    tracing::info!(port, open, "instance shutting down");
    connections.close();
    if tokio::time::timeout(opts.shutdown_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(port, "some connections did not finish their close handshake in time");
    }
    background.cancel();
    tasks.close();
    tasks.wait().await;
    instance.cleanup.flush(&broker).await;
    tracing::info!(
        port,
        cleaned = instance.metrics.sessions_cleaned.load(Ordering::Relaxed),
        "instance stopped"
    );
}

/// Pings every client each `interval` and closes those idle past `idle_timeout`.
async fn keepalive(hub: Arc<Hub>, interval: Duration, idle_timeout: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = hub.keepalive(idle_timeout) => {}
        }
    }
}
