//! Plain HTTP/1.1 GETs to an instance's `/healthz` and `/metrics` (or through nginx).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wait::{wait_until, Deadline, TimedOut};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

/// (status, body) of a raw response; status 0 when there is none.
fn split_response(raw: &str) -> (u16, String) {
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|x| x.1.to_owned()).unwrap_or_default();
    (status, body)
}

/// Whether `GET /healthz` on 127.0.0.1:`port` answers 200 right now (blocking).
pub fn healthz(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = s.write_all(request("/healthz").as_bytes());
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    split_response(&raw).0 == 200
}

/// Waits (blocking) until `GET /healthz` on `port` answers 200.
pub fn wait_healthy(port: u16, deadline: impl Into<Deadline>) -> Result<std::time::Duration, TimedOut> {
    wait_until(deadline, &format!("/healthz on port {port} to answer 200"), || {
        healthz(port)
    })
}

/// `GET path` on 127.0.0.1:`port`: (status, body); status 0 when nothing answered.
pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
    s.write_all(request(path).as_bytes()).await.expect("send the request");
    let mut raw = String::new();
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, s.read_to_string(&mut raw)).await;
    split_response(&raw)
}
