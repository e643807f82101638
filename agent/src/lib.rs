//! Load agent library: registers with a coordinator over gRPC, runs the batches of
//! WebSocket sessions it is assigned and streams per-second metric windows back.
//!
//! The `ws-agent` binary is a thin wrapper around [`run`]; the coordinator starts
//! in-process agents with the same function.

pub mod config;
pub mod error;
pub mod fuzzing;
pub mod limits;
pub mod link;
pub mod load;
pub mod metrics;
pub mod resources;
pub mod resume;
pub mod runner;
pub mod runs;
pub mod script;
pub mod session;
pub mod session_error;
pub mod target_tls;
pub mod wire;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use wsload_common::ClientTls;
use wsload_proto::pb::Hello;

pub use config::AgentOpts;
pub use error::AgentError;

use link::{Command, LinkCtx, LinkEnd};

/// Capacity of the outbound report queue (windows, acks) kept while the link is down.
const OUTBOX: usize = 4096;

/// Runs the agent until `cancel`, a coordinator Shutdown, or a permanent refusal.
pub async fn run(mut opts: AgentOpts, cancel: CancellationToken) -> Result<(), AgentError> {
    let token = wsload_common::read_secret("token", opts.token.as_deref(), opts.token_file.as_deref())
        .map_err(|e| AgentError::invalid_option("token", e))?;
    opts.token = token.map(|t| t.expose().to_string());
    if opts.token.is_none() && !opts.insecure {
        return Err(AgentError::InvalidOption {
            field: "token",
            reason: "give --token (or WSLOAD_TOKEN, or --token-file), or run without one with an explicit --insecure"
                .into(),
        });
    }
    if !(1.0..=100.0).contains(&opts.max_memory) {
        return Err(AgentError::InvalidOption {
            field: "max-memory",
            reason: "must be a percentage in 1..=100".into(),
        });
    }
    let tls = ClientTls::load(opts.tls_ca.as_deref(), opts.tls_domain.clone())
        .map_err(|e| AgentError::invalid_option("tls-ca", e))?;
    wsload_common::endpoint(&opts.coordinator, tls.as_ref())
        .map_err(|e| AgentError::invalid_option("coordinator", e))?;
    let target_tls =
        target_tls::connector(opts.target_ca.as_deref()).map_err(|e| AgentError::invalid_option("target-ca", e))?;
    let files = limits::raise_nofile();
    let source_ips: Arc<[std::net::IpAddr]> = opts.source_ips.clone().map(|s| s.0).unwrap_or_default().into();
    let max_sessions = limits::max_sessions(files, source_ips.len(), opts.max_sessions);
    if opts.max_sessions.is_some_and(|m| m > max_sessions) {
        tracing::warn!(requested = ?opts.max_sessions, max_sessions, "--max-sessions lowered to what the open-file limit and source ports allow");
    }
    let mut sampler = resources::Sampler::new(opts.max_memory, opts.max_rss_mb.map(|m| m * 1024 * 1024));
    let memory_bytes = sampler.total_memory();
    let agent_id = uuid::Uuid::new_v4().to_string();
    let name = opts.name.clone().unwrap_or_else(|| format!("agent-{}", &agent_id[..8]));
    tracing::info!(%name, nofile_soft = files.soft, nofile_hard = files.hard, max_sessions, "agent starting");

    let stop = cancel.child_token();
    let (res_tx, res_rx) = watch::channel(sampler.sample(0));
    let (open_tx, open_rx) = watch::channel(0u64);
    let sampler_stop = stop.clone();
    let sampler_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = sampler_stop.cancelled() => break,
                _ = tick.tick() => { let _ = res_tx.send(sampler.sample(*open_rx.borrow())); }
            }
        }
    });

    let (out_tx, mut out_rx) = mpsc::channel(OUTBOX);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let clock_offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let shared = runs::Shared {
        agent: name.as_str().into(),
        clock_offset: clock_offset.clone(),
        source_ips: source_ips.clone(),
        allow_targets: opts.allow_targets.clone(),
        deflate_pool: wsload_wscodec::DeflatePool::new(8),
        target_tls,
        connecting: Arc::new(tokio::sync::Semaphore::new(opts.max_connecting as usize)),
        grace: opts.grace,
        out: out_tx,
        resources: res_rx.clone(),
        open_sessions: open_tx,
    };
    let control = tokio::spawn(runs::control(cmd_rx, shared, stop.clone()));

    let hello = Hello {
        protocol_version: opts.protocol_version,
        agent_id,
        name,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        cores: std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1)),
        memory_bytes,
        max_sessions,
        source_ips: source_ips.iter().map(ToString::to_string).collect(),
        nofile_soft: files.soft,
        nofile_hard: files.hard,
        grace_ms: u64::try_from(opts.grace.as_millis()).unwrap_or(u64::MAX),
    };
    let mut unacked = resume::Unacked::default();
    let mut ctx = LinkCtx {
        clock_offset,
        url: &opts.coordinator,
        token: opts.token.clone(),
        tls,
        hello,
        heartbeat: opts.heartbeat,
        resources: res_rx,
        outbox: &mut out_rx,
        commands: cmd_tx.clone(),
        unacked: &mut unacked,
    };
    let mut backoff = Duration::from_millis(200);
    let result = loop {
        match link::connect_once(&mut ctx, &stop).await {
            Err(e) => break Err(e),
            Ok(LinkEnd::Cancelled) => break Ok(()),
            Ok(LinkEnd::Shutdown(reason)) => {
                tracing::info!(%reason, "coordinator asked this agent to shut down");
                break Ok(());
            }
            Ok(LinkEnd::Broken(why)) => {
                tracing::warn!("{why}; retrying in {backoff:?}");
                let _ = cmd_tx.send(Command::LinkDown).await;
                tokio::select! {
                    _ = stop.cancelled() => break Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    };
    stop.cancel();
    let _ = control.await;
    let _ = sampler_task.await;
    result
}
