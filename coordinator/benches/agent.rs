//! Agent benchmark: agent RSS per open session at 19,000 sessions (plain and with
//! permessage-deflate; the built-in protocol, a listen-only scenario and a scripted
//! request/expect scenario), sessions opened per second by one agent, end-to-end
//! messages per second with two agents (the built-in protocol and a scripted echo, in
//! the same run), and the fan-out of `ws-server publish` to 10,000 listeners.
//! Everything runs as real processes on loopback: the server stack (redis, 12
//! `ws-server` workers, nginx with the repository's config; the agents connect
//! through nginx), `ws-coordinator serve`, and `ws-agent`, driven over the Control API.
//!
//! Run: `cargo build --release --workspace && cargo bench -p wsload-coordinator --bench agent`
//!
//! Environment: BENCH_SESSIONS (19000), BENCH_ECHO_SESSIONS (1000),
//! BENCH_ECHO_MESSAGES (50), BENCH_LISTENERS (10000), BENCH_EVENTS (20), BENCH_PARTS
//! (all of `idle,scenario-idle,echo,echo-hops,fanout`, comma-separated); BENCH_BIN_DIR
//! (ws-agent, ws-coordinator and ws-server of another build, to compare builds).

use std::process::Command;
use std::time::Duration;

use wsload_proto::pb::{
    control_client::ControlClient, GetSummaryRequest, ListAgentsRequest, Plan, StartRunRequest, StopRunRequest,
    Summary, WatchRunRequest,
};
use wsload_testkit::{agent_process, coordinator_serve, rss_kb, wait_until_async, Nginx, Port, Proc, Redis, WsServer};

type Client = ControlClient<tonic::transport::Channel>;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A coordinator daemon (with its reserved port) and `agents` agent processes;
/// returns them and a client once every agent has registered.
async fn stack(agents: usize) -> (Port, Proc, Vec<Proc>, Client) {
    let port = Port::reserve();
    let out = std::env::temp_dir().join("wsload-bench-runs");
    let coord = coordinator_serve(&port, &out, &["--insecure"]);
    let url = format!("http://{}", port.addr());
    let procs: Vec<Proc> = (0..agents)
        .map(|i| {
            let name = format!("bench-{i}");
            agent_process(&url, &name, &["--insecure", "--source-ips", "127.0.0.2-127.0.0.9"])
        })
        .collect();
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = ControlClient::new(channel);
    let registered = || {
        let mut client = client.clone();
        async move {
            let list = client.list_agents(ListAgentsRequest {}).await.unwrap();
            list.into_inner().agents.len() >= agents
        }
    };
    wait_until_async(Duration::from_secs(20), "the agents to register", registered)
        .await
        .unwrap();
    (port, coord, procs, client)
}

async fn finish(client: &mut Client, run_id: &str) -> Summary {
    for _ in 0..600 {
        let s = client
            .get_summary(GetSummaryRequest { run_id: run_id.into() })
            .await
            .unwrap()
            .into_inner();
        if s.finished {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run_id} did not finish");
}

/// CPU time a process has used (user + system), in clock ticks.
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces), from the state on:
    // utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// CPU time the whole machine has spent busy (every core, not idle or iowait), in ticks.
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() - f.get(3).copied().unwrap_or(0) - f.get(4).copied().unwrap_or(0)
}

/// What opening `sessions` held sessions measured.
struct Opening {
    /// Agent RSS growth per open session, bytes.
    rss_per_session: u64,
    /// Best one-second window of sessions opened.
    peak: f64,
    /// Sessions opened per second over the whole seconds before the one in which
    /// the last session opened (that one is partial).
    sustained: f64,
    /// Agent CPU time per session opened, microseconds.
    agent_cpu_us: f64,
    /// The agent's share of all the CPU the machine used while opening.
    agent_share: f64,
}

/// The built-in protocol: one message, then held.
fn held(target: &str, sessions: u64, compression: bool) -> Plan {
    Plan {
        target: target.into(),
        sessions,
        batch_size: 1000,
        batch_interval_ms: Some(100),
        max_active_batches: 1000,
        messages_per_session: Some(1),
        hold_ms: 600_000,
        compression,
        ..Default::default()
    }
}

/// A plan from TOML scenario tables (`body`), validated as the CLI does.
fn scripted(target: &str, sessions: u64, body: &str) -> Plan {
    let dir = std::env::temp_dir().join(format!("wsload-bench-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plan.toml");
    std::fs::write(&file, format!("target = \"{target}\"\nsessions = {sessions}\n{body}")).unwrap();
    let plan = wsload_coordinator::plan::PlanArgs {
        plan: Some(file),
        ..Default::default()
    }
    .validate()
    .expect("a valid bench plan")
    .to_pb();
    let _ = std::fs::remove_dir_all(&dir);
    plan
}

/// A listen-only session held idle.
const LISTEN_HELD: &str = r#"
[[scenario]]
name = "listen"
  [[scenario.step]]
  listen = { duration = "600s" }
"#;

/// A scripted request/expect session (the server's session event, one matched
/// request), then held.
const REQUEST_HELD: &str = r#"
[[scenario]]
name = "request"
  [[scenario.step]]
  expect = { json = "$.type", equals = "session" }
  [[scenario.step]]
  request = { text = '{"type":"message"}', reply = { json = "$.messageCount", equals = "{{seq}}" } }
  [[scenario.step]]
  listen = { duration = "600s" }
"#;

/// Opens the plan's sessions (a held plan) and measures the agent meanwhile.
async fn idle_sessions(mut plan: Plan) -> Opening {
    let (_port, _coord, agents, mut client) = stack(1).await;
    let pid = agents[0].pid();
    let idle = rss_kb(pid);
    let (agent0, machine0) = (process_ticks(pid), machine_busy_ticks());
    plan.batch_size = 1000;
    plan.batch_interval_ms = Some(100);
    plan.max_active_batches = 1000;
    let sessions = plan.sessions;
    let req = StartRunRequest {
        plan: Some(plan),
        min_agents: 1,
        ..Default::default()
    };
    let run_id = client.start_run(req).await.unwrap().into_inner().run_id;
    let mut watch = client
        .watch_run(WatchRunRequest { run_id: run_id.clone() })
        .await
        .unwrap()
        .into_inner();
    // By second: the progress sent when the watch begins is replaced by the second's own.
    let mut by_second = std::collections::BTreeMap::new();
    while let Some(p) = watch.message().await.unwrap() {
        by_second.insert(p.second, p.connections_per_second);
        if p.active_sessions >= sessions {
            break;
        }
        assert!(p.errors.is_empty(), "errors while opening: {:?}", p.errors);
        assert!(!p.done, "run ended early: {}", p.state);
    }
    let per_second: Vec<f64> = by_second.into_values().collect();
    let (agent_ticks, machine_ticks) = (process_ticks(pid) - agent0, machine_busy_ticks() - machine0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kb(pid);
    client
        .stop_run(StopRunRequest { run_id: run_id.clone() })
        .await
        .unwrap();
    finish(&mut client, &run_id).await;
    Opening {
        rss_per_session: (rss.saturating_sub(idle)) * 1024 / sessions,
        peak: per_second.iter().copied().fold(0.0, f64::max),
        sustained: match per_second.split_last() {
            Some((last, [])) => *last,
            Some((_, whole)) => whole.iter().sum::<f64>() / whole.len() as f64,
            None => 0.0,
        },
        agent_cpu_us: agent_ticks as f64 * 1e6 / clock_ticks_per_second() / sessions as f64,
        agent_share: agent_ticks as f64 / machine_ticks.max(1) as f64,
    }
}

/// The kernel's clock tick (`getconf CLK_TCK`), 100 on Linux unless told otherwise.
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Whether part `name` runs (BENCH_PARTS, default all).
fn part(name: &str) -> bool {
    std::env::var("BENCH_PARTS").map_or(true, |v| v.split(',').any(|p| p.trim() == name))
}

/// Runs `plan` on the agents of `client` to its end; returns the summary.
async fn run_to_end(client: &mut Client, plan: Plan, agents: u32) -> Summary {
    let req = StartRunRequest {
        plan: Some(plan),
        min_agents: agents,
        ..Default::default()
    };
    let run_id = client.start_run(req).await.unwrap().into_inner().run_id;
    finish(client, &run_id).await
}

/// A scripted echo of `messages` requests per session: the session event, the loop
/// of requests each matched by its `messageCount`, a close (3 steps).
fn scripted_echo(target: &str, sessions: u64, messages: u64, pacing: &str) -> Plan {
    let body = format!(
        r#"
[[scenario]]
name = "echo"
  [[scenario.step]]
  expect = {{ json = "$.type", equals = "session" }}
  [[scenario.step]]
  loop = {{ count = {messages}, pacing = "{pacing}" }}
    [[scenario.step.steps]]
    request = {{ text = '{{"type":"message","seq":{{{{seq}}}}}}', reply = {{ json = "$.messageCount", equals = "{{{{seq}}}}" }} }}
  [[scenario.step]]
  close = {{}}
"#
    );
    scripted(target, sessions, &body)
}

fn print_echo(what: &str, s: &Summary) {
    println!(
        "end to end, 2 agents, {what}: {} responses in {:.2} s = {:.0} messages/s (rtt p50 {:.2} ms, p99 {:.2} ms)",
        s.responses, s.duration_seconds, s.messages_per_second, s.rtt_p50_ms, s.rtt_p99_ms
    );
}

/// 1,000 x 50 through nginx, built-in protocol and scripted echo side by side, burst
/// (pipelined) and closed loop.
async fn echo(target: &str, sessions: u64, messages: u64) {
    let (_port, _coord, _agents, mut client) = stack(2).await;
    for pacing in ["burst", "closed"] {
        let b = run_to_end(&mut client, builtin_echo(target, sessions, messages, pacing), 2).await;
        assert_eq!(b.responses, sessions * messages, "{b:?}");
        print_echo(
            &format!("{sessions} sessions x {messages} messages, built-in protocol, {pacing}"),
            &b,
        );
        let mut plan = scripted_echo(target, sessions, messages, pacing);
        plan.batch_size = sessions / 2;
        plan.batch_interval_ms = Some(0);
        let s = run_to_end(&mut client, plan, 2).await;
        assert_eq!(s.responses, sessions * messages, "{s:?}");
        print_echo(
            &format!("{sessions} sessions x {messages} messages, 3-step scripted echo, {pacing}"),
            &s,
        );
        println!(
            "  scripted / built-in ({pacing}): {:.1} %",
            s.messages_per_second * 100.0 / b.messages_per_second
        );
    }
}

/// The built-in protocol's plan: `sessions` x `messages`, burst or closed loop.
fn builtin_echo(target: &str, sessions: u64, messages: u64, pacing: &str) -> Plan {
    Plan {
        target: target.into(),
        sessions,
        batch_size: sessions / 2,
        batch_interval_ms: Some(0),
        messages_per_session: Some(messages),
        pacing: if pacing == "burst" {
            wsload_proto::pb::Pacing::Burst
        } else {
            wsload_proto::pb::Pacing::Closed
        } as i32,
        ..Default::default()
    }
}

/// The same built-in echo with hops taken away, so each hop's cost shows beside the
/// full path: straight to one of the 12 Redis-backed workers (no nginx), and straight
/// to one memory-broker worker (no nginx, no Redis).
async fn echo_hops(hops: &[(&str, String)], sessions: u64, messages: u64) {
    let (_port, _coord, _agents, mut client) = stack(2).await;
    for (what, target) in hops {
        for pacing in ["burst", "closed"] {
            let b = run_to_end(&mut client, builtin_echo(target, sessions, messages, pacing), 2).await;
            assert_eq!(b.responses, sessions * messages, "{b:?}");
            print_echo(
                &format!("{sessions} sessions x {messages} messages, built-in, {pacing}, {what}"),
                &b,
            );
        }
    }
}

/// `ws-server publish` `events` times to `listeners` listeners through nginx.
async fn fanout(target: &str, redis_url: &str, listeners: u64, events: u64) {
    let (_port, _coord, _agents, mut client) = stack(1).await;
    let body = format!(
        r#"
[[scenario]]
name = "listeners"
  [[scenario.step]]
  expect = {{ json = "$.type", equals = "session" }}
  [[scenario.step]]
  name = "events"
  listen = {{ duration = "{}s", filter = {{ json = "$.type", equals = "server-event" }}, fanout = {{ sent_at = "$.timestamp", expected = {events} }} }}
"#,
        20 + events
    );
    let mut plan = scripted(target, listeners, &body);
    plan.batch_size = 1000;
    plan.batch_interval_ms = Some(100);
    plan.max_active_batches = 1000;
    let req = StartRunRequest {
        plan: Some(plan),
        min_agents: 1,
        ..Default::default()
    };
    let run_id = client.start_run(req).await.unwrap().into_inner().run_id;
    let mut watch = client
        .watch_run(WatchRunRequest { run_id: run_id.clone() })
        .await
        .unwrap()
        .into_inner();
    while let Some(p) = watch.message().await.unwrap() {
        assert!(!p.done, "run ended early: {}", p.state);
        if p.active_sessions >= listeners {
            break;
        }
    }
    for i in 0..events {
        let out = wsload_testkit::run_ws_server(&["--redis-url", redis_url, "publish", &format!("event {i}")]);
        assert!(out.status.success());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let s = finish(&mut client, &run_id).await;
    let dir = std::path::Path::new(&s.report_dir);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let step = doc["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "events"))
        .expect("the events step")
        .clone();
    println!(
        "fan-out of ws-server publish through nginx, 12 workers, Redis: {listeners} listeners x {events} events: delivered {} of {} (reach {}), duplicates {}, out of order {}; latency p50 {} us, p99 {} us, max {} us",
        step["fanout"]["delivered"],
        step["fanout"]["expected"],
        step["fanout"]["reach"],
        step["duplicates"],
        step["out_of_order"],
        step["latency_us"]["p50"],
        step["latency_us"]["p99"],
        step["latency_us"]["max"],
    );
}

#[tokio::main]
async fn main() {
    let sessions = env_or("BENCH_SESSIONS", 19_000);
    let echo_sessions = env_or("BENCH_ECHO_SESSIONS", 1000);
    let echo_messages = env_or("BENCH_ECHO_MESSAGES", 50);
    // A single memory-broker instance, connected to directly: the agent's own cost.
    let max_connections = (sessions + 1000).to_string();
    let direct_server = WsServer::start(1, &["--broker", "memory", "--max-connections", &max_connections]);
    let port = direct_server.port(0);
    let direct = format!("ws://127.0.0.1:{port}/ws");
    if part("idle") {
        let o = idle_sessions(held(&direct, sessions, false)).await;
        println!(
            "agent RSS per open session, {sessions} sessions, plain, direct to one instance: {} bytes",
            o.rss_per_session
        );
        println!(
            "sessions opened per second by one agent, direct: peak {:.0}/s, sustained {:.0}/s; agent CPU {:.0} us per session ({:.0}% of the CPU used)",
            o.peak,
            o.sustained,
            o.agent_cpu_us,
            o.agent_share * 100.0
        );
        let d = idle_sessions(held(&direct, sessions, true)).await;
        println!(
            "agent RSS per open session, {sessions} sessions, permessage-deflate, direct: {} bytes",
            d.rss_per_session
        );
    }
    if part("scenario-idle") {
        let l = idle_sessions(scripted(&direct, sessions, LISTEN_HELD)).await;
        println!(
            "agent RSS per open session, {sessions} sessions, listen-only scenario held idle, direct: {} bytes (opened at {:.0}/s sustained)",
            l.rss_per_session, l.sustained
        );
        let r = idle_sessions(scripted(&direct, sessions, REQUEST_HELD)).await;
        println!(
            "agent RSS per open session, {sessions} sessions, scripted request/expect then held, direct: {} bytes (opened at {:.0}/s sustained)",
            r.rss_per_session, r.sustained
        );
    }

    // The full stack: redis, 12 workers, nginx with the repository's config.
    let redis = Redis::start();
    let server = WsServer::start(12, &["--redis-url", &redis.url(), "--server-event-interval", "0"]);
    let nginx = Nginx::start(&server.ports());
    let target = nginx.url();
    if part("idle") {
        let n = idle_sessions(held(&target, sessions, false)).await;
        println!(
            "sessions opened per second by one agent through nginx: peak {:.0}/s, sustained {:.0}/s; agent CPU {:.0} us per session ({:.0}% of the CPU used; the rest is nginx, 12 workers and redis on the same cores)",
            n.peak,
            n.sustained,
            n.agent_cpu_us,
            n.agent_share * 100.0
        );
        println!(
            "agent RSS per open session, {sessions} sessions, plain, through nginx: {} bytes",
            n.rss_per_session
        );
    }
    if part("echo") {
        echo(&target, echo_sessions, echo_messages).await;
    }
    if part("echo-hops") {
        // One worker takes all 1,000 connects at once: no shedding of them.
        let one = WsServer::start(
            1,
            &[
                "--redis-url",
                &redis.url(),
                "--server-event-interval",
                "0",
                "--shed-latency",
                "0",
                "--max-pending-upgrades",
                "2000",
            ],
        );
        let hops = [
            ("direct to one Redis-backed worker", one.url(one.port(0))),
            ("direct to one memory-broker worker", direct.clone()),
        ];
        echo_hops(&hops, echo_sessions, echo_messages).await;
    }
    if part("fanout") {
        fanout(
            &target,
            &redis.url(),
            env_or("BENCH_LISTENERS", 10_000),
            env_or("BENCH_EVENTS", 20),
        )
        .await;
    }
}
