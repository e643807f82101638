//! `ws-server worker`: one instance in its own process, as the supervisor starts it.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::broker::{memory::MemoryBroker, redis::RedisBroker, Broker};
use crate::config::{BrokerKind, ServerOpts, WorkerOpts};
use crate::supervisor::SUPERVISED_ENV;
use crate::{instance, listeners, ServerError};

/// The broker the options ask for.
pub fn broker(opts: &ServerOpts) -> Result<Broker, ServerError> {
    Ok(match opts.broker_kind() {
        BrokerKind::Memory => Broker::Memory(Arc::new(MemoryBroker::new())),
        BrokerKind::Redis => Broker::Redis(Arc::new(RedisBroker::new(opts.redis_url(), opts.redis_timeout)?)),
    })
}

/// The instance's socket: the one inherited (from the supervisor, which keeps it
/// across restarts), which must be on `--port`, or else `--bind`:`--port` bound here.
async fn listener(
    opts: &ServerOpts,
    worker: &WorkerOpts,
    mut inherited: Vec<StdListener>,
) -> Result<StdListener, ServerError> {
    match (inherited.pop(), inherited.len()) {
        (None, _) => listeners::bind(SocketAddr::new(opts.bind, worker.port)).await,
        (Some(l), 0) if listeners::port(&l) == worker.port => Ok(l),
        (Some(l), 0) => Err(ServerError::Usage(format!(
            "the inherited socket listens on port {}, not on --port {}",
            listeners::port(&l),
            worker.port
        ))),
        (Some(_), more) => Err(ServerError::Usage(format!(
            "a worker takes one listening socket; LISTEN_FDS passes {}",
            more + 1
        ))),
    }
}

/// Runs one instance until `shutdown` (or until the supervisor that started it is
/// gone), on its inherited socket if there is one.
pub async fn run(
    opts: ServerOpts,
    worker: WorkerOpts,
    inherited: Vec<StdListener>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let listener = listeners::to_tokio(listener(&opts, &worker, inherited).await?, opts.listen_backlog)
        .map_err(|e| ServerError::Failed(format!("listener on port {}: {e}", worker.port)))?;
    let broker = broker(&opts)?;
    if std::env::var_os(SUPERVISED_ENV).is_some() {
        tokio::spawn(exit_with_parent(shutdown.clone()));
    } else {
        listeners::log_backlog(opts.listen_backlog);
    }
    let pool = opts.compression.then(|| crate::ws::DeflatePool::new(4));
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
