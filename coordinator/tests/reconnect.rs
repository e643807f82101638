//! Scenario reconnects: sessions whose connections the server closes come back with
//! capped exponential backoff and full jitter, every message is accounted for (sent =
//! responses + requests dropped with the connection), and the report counts the
//! reconnects and times them from the drop to the new connection.

mod common;

use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use wsload_coordinator::hub::Finished;
use wsload_testkit::scenario_servers::{restartable_echo_server, Counts, Restarter};
use wsload_testkit::*;

/// Closed-loop echo requests for `iterations` x 40 ms, reconnecting with `policy`.
fn echo_plan(policy: &str, iterations: u64) -> String {
    format!(
        r#"
[[scenario]]
name = "echo"
reconnect = {policy}
  [[scenario.step]]
  loop = {{ count = {iterations}, pacing = "closed", interval = "40ms" }}
    [[scenario.step.steps]]
    name = "echo"
    request = {{ text = "hello {{{{session}}}}-{{{{seq}}}}", reply = {{ equals = "hello {{{{session}}}}-{{{{seq}}}}" }} }}
"#
    )
}

/// Starts the plan (`sessions` sessions of `body` against `target`, one local agent)
/// in the background; the report goes to `out/report`.
fn start_plan(
    out: &std::path::Path,
    target: &str,
    sessions: u64,
    body: &str,
) -> tokio::task::JoinHandle<(u8, Finished)> {
    std::fs::create_dir_all(out).unwrap();
    let plan = out.join("plan.toml");
    std::fs::write(
        &plan,
        format!("target = \"{target}\"\nsessions = {sessions}\nbatch-size = {sessions}\n{body}"),
    )
    .unwrap();
    let report = out.join("report");
    let opts = run_opts(&["--plan", plan.to_str().unwrap(), "--out", report.to_str().unwrap()]);
    tokio::spawn(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        run_within(Duration::from_secs(120), listener, opts, CancellationToken::new()).await
    })
}

fn n(c: &std::sync::atomic::AtomicUsize) -> u64 {
    Counts::get(c) as u64
}

/// An echo server that holds its replies until the test releases them: however slowly the
/// sessions connect, none finishes its loop before the test closes them all.
async fn held_echo_server() -> Restarter {
    let server = restartable_echo_server().await;
    server.hold_replies(true);
    server
}

/// Waits until the server holds `sessions` open connections, each waiting for the
/// (held) reply to its first request.
async fn all_open(counts: &Counts, sessions: u64) {
    wait_until_async(Duration::from_secs(30), "every session connected", || async {
        n(&counts.open) == sessions && n(&counts.accepted) == sessions && n(&counts.received) == sessions
    })
    .await
    .unwrap();
}

/// Runs `sessions` sessions of [`echo_plan`]`(policy, iterations)` against a held echo
/// server that, once every session is open, closes them all with 1012 (a deploy) and
/// then answers: the server's counts, the exit code and the finished run.
async fn through_a_deploy(
    out: &std::path::Path,
    sessions: u64,
    policy: &str,
    iterations: u64,
) -> (std::sync::Arc<Counts>, u8, Finished) {
    let server = held_echo_server().await;
    let counts = server.counts();
    let target = format!("ws://{}/", server.addr());
    let run = start_plan(out, &target, sessions, &echo_plan(policy, iterations));
    all_open(&counts, sessions).await;
    server.close_all(1012);
    server.hold_replies(false);
    let (code, f) = run.await.unwrap();
    (counts, code, f)
}

/// Messages sent = responses + requests dropped with their connection, exactly, on
/// the totals and on the named step.
fn assert_every_message_accounted(f: &Finished) {
    let t = &f.report.totals;
    let dropped = t.errors.get("dropped").copied().unwrap_or(0);
    assert_eq!(t.messages_sent, t.responses_received + dropped, "{:?}", t.errors);
    let echo = f.report.steps.iter().find(|s| s.name == "echo").unwrap();
    assert_eq!((echo.stats.ok, echo.stats.failed), (t.responses_received, dropped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_reconnect_after_the_server_closes_them() {
    const N: u64 = 20;
    let out = out_dir("reconnect-once");
    let policy = r#"{ attempts = 3, backoff = "20ms", max_backoff = "200ms" }"#;
    let (counts, code, f) = through_a_deploy(&out, N, policy, 30).await;
    let t = &f.report.totals;
    assert_eq!(code, 0, "{:?}", f.summary);
    assert_eq!(n(&counts.closed), N, "the server closed each session once");
    assert_eq!(t.reconnects, N, "each came back once");
    assert_eq!(n(&counts.accepted), 2 * N);
    assert_eq!(t.sessions_opened, N, "a reconnect is not a new session");
    assert_eq!(f.summary.sessions_completed, N);
    // Each saw the server's 1012, unless a write of its own hit the closed socket first
    // and the reset came before the close frame (1006).
    let code = |c: u16| t.close_codes.get(&c).copied().unwrap_or(0);
    assert_eq!(code(1012) + code(1006), N, "{:?}", t.close_codes);
    assert_eq!(
        t.close_codes.len() as u64,
        u64::from(code(1012) > 0) + u64::from(code(1006) > 0)
    );
    assert!(
        t.errors.keys().all(|k| k == "dropped"),
        "only requests in flight at the close are lost: {:?}",
        t.errors
    );
    assert_every_message_accounted(&f);
    // The second connection ran the whole loop: at least 30 responses each.
    assert!(t.responses_received >= 30 * N, "{}", t.responses_received);
    assert_eq!(f.report.histograms.reconnect.len(), N);
    // The reports say so too.
    let dir = out.join("report");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["totals"]["reconnects"], N);
    assert_eq!(json["latency_us"]["reconnect"]["count"], N);
    let per_second: u64 = json["timeseries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["reconnects"].as_u64().unwrap())
        .sum();
    assert_eq!(per_second, N);
    let txt = std::fs::read_to_string(dir.join("results.txt")).unwrap();
    assert!(txt.contains(&format!("Reconnects:           {N} ")), "{txt}");
    assert!(txt.contains("Reconnect (drop->open)"), "{txt}");
    let csv = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "reconnects_per_s").unwrap();
    let from_csv: u64 = lines
        .map(|l| l.split(',').nth(col).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(from_csv, N);
}

/// A deploy: the server closes every session at once; they come back spread over the
/// jittered backoff instead of all in the same instant, and every one comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thundering_herd_comes_back_spread_by_the_jitter() {
    const N: u64 = 200;
    let out = out_dir("reconnect-herd");
    let policy = r#"{ attempts = 2, backoff = "500ms", max_backoff = "500ms" }"#;
    let (counts, code, f) = through_a_deploy(&out, N, policy, 25).await;
    let t = &f.report.totals;
    assert_eq!(code, 0, "{:?}", f.summary);
    assert_eq!(t.reconnects, N, "every session came back");
    assert_eq!(n(&counts.accepted), 2 * N);
    assert_eq!(f.summary.sessions_completed, N);
    assert_every_message_accounted(&f);
    // Full jitter: each waited a uniform draw in [0, 500 ms]. 200 draws spanning less
    // than 200 ms has a probability below 1e-70.
    let h = &f.report.histograms.reconnect;
    assert_eq!(h.len(), N);
    let span = Duration::from_micros(h.max() - h.min());
    assert!(span >= Duration::from_millis(200), "reconnects spread over {span:?}");
}

/// The server goes away for good: each session tries `attempts` times (each refused
/// try counted by its kind) and then fails; no session loops forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_attempts_are_bounded_when_the_server_stays_down() {
    const N: u64 = 10;
    let mut server = held_echo_server().await;
    let counts = server.counts();
    let out = out_dir("reconnect-down");
    let run = start_plan(
        &out,
        &format!("ws://{}/", server.addr()),
        N,
        &echo_plan(r#"{ attempts = 2, backoff = "10ms", max_backoff = "20ms" }"#, 50),
    );
    all_open(&counts, N).await;
    server.stop(1012).await;
    server.hold_replies(false);
    let (_, f) = run.await.unwrap();
    let t = &f.report.totals;
    assert_eq!(t.reconnects, 0);
    assert_eq!(n(&counts.accepted), N, "nothing could connect again");
    assert_eq!(t.close_codes, [(1012, N)].into());
    assert_eq!(t.errors.get("connect_refused"), Some(&(2 * N)), "{:?}", t.errors);
    assert_eq!(t.sessions_errored, N);
    assert_eq!(f.summary.sessions_completed, 0);
    assert_every_message_accounted(&f);
}
