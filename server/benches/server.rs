//! Server benchmark: RSS per idle session at 19,000 sessions on one instance
//! (plain and compressed), and echo messages per second through nginx with Redis
//! counting. Run: `cargo bench -p wsload-server --bench server`.
//!
//! Environment: BENCH_SESSIONS (19000), BENCH_ECHO_CLIENTS (1000),
//! BENCH_ECHO_MESSAGES (50).

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
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

struct Worker(Child);
impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn idle_rss(sessions: usize, compressed: bool) {
    let port = common::free_port();
    let child = Command::new(common::server_bin())
        .args([
            "--broker",
            "memory",
            "--max-connections",
            "20000",
            "--server-event-interval",
            "0",
        ])
        .args(["--compression", if compressed { "true" } else { "false" }])
        .args(["worker", "--port", &port.to_string()])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("start ws-server worker");
    let worker = Worker(child);
    assert!(common::wait_healthy(port, Duration::from_secs(10)));
    let pid = worker.0.id();
    // Warm up: one session, so lazily allocated runtime state is in the baseline.
    let pool = DeflatePool::new(4);
    let warm = dial(0, port, client_options(compressed, &pool)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = common::rss_kb(pid);
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
    let after = common::rss_kb(pid);
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

async fn echo_through_nginx(clients: usize, messages: usize) {
    let redis = common::Redis::start();
    let server = common::Server::start(12, &["--redis-url", &redis.url(), "--server-event-interval", "0"]);
    let nginx = common::Nginx::start(server.base_port);
    let pool = DeflatePool::new(4);
    let mut sockets = Vec::with_capacity(clients);
    for i in 0..clients {
        sockets.push(dial(i, nginx.port, client_options(false, &pool)).await);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
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
    idle_rss(sessions, false).await;
    idle_rss(sessions, true).await;
    let clients = env_or("BENCH_ECHO_CLIENTS", 1000);
    if clients > 0 {
        echo_through_nginx(clients, env_or("BENCH_ECHO_MESSAGES", 50)).await;
    }
}
