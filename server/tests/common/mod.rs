//! Test harness: a private redis-server, a private nginx running the repository's
//! config files, and `ws-server` as a child process, all on free loopback ports.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Resident set size of a process in KiB (`VmRSS`), 0 if it is gone.
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The first of `n` consecutive free ports.
pub fn free_port_range(n: u16) -> u16 {
    // Below the kernel's ephemeral range: a client socket's local port comes from that
    // range, and one could take a port of the range between this check and the
    // server's bind (seen once: a worker could not listen for 13 s, its port held by
    // another test's connection).
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.saturating_sub(n));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let seed = u64::from(std::process::id()) ^ now.map_or(0, |d| u64::from(d.subsec_nanos()));
    for attempt in 0..200u64 {
        let base = if high > low {
            let spread = seed
                .wrapping_add(attempt.wrapping_mul(7919))
                .wrapping_mul(6_364_136_223_846_793_005)
                >> 33;
            low + u16::try_from(spread % u64::from(high - low)).unwrap_or(0)
        } else {
            free_port()
        };
        if u32::from(base) + u32::from(n) >= 65000 {
            continue;
        }
        let held: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == n as usize {
            return base;
        }
    }
    panic!("no {n} consecutive free ports");
}

/// Polls `f` until it is true or `timeout` passes.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, mut f: F) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits until `GET /healthz` on `port` answers 200.
pub fn wait_healthy(port: u16, timeout: Duration) -> bool {
    use std::io::{Read, Write};
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn find_binary(name: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p.to_string_lossy().into_owned();
        }
    }
    panic!("{name} is not installed (the README's test command installs it)");
}

fn terminate(child: &mut Child, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A private redis-server.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        let mut r = Redis {
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        let child = Command::new(find_binary("redis-server"))
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(10)),
            "redis-server did not start"
        );
    }

    /// Kills it (an outage).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `ws-server` as a child process.
pub struct Server {
    pub base_port: u16,
    pub instances: u16,
    child: Option<Child>,
}

/// A binary of this workspace, built by `cargo build --workspace` into the same
/// target/<profile>/ directory as the running test or bench (whose executable
/// sits in target/<profile>/deps/), so debug, release and a custom target dir all work.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        p.exists(),
        "{} not found: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// The `ws-server` binary: cargo's own path in this package's tests and benches,
/// else the workspace's.
pub fn server_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_ws-server") {
        Some(p) => PathBuf::from(p),
        None => workspace_bin("ws-server"),
    }
}

impl Server {
    /// Starts the supervisor with `instances` on free ports plus `extra` options,
    /// and waits until every instance accepts connections.
    pub fn start(instances: u16, extra: &[&str]) -> Self {
        let base_port = free_port_range(instances);
        let mut args = vec![
            "--instances".to_owned(),
            instances.to_string(),
            "--base-port".to_owned(),
            base_port.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(server_bin())
            .args(&args)
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start ws-server");
        let s = Server {
            base_port,
            instances,
            child: Some(child),
        };
        for p in s.ports() {
            assert!(
                wait_healthy(p, Duration::from_secs(15)),
                "instance on {p} did not become healthy"
            );
        }
        s
    }

    pub fn ports(&self) -> Vec<u16> {
        (0..self.instances).map(|i| self.base_port + i).collect()
    }

    pub fn url(&self, port: u16) -> String {
        format!("ws://127.0.0.1:{port}/ws")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig).unwrap();
    }

    /// Waits for the supervisor to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(10));
        }
    }
}

/// Runs `ws-server` with `args` to completion.
pub fn run_server_cmd(args: &[&str]) -> Output {
    Command::new(server_bin())
        .args(args)
        .env_remove("REDIS_URL")
        .output()
        .expect("run ws-server")
}

/// A private nginx running `nginx/nginx.conf` and `nginx/sites-available/default`
/// from the repository, with the listen port, upstream ports and prefix substituted.
pub struct Nginx {
    pub port: u16,
    /// The `wss://` listener, when started with [`Nginx::start_with_tls`].
    pub tls_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
}

/// The repository site's commented TLS server block, uncommented, listening on
/// `port` with `cert` and `key`.
fn tls_block(site: &str, port: u16, cert: &Path, key: &Path) -> String {
    let start = site.find("# TLS (wss://)").expect("the site has a commented TLS block");
    let mut block = String::new();
    for line in site[start..].lines().skip(1) {
        let Some(rest) = line.strip_prefix('#') else { break };
        block.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        block.push('\n');
    }
    let cert_line = block
        .lines()
        .find(|l| l.trim_start().starts_with("ssl_certificate "))
        .expect("ssl_certificate")
        .to_string();
    let key_line = block
        .lines()
        .find(|l| l.trim_start().starts_with("ssl_certificate_key "))
        .expect("ssl_certificate_key")
        .to_string();
    block
        .replace("listen 443 ", &format!("listen 127.0.0.1:{port} "))
        .replace(&cert_line, &format!("    ssl_certificate {};", cert.display()))
        .replace(&key_line, &format!("    ssl_certificate_key {};", key.display()))
}

impl Nginx {
    pub fn start(upstream_base: u16) -> Self {
        Self::start_inner(upstream_base, None)
    }

    /// Also enables the site's TLS block (the `wss://` template) with this certificate.
    pub fn start_with_tls(upstream_base: u16, cert: &Path, key: &Path) -> Self {
        Self::start_inner(upstream_base, Some((cert, key)))
    }

    fn start_inner(upstream_base: u16, tls: Option<(&Path, &Path)>) -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = std::env::temp_dir().join(format!("wsload-nginx-{}-{}", std::process::id(), free_port()));
        for sub in ["sites-enabled", "conf.d", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let port = free_port();
        let prefix = format!("{}/", dir.display());
        let conf = std::fs::read_to_string(repo.join("nginx/nginx.conf")).unwrap();
        let conf = conf
            .replace("user www-data;", "")
            .replace("/etc/nginx/", &prefix)
            .replace("/var/log/nginx/", &format!("{prefix}logs/"))
            .replace("/run/nginx.pid", &format!("{prefix}nginx.pid"));
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut site = std::fs::read_to_string(repo.join("nginx/sites-available/default")).unwrap();
        let tls_port = tls.map(|(cert, key)| {
            let p = free_port();
            site.push_str(&tls_block(&site, p, cert, key));
            p
        });
        site = site.replace("listen 80 ", &format!("listen 127.0.0.1:{port} "));
        for i in 0..12u16 {
            site = site.replace(
                &format!("127.0.0.1:{} ", 9001 + i),
                &format!("127.0.0.1:{} ", upstream_base + i),
            );
        }
        std::fs::write(dir.join("sites-enabled/default"), site).unwrap();
        let child = Command::new(find_binary("nginx"))
            .args(["-p", &prefix, "-c", &format!("{prefix}nginx.conf"), "-g", "daemon off;"])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        for p in std::iter::once(port).chain(tls_port) {
            assert!(wait_for_port(p, Duration::from_secs(10)), "nginx did not start");
        }
        Nginx {
            port,
            tls_port,
            dir,
            child: Some(child),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// The `wss://` URL (with [`Nginx::start_with_tls`]).
    pub fn wss_url(&self) -> String {
        format!("wss://127.0.0.1:{}/ws", self.tls_port.expect("started with TLS"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A tokio-tungstenite client with small buffers (its defaults cost ~135 KB each).
pub async fn connect(url: &str) -> Ws {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    config.write_buffer_size = 0;
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    .expect("connect timed out")
    .expect("connect");
    ws
}

/// The next text frame as JSON (pings are answered by tungstenite while reading).
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("stream ended")
            .expect("read error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).expect("valid JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Connects and returns the socket with its session event.
pub async fn open_session(url: &str) -> (Ws, Value) {
    let mut ws = connect(url).await;
    let session = next_json(&mut ws).await;
    assert_eq!(session["type"], "session", "first event must be the session event");
    (ws, session)
}

/// Sends a text message and returns the reply.
pub async fn roundtrip(ws: &mut Ws, text: &str) -> Value {
    ws.send(Message::text(text)).await.expect("send");
    next_json(ws).await
}

/// Reads until the server closes; returns the close code (None on a bare EOF).
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
        }
    }
    None
}

/// Fetches a plain HTTP path from an instance: (status, body).
pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut buf)).await;
    let status = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = buf.split_once("\r\n\r\n").map(|x| x.1.to_owned()).unwrap_or_default();
    (status, body)
}

/// A metric's value from an instance's `/metrics`.
pub async fn metric(port: u16, name: &str) -> f64 {
    let (_, body) = http_get(port, "/metrics").await;
    body.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
