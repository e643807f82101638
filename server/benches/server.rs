//! Server benchmark: RSS per idle session at 19,000 sessions on one instance
//! (plain and compressed), the worker's CPU time per 1,000 messages, and echo
//! messages per second through nginx with Redis counting.
//! Run: `cargo bench -p wsload-server --bench server`.
//!
//! Environment: BENCH_SESSIONS (19000), BENCH_CPU_CLIENTS (100),
//! BENCH_CPU_MESSAGES (2000 per client), BENCH_ECHO_CLIENTS (1000),
//! BENCH_ECHO_MESSAGES (50); 0 skips a part. BENCH_SERVER_BIN runs another
//! `ws-server` binary as the single worker (to compare builds).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use wsload_testkit::{rss_kb, Nginx, Redis, WsServer};
use yawc::frame::{Frame, OpCode};
use yawc::{DeflatePool, Options, WebSocket};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

type Client = WebSocket<TcpStream>;

/// Connects from source address 127.0.0.(2 + i % 8) so 19,000 sockets never run
/// short of ephemeral ports.
async fn dial(i: usize, port: u16, options: Options) -> Client {
    let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 8) as u8));
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(src, 0)).unwrap();
    let stream = socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await.unwrap();
    let url = format!("ws://127.0.0.1:{port}/ws").parse().unwrap();
    let mut ws = WebSocket::handshake(url, stream, options).await.expect("handshake");
    // Wait for the session event so the server has finished setting the session up.
    loop {
        let f = ws.next_frame().await.expect("session event");
        if f.opcode() == OpCode::Text {
            break;
        }
    }
    ws
}

fn client_options(compressed: bool, pool: &DeflatePool) -> Options {
    let o = Options::default()
        .with_read_buffer_capacity(4096)
        .with_write_buffer_capacity(1024);
    if compressed {
        o.with_low_latency_compression()
            .server_no_context_takeover()
            .client_no_context_takeover()
            .with_deflate_pool(pool.clone())
    } else {
        o
    }
}

/// Starts one `ws-server worker` (memory broker, one runtime thread: what the
/// supervisor gives each of 12 workers on this machine) and waits until it serves.
/// `BENCH_SERVER_BIN` runs another build (it must take inherited listeners).
fn start_worker(compressed: bool) -> WsServer {
    WsServer::start_worker(&[
        "--broker",
        "memory",
        "--max-connections",
        "20000",
        "--server-event-interval",
        "0",
        "--compression",
        if compressed { "true" } else { "false" },
    ])
}

/// User + system CPU time of a process so far (from /proc/PID/stat).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    // /proc counts in USER_HZ, which is 100 on Linux whatever the kernel's tick rate.
    Duration::from_millis(ticks * 10)
}

async fn idle_rss(sessions: usize, compressed: bool) {
    let worker = start_worker(compressed);
    let (port, pid) = (worker.port(0), worker.pid());
    // Warm up: one session, so lazily allocated runtime state is in the baseline.
    let pool = DeflatePool::new(4);
    let warm = dial(0, port, client_options(compressed, &pool)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kb(pid);
    let limit = Arc::new(Semaphore::new(256));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let permit = limit.clone().acquire_owned().await.unwrap();
        let opts = client_options(compressed, &pool);
        handles.push(tokio::spawn(async move {
            let ws = dial(i + 1, port, opts).await;
            drop(permit);
            ws
        }));
    }
    let mut clients = Vec::with_capacity(sessions);
    for h in handles {
        clients.push(h.await.expect("session opened"));
    }
    let opened = start.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kb(pid);
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / sessions as f64;
    println!(
        "idle RSS, {}: {sessions} sessions on one instance: {before} KiB -> {after} KiB = {:.0} bytes ({:.1} KB) per session (opened in {:.1} s)",
        if compressed { "permessage-deflate" } else { "plain" },
        per,
        per / 1000.0,
        opened.as_secs_f64()
    );
    drop(clients);
    drop(warm);
}

/// Sends `messages` from each of `clients` back-to-back (each waits for its
/// response) to one worker, and reports the worker's CPU time per 1,000 messages.
async fn cpu_per_message(clients: usize, messages: usize) {
    let worker = start_worker(false);
    let (port, pid) = (worker.port(0), worker.pid());
    let pool = DeflatePool::new(4);
    let mut sockets = Vec::with_capacity(clients);
    for i in 0..clients {
        sockets.push(dial(i, port, client_options(false, &pool)).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = cpu_time(pid);
    let start = Instant::now();
    let total = exchange(sockets, messages).await;
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    assert_eq!(total, clients * messages, "every message answered");
    println!(
        "worker CPU, memory broker, one thread: {clients} clients x {messages} messages = {total} in {secs:.2} s; {:.0} ms CPU = {:.2} ms per 1,000 messages",
        cpu.as_secs_f64() * 1000.0,
        cpu.as_secs_f64() * 1e6 / total as f64
    );
}

/// Each socket sends `messages` back-to-back, waiting for each response; returns
/// the number of responses.
async fn exchange(sockets: Vec<Client>, messages: usize) -> usize {
    let mut tasks = Vec::with_capacity(sockets.len());
    for mut ws in sockets {
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            for _ in 0..messages {
                ws.send(Frame::text("benchmark message")).await.unwrap();
                loop {
                    let f = ws.next_frame().await.unwrap();
                    if f.opcode() == OpCode::Text {
                        if f.as_str().contains("\"response\"") {
                            ok += 1;
                        }
                        break;
                    }
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total
}

async fn echo_through_nginx(clients: usize, messages: usize) {
    let redis = Redis::start();
    let server = WsServer::start(12, &["--redis-url", &redis.url(), "--server-event-interval", "0"]);
    let nginx = Nginx::start(&server.ports());
    let pool = DeflatePool::new(4);
    let mut sockets = Vec::with_capacity(clients);
    for i in 0..clients {
        sockets.push(dial(i, nginx.port(), client_options(false, &pool)).await);
    }
    let start = Instant::now();
    let total = exchange(sockets, messages).await;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total, clients * messages, "every message answered");
    println!(
        "echo through nginx, Redis counting, 12 workers: {clients} clients x {messages} messages = {total} in {secs:.2} s = {:.0} messages/s",
        total as f64 / secs
    );
}

#[tokio::main]
async fn main() {
    wsload_server::raise_open_file_limit();
    let sessions = env_or("BENCH_SESSIONS", 19_000);
    if sessions > 0 {
        idle_rss(sessions, false).await;
        idle_rss(sessions, true).await;
    }
    let clients = env_or("BENCH_CPU_CLIENTS", 100);
    if clients > 0 {
        cpu_per_message(clients, env_or("BENCH_CPU_MESSAGES", 2000)).await;
    }
    let clients = env_or("BENCH_ECHO_CLIENTS", 1000);
    if clients > 0 {
        echo_through_nginx(clients, env_or("BENCH_ECHO_MESSAGES", 50)).await;
    }
}
