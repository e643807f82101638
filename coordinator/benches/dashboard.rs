//! Dashboard benchmark: the CPU a `ws-coordinator serve` process spends with 20
//! dashboards following a run over server-sent events, against the same run without
//! them (budget: under 5 % of one core for the 20). A real `ws-agent` holds
//! BENCH_SESSIONS sessions, each sending one message a second, against an in-bench
//! WebSocket server; the 20 dashboards are plain HTTP streams read by this process.
//!
//! Run: `cargo build --release --workspace && cargo bench -p wsload-coordinator --bench dashboard`
//!
//! Environment: BENCH_SESSIONS (2000), BENCH_DASHBOARDS (20), BENCH_SECONDS (15, each
//! measurement).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsload_proto::pb::{control_client::ControlClient, ListAgentsRequest, Plan, StartRunRequest, StopRunRequest};
use wsload_testkit::{agent_process, coordinator_serve, test_ws_server, wait_until_async, Port};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the coordinator runs");
    let after = stat.rsplit_once(')').expect("stat format").1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

/// Kernel clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Percent of one core `pid` uses over `secs`.
async fn cpu_percent(pid: u32, secs: u64) -> f64 {
    let (c0, t0) = (cpu_seconds(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    100.0 * (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64()
}

/// One dashboard: GET /api/events, read the stream until the task is aborted;
/// counts the bytes received.
async fn dashboard(port: u16, bytes: std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let sessions = env_or("BENCH_SESSIONS", 2000);
    let dashboards = env_or("BENCH_DASHBOARDS", 20);
    let secs = env_or("BENCH_SECONDS", 15);
    let (target, _stats) = test_ws_server(Duration::ZERO).await;
    let port = Port::reserve();
    let dash = Port::reserve();
    let out = std::env::temp_dir().join("wsload-bench-dashboard");
    let coord = coordinator_serve(&port, &out, &["--insecure", "--dashboard", &dash.addr().to_string()]);
    let url = format!("http://{}", port.addr());
    let _agent = agent_process(&url, "bench-dash", &["--insecure"]);
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ControlClient::new(channel);
    let c = client.clone();
    wait_until_async(Duration::from_secs(20), "the agent to register", move || {
        let mut c = c.clone();
        async move {
            !c.list_agents(ListAgentsRequest {})
                .await
                .unwrap()
                .into_inner()
                .agents
                .is_empty()
        }
    })
    .await
    .unwrap();
    let run_secs = 4 * secs + 30;
    let run_id = client
        .start_run(StartRunRequest {
            plan: Some(Plan {
                target: format!("ws://{target}/ws"),
                sessions,
                batch_size: sessions.div_ceil(5),
                batch_interval_ms: Some(1000),
                messages_per_session: Some(run_secs),
                message_interval_ms: 1000,
                ..Plan::default()
            }),
            min_agents: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .run_id;
    // Ramp-up done, sessions held and sending.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let pid = coord.pid();
    let without = cpu_percent(pid, secs).await;
    let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..dashboards)
        .map(|_| tokio::spawn(dashboard(dash.number(), bytes.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b0 = bytes.load(std::sync::atomic::Ordering::Relaxed);
    let with = cpu_percent(pid, secs).await;
    let streamed = bytes.load(std::sync::atomic::Ordering::Relaxed) - b0;
    for t in tasks {
        t.abort();
    }
    let _ = client.stop_run(StopRunRequest { run_id }).await;
    println!("dashboard bench: {sessions} sessions held, 1 message/s each, {secs} s per measurement");
    println!("  coordinator CPU without dashboards: {without:.2} % of one core");
    println!("  coordinator CPU with {dashboards} dashboards:  {with:.2} % of one core");
    println!(
        "  cost of the {dashboards} dashboards: {:.2} % of one core ({:.1} KB/s streamed to them in all)",
        with - without,
        streamed as f64 / 1000.0 / secs as f64
    );
}
