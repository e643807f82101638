//! Agent-side safety: the memory throttle really holds batches back (and says so),
//! and `--allow-target` refuses assignments for other targets.

mod common;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::*;
use tokio_util::sync::CancellationToken;
use wsload_agent::AgentOpts;

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
    let mut args = vec![
        "--target",
        &target,
        "--agents",
        "1",
        "--local-agents",
        "0",
        "--insecure",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(run_args);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut opts = run_opts(&args);
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
    assert!(f.summary.state.contains("max duration"), "{}", f.summary.state);
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
    assert!(f.summary.state.contains("allow-target"), "{}", f.summary.state);
    assert_eq!(stats.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}
