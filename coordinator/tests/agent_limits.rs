//! Agent-side safety: the memory throttle really holds batches back (and says so),
//! and `--allow-target` refuses assignments for other targets.

mod common;

use std::time::Duration;

use clap::Parser;
use common::*;
use tokio_util::sync::CancellationToken;
use wsload_agent::AgentOpts;

async fn run_with_agent(agent: AgentOpts, args: &[&str]) -> (u8, wsload_coordinator::hub::Finished) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut opts = run_opts(args);
    opts.agent_wait = Duration::from_secs(20);
    let cancel = CancellationToken::new();
    let agent = AgentOpts {
        coordinator: url,
        ..agent
    };
    let agent_task = tokio::spawn(wsload_agent::run(agent, cancel.clone()));
    let res = tokio::time::timeout(
        Duration::from_secs(60),
        wsload_coordinator::cli::run::run_on(listener, opts, cancel.clone()),
    )
    .await
    .expect("no hang")
    .expect("run ok");
    cancel.cancel();
    let _ = agent_task.await;
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_throttle_holds_batches_back_and_reports_it() {
    let (addr, stats) = test_ws_server(Duration::from_millis(1)).await;
    let target = format!("ws://{addr}/");
    let out = out_dir("throttle");
    // Any machine uses more than 1 % of its memory: the agent must never start a batch.
    let agent = AgentOpts::parse_from(["ws-agent", "--insecure", "--max-memory", "1", "--name", "tight"]);
    let (code, f) = run_with_agent(
        agent,
        &[
            "--target",
            &target,
            "--sessions",
            "10",
            "--max-duration",
            "3s",
            "--agents",
            "1",
            "--local-agents",
            "0",
            "--insecure",
            "--out",
            out.to_str().unwrap(),
        ],
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
    let (addr, stats) = test_ws_server(Duration::from_millis(1)).await;
    let target = format!("ws://{addr}/");
    let out = out_dir("allow");
    let agent = AgentOpts::parse_from([
        "ws-agent",
        "--insecure",
        "--allow-target",
        "10.0.0.0/8",
        "--name",
        "picky",
    ]);
    let (code, f) = run_with_agent(
        agent,
        &[
            "--target",
            &target,
            "--sessions",
            "5",
            "--agents",
            "1",
            "--local-agents",
            "0",
            "--insecure",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, wsload_coordinator::exit::RUN_FAILED);
    assert!(f.summary.state.contains("allow-target"), "{}", f.summary.state);
    assert_eq!(stats.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}
