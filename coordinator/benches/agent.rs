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

use common::{free_port, stack, workspace_bin, Proc};
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

/// Opens `sessions` sessions held open; returns (bytes of agent RSS per session,
/// peak sessions opened in one second, average sessions opened per second).
async fn idle_sessions(target: &str, sessions: u64, compression: bool) -> (u64, f64, f64) {
    let (_coord, agents, mut client) = stack(1).await;
    let pid = agents[0].0.id();
    let idle = stack::rss_kb(pid);
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
    let mut peak = 0.0f64;
    let mut all_open_after = 0i64;
    while let Some(p) = watch.message().await.unwrap() {
        peak = peak.max(p.connections_per_second);
        if p.active_sessions >= sessions {
            all_open_after = p.second + 1;
            break;
        }
        assert!(p.errors.is_empty(), "errors while opening: {:?}", p.errors);
        assert!(!p.done, "run ended early: {}", p.state);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = stack::rss_kb(pid);
    client
        .stop_run(StopRunRequest { run_id: run_id.clone() })
        .await
        .unwrap();
    finish(&mut client, &run_id).await;
    let per_session = (rss.saturating_sub(idle)) * 1024 / sessions;
    (per_session, peak, sessions as f64 / all_open_after.max(1) as f64)
}

#[tokio::main]
async fn main() {
    let sessions = env_or("BENCH_SESSIONS", 19_000);
    let echo_sessions = env_or("BENCH_ECHO_SESSIONS", 1000);
    let echo_messages = env_or("BENCH_ECHO_MESSAGES", 50);
    // A single memory-broker instance, connected to directly: the agent's own cost.
    let port = free_port();
    let _direct = spawn(
        workspace_bin("ws-server"),
        &[
            "--broker",
            "memory",
            "--instances",
            "1",
            "--base-port",
            &port.to_string(),
            "--max-connections",
            &(sessions + 1000).to_string(),
        ],
    );
    wait_port(port).await;
    let direct = format!("ws://127.0.0.1:{port}/ws");
    let (plain, peak, avg) = idle_sessions(&direct, sessions, false).await;
    println!("agent RSS per open session, {sessions} sessions, plain, direct to one instance: {plain} bytes");
    println!("sessions opened per second by one agent, direct: peak {peak:.0}/s, average {avg:.0}/s");
    let (deflate, _, _) = idle_sessions(&direct, sessions, true).await;
    println!("agent RSS per open session, {sessions} sessions, permessage-deflate, direct: {deflate} bytes");

    // The full stack: redis, 12 workers, nginx with the repository's config.
    let redis = stack::Redis::start();
    let server = stack::Server::start(12, &["--redis-url", &redis.url(), "--server-event-interval", "0"]);
    let nginx = stack::Nginx::start(server.base_port);
    let target = nginx.url();
    let (plain, peak, avg) = idle_sessions(&target, sessions, false).await;
    println!("sessions opened per second by one agent through nginx: peak {peak:.0}/s, average {avg:.0}/s");
    println!("agent RSS per open session, {sessions} sessions, plain, through nginx: {plain} bytes");

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
