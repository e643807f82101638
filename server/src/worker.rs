//! `ws-server worker`: one instance in its own process, as the supervisor starts it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::broker::{memory::MemoryBroker, redis::RedisBroker, Broker};
use crate::config::{BrokerKind, ServerOpts, WorkerOpts};
use crate::supervisor::{self, SUPERVISED_ENV};
use crate::{instance, ServerError};

/// The broker the options ask for.
pub fn broker(opts: &ServerOpts) -> Result<Broker, ServerError> {
    Ok(match opts.broker_kind() {
        BrokerKind::Memory => Broker::Memory(Arc::new(MemoryBroker::new())),
        BrokerKind::Redis => Broker::Redis(Arc::new(
            RedisBroker::new(opts.redis_url(), opts.redis_timeout).map_err(ServerError::Usage)?,
        )),
    })
}

/// Runs one instance until `shutdown` (or until the supervisor that started it is gone).
pub async fn run(opts: ServerOpts, worker: WorkerOpts, shutdown: CancellationToken) -> Result<(), ServerError> {
    let listener = supervisor::bind(SocketAddr::new(opts.bind, worker.port)).await?;
    let broker = broker(&opts)?;
    if std::env::var_os(SUPERVISED_ENV).is_some() {
        tokio::spawn(exit_with_parent(shutdown.clone()));
    }
    let pool = opts.compression.then(|| yawc::DeflatePool::new(4));
    instance::run(listener, worker.instance, Arc::new(opts), broker, pool, shutdown).await;
    Ok(())
}

/// A worker whose supervisor died (it was re-parented) shuts itself down, so no
/// orphan keeps a port that a new supervisor needs.
async fn exit_with_parent(shutdown: CancellationToken) {
    let parent = nix::unistd::getppid();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if nix::unistd::getppid() != parent {
            tracing::warn!("supervisor is gone; shutting down");
            shutdown.cancel();
            return;
        }
    }
}
