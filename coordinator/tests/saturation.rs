//! Generators that know they are the bottleneck: an agent process pinned to one CPU
//! and asked for an impossible message rate is flagged as saturated (progress,
//! report, `agent_cpu_max` / `agent_lag_p99` thresholds); an idle agent is not.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use wsload_coordinator::exit;
use wsload_testkit::*;

/// One run at a time: the busy agent's load must not starve the idle one.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `run_args` in-process with one external agent process, started by `agent`
/// with the coordinator's URL.
async fn run_with_agent(
    name: &str,
    agent: impl FnOnce(&str) -> Proc,
    run_args: &[&str],
) -> (u8, wsload_coordinator::hub::Finished) {
    let _serial = SERIAL.lock().await;
    let (addr, _stats) = test_ws_server(Duration::ZERO).await;
    let target = format!("ws://{addr}/");
    let out = out_dir(name);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _agent = agent(&url);
    let mut opts = one_external_agent_opts(&target, &out, run_args);
    opts.agent_wait = Duration::from_secs(20);
    run_within(Duration::from_secs(60), listener, opts, CancellationToken::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_agent_is_not_saturated() {
    let (code, f) = run_with_agent(
        "sat-idle",
        |url| agent_process(url, "idle", &["--insecure"]),
        &[
            "--sessions",
            "5",
            "--messages-per-session",
            "1",
            "--hold-time",
            "3s",
            "--threshold",
            "agent_cpu_max<90%",
            "--threshold",
            "agent_lag_p99<50ms",
            "--threshold",
            "saturated_seconds==0",
        ],
    )
    .await;
    let r = &f.report;
    let load = &r.agents[0].load;
    assert_eq!(code, exit::OK, "{:?} {:?} {load:?}", f.summary, r.thresholds);
    assert!(load.len() >= 3, "one load sample a second: {load:?}");
    assert!(load.iter().all(|s| !s.saturated() && s.cores >= 1), "{load:?}");
    assert!(r.windows.iter().all(|w| w.saturated.is_empty()));
    // Ten probe ticks a second were timed.
    assert!(r.histograms.agent_lag.len() >= 25, "{}", r.histograms.agent_lag.len());
    let text = wsload_coordinator::report::text::render(r);
    assert!(text.contains("no agent was saturated"), "{text}");
}

/// One CPU, and 200 sessions each asking for a message every millisecond (200,000
/// messages/s): the agent cannot keep up, its CPU is pegged or its timers run late,
/// and the report says so instead of blaming the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_starved_of_cpu_is_flagged() {
    let (code, f) = run_with_agent(
        "sat-busy",
        |url| {
            Proc::spawn(
                Command::new("taskset")
                    .args(["-c", "0"])
                    .arg(workspace_bin("ws-agent"))
                    .args(["--coordinator", url, "--name", "pinned", "--insecure"])
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
                "ws-agent pinned",
            )
        },
        &[
            "--sessions",
            "200",
            "--batch-size",
            "200",
            "--messages-per-session",
            "3000",
            "--message-interval",
            "1ms",
            "--max-duration",
            "3s",
            "--threshold",
            "saturated_seconds==0",
        ],
    )
    .await;
    let r = &f.report;
    let text = wsload_coordinator::report::text::render(r);
    // The max duration cuts the run short (exit 4) before 3 s of sending end.
    assert_eq!(code, exit::RUN_FAILED, "{:?}", f.summary);
    let load = &r.agents[0].load;
    assert!(load.iter().all(|s| s.cores == 1), "taskset -c 0: one core: {load:?}");
    let saturated: Vec<_> = load.iter().filter(|s| s.saturated()).collect();
    assert!(!saturated.is_empty(), "{load:?}");
    assert!(r
        .windows
        .iter()
        .any(|w| w.saturated.iter().any(|s| s.starts_with("pinned (cpu "))));
    assert!(!r.thresholds[0].passed, "{:?}", r.thresholds);
    // Sends went out late: the schedule could not be kept.
    assert!(r.histograms.send_lag.max() > 1_000, "{text}");
    assert!(text.contains("pinned: saturated"), "{text}");
    assert!(text.contains("Send lag (schedule)"), "{text}");
    let json = wsload_coordinator::report::json::to_value(r).unwrap();
    assert!(json["saturated_seconds"].as_u64().unwrap() >= 1, "{json}");
}
