//! The supervisor: keeps `--instances` instances alive on consecutive ports.
//!
//! With Redis every instance is a separate `ws-server worker` process, so a crash
//! cannot take the others down; a dead worker is restarted on the same port with
//! exponential backoff. The memory broker cannot cross processes, so with it the
//! instances are tasks of this process, restarted the same way if one panics.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::Backoff;
use crate::broker::{memory::MemoryBroker, Broker};
use crate::config::{BrokerKind, ServerOpts};
use crate::{instance, ServerError};

/// An instance that stayed up this long gets its restart backoff reset.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Environment variable that tells a worker to exit when its supervisor is gone.
pub const SUPERVISED_ENV: &str = "WS_SERVER_SUPERVISED";

fn restart_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
}

/// The ports of the instances.
pub fn ports(opts: &ServerOpts) -> Vec<u16> {
    (0..opts.instances).map(|i| opts.base_port + i).collect()
}

/// Binds `addr`, with an error that names it.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Usage(format!("cannot listen on {addr}: {e}")))
}

/// Runs the supervisor until `shutdown`. `worker_args` is the command line the
/// workers are started with (the supervisor's own options).
pub async fn run(opts: ServerOpts, worker_args: Vec<OsString>, shutdown: CancellationToken) -> Result<(), ServerError> {
    let opts = Arc::new(opts);
    // Bind (or, for worker processes, probe) every port first: a busy port is a
    // start-up error, not a restart loop.
    let mut listeners = Vec::new();
    for port in ports(&opts) {
        listeners.push(bind(SocketAddr::new(opts.bind, port)).await?);
    }
    tracing::info!(instances = opts.instances, first_port = opts.base_port, broker = ?opts.broker_kind(), "supervisor starting");
    let tasks = TaskTracker::new();
    match opts.broker_kind() {
        BrokerKind::Memory => {
            let broker = Broker::Memory(Arc::new(MemoryBroker::new()));
            let pool = opts.compression.then(|| yawc::DeflatePool::new(4));
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
            drop(listeners);
            let exe =
                std::env::current_exe().map_err(|e| ServerError::Failed(format!("cannot find own executable: {e}")))?;
            for (i, port) in ports(&opts).into_iter().enumerate() {
                let spec = WorkerSpec {
                    exe: exe.clone(),
                    args: worker_args.clone(),
                    port,
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

/// Hosts one in-process instance, restarting it on the same port if it panics.
async fn keep_task_alive(
    listener: TcpListener,
    index: u32,
    opts: Arc<ServerOpts>,
    broker: Broker,
    pool: Option<yawc::DeflatePool>,
    shutdown: CancellationToken,
) {
    let addr = listener.local_addr().ok();
    let mut listener = Some(listener);
    let mut backoff = restart_backoff();
    while !shutdown.is_cancelled() {
        let l = match listener.take() {
            Some(l) => l,
            None => match addr {
                Some(a) => match TcpListener::bind(a).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(%a, error = %e, "cannot rebind instance; retrying");
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                },
                None => return,
            },
        };
        let started = Instant::now();
        let task = tokio::spawn(instance::run(
            l,
            index,
            opts.clone(),
            broker.clone(),
            pool.clone(),
            shutdown.clone(),
        ));
        match task.await {
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
    port: u16,
    index: usize,
}

impl WorkerSpec {
    fn spawn(&self) -> std::io::Result<Child> {
        Command::new(&self.exe)
            .args(&self.args)
            .arg("worker")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--instance")
            .arg(self.index.to_string())
            .env(SUPERVISED_ENV, "1")
            .kill_on_drop(true)
            .spawn()
    }
}

/// Keeps one worker process alive on its port until `shutdown`, then stops it
/// with SIGTERM (SIGKILL after the grace period).
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
            "restarting worker on the same port"
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
