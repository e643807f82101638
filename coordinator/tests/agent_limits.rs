//! Agent-side safety: the memory throttle really holds batches back (and says so),
//! and `--allow-target` refuses assignments for other targets.

mod common;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::*;
use tokio_util::sync::CancellationToken;
use wsload_agent::AgentOpts;
use wsload_proto::pb::RunState;
use wsload_testkit::*;

/// Runs `run_args` in-process against a test WebSocket server with one in-process agent
/// started with `agent_args` (and `--insecure`), the only agent of the run; returns the
/// exit code, the result and the server's counters. Both tests need this same setup and
/// differ only in the agent's limits and the plan.
async fn run_with_agent(
    name: &str,
    agent_args: &[&str],
    run_args: &[&str],
) -> (u8, wsload_coordinator::hub::Finished, Arc<Stats>) {
    let (addr, stats) = test_ws_server(Duration::from_millis(1)).await;
    let target = format!("ws://{addr}/");
    let out = out_dir(name);
    let agent = AgentOpts::parse_from(["ws-agent", "--insecure"].iter().chain(agent_args));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut opts = one_external_agent_opts(&target, &out, run_args);
    opts.agent_wait = Duration::from_secs(20);
    let cancel = CancellationToken::new();
    let agent = AgentOpts {
        coordinator: url,
        ..agent
    };
    let agent_task = tokio::spawn(wsload_agent::run(agent, cancel.clone()));
    let (code, f) = run_within(Duration::from_secs(60), listener, opts, cancel.clone()).await;
    cancel.cancel();
    let _ = agent_task.await;
    (code, f, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_throttle_holds_batches_back_and_reports_it() {
    // Any machine uses more than 1 % of its memory: the agent must never start a batch.
    let (code, f, stats) = run_with_agent(
        "throttle",
        &["--max-memory", "1", "--name", "tight"],
        &["--sessions", "10", "--max-duration", "3s"],
    )
    .await;
    assert_eq!(code, wsload_coordinator::exit::RUN_FAILED);
    assert_eq!(f.summary.run_state(), RunState::Aborted);
    assert_eq!(f.summary.state_reason, "max duration 3s reached");
    assert_eq!(f.report.totals.sessions_opened, 0);
    assert_eq!(stats.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    let throttled = f.report.agents[0].throttled;
    assert!(throttled >= Duration::from_millis(1500), "throttled {throttled:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_target_refuses_other_targets() {
    let (code, f, stats) = run_with_agent(
        "allow",
        &["--allow-target", "10.0.0.0/8", "--name", "picky"],
        &["--sessions", "5"],
    )
    .await;
    assert_eq!(code, wsload_coordinator::exit::RUN_FAILED);
    assert_eq!(f.summary.run_state(), RunState::Failed);
    assert!(
        f.summary.state_reason.contains("allow-target"),
        "{}",
        f.summary.state_reason
    );
    assert_eq!(stats.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// Agents that cannot hold what the plan holds at once: refused before anything
/// connects (exit 2), with the number the plan needs, what each agent holds and the
/// flags to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_over_capacity_are_refused_before_connecting() {
    let (code, f, stats) = run_with_agent(
        "overcap",
        &["--max-sessions", "10", "--name", "small"],
        &["--sessions", "20", "--batch-size", "5", "--hold-time", "1m"],
    )
    .await;
    assert_eq!(code, wsload_coordinator::exit::BAD_INPUT);
    assert_eq!(f.summary.run_state(), RunState::Failed);
    assert_eq!(
        f.summary.state_reason,
        "over capacity: the plan holds up to 20 sessions at once, but its agents can hold 10 \
         (small 10); an agent holds the least of its --max-sessions, its open-file limit less \
         256 and the ephemeral ports of its --source-ips addresses: add agents or source \
         addresses, or pass --allow-over-capacity to run anyway"
    );
    assert_eq!(stats.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// More sessions than fit under the RSS cap at once (a `ws-agent` process at rest
/// holds ~14-16 MiB in a debug build, a session ~6 KB (measured: 900 open took it
/// from 14 to 20 MiB): ~500-800 fit under 19 MiB, 3 batches of 400 overlap;
/// batches are a second apart so the throttle sees the cap reached before they have
/// all started):
/// the agent holds batches back while the open sessions fill the cap and starts them
/// again as those sessions close (their memory stays in RSS, but new sessions reuse
/// it), so the run completes in waves instead of staying throttled until
/// --max-duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tight_rss_cap_runs_in_waves_instead_of_stalling() {
    const SESSIONS: u64 = 2_000;
    let (addr, stats) = test_ws_server(Duration::from_millis(1)).await;
    let target = format!("ws://{addr}/");
    let out = out_dir("throttle-waves");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _agent = agent_process(&url, "waves", &["--insecure", "--max-rss-mb", "19"]);
    let extra = [
        "--sessions",
        "2000",
        "--batch-size",
        "400",
        "--batch-interval",
        "1s",
        "--messages-per-session",
        "1",
        // Held 3 s with batches a second apart: batches overlap, so the open sessions
        // (hence the throttle's estimate) pass the cap whatever the machine's speed.
        "--hold-time",
        "3s",
        "--max-duration",
        "90s",
        // A debug agent busy opening sessions on a loaded box can miss heartbeats.
        "--heartbeat-timeout",
        "30s",
    ];
    let mut opts = one_external_agent_opts(&target, &out, &extra);
    opts.agent_wait = Duration::from_secs(20);
    let (code, f) = run_within(Duration::from_secs(100), listener, opts, CancellationToken::new()).await;
    let rss: Vec<u64> = f.report.agents[0].memory.iter().map(|m| m.rss_bytes >> 20).collect();
    let active: Vec<u64> = f.report.windows.iter().map(|w| w.active_sessions).collect();
    assert_eq!(
        f.summary.run_state(),
        RunState::Completed,
        "{}: RSS {rss:?} MiB, open {active:?}",
        f.summary.state_reason
    );
    assert_eq!(code, 0);
    assert_eq!(f.summary.sessions_completed, SESSIONS);
    assert_eq!(f.report.totals.sessions_opened, SESSIONS);
    assert_eq!(f.report.totals.sessions_failed(), 0);
    assert_eq!(
        stats.accepted.load(std::sync::atomic::Ordering::SeqCst) as u64,
        SESSIONS
    );
    let throttled = f.report.agents[0].throttled;
    assert!(
        throttled > Duration::ZERO,
        "the cap was reached: throttled {throttled:?}, RSS {rss:?} MiB, open {active:?}"
    );
    // Waves: never all sessions open at once.
    let most_open = active.iter().max().copied().unwrap_or(0);
    assert!(most_open < SESSIONS, "{most_open} sessions open at once");
    eprintln!("throttled {throttled:?}, RSS {rss:?} MiB, open {active:?}");
}
