//! Latency is measured per message: against a server that answers each message
//! after a known delay (200 ms), the reported p50 is within 10 % of that delay.

mod common;

use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use wsload_agent::session_error::SessionError;
use wsload_coordinator::report::LatencyStats;
use wsload_testkit::*;

/// Runs one at a time, so timing is not disturbed by the other tests of this file.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run(args: &[&str]) -> (u8, wsload_coordinator::hub::Finished) {
    let (code, f, _) = timed_run(args).await;
    (code, f)
}

/// [`run`], also returning how long the run took (from when it had its turn, not
/// counting the wait for another test's run).
async fn timed_run(args: &[&str]) -> (u8, wsload_coordinator::hub::Finished, Duration) {
    let _serial = SERIAL.lock().await;
    let started = std::time::Instant::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = run_opts(args);
    let (code, f) = tokio::time::timeout(
        Duration::from_secs(60),
        wsload_coordinator::cli::run::run_on(listener, opts, CancellationToken::new()),
    )
    .await
    .expect("no hang")
    .expect("run ok");
    (code, f, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p50_matches_a_known_server_delay() {
    // 200 ms: long enough that the debug build's own overhead on a busy CI machine
    // (a few ms at times) stays well inside the 10 % the check allows.
    let (addr, stats) = test_ws_server(Duration::from_millis(200)).await;
    let target = format!("ws://{addr}/ws");
    let out = out_dir("latency");
    // Paced messages (every 100 ms) and back-to-back: both must report ~200 ms.
    for interval in ["100ms", "0"] {
        let (code, f) = run(&[
            "--target",
            &target,
            "--sessions",
            "20",
            "--batch-size",
            "10",
            "--batch-interval",
            "100ms",
            "--messages-per-session",
            "5",
            "--message-interval",
            interval,
            "--out",
            out.to_str().unwrap(),
            "--threshold",
            "rtt_actual_p50<220ms",
        ])
        .await;
        assert_eq!(code, 0, "{:?}", f.summary);
        let t = &f.report.totals;
        assert_eq!((t.messages_sent, t.responses_received), (100, 100));
        let rtt = LatencyStats::from_histogram(&f.report.histograms.rtt_actual).unwrap();
        let p50_ms = rtt.p50 as f64 / 1000.0;
        assert!(
            (180.0..=220.0).contains(&p50_ms),
            "interval {interval}: p50 {p50_ms} ms"
        );
        let intended = LatencyStats::from_histogram(&f.report.histograms.rtt_intended).unwrap();
        let intended_ms = intended.p50 as f64 / 1000.0;
        if interval == "0" {
            // Back-to-back: the intended send time of every message is the start of the
            // burst, so the intended RTT may only add the burst's own sending time.
            assert!(
                intended.p50 >= rtt.p50 && intended_ms <= p50_ms + 15.0,
                "intended p50 {intended_ms} ms"
            );
        } else {
            assert!(
                (180.0..=220.0).contains(&intended_ms),
                "paced: intended p50 {intended_ms} ms"
            );
        }
    }
    assert_eq!(stats.messages.load(std::sync::atomic::Ordering::SeqCst), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_threshold_gives_exit_code_3_and_passing_gives_0() {
    let (addr, _) = test_ws_server(Duration::from_millis(20)).await;
    let target = format!("ws://{addr}/");
    let out = out_dir("thresholds");
    let base = [
        "--target",
        &target,
        "--sessions",
        "10",
        "--messages-per-session",
        "3",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut failing = base.to_vec();
    failing.extend(["--threshold", "rtt_p99<5ms", "--threshold", "connect_error_rate<1%"]);
    let (code, f) = run(&failing).await;
    assert_eq!(code, wsload_coordinator::exit::THRESHOLD_FAILED);
    let results: Vec<_> = f.summary.thresholds.iter().map(|t| t.passed).collect();
    assert_eq!(results, vec![false, true]);
    let mut passing = base.to_vec();
    passing.extend(["--threshold", "rtt_p99<2s", "--threshold", "responses_received==30"]);
    let (code, _) = run(&passing).await;
    assert_eq!(code, wsload_coordinator::exit::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_is_counted_not_hung() {
    // Reserved, and nothing listens on it: every connect is refused.
    let port = Port::reserve();
    let target = format!("ws://{}/ws", port.addr());
    let out = out_dir("unreachable");
    let (code, f, took) = timed_run(&[
        "--target",
        &target,
        "--sessions",
        "30",
        "--batch-size",
        "10",
        "--batch-interval",
        "10ms",
        "--connect-timeout",
        "2s",
        "--out",
        out.to_str().unwrap(),
        "--threshold",
        "connect_error_rate<1%",
    ])
    .await;
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(code, wsload_coordinator::exit::THRESHOLD_FAILED);
    let t = &f.report.totals;
    assert_eq!(t.failed_connections, 30);
    assert_eq!(t.errors.get("connect_refused"), Some(&30));
    assert_eq!(t.sessions_opened, 0);
}

/// Also the exit code of a run in which every session failed and no threshold was
/// given: 5 (sessions failed), and 0 with `--allow-failures`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_events_end_sessions_without_hanging() {
    let (addr, stats) = test_ws_server_with(Duration::ZERO, |_| seed::error("boom")).await;
    let target = format!("ws://{addr}/");
    let out = out_dir("errorevent");
    let args = |extra: &'static [&'static str]| {
        let mut a = vec![
            "--target",
            &target,
            "--sessions",
            "20",
            "--messages-per-session",
            "5",
            "--response-timeout",
            "30s",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a
    };
    let (code, f) = run(&args(&["--allow-failures"])).await;
    assert_eq!(code, wsload_coordinator::exit::OK);
    assert_eq!(f.report.totals.sessions_failed(), 20);
    let (code, f, took) = timed_run(&args(&[])).await;
    assert_eq!(code, wsload_coordinator::exit::SESSIONS_FAILED);
    assert!(took < Duration::from_secs(10), "{took:?}");
    let t = &f.report.totals;
    assert_eq!(t.errors.get(SessionError::ErrorEvent.as_str()), Some(&20));
    assert_eq!(t.sessions_errored, 20);
    assert_eq!(t.responses_received, 0);
    assert_eq!(t.failed_responses, 100);
    let stats = &stats;
    wait_until_async(
        Duration::from_millis(500),
        "the sessions to be closed with 1000",
        move || async move { stats.open.load(std::sync::atomic::Ordering::SeqCst) == 0 },
    )
    .await
    .unwrap();
}
