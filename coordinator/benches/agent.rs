//! Agent benchmark: agent RSS per open session at 19,000 sessions (plain and with
//! permessage-deflate), sessions opened per second by one agent, and end-to-end
//! messages per second with two agents. Everything runs as real processes on
//! loopback: the server stack (redis, 12 `ws-server` workers, nginx with the
//! repository's config; the agents connect through nginx), `ws-coordinator serve`,
//! and `ws-agent`, driven over the Control API.
//!
//! Run: `cargo build --release --workspace && cargo bench -p wsload-coordinator --bench agent`
//!
//! Environment: BENCH_SESSIONS (19000), BENCH_ECHO_SESSIONS (1000),
//! BENCH_ECHO_MESSAGES (50).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, real_server_with, stack, workspace_bin, Proc};
use wsload_proto::pb::{
    control_client::ControlClient, GetSummaryRequest, ListAgentsRequest, Plan, StartRunRequest, StopRunRequest,
    Summary, WatchRunRequest,
};

type Client = ControlClient<tonic::transport::Channel>;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn spawn(bin: PathBuf, args: &[&str]) -> Proc {
    Proc(
        Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    )
}

async fn wait_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

/// A coordinator daemon and `agents` agent processes; returns the client and the agents.
async fn stack(agents: usize) -> (Proc, Vec<Proc>, Client) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let out = std::env::temp_dir().join("wsload-bench-runs");
    let coord = spawn(
        PathBuf::from(env!("CARGO_BIN_EXE_ws-coordinator")),
        &[
            "serve",
            "--listen",
            &listen,
            "--insecure",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    wait_port(port).await;
    let url = format!("http://{listen}");
    let procs: Vec<Proc> = (0..agents)
        .map(|i| {
            spawn(
                workspace_bin("ws-agent"),
                &[
                    "--coordinator",
                    &url,
                    "--insecure",
                    "--name",
                    &format!("bench-{i}"),
                    "--source-ips",
                    "127.0.0.2-127.0.0.9",
                ],
            )
        })
        .collect();
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ControlClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .list_agents(ListAgentsRequest {})
        .await
        .unwrap()
        .into_inner()
        .agents
        .len()
        < agents
    {
        assert!(Instant::now() < deadline, "agents did not register");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (coord, procs, client)
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

/// Opens `sessions` sessions and holds them open.
async fn idle_sessions(target: &str, sessions: u64, compression: bool) -> Opening {
    let (_coord, agents, mut client) = stack(1).await;
    let pid = agents[0].0.id();
    let idle = stack::rss_kb(pid);
    let (agent0, machine0) = (process_ticks(pid), machine_busy_ticks());
    let plan = Plan {
        target: target.into(),
        sessions,
        batch_size: 1000,
        batch_interval_ms: Some(100),
        max_active_batches: 1000,
        messages_per_session: Some(1),
        hold_ms: 600_000,
        compression,
        ..Default::default()
    };
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
    let rss = stack::rss_kb(pid);
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

#[tokio::main]
async fn main() {
    let sessions = env_or("BENCH_SESSIONS", 19_000);
    let echo_sessions = env_or("BENCH_ECHO_SESSIONS", 1000);
    let echo_messages = env_or("BENCH_ECHO_MESSAGES", 50);
    // A single memory-broker instance, connected to directly: the agent's own cost.
    let (_direct, port) = real_server_with(&["--max-connections", &(sessions + 1000).to_string()]).await;
    let direct = format!("ws://127.0.0.1:{port}/ws");
    let o = idle_sessions(&direct, sessions, false).await;
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
    let d = idle_sessions(&direct, sessions, true).await;
    println!(
        "agent RSS per open session, {sessions} sessions, permessage-deflate, direct: {} bytes",
        d.rss_per_session
    );

    // The full stack: redis, 12 workers, nginx with the repository's config.
    let redis = stack::Redis::start();
    let server = stack::Server::start(12, &["--redis-url", &redis.url(), "--server-event-interval", "0"]);
    let nginx = stack::Nginx::start(server.base_port);
    let target = nginx.url();
    let n = idle_sessions(&target, sessions, false).await;
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

    let (_coord, _agents, mut client) = stack(2).await;
    let plan = Plan {
        target: target.clone(),
        sessions: echo_sessions,
        batch_size: echo_sessions / 2,
        batch_interval_ms: Some(0),
        messages_per_session: Some(echo_messages),
        ..Default::default()
    };
    let req = StartRunRequest {
        plan: Some(plan),
        min_agents: 2,
        ..Default::default()
    };
    let run_id = client.start_run(req).await.unwrap().into_inner().run_id;
    let s = finish(&mut client, &run_id).await;
    assert_eq!(s.responses, echo_sessions * echo_messages, "{s:?}");
    println!(
        "end to end, 2 agents, {echo_sessions} sessions x {echo_messages} messages back-to-back: {} responses in {:.2} s = {:.0} messages/s (rtt p50 {:.2} ms, p99 {:.2} ms)",
        s.responses, s.duration_seconds, s.messages_per_second, s.rtt_p50_ms, s.rtt_p99_ms
    );
}
