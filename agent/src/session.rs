//! One WebSocket session: connect (optionally from a chosen source address), wait
//! for the `session` event, send the messages, match every `response` to the message
//! that caused it, hold, close with 1000. Outcomes go to the aggregator as events.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use yawc::close::CloseCode;
use yawc::{Frame, OpCode, Options, WebSocket};

use crate::metrics::Event;
use crate::target_tls::{Stream, TargetTls};
use crate::wire::{self, ServerMessage};

/// What every session of a run shares.
#[derive(Debug)]
pub struct SessionCtx {
    /// Resolved target address.
    pub addr: SocketAddr,
    /// The `ws://` URL (for the Host header and path).
    pub url: url::Url,
    /// yawc options: small buffers, optional pooled compression.
    pub options: Options,
    /// For `wss://`: TLS over the socket before the upgrade.
    pub tls: Option<TargetTls>,
    /// Source addresses to bind before connecting (empty: let the OS choose).
    pub source_ips: Arc<[IpAddr]>,
    /// Bound on TCP connect + upgrade, and on the wait for the `session` event.
    pub connect_timeout: Duration,
    /// Bound on the silence while responses are outstanding.
    pub response_timeout: Duration,
    /// Messages per session.
    pub messages: u64,
    /// Pacing between sends (zero: back-to-back).
    pub interval: Duration,
    /// Time to keep the session open after the last response.
    pub hold: Duration,
    /// Approximate size of each message.
    pub payload_size: usize,
    /// Where outcomes go.
    pub events: mpsc::Sender<Event>,
    /// Handshakes in flight at once, shared by the agent's batches (`--max-connecting`).
    /// Thousands of simultaneous handshakes leave freed memory fragmented in the
    /// allocator, where it stays in RSS for the whole run.
    pub connecting: Arc<tokio::sync::Semaphore>,
}

type Ws = WebSocket<Stream>;

/// What a frame means to the session.
enum Incoming {
    Session,
    Response(u64),
    ErrorEvent,
    ServerEvent,
    Closed,
    Ignore,
    Garbage,
}

fn classify(frame: &Frame) -> Incoming {
    match frame.opcode() {
        OpCode::Text => match wire::parse(frame.payload()) {
            Some(ServerMessage::Session { .. }) => Incoming::Session,
            Some(ServerMessage::Response { message_count }) => Incoming::Response(message_count),
            Some(ServerMessage::Error { .. }) => Incoming::ErrorEvent,
            Some(ServerMessage::ServerEvent) => Incoming::ServerEvent,
            Some(ServerMessage::Other) | None => Incoming::Garbage,
        },
        OpCode::Close => Incoming::Closed,
        OpCode::Binary => Incoming::Garbage,
        _ => Incoming::Ignore,
    }
}

/// Runs session number `index` to its end and reports it.
pub async fn run_session(ctx: Arc<SessionCtx>, index: u64, cancel: CancellationToken) {
    // Phases are boxed so their (large) state is freed once done: an idle session
    // holding for minutes keeps only the small hold state in its task.
    let Some(mut ws) = Box::pin(open(&ctx, index, &cancel)).await else {
        return;
    };
    let result = drive(&ctx, &mut ws, &cancel).await;
    Box::pin(finish(&ctx, ws, result)).await;
}

/// Connects within the connect timeout and reports the outcome.
async fn open(ctx: &SessionCtx, index: u64, cancel: &CancellationToken) -> Option<Ws> {
    let ev = &ctx.events;
    let _ = ev.send(Event::Started).await;
    let permit = tokio::select! {
        _ = cancel.cancelled() => None,
        p = ctx.connecting.acquire() => p.ok(),
    };
    // Timed from the permit: the connect time is the network's and the server's,
    // not the agent's own queue.
    let t0 = Instant::now();
    let connected = match permit {
        None => Err("aborted"),
        Some(_permit) => tokio::select! {
            _ = cancel.cancelled() => Err("aborted"),
            r = timeout(ctx.connect_timeout, connect(ctx, index)) => r.unwrap_or(Err("connect_timeout")),
        },
    };
    match connected {
        Ok(ws) => {
            let _ = ev.send(Event::Connected(t0.elapsed())).await;
            Some(ws)
        }
        Err(kind) => {
            let _ = ev.send(Event::ConnectFailed(kind)).await;
            None
        }
    }
}

/// Reports how the session ended and closes it with 1000 when it is still open.
async fn finish(ctx: &SessionCtx, mut ws: Ws, result: Result<(), &'static str>) {
    let ev = &ctx.events;
    let ok = result.is_ok();
    if let Err(kind) = result {
        let _ = ev.send(Event::Failed(kind)).await;
    }
    if ok
        || matches!(
            result,
            Err("aborted" | "error_event" | "response_timeout" | "session_timeout")
        )
    {
        close(&mut ws).await;
    }
    let _ = ev.send(Event::Closed { ok, connected: true }).await;
}

async fn connect(ctx: &SessionCtx, index: u64) -> Result<Ws, &'static str> {
    let socket = if ctx.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|_| "socket_error")?;
    if !ctx.source_ips.is_empty() {
        let ip = ctx.source_ips[(index % ctx.source_ips.len() as u64) as usize];
        socket.bind(SocketAddr::new(ip, 0)).map_err(|_| "bind_error")?;
    }
    let stream = socket.connect(ctx.addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect_refused",
        _ => "connect_error",
    })?;
    let _ = stream.set_nodelay(true);
    let stream = match &ctx.tls {
        None => Stream::Plain(stream),
        Some(tls) => tls.connect(stream).await.map_err(|_| "tls_error")?,
    };
    WebSocket::handshake(ctx.url.clone(), stream, ctx.options.clone())
        .await
        .map_err(|_| "handshake_error")
}

/// Everything after the upgrade; `Err` carries the error kind.
async fn drive(ctx: &SessionCtx, ws: &mut Ws, cancel: &CancellationToken) -> Result<(), &'static str> {
    Box::pin(session_event(ctx, ws, cancel)).await?;
    Box::pin(exchange(ctx, ws, cancel)).await?;
    hold(ctx, ws, cancel).await
}

/// Waits for the server's `session` event.
async fn session_event(ctx: &SessionCtx, ws: &mut Ws, cancel: &CancellationToken) -> Result<(), &'static str> {
    let ev = &ctx.events;
    let opened = Instant::now();
    // 1. The session event.
    let deadline = opened + ctx.connect_timeout;
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => return Err("aborted"),
            r = timeout_at(deadline, ws.next_frame()) => r.map_err(|_| "session_timeout")?.map_err(|_| "premature_close")?,
        };
        match classify(&frame) {
            Incoming::Session => break,
            Incoming::ServerEvent => {
                let _ = ev.send(Event::ServerEvent).await;
            }
            Incoming::ErrorEvent => return Err("error_event"),
            Incoming::Closed => return Err("premature_close"),
            Incoming::Ignore => {}
            Incoming::Response(_) | Incoming::Garbage => return Err("protocol_error"),
        }
    }
    let _ = ev.send(Event::SessionEvent(opened.elapsed())).await;
    Ok(())
}

/// Sends the messages and matches every response to the message that caused it.
async fn exchange(ctx: &SessionCtx, ws: &mut Ws, cancel: &CancellationToken) -> Result<(), &'static str> {
    let ev = &ctx.events;
    // 2. Messages, each response matched by messageCount to the message that caused it.
    let n = ctx.messages;
    let mut sent_at: Vec<Option<(Instant, Instant)>> = Vec::with_capacity(n as usize);
    let mut received = 0u64;
    let first_due = Instant::now();
    let due = |i: u64| first_due + ctx.interval * u32::try_from(i).unwrap_or(u32::MAX);
    let mut deadline = first_due + ctx.response_timeout;
    while received < n {
        let sent = sent_at.len() as u64;
        let next_due = (sent < n).then(|| due(sent));
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err("aborted"),
            _ = sleep_until(next_due.unwrap_or(deadline)), if next_due.is_some() => {
                let burst = if ctx.interval.is_zero() { n - sent } else { 1 };
                for i in sent..sent + burst {
                    let text = wire::client_message(i + 1, ctx.payload_size);
                    ws.feed(Frame::text(text)).await.map_err(|_| "send_error")?;
                    sent_at.push(Some((due(i), Instant::now())));
                }
                ws.flush().await.map_err(|_| "send_error")?;
                let _ = ev.send(Event::Sent(burst)).await;
                deadline = Instant::now() + ctx.response_timeout;
            }
            r = timeout_at(deadline, ws.next_frame()) => {
                let frame = r.map_err(|_| "response_timeout")?.map_err(|_| "premature_close")?;
                let now = Instant::now();
                match classify(&frame) {
                    Incoming::Response(count) => {
                        // Matched by count (the server's per-session counter); each
                        // message is answered at most once.
                        let slot = count.checked_sub(1).and_then(|i| sent_at.get_mut(usize::try_from(i).ok()?));
                        let Some((intended, actual)) = slot.and_then(Option::take) else {
                            return Err("unmatched_response");
                        };
                        received += 1;
                        let _ = ev.send(Event::Response { intended: now - intended, actual: now - actual }).await;
                        deadline = now + ctx.response_timeout;
                    }
                    Incoming::ServerEvent => { let _ = ev.send(Event::ServerEvent).await; }
                    Incoming::ErrorEvent => return Err("error_event"),
                    Incoming::Closed => return Err("premature_close"),
                    Incoming::Ignore => {}
                    Incoming::Session | Incoming::Garbage => return Err("protocol_error"),
                }
            }
        }
    }

    Ok(())
}

/// Holds the session open, still counting broadcasts.
async fn hold(ctx: &SessionCtx, ws: &mut Ws, cancel: &CancellationToken) -> Result<(), &'static str> {
    let ev = &ctx.events;
    let hold_until = Instant::now() + ctx.hold;
    loop {
        let r = tokio::select! {
            _ = cancel.cancelled() => return Err("aborted"),
            r = timeout_at(hold_until, ws.next_frame()) => r,
        };
        let Ok(frame) = r else { return Ok(()) };
        match classify(&frame.map_err(|_| "premature_close")?) {
            Incoming::ServerEvent => {
                let _ = ev.send(Event::ServerEvent).await;
            }
            Incoming::ErrorEvent => return Err("error_event"),
            Incoming::Closed => return Err("premature_close"),
            _ => {}
        }
    }
}

/// Sends close 1000 and reads until the peer's close (bounded), so the server sees
/// a clean close rather than 1006.
async fn close(ws: &mut Ws) {
    if ws.send(Frame::close(CloseCode::Normal, b"")).await.is_err() {
        return;
    }
    let _ = timeout(Duration::from_secs(2), async {
        while let Ok(f) = ws.next_frame().await {
            if f.opcode() == OpCode::Close {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    /// An idle session's task must stay small: its phases are boxed so only the hold
    /// state and the socket remain (the RSS budget is ~8 KB per session in total).
    #[test]
    fn session_task_stays_small() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let ctx = std::sync::Arc::new(super::SessionCtx {
            addr: "127.0.0.1:1".parse().unwrap(),
            url: url::Url::parse("ws://127.0.0.1:1/").unwrap(),
            options: yawc::Options::default(),
            tls: None,
            source_ips: Vec::new().into(),
            connect_timeout: std::time::Duration::from_secs(1),
            response_timeout: std::time::Duration::from_secs(1),
            messages: 1,
            interval: std::time::Duration::ZERO,
            hold: std::time::Duration::ZERO,
            payload_size: 0,
            events: tx,
            connecting: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        });
        let f = super::run_session(ctx, 0, tokio_util::sync::CancellationToken::new());
        assert!(
            std::mem::size_of_val(&f) <= 1280,
            "session future is {} bytes",
            std::mem::size_of_val(&f)
        );
    }
}
