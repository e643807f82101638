//! WebSocket servers that are not ours, for scenario tests: an echo server, a
//! request/reply server that answers out of order and pushes unrelated messages in
//! between, a server with a known per-message delay, and a chat room that broadcasts
//! every message to every connection, and an echo server that can close all its
//! sessions, stop accepting and start again on the same port ([`Restarter`]). Each
//! counts what it received and sent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// What a scenario test server saw.
#[derive(Debug, Default)]
pub struct Counts {
    /// Connections accepted.
    pub accepted: AtomicUsize,
    /// Connections open now.
    pub open: AtomicUsize,
    /// Data messages received.
    pub received: AtomicUsize,
    /// Replies sent (not pushes).
    pub replies: AtomicUsize,
    /// Unrelated pushes sent.
    pub pushes: AtomicUsize,
    /// Sessions the server closed ([`Restarter`]).
    pub closed: AtomicUsize,
}

impl Counts {
    /// A counter's value.
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
}

/// How a server answers one data message: `None` ignores it, else the reply and its
/// delay.
type Answer = Arc<dyn Fn(&Message) -> Option<(Message, Duration)> + Send + Sync>;

async fn listen(answer: Answer, push_every: Option<Duration>) -> (std::net::SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a test server");
    let addr = listener.local_addr().expect("its address");
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp, answer.clone(), push_every, c.clone()));
        }
    });
    (addr, counts)
}

async fn accept(tcp: TcpStream) -> Option<tokio_tungstenite::WebSocketStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    let cfg = WebSocketConfig::default().read_buffer_size(4096);
    tokio_tungstenite::accept_async_with_config(tcp, Some(cfg)).await.ok()
}

async fn serve(tcp: TcpStream, answer: Answer, push_every: Option<Duration>, counts: Arc<Counts>) {
    let Some(ws) = accept(tcp).await else { return };
    counts.accepted.fetch_add(1, Ordering::SeqCst);
    counts.open.fetch_add(1, Ordering::SeqCst);
    let (mut tx, mut rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(4096);
    let mut pushes = tokio::time::interval(push_every.unwrap_or(Duration::from_secs(3600)));
    pushes.tick().await;
    let mut n = 0u64;
    loop {
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    counts.received.fetch_add(1, Ordering::SeqCst);
                    if let Some((reply, delay)) = answer(&m) {
                        let out = out_tx.clone();
                        let counts = counts.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            if out.send(reply).await.is_ok() {
                                counts.replies.fetch_add(1, Ordering::SeqCst);
                            }
                        });
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = pushes.tick(), if push_every.is_some() => {
                n += 1;
                let push = format!(r#"{{"type":"push","n":{n}}}"#);
                if tx.send(Message::text(push)).await.is_err() { break; }
                counts.pushes.fetch_add(1, Ordering::SeqCst);
            }
            Some(m) = out_rx.recv() => { if tx.send(m).await.is_err() { break; } }
        }
    }
    let _ = tx.close().await;
    counts.open.fetch_sub(1, Ordering::SeqCst);
}

/// Echoes every text and binary message back at once.
pub async fn echo_server() -> (std::net::SocketAddr, Arc<Counts>) {
    listen(Arc::new(|m: &Message| Some((m.clone(), Duration::ZERO))), None).await
}

fn json(m: &Message) -> Option<Value> {
    match m {
        Message::Text(t) => serde_json::from_str(t).ok(),
        _ => None,
    }
}

/// Answers `{"id": X, "op": "get"}` with `{"type":"reply","id": X}` after a delay that
/// varies with the id (so replies overtake each other; other ops get no reply) and
/// pushes `{"type":"push","n":k}` every `push_every` in between: a reply can only be
/// paired with its request by its id.
pub async fn pushy_server(push_every: Duration) -> (std::net::SocketAddr, Arc<Counts>) {
    let answer = Arc::new(|m: &Message| {
        let v = json(m)?;
        if v.get("op")?.as_str()? != "get" {
            return None;
        }
        let id = v.get("id")?.clone();
        let spread = match &id {
            Value::String(s) => s.bytes().map(u64::from).sum::<u64>() % 15,
            other => other.as_u64().unwrap_or(0) % 15,
        };
        let reply = serde_json::json!({"type": "reply", "id": id}).to_string();
        Some((Message::text(reply), Duration::from_millis(spread)))
    });
    listen(answer, Some(push_every)).await
}

/// The delay the known-delay server gives message `seq`: 100, 200, ... 1,000 ms in
/// turn (`seq` 1 -> 200 ms, ..., 9 -> 1,000 ms, 10 -> 100 ms).
pub fn known_delay(seq: u64) -> Duration {
    Duration::from_millis(100 * (seq % 10 + 1))
}

/// Answers `{"seq": N}` with `{"seq": N}` after [`known_delay`]`(N)`.
pub async fn known_delay_server() -> (std::net::SocketAddr, Arc<Counts>) {
    let answer = Arc::new(|m: &Message| {
        let seq = json(m)?.get("seq")?.as_u64()?;
        Some((Message::text(format!(r#"{{"seq":{seq}}}"#)), known_delay(seq)))
    });
    listen(answer, None).await
}

/// A chat room: every text message any connection sends goes to every connection
/// (the sender too), in the order the room received them. Posts wait until `members`
/// connections have joined, so a test's listeners hear every post however slowly
/// they connected.
pub async fn chat_server(members: usize) -> (std::net::SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the chat server");
    let addr = listener.local_addr().expect("its address");
    let counts = Arc::new(Counts::default());
    let (room, _) = broadcast::channel::<Message>(65_536);
    let joined = watch::Sender::new(0usize);
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (counts, room, joined) = (c.clone(), room.clone(), joined.clone());
            tokio::spawn(async move {
                let Some(ws) = accept(tcp).await else { return };
                counts.accepted.fetch_add(1, Ordering::SeqCst);
                counts.open.fetch_add(1, Ordering::SeqCst);
                let mut heard = room.subscribe();
                joined.send_modify(|n| *n += 1);
                let mut everyone = joined.subscribe();
                let (mut tx, mut rx) = ws.split();
                loop {
                    tokio::select! {
                        m = rx.next() => match m {
                            Some(Ok(m @ Message::Text(_))) => {
                                counts.received.fetch_add(1, Ordering::SeqCst);
                                let _ = everyone.wait_for(|n| *n >= members).await;
                                let _ = room.send(m);
                            }
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                            Some(Ok(_)) => {}
                        },
                        m = heard.recv() => match m {
                            Ok(m) => {
                                if tx.send(m).await.is_err() { break; }
                                counts.pushes.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => break,
                        },
                    }
                }
                let _ = tx.close().await;
                counts.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, counts)
}

/// An echo server that can close every session at once (a deploy), stop accepting
/// (the port refuses connections) and start again on the same port.
#[derive(Debug)]
pub struct Restarter {
    addr: SocketAddr,
    counts: Arc<Counts>,
    /// Sends a close code to every open session.
    close: broadcast::Sender<u16>,
    /// While true, echoes wait (so a test can close sessions that are all still in
    /// their first request, however slowly they connected).
    hold: watch::Sender<bool>,
    /// The accept loop (None while stopped).
    acceptor: Option<tokio::task::JoinHandle<()>>,
}

/// Starts a [`Restarter`] echo server on a free loopback port.
pub async fn restartable_echo_server() -> Restarter {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the echo server");
    let addr = listener.local_addr().expect("its address");
    let (close, _) = broadcast::channel(16);
    let mut r = Restarter {
        addr,
        counts: Arc::new(Counts::default()),
        close,
        hold: watch::Sender::new(false),
        acceptor: None,
    };
    r.accept_on(listener);
    r
}

impl Restarter {
    /// Where it listens (the same across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it saw, across restarts.
    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }

    /// Holds every echo (`true`) until released (`false`); a held session is still
    /// closed by [`Self::close_all`].
    pub fn hold_replies(&self, hold: bool) {
        self.hold.send_replace(hold);
    }

    /// Closes every open session with a close frame of `code` (1012: service
    /// restart); new connections are still accepted.
    pub fn close_all(&self, code: u16) {
        let _ = self.close.send(code);
    }

    /// Stops accepting (new connections are refused from when this returns) and
    /// closes every open session with `code`.
    pub async fn stop(&mut self, code: u16) {
        if let Some(a) = self.acceptor.take() {
            a.abort();
            // The listener is closed once the aborted task is gone.
            let _ = a.await;
        }
        self.close_all(code);
    }

    /// Closes every session and accepts again on the same port.
    pub async fn restart(&mut self) {
        self.stop(1012).await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind the same port");
        self.accept_on(listener);
    }

    fn accept_on(&mut self, listener: TcpListener) {
        let (counts, close, hold) = (self.counts.clone(), self.close.clone(), self.hold.clone());
        self.acceptor = Some(tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                // Subscribed before the upgrade: a close_all after the accept reaches it.
                let (close, hold) = (close.subscribe(), hold.subscribe());
                tokio::spawn(echo_until_closed(tcp, counts.clone(), close, hold));
            }
        }));
    }
}

impl Drop for Restarter {
    fn drop(&mut self) {
        if let Some(a) = self.acceptor.take() {
            a.abort();
        }
        self.close_all(1001);
    }
}

async fn echo_until_closed(
    tcp: TcpStream,
    counts: Arc<Counts>,
    mut close: broadcast::Receiver<u16>,
    mut hold: watch::Receiver<bool>,
) {
    let Some(ws) = accept(tcp).await else { return };
    counts.accepted.fetch_add(1, Ordering::SeqCst);
    counts.open.fetch_add(1, Ordering::SeqCst);
    let (mut tx, mut rx) = ws.split();
    let close_code = loop {
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    counts.received.fetch_add(1, Ordering::SeqCst);
                    tokio::select! {
                        _ = hold.wait_for(|held| !*held) => {}
                        code = close.recv() => break Some(code.unwrap_or(1001)),
                    }
                    if tx.send(m).await.is_err() { break None; }
                    counts.replies.fetch_add(1, Ordering::SeqCst);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {}
            },
            code = close.recv() => break Some(code.unwrap_or(1001)),
        }
    };
    if let Some(code) = close_code {
        let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: "restart".into(),
        };
        counts.closed.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(Message::Close(Some(frame))).await;
    }
    let _ = tx.close().await;
    counts.open.fetch_sub(1, Ordering::SeqCst);
}
