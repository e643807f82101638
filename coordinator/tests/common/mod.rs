//! Shared test helpers: free ports, the real `ws-server` and `ws-agent` binaries of
//! this workspace as child processes, and a small WebSocket server speaking the
//! seed's JSON protocol with a configurable reply delay.
#![allow(dead_code)]

/// The server stack harness (redis, ws-server, nginx) shared with the server's tests.
#[path = "../../../server/tests/common/mod.rs"]
pub mod stack;
pub use stack::workspace_bin;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// A port nobody listens on right now (bound to 0, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Waits up to `limit` for the exit status.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// Starts `ws-server --broker memory --instances 1 --base-port P` and waits for it.
pub async fn real_server() -> (Proc, u16) {
    real_server_with(&[]).await
}

/// Like [`real_server`] with extra server flags.
pub async fn real_server_with(extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new(workspace_bin("ws-server"))
        .args([
            "--broker",
            "memory",
            "--instances",
            "1",
            "--base-port",
            &port.to_string(),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ws-server");
    let proc = Proc(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (proc, port);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ws-server did not listen on {port}");
}

/// Starts a `ws-agent` process.
pub fn agent_process(coordinator: &str, name: &str, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(workspace_bin("ws-agent"));
    cmd.args(["--coordinator", coordinator, "--name", name]).args(extra);
    cmd.env("RUST_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::piped());
    Proc(cmd.spawn().expect("spawn ws-agent"))
}

/// Counters of the test WebSocket server.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections accepted in total.
    pub accepted: AtomicUsize,
    /// Text messages received.
    pub messages: AtomicUsize,
}

/// A WebSocket server speaking the seed's protocol; each reply is sent `delay` after
/// its message (independently, so delays do not add up).
pub async fn test_ws_server(delay: Duration) -> (SocketAddr, Arc<Stats>) {
    test_ws_server_with(delay, |count| {
        format!(r#"{{"type":"response","message":"Message received successfully!","messageCount":{count}}}"#)
    })
    .await
}

/// Like [`test_ws_server`], replying to message number `count` with `reply(count)`.
pub async fn test_ws_server_with(delay: Duration, reply: fn(u64) -> String) -> (SocketAddr, Arc<Stats>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let stats = s.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let cfg = WebSocketConfig::default().read_buffer_size(4096);
                let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(cfg)).await else {
                    return;
                };
                stats.accepted.fetch_add(1, Ordering::SeqCst);
                stats.open.fetch_add(1, Ordering::SeqCst);
                let (mut tx, mut rx) = ws.split();
                let (out_tx, mut out_rx) = mpsc::channel::<Message>(1024);
                let session = r#"{"type":"session","sessionId":"00000000-0000-4000-8000-000000000000","timestamp":"2026-01-01T00:00:00Z"}"#;
                let _ = tx.send(Message::text(session)).await;
                let mut count = 0u64;
                loop {
                    tokio::select! {
                        m = rx.next() => match m {
                            Some(Ok(Message::Text(_))) => {
                                count += 1;
                                stats.messages.fetch_add(1, Ordering::SeqCst);
                                let reply = reply(count);
                                let out = out_tx.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(delay).await;
                                    let _ = out.send(Message::text(reply)).await;
                                });
                            }
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                            Some(Ok(_)) => {}
                        },
                        Some(m) = out_rx.recv() => { if tx.send(m).await.is_err() { break; } }
                    }
                }
                let _ = tx.close().await;
                stats.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, stats)
}

/// `ws-coordinator run ARGS...` parsed into options.
pub fn run_opts(args: &[&str]) -> wsload_coordinator::cli::RunOpts {
    use clap::Parser;
    let mut v = vec!["ws-coordinator", "run", "--quiet"];
    v.extend_from_slice(args);
    match wsload_coordinator::cli::Cli::parse_from(v).command {
        wsload_coordinator::cli::Command::Run(o) => *o,
        _ => unreachable!(),
    }
}

/// Runs `opts` in-process on `listener` and returns its exit code and result, failing
/// the test if the run errors or takes longer than `limit`: the same check ends every
/// in-process run, so a hang shows up as a failure instead of a stuck test.
pub async fn run_within(
    limit: Duration,
    listener: TcpListener,
    opts: wsload_coordinator::cli::RunOpts,
    cancel: tokio_util::sync::CancellationToken,
) -> (u8, wsload_coordinator::hub::Finished) {
    tokio::time::timeout(limit, wsload_coordinator::cli::run::run_on(listener, opts, cancel))
        .await
        .expect("no hang")
        .expect("run ok")
}

/// A fresh temporary report directory.
pub fn out_dir(name: &str) -> OutDir {
    let d = std::env::temp_dir().join(format!("wsload-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    OutDir(d)
}

/// A report directory under the temp dir, removed when the test ends.
pub struct OutDir(PathBuf);

impl std::ops::Deref for OutDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for OutDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sum of a Prometheus counter (all label sets) from the server's `GET /metrics`.
pub async fn server_metric(port: u16, name: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
