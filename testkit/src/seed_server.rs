//! A small WebSocket server speaking the seed's protocol (the fixture's events) with
//! a configurable reply delay, for load-generator tests that need a known latency
//! or a scripted reply. It counts what it sees, also per client address, so a test
//! can wait for "agent X has sessions open" instead of sleeping.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::seed;

/// Counters of the test server.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections accepted in total.
    pub accepted: AtomicUsize,
    /// Text messages received.
    pub messages: AtomicUsize,
    /// Connections open now, by client address.
    open_by_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Stats {
    /// Connections open now from `ip` (an agent with its own `--source-ips`).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.by_ip().get(&ip).copied().unwrap_or(0)
    }

    fn by_ip(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open_by_ip.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn opened(&self, ip: IpAddr) {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        self.open.fetch_add(1, Ordering::SeqCst);
        *self.by_ip().entry(ip).or_insert(0) += 1;
    }

    fn closed(&self, ip: IpAddr) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        if let Some(n) = self.by_ip().get_mut(&ip) {
            *n -= 1;
        }
    }
}

/// A server whose reply to each message is the seed's `response` event, sent `delay`
/// after the message (independently, so delays do not add up). Runs until the test's
/// runtime ends.
pub async fn test_ws_server(delay: Duration) -> (SocketAddr, Arc<Stats>) {
    test_ws_server_with(delay, seed::response).await
}

/// Like [`test_ws_server`], replying to message number `count` with `reply(count)`.
pub async fn test_ws_server_with(delay: Duration, reply: fn(u64) -> String) -> (SocketAddr, Arc<Stats>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the test server");
    let addr = listener.local_addr().expect("its address");
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            tokio::spawn(serve(tcp, peer.ip(), delay, reply, s.clone()));
        }
    });
    (addr, stats)
}

/// One connection: the session event, then a delayed reply per text message.
async fn serve(tcp: TcpStream, peer: IpAddr, delay: Duration, reply: fn(u64) -> String, stats: Arc<Stats>) {
    let _ = tcp.set_nodelay(true);
    let cfg = WebSocketConfig::default().read_buffer_size(4096);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(cfg)).await else {
        return;
    };
    stats.opened(peer);
    let (mut tx, mut rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(1024);
    let _ = tx.send(Message::text(seed::session())).await;
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
    stats.closed(peer);
}
