//! The supervisor: keeps `--instances` instances alive, each on its own listening
//! socket, which the supervisor holds for its whole life (see [`crate::listeners`]).
//!
//! With Redis every instance is a separate `ws-server worker` process, so a crash
//! cannot take the others down; a dead worker is restarted with exponential backoff
//! and handed the same socket, so clients connecting meanwhile wait in its backlog.
//! The memory broker cannot cross processes, so with it the instances are tasks of
//! this process, restarted the same way if one panics.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::Backoff;
use crate::broker::{memory::MemoryBroker, Broker};
use crate::config::{BrokerKind, ServerOpts};
use crate::{instance, listeners, ServerError};

/// An instance that stayed up this long gets its restart backoff reset.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Environment variable that tells a worker to exit when its supervisor is gone.
pub const SUPERVISED_ENV: &str = "WS_SERVER_SUPERVISED";

fn restart_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
}

/// The ports of the instances when the supervisor binds them itself.
pub fn ports(opts: &ServerOpts) -> Vec<u16> {
    (0..opts.instances).map(|i| opts.base_port + i).collect()
}

/// One listening socket per instance: the `inherited` ones (exactly `--instances` of
/// them), or, when there are none, bound on `--bind`:`--base-port`.. (a busy port is
/// a start-up error, not a restart loop).
async fn instance_listeners(opts: &ServerOpts, inherited: Vec<StdListener>) -> Result<Vec<StdListener>, ServerError> {
    if inherited.is_empty() {
        let mut bound = Vec::new();
        for port in ports(opts) {
            bound.push(listeners::bind(SocketAddr::new(opts.bind, port)).await?);
        }
        return Ok(bound);
    }
    if inherited.len() != usize::from(opts.instances) {
        return Err(ServerError::Usage(format!(
            "LISTEN_FDS passes {} listening socket(s) but --instances is {}",
            inherited.len(),
            opts.instances
        )));
    }
    Ok(inherited)
}

/// Runs the supervisor until `shutdown`. `worker_args` is the command line the
/// workers are started with (the supervisor's own options); `inherited` are the
/// listening sockets passed by the parent process, if any.
pub async fn run(
    opts: ServerOpts,
    worker_args: Vec<OsString>,
    inherited: Vec<StdListener>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let opts = Arc::new(opts);
    let inherited_count = inherited.len();
    let listeners = instance_listeners(&opts, inherited).await?;
    let ports: Vec<u16> = listeners.iter().map(listeners::port).collect();
    tracing::info!(instances = opts.instances, ?ports, inherited = inherited_count, broker = ?opts.broker_kind(), "supervisor starting");
    listeners::log_backlog(opts.listen_backlog);
    let tasks = TaskTracker::new();
    match opts.broker_kind() {
        BrokerKind::Memory => {
            let broker = Broker::Memory(Arc::new(MemoryBroker::new()));
            let pool = opts.compression.then(|| crate::ws::DeflatePool::new(4));
            for (i, listener) in listeners.into_iter().enumerate() {
                let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
                tasks.spawn(keep_task_alive(
                    listener,
                    index,
                    opts.clone(),
                    broker.clone(),
                    pool.clone(),
                    shutdown.clone(),
                ));
            }
        }
        BrokerKind::Redis => {
            let exe =
                std::env::current_exe().map_err(|e| ServerError::Failed(format!("cannot find own executable: {e}")))?;
            for (i, listener) in listeners.into_iter().enumerate() {
                let spec = WorkerSpec {
                    exe: exe.clone(),
                    args: worker_args.clone(),
                    port: listeners::port(&listener),
                    listener,
                    index: i + 1,
                };
                tasks.spawn(keep_process_alive(spec, opts.shutdown_timeout, shutdown.clone()));
            }
        }
    }
    tasks.close();
    tasks.wait().await;
    tracing::info!("supervisor stopped");
    Ok(())
}

/// Hosts one in-process instance on `listener`, restarting it on the same socket if
/// it panics. The socket is let go as soon as shutdown begins, so that new clients
/// are refused rather than queued behind an instance that no longer accepts.
async fn keep_task_alive(
    listener: StdListener,
    index: u32,
    opts: Arc<ServerOpts>,
    broker: Broker,
    pool: Option<crate::ws::DeflatePool>,
    shutdown: CancellationToken,
) {
    let port = listeners::port(&listener);
    let mut listener = Some(listener);
    let mut backoff = restart_backoff();
    while let Some(held) = listener.as_ref() {
        let l = match held
            .try_clone()
            .and_then(|l| listeners::to_tokio(l, opts.listen_backlog))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(port, error = %e, "cannot use the instance's socket; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => continue,
                }
            }
        };
        let started = Instant::now();
        let mut task = tokio::spawn(instance::run(
            l,
            index,
            opts.clone(),
            broker.clone(),
            pool.clone(),
            shutdown.clone(),
        ));
        let result = tokio::select! {
            r = &mut task => r,
            _ = shutdown.cancelled() => {
                listener = None;
                task.await
            }
        };
        match result {
            Ok(()) => tracing::info!(index, "instance exited"),
            Err(e) => tracing::error!(index, error = %e, "instance crashed"),
        }
        if shutdown.is_cancelled() {
            return;
        }
        if started.elapsed() > STABLE_AFTER {
            backoff.reset();
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// How to start one worker process.
struct WorkerSpec {
    exe: std::path::PathBuf,
    args: Vec<OsString>,
    /// The instance's socket, handed to every worker started for it.
    listener: StdListener,
    /// Its port; the worker's `--port` says it too (and checks it).
    port: u16,
    index: usize,
}

impl WorkerSpec {
    fn spawn(&self) -> std::io::Result<Child> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args)
            .arg("worker")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--instance")
            .arg(self.index.to_string())
            .env(SUPERVISED_ENV, "1")
            .kill_on_drop(true);
        listeners::pass_to(&mut cmd, &self.listener)?;
        cmd.spawn()
    }
}

/// Keeps one worker process alive on its socket until `shutdown`, then lets the
/// socket go and stops the worker with SIGTERM (SIGKILL after the grace period).
async fn keep_process_alive(spec: WorkerSpec, grace: Duration, shutdown: CancellationToken) {
    let mut backoff = restart_backoff();
    let port = spec.port;
    while !shutdown.is_cancelled() {
        let started = Instant::now();
        let mut child = match spec.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(port, error = %e, "cannot start worker");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        let pid = child.id();
        tracing::info!(port, pid, "worker started");
        let status = tokio::select! {
            s = child.wait() => s,
            _ = shutdown.cancelled() => {
                // New clients are refused from now on, not queued for a worker that
                // is shutting down.
                drop(spec);
                stop_child(&mut child, port, grace).await;
                return;
            }
        };
        log_exit(port, pid, status);
        if started.elapsed() > STABLE_AFTER {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::info!(
            port,
            delay_ms = delay.as_millis() as u64,
            "restarting worker on the same socket"
        );
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn log_exit(port: u16, pid: Option<u32>, status: std::io::Result<ExitStatus>) {
    match status {
        Ok(s) if s.success() => tracing::warn!(port, pid, status = %s, "worker exited"),
        Ok(s) => tracing::error!(port, pid, status = %s, "worker died"),
        Err(e) => tracing::error!(port, pid, error = %e, "cannot wait for worker"),
    }
}

async fn stop_child(child: &mut Child, port: u16, grace: Duration) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    match tokio::time::timeout(grace + Duration::from_secs(5), child.wait()).await {
        Ok(Ok(status)) => tracing::info!(port, %status, "worker stopped"),
        Ok(Err(e)) => tracing::error!(port, error = %e, "cannot wait for worker"),
        Err(_) => {
            tracing::warn!(port, "worker ignored SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }
}
