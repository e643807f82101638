//! One WebSocket session of a run: the built-in seed protocol ([`seed`]) or a
//! scripted scenario (`crate::script`), over the same connection code
//! ([`transport`]). Which one a session plays follows from its index (cohorts).

pub mod seed;
pub mod transport;

use std::net::IpAddr;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wsload_scenario::Program;
use wsload_wscodec::DeflatePool;

use crate::metrics::Event;

pub use crate::ws::Ws;
pub use seed::SeedSettings;
pub use transport::{Target, Targets};

/// What every session of a run shares.
#[derive(Debug)]
pub struct SessionCtx {
    /// The plan's target, resolved.
    pub target: Target,
    /// Other targets scripted connect steps name (allow list, resolution, TLS).
    pub targets: Arc<Targets>,
    /// The process's compressors when the plan asks for permessage-deflate (offered
    /// in every handshake, used when the server agrees).
    pub deflate: Option<DeflatePool>,
    /// Source addresses to bind before connecting (empty: let the OS choose).
    pub source_ips: Arc<[IpAddr]>,
    /// Bound on TCP connect + upgrade, and on the wait for the `session` event.
    pub connect_timeout: Duration,
    /// Bound on the silence while responses are outstanding.
    pub response_timeout: Duration,
    /// The built-in protocol's settings.
    pub seed: SeedSettings,
    /// The run's scenarios (a lone `seed` scenario when the plan has none).
    pub program: Arc<Program>,
    /// This agent's name (`{{agent}}`).
    pub agent: Arc<str>,
    /// Agent clock minus coordinator clock, kept fresh by the coordinator's ClockSync.
    pub clock_offset: Arc<AtomicI64>,
    /// Where outcomes go.
    pub events: mpsc::Sender<Event>,
    /// Handshakes in flight at once, shared by the agent's batches (`--max-connecting`).
    /// Thousands of simultaneous handshakes leave freed memory fragmented in the
    /// allocator, where it stays in RSS for the whole run.
    pub connecting: Arc<tokio::sync::Semaphore>,
}

/// Runs session number `index` of the run to its end and reports it.
pub async fn run_session(ctx: Arc<SessionCtx>, index: u64, cancel: CancellationToken) {
    let (scenario, rank) = ctx.program.scenario_of(index);
    if scenario.seed {
        seed::run(&ctx, index, &cancel).await;
    } else {
        // Boxed: a scenario's state lives for the session, the seed path stays small.
        Box::pin(crate::script::run(&ctx, scenario, index, rank, &cancel)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle session's task must stay small: its phases are boxed so only the hold
    /// state and the socket remain (the RSS budget is ~8 KB per session in total).
    #[test]
    fn session_task_stays_small() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let program = wsload_scenario::compile(&wsload_proto::pb::Plan {
            sessions: 1,
            ..Default::default()
        })
        .unwrap();
        let ctx = Arc::new(SessionCtx {
            target: Target::new(
                "127.0.0.1:1".parse().unwrap(),
                url::Url::parse("ws://127.0.0.1:1/").unwrap(),
                None,
            ),
            targets: Arc::new(Targets::for_tests()),
            deflate: None,
            source_ips: Vec::new().into(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            seed: SeedSettings {
                messages: 1,
                interval: Duration::ZERO,
                pacing: wsload_proto::pb::Pacing::Burst,
                hold: Duration::ZERO,
                payload_size: 0,
            },
            program: Arc::new(program),
            agent: "a".into(),
            clock_offset: Arc::default(),
            events: tx,
            connecting: Arc::new(tokio::sync::Semaphore::new(1)),
        });
        // A scripted session's task (boxed by `run_session`): its connect, close and
        // message handling are boxed too, so a listening session keeps the socket, the
        // script's state and one wait (it was 8 KB before they were).
        let cancel = CancellationToken::new();
        let (sc, _) = ctx.program.scenario_of(0);
        let script = crate::script::run(&ctx, sc, 0, 0, &cancel);
        assert!(
            std::mem::size_of_val(&script) <= 2048,
            "scripted session future is {} bytes",
            std::mem::size_of_val(&script)
        );
        drop(script);
        let f = run_session(ctx.clone(), 0, CancellationToken::new());
        assert!(
            std::mem::size_of_val(&f) <= 1280,
            "session future is {} bytes",
            std::mem::size_of_val(&f)
        );
    }
}
