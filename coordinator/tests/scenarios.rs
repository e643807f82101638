//! Scripted scenarios against servers that are not ours (and against ours): echo
//! servers written here and in Python, replies paired with their requests among
//! unrelated pushes, latency against known per-message delays, the seed protocol as
//! steps, and cohorts of publishers and listeners with fan-out accounting. Every
//! count is exact: what the agents counted equals what the servers counted.

mod common;

use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use wsload_coordinator::hub::Finished;
use wsload_coordinator::report::StepReport;
use wsload_testkit::scenario_servers::{self, Counts};
use wsload_testkit::*;

/// A plan file: `target` and `sessions` then `body`; runs it in-process with one
/// local agent (plus `extra` flags) and returns the exit code and the result.
async fn run_plan(name: &str, target: &str, sessions: u64, body: &str, extra: &[&str]) -> (u8, Finished) {
    let out = out_dir(name);
    std::fs::create_dir_all(&*out).unwrap();
    let plan = out.join("plan.toml");
    std::fs::write(
        &plan,
        format!("target = \"{target}\"\nsessions = {sessions}\nbatch-size = {sessions}\n{body}"),
    )
    .unwrap();
    let report = out.join("report");
    let mut args = vec!["--plan", plan.to_str().unwrap(), "--out", report.to_str().unwrap()];
    args.extend_from_slice(extra);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    run_within(
        Duration::from_secs(120),
        listener,
        run_opts(&args),
        CancellationToken::new(),
    )
    .await
}

fn step<'a>(f: &'a Finished, name: &str) -> &'a StepReport {
    f.report
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {:?}", f.report.steps))
}

fn n(c: &std::sync::atomic::AtomicUsize) -> u64 {
    Counts::get(c) as u64
}

/// Closed-loop requests whose reply is the same text: an echo server.
const ECHO: &str = r#"
[[scenario]]
name = "echo"
  [[scenario.step]]
  loop = { count = 10 }
    [[scenario.step.steps]]
    name = "echo"
    request = { text = "hello {{session}}-{{seq}}", reply = { equals = "hello {{session}}-{{seq}}" } }
"#;

fn assert_echo_run(code: u8, f: &Finished, sessions: u64) {
    let t = &f.report.totals;
    assert_eq!(code, 0, "{:?}", f.summary);
    assert_eq!(t.messages_sent, sessions * 10);
    assert_eq!(t.responses_received, sessions * 10);
    assert_eq!(f.summary.sessions_completed, sessions);
    assert_eq!(t.unexpected_messages, 0);
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    let echo = step(f, "echo");
    assert_eq!(
        (echo.kind.as_str(), echo.stats.ok, echo.stats.failed),
        ("request", sessions * 10, 0)
    );
    assert_eq!(echo.stats.latency.len(), sessions * 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_server_written_here() {
    let (addr, counts) = scenario_servers::echo_server().await;
    let (code, f) = run_plan("sc-echo", &format!("ws://{addr}/"), 20, ECHO, &[]).await;
    assert_echo_run(code, &f, 20);
    assert_eq!(n(&counts.received), 200, "the server saw every message once");
    assert_eq!(n(&counts.accepted), 20);
}

/// Python's `websockets`: an implementation nobody here wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_websockets_echo_server() {
    let script = r#"
import asyncio, sys
import websockets
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"#;
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", script])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 (the test command installs websockets)");
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut line),
    )
    .await
    .expect("the Python server starts")
    .unwrap();
    let port: u16 = line.trim().parse().expect("the Python server prints its port");
    let (code, f) = run_plan("sc-pyecho", &format!("ws://127.0.0.1:{port}/"), 30, ECHO, &[]).await;
    assert_echo_run(code, &f, 30);
}

/// Open-loop requests whose replies overtake each other among unrelated pushes: each
/// reply is paired with its request by its id, nothing is unexpected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_paired_with_their_requests_among_pushes() {
    let (addr, counts) = scenario_servers::pushy_server(Duration::from_millis(7)).await;
    let body = r#"
[[scenario]]
name = "rpc"
  [[scenario.on]]
  match = { json = "$.type", equals = "push" }
  count = "pushes"
  [[scenario.step]]
  loop = { count = 40, pacing = "open", interval = "5ms" }
    [[scenario.step.steps]]
    name = "call"
    request = { text = '{"id":"{{uuid}}","op":"get"}', reply = { json = "$.id", equals = "{{uuid}}" } }
    capture = { last = "$.id" }
  [[scenario.step]]
  send = '{"id":"{{last}}","op":"bye"}'
"#;
    let (code, f) = run_plan("sc-pushy", &format!("ws://{addr}/"), 10, body, &[]).await;
    let t = &f.report.totals;
    assert_eq!(code, 0, "{:?} {:?}", f.summary, t.errors);
    assert_eq!(t.messages_sent, 10 * 41);
    assert_eq!(t.responses_received, 400);
    let call = step(&f, "call");
    assert_eq!((call.stats.ok, call.stats.failed), (400, 0));
    assert_eq!(
        t.unexpected_messages, 0,
        "every reply found its request, every push its handler"
    );
    let pushes = t.counts.get("pushes").copied().unwrap_or(0);
    assert!(pushes > 0, "pushes arrived in between: {:?}", t.counts);
    assert_eq!(n(&counts.received), 410, "400 gets and 10 byes");
    assert_eq!(n(&counts.replies), 400, "every get answered, and every answer matched");
}

/// Latency of scripted requests against a server with known per-message delays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_latency_matches_known_delays() {
    let (addr, _) = scenario_servers::known_delay_server().await;
    // 20 sessions x 10 messages, each request waiting for its reply (closed loop):
    // delays 100, 200, ... 1,000 ms, once each per session.
    let body = r#"
[[scenario]]
name = "timed"
  [[scenario.step]]
  loop = { count = 10 }
    [[scenario.step.steps]]
    name = "timed"
    request = { text = '{"seq":{{seq}}}', reply = { json = "$.seq", equals = "{{seq}}" } }
"#;
    let (code, f) = run_plan("sc-delay", &format!("ws://{addr}/"), 20, body, &[]).await;
    assert_eq!(code, 0, "{:?}", f.summary);
    let h = &step(&f, "timed").stats.latency;
    assert_eq!(h.len(), 200);
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    // The truth: 20 samples each of 100, 200, ... 1,000 ms. The 90th of the 200 sorted
    // samples (p45) is the middle of the twenty 500 ms ones, the 170th (p85) the middle
    // of the 900 ms ones: within 10 %, and one stalled sample cannot move them (p50
    // would be the slowest of its twenty).
    let (p45, p85) = (ms(0.45), ms(0.85));
    assert!((450.0..=550.0).contains(&p45), "p45 {p45} ms");
    assert!((810.0..=990.0).contains(&p85), "p85 {p85} ms");
}

/// The seed protocol written as steps gives the same totals as the built-in path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_protocol_as_steps_matches_the_builtin() {
    let server = WsServer::memory(&[]);
    let url = server.url(server.port(0));
    let builtin = run_plan("sc-builtin", &url, 30, "messages-per-session = 5\n", &[]).await;
    let steps = r#"
[[scenario]]
name = "seed-steps"
  [[scenario.on]]
  match = { json = "$.type", equals = "error" }
  fail = "error_event"
  [[scenario.on]]
  match = { json = "$.type", equals = "server-event" }
  count = "server_events"
  [[scenario.step]]
  expect = { json = "$.type", equals = "session" }
  [[scenario.step]]
  loop = { count = 5, pacing = "burst" }
    [[scenario.step.steps]]
    request = { text = '{"type":"message","seq":{{seq}}}', reply = { json = "$.messageCount", equals = "{{seq}}" } }
"#;
    let scripted = run_plan("sc-seedsteps", &url, 30, steps, &[]).await;
    for (code, f) in [&builtin, &scripted] {
        assert_eq!(*code, 0, "{:?}", f.summary);
    }
    let (b, s) = (&builtin.1, &scripted.1);
    assert_eq!(
        (
            b.summary.sessions_completed,
            b.report.totals.messages_sent,
            b.report.totals.responses_received
        ),
        (30, 150, 150)
    );
    assert_eq!(
        (
            s.summary.sessions_completed,
            s.report.totals.messages_sent,
            s.report.totals.responses_received
        ),
        (30, 150, 150)
    );
    assert_eq!(b.report.totals.failed_connections, s.report.totals.failed_connections);
    assert_eq!(metric(server.port(0), "ws_messages_received_total").await, 300.0);
}

/// Cohorts: 95 % listeners and 5 % publishers in a chat room; every listener gets
/// every publisher's messages, with their fan-out latency, nothing duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_and_listeners_in_a_chat_room() {
    // The room holds posts until all 100 have joined; listeners stop once they heard
    // all 50 posts (a lost one fails them after 60 s).
    let (addr, counts) = scenario_servers::chat_server(100).await;
    let body = r#"
[[scenario]]
name = "listeners"
weight = 95
  [[scenario.step]]
  name = "room"
  listen = { count = 50, duration = "60s", filter = { json = "$.kind", equals = "chat" }, fanout = { sent_at = "$.t", id = "$.id", stream = "$.from", from = "post" } }

[[scenario]]
name = "publishers"
weight = 5
  [[scenario.step]]
  think = "1s"
  [[scenario.step]]
  loop = { count = 10, pacing = "open", interval = "50ms" }
    [[scenario.step.steps]]
    name = "post"
    send = '{"kind":"chat","from":{{session}},"t":{{now_us}},"id":"{{session}}-{{seq}}"}'
  [[scenario.on]]
  match = { json = "$.kind", equals = "chat" }
  count = "heard"
  [[scenario.step]]
  listen = { duration = "1500ms" }
"#;
    // 100 sessions: 95 listeners, 5 publishers (every twentieth session), all at once.
    let (code, f) = run_plan(
        "sc-chat",
        &format!("ws://{addr}/"),
        100,
        body,
        &["--batch-interval", "0"],
    )
    .await;
    assert_eq!(code, 0, "{:?} {:?}", f.summary, f.report.totals.errors);
    let post = step(&f, "post");
    assert_eq!(post.stats.ok, 50, "5 publishers x 10 posts");
    let room = step(&f, "room");
    assert_eq!(room.stats.ok, 95, "95 listeners listened to the end");
    let reach = room.fanout.expect("fan-out accounting");
    assert_eq!(reach.expected, 50 * 95);
    assert_eq!(reach.delivered, 50 * 95, "reach 100 %");
    assert_eq!((room.stats.duplicates, room.stats.out_of_order), (0, 0));
    assert_eq!(room.stats.latency.len(), 50 * 95, "a latency for every delivery");
    assert_eq!(n(&counts.received), 50);
    // Publishers hear the room too, through their handler, while they post.
    assert_eq!(f.report.totals.unexpected_messages, 0);
}

/// Bad scenarios are refused before anything connects, naming scenario, step and field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scenarios_exit_2_naming_the_place() {
    let (addr, counts) = scenario_servers::echo_server().await;
    let dir = out_dir("sc-bad");
    std::fs::create_dir_all(&*dir).unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nsend = \"{{nope}}\"\n",
            "scenario \"a\" step 1 (send) payload: `{{nope}}`: unknown variable `nope`",
        ),
        (
            "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nloop = { count = 2 }\n[[scenario.step.steps]]\nexpect = { json = \"$..[\", equals = \"x\" }\n",
            "scenario \"a\" step 1.1 (expect) json:",
        ),
        (
            "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nsend = \"{{users.name}}\"\n",
            "no feeder named `users`",
        ),
        (
            "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nlisten = { count = 1 }\nnam = \"x\"\n",
            "unknown field `nam`",
        ),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let plan = dir.join(format!("bad{i}.toml"));
        std::fs::write(&plan, format!("target = \"ws://{addr}/\"\n{body}")).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ws-coordinator"))
            .args([
                "run",
                "--plan",
                plan.to_str().unwrap(),
                "--out",
                dir.join("r").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {err}");
        assert!(err.contains(want), "{body}\ngave: {err}\nwant: {want}");
    }
    assert_eq!(n(&counts.accepted), 0, "nothing connected");
}

/// Fan-out on our own stack: listeners through nginx on all 12 Redis-backed
/// instances, `ws-server publish` N times: every listener gets every event once,
/// timed from the event's own timestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_server_publish_reaches_every_listener_on_every_instance() {
    const LISTENERS: u64 = 240;
    const EVENTS: u64 = 5;
    let Stack { redis, server, nginx } = Stack::for_accounting();
    let body = format!(
        r#"
[[scenario]]
name = "listeners"
  [[scenario.step]]
  expect = {{ json = "$.type", equals = "session" }}
  [[scenario.step]]
  name = "events"
  listen = {{ count = {EVENTS}, duration = "60s", filter = {{ json = "$.type", equals = "server-event" }}, fanout = {{ sent_at = "$.timestamp", expected = {EVENTS} }} }}
"#
    );
    let target = nginx.url();
    let run = tokio::spawn(async move { run_plan("sc-fanout", &target, LISTENERS, &body, &[]).await });
    // Every listener connected (and nginx spread them over all instances), then publish.
    let ports = server.ports();
    let open = |ports: Vec<u16>| async move {
        let mut per = Vec::new();
        for p in ports {
            per.push(metric(p, "ws_connections_open").await as u64);
        }
        per
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let per = loop {
        let per = open(ports.clone()).await;
        if per.iter().sum::<u64>() == LISTENERS {
            break per;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "listeners never all connected: {per:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(per.iter().all(|n| *n > 0), "listeners on every instance: {per:?}");
    for i in 0..EVENTS {
        let out = run_ws_server(&["--redis-url", &redis.url(), "publish", &format!("event {i}")]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("published to 12 subscribed instance(s)"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let (code, f) = run.await.unwrap();
    assert_eq!(code, 0, "{:?}", f.summary);
    let events = step(&f, "events");
    assert_eq!(events.stats.ok, LISTENERS);
    assert_eq!(
        events.stats.messages,
        LISTENERS * EVENTS,
        "every listener counted every event"
    );
    assert_eq!((events.stats.duplicates, events.stats.out_of_order), (0, 0));
    let reach = events.fanout.expect("fan-out accounting");
    assert_eq!(
        (reach.expected, reach.delivered),
        (LISTENERS * EVENTS, LISTENERS * EVENTS)
    );
    assert_eq!(events.stats.latency.len(), LISTENERS * EVENTS);
    let mut sent = 0.0;
    for p in &ports {
        sent += metric(*p, "ws_server_events_sent_total").await;
    }
    assert_eq!(
        sent as u64,
        LISTENERS * EVENTS,
        "the servers sent exactly what was counted"
    );
}
