//! Run control: turns coordinator commands into at most one active run, and stops
//! all load when the coordinator has been unreachable for the grace period.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use wsload_common::time::now_unix_micros;
use wsload_proto::defaults;
use wsload_proto::pb::{
    agent_message::Body, batch_ack::State, AgentMessage, Assign, BatchAck, Pacing, ResourceSample, RunFinished,
};
use wsload_wscodec::DeflatePool;

use crate::link::Command;
use crate::metrics::MetricNames;
use crate::runner::{self, RunInput, RunLinks};
use crate::session::transport::{resolve_allowed, target_host};
use crate::session::{SeedSettings, SessionCtx, Target, Targets};
use crate::session_error::SessionError;

/// What the run control shares with every run.
pub struct Shared {
    /// Source addresses for sockets.
    pub source_ips: Arc<[std::net::IpAddr]>,
    /// `--allow-target` rules.
    pub allow_targets: Vec<String>,
    /// ONE deflate pool per process (a pool per connection costs ~370 KB each).
    pub deflate_pool: DeflatePool,
    /// TLS for `wss://` targets (system roots plus `--target-ca`).
    pub target_tls: tokio_rustls::TlsConnector,
    /// Bounds the handshakes in flight across all batches (`--max-connecting`).
    pub connecting: Arc<tokio::sync::Semaphore>,
    /// Grace period without coordinator before load stops.
    pub grace: Duration,
    /// Outbound reports.
    pub out: mpsc::Sender<AgentMessage>,
    /// Latest resource sample.
    pub resources: watch::Receiver<ResourceSample>,
    /// Open sessions gauge.
    pub open_sessions: watch::Sender<u64>,
    /// This agent's name (`{{agent}}` in scenarios).
    pub agent: Arc<str>,
    /// Agent clock minus coordinator clock, from the coordinator's ClockSync.
    pub clock_offset: Arc<std::sync::atomic::AtomicI64>,
}

struct Active {
    run_id: String,
    cancel: CancellationToken,
    start: Option<oneshot::Sender<Instant>>,
    more: mpsc::Sender<Vec<wsload_proto::pb::Batch>>,
    handle: JoinHandle<()>,
}

async fn refuse(shared: &Shared, a: &Assign, why: String) {
    tracing::warn!(run = %a.run_id, "refusing assignment: {why}");
    for b in &a.batches {
        let ack = BatchAck {
            run_id: a.run_id.clone(),
            batch_id: b.batch_id,
            state: State::Refused as i32,
            detail: why.clone(),
        };
        let _ = shared
            .out
            .send(AgentMessage {
                body: Some(Body::BatchAck(ack)),
                ..Default::default()
            })
            .await;
    }
    let fin = RunFinished {
        run_id: a.run_id.clone(),
    };
    let _ = shared
        .out
        .send(AgentMessage {
            body: Some(Body::RunFinished(fin)),
            ..Default::default()
        })
        .await;
}

async fn begin(shared: &Shared, a: Assign) -> Option<Active> {
    let Some(plan) = a.plan.clone() else {
        refuse(shared, &a, "assignment without plan".into()).await;
        return None;
    };
    let url = match url::Url::parse(&plan.target) {
        Ok(u) if u.scheme() == "ws" || u.scheme() == "wss" => u,
        Ok(u) => {
            refuse(
                shared,
                &a,
                format!("unsupported scheme {} (ws:// or wss://)", u.scheme()),
            )
            .await;
            return None;
        }
        Err(e) => {
            refuse(
                shared,
                &a,
                format!("bad target {}: {e}", wsload_common::redact_url(&plan.target)),
            )
            .await;
            return None;
        }
    };
    let host = target_host(&url);
    // ws:// and wss:// have known default ports (80, 443).
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = match resolve_allowed(&shared.allow_targets, &host, port).await {
        Ok(addr) => addr,
        Err(e) => {
            let why = if e == SessionError::TargetNotAllowed {
                format!("target {host} (by name or address) is not in this agent's --allow-target list")
            } else {
                format!("cannot resolve {host}")
            };
            refuse(shared, &a, why).await;
            return None;
        }
    };
    let tls = if url.scheme() == "wss" {
        match rustls_pki_types::ServerName::try_from(host.clone()) {
            Ok(name) => Some(crate::target_tls::TargetTls {
                connector: shared.target_tls.clone(),
                name,
            }),
            Err(e) => {
                refuse(shared, &a, format!("{host} is not a name TLS can verify: {e}")).await;
                return None;
            }
        }
    } else {
        None
    };
    // The same compilation the coordinator validated the plan with.
    let program = match wsload_scenario::compile(&plan) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            refuse(shared, &a, format!("invalid scenario: {e}")).await;
            return None;
        }
    };
    let names = Arc::new(MetricNames::of(&program));
    let target = Target::new(addr, url, tls);
    let targets = Arc::new(Targets::new(shared.allow_targets.clone(), shared.target_tls.clone()));
    let interval = Duration::from_millis(plan.message_interval_ms);
    let seed = SeedSettings {
        messages: plan.messages_per_session.unwrap_or(defaults::MESSAGES_PER_SESSION),
        interval,
        pacing: SeedSettings::resolve_pacing(Pacing::try_from(plan.pacing).unwrap_or(Pacing::Unspecified), interval),
        hold: Duration::from_millis(plan.hold_ms),
        payload_size: usize::try_from(plan.payload_size).unwrap_or(usize::MAX),
    };
    let (agent, clock_offset) = (shared.agent.clone(), shared.clock_offset.clone());
    let deflate = plan.compression.then(|| shared.deflate_pool.clone());
    let source_ips = shared.source_ips.clone();
    let ms = Duration::from_millis;
    // A timeout left unset on the wire (0) takes the plan default.
    let timeout = |v: u64, default: Duration| if v == 0 { default } else { ms(v) };
    let connect_timeout = timeout(plan.connect_timeout_ms, defaults::CONNECT_TIMEOUT);
    let response_timeout = timeout(plan.response_timeout_ms, defaults::RESPONSE_TIMEOUT);
    let connecting = shared.connecting.clone();
    let template = move |events| SessionCtx {
        target: target.clone(),
        targets: targets.clone(),
        deflate: deflate.clone(),
        source_ips: source_ips.clone(),
        connect_timeout,
        response_timeout,
        seed,
        program: program.clone(),
        agent: agent.clone(),
        clock_offset: clock_offset.clone(),
        events,
        connecting: connecting.clone(),
    };
    let (start_tx, start_rx) = oneshot::channel();
    let (more_tx, more_rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let input = RunInput {
        run_id: a.run_id.clone(),
        batches: a.batches,
        max_active_batches: usize::try_from(match plan.max_active_batches {
            0 => defaults::MAX_ACTIVE_BATCHES,
            n => n,
        })
        .unwrap_or(usize::MAX),
        session: Box::new(template),
        names,
    };
    let links = RunLinks {
        start: start_rx,
        more: more_rx,
        out: shared.out.clone(),
        resources: shared.resources.clone(),
        open_sessions: shared.open_sessions.clone(),
    };
    tracing::info!(run = %a.run_id, target = %wsload_common::redact_url(&plan.target), "assignment accepted");
    let handle = tokio::spawn(runner::run(input, links, cancel.clone()));
    Some(Active {
        run_id: a.run_id,
        cancel,
        start: Some(start_tx),
        more: more_tx,
        handle,
    })
}

/// How long an assignment for another run waits for the current run's task to end
/// (it has sent RunFinished and is returning) before it is refused as busy.
const FINISHING: Duration = Duration::from_secs(1);

/// Processes commands until `cancel`; then stops the active run and waits for it.
pub async fn control(mut commands: mpsc::Receiver<Command>, shared: Shared, cancel: CancellationToken) {
    let mut active: Option<Active> = None;
    let mut grace_deadline: Option<Instant> = None;
    loop {
        if active.as_ref().is_some_and(|a| a.handle.is_finished()) {
            active = None;
            grace_deadline = None;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = sleep_until(grace_deadline.unwrap_or_else(Instant::now)), if grace_deadline.is_some() => {
                grace_deadline = None;
                if let Some(a) = &active {
                    tracing::warn!(run = %a.run_id, grace = ?shared.grace, "coordinator unreachable for the grace period: stopping all load");
                    a.cancel.cancel();
                }
            }
            cmd = commands.recv() => match cmd {
                None => break,
                Some(Command::Assign(a)) => {
                    // A run stopped (e.g. written off by a restarted coordinator) is
                    // still closing its sessions: the next run waits for that.
                    if let Some(old) = active.take_if(|c| c.cancel.is_cancelled() && c.run_id != a.run_id) {
                        tracing::info!(run = %old.run_id, next = %a.run_id, "waiting for the stopped run to close its sessions");
                        let _ = old.handle.await;
                        grace_deadline = None;
                    }
                    // The previous run's task sends RunFinished as its last act: the
                    // coordinator may assign the next run before this loop saw it end.
                    if let Some(cur) = active.as_mut().filter(|c| c.run_id != a.run_id) {
                        let _ = tokio::time::timeout(FINISHING, &mut cur.handle).await;
                        if cur.handle.is_finished() {
                            active = None;
                            grace_deadline = None;
                        }
                    }
                    match &active {
                        Some(cur) if cur.run_id == a.run_id => { let _ = cur.more.send(a.batches).await; }
                        Some(cur) => refuse(&shared, &a, format!("busy with run {}", cur.run_id)).await,
                        None => active = begin(&shared, *a).await,
                    }
                },
                Some(Command::Start(s)) => if let Some(cur) = active.as_mut().filter(|c| c.run_id == s.run_id) {
                    let wait = Duration::from_micros(u64::try_from(s.start_unix_micros - now_unix_micros()).unwrap_or(0));
                    if let Some(tx) = cur.start.take() { let _ = tx.send(Instant::now() + wait); }
                },
                Some(Command::Stop(reason)) => if let Some(cur) = &active {
                    tracing::info!(run = %cur.run_id, %reason, "run stopped by coordinator");
                    cur.cancel.cancel();
                },
                Some(Command::LinkDown) => if active.is_some() && grace_deadline.is_none() {
                    grace_deadline = Some(Instant::now() + shared.grace);
                },
                Some(Command::LinkUp { resumed }) => if let (Some(cur), Some(_)) = (&active, grace_deadline.take()) {
                    if cur.run_id == resumed {
                        // Back within the grace period: the coordinator kept the run's place.
                        tracing::info!(run = %cur.run_id, "link re-established within the grace period: the run goes on");
                    } else {
                        // The coordinator wrote this agent's run off when the link broke.
                        tracing::warn!(run = %cur.run_id, "link re-established: the coordinator has written off this run, stopping it");
                        cur.cancel.cancel();
                    }
                },
            }
        }
    }
    if let Some(a) = active {
        a.cancel.cancel();
        let _ = a.handle.await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn target_hosts_are_bare() {
        let host = |u: &str| super::target_host(&url::Url::parse(u).unwrap());
        assert_eq!(host("ws://[::1]:9001/ws"), "::1");
        assert_eq!(host("wss://127.0.0.1/ws"), "127.0.0.1");
        assert_eq!(host("wss://ws.example.com/ws"), "ws.example.com");
        assert!(rustls_pki_types::ServerName::try_from(host("wss://[::1]/ws")).is_ok());
    }
}
