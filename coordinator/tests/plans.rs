//! Plans beyond the fixed batch interval: arrival-rate stages, messages paced wider
//! apart than the response timeout, and a run whose agents never come.

mod common;

use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use wsload_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_rate_stages_open_the_integrated_number_of_sessions() {
    let (addr, stats) = test_ws_server(Duration::from_millis(1)).await;
    let target = format!("ws://{addr}/");
    let out = out_dir("stages");
    // Ramp 0 -> 20/s over 1 s (10 sessions), then 20/s for 1 s (20 sessions).
    let opts = run_opts(&[
        "--target",
        &target,
        "--stage",
        "1s:20",
        "--stage",
        "1s:20",
        "--batch-size",
        "5",
        "--messages-per-session",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (code, f) = run_within(Duration::from_secs(30), listener, opts, CancellationToken::new()).await;
    assert_eq!(code, 0, "{:?}", f.summary);
    assert_eq!(f.report.totals.sessions_planned, 30);
    assert_eq!(f.report.totals.sessions_opened, 30);
    assert_eq!(f.report.totals.responses_received, 60);
    assert_eq!(stats.accepted.load(std::sync::atomic::Ordering::SeqCst), 30);
    // The arrivals spread over the two seconds of the stages.
    assert!(
        f.report.duration >= Duration::from_millis(1500),
        "{:?}",
        f.report.duration
    );
}

#[test]
fn a_run_whose_agents_never_come_fails_with_exit_4() {
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ws-coordinator"))
        .args([
            "run",
            "--target",
            "ws://127.0.0.1:9/ws",
            "--agents",
            "1",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--agent-wait",
            "1s",
            "--quiet",
            "--out",
            out_dir("noagents").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("waited for 1 agent(s), only 0 connected"));
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// The response timeout bounds the wait for an outstanding response, not the pause
/// between answered messages: messages 1.5 s apart with a 1 s response timeout all
/// complete (they used to fail with `response_timeout` before the second message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_paced_wider_than_the_response_timeout_complete() {
    let (addr, stats) = test_ws_server(Duration::from_millis(1)).await;
    let target = format!("ws://{addr}/");
    let out = out_dir("wide-interval");
    let opts = run_opts(&[
        "--target",
        &target,
        "--sessions",
        "4",
        "--batch-size",
        "4",
        "--messages-per-session",
        "3",
        "--message-interval",
        "1500ms",
        "--response-timeout",
        "1s",
        "--out",
        out.to_str().unwrap(),
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (code, f) = run_within(Duration::from_secs(30), listener, opts, CancellationToken::new()).await;
    let t = &f.report.totals;
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert_eq!(code, 0, "{:?}", f.summary);
    assert_eq!((t.sessions_opened, t.sessions_errored), (4, 0));
    assert_eq!((t.messages_sent, t.responses_received), (12, 12));
    assert_eq!(stats.accepted.load(std::sync::atomic::Ordering::SeqCst), 4);
}
