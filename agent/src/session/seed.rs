//! The built-in protocol (the seed's): connect, wait for the `session` event, send
//! the messages (open, closed or burst pacing), match every `response` to the message
//! that caused it by `messageCount`, hold, close with 1000.

use std::time::Duration;

use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use wsload_proto::pb::Pacing;

use super::transport;
use super::SessionCtx;
use crate::metrics::Event;
use crate::session_error::SessionError;
use crate::wire::{self, ServerMessage};
use crate::ws::{Frame, OpCode, Ws};

/// The built-in protocol's settings, from the plan.
#[derive(Debug, Clone, Copy)]
pub struct SeedSettings {
    /// Messages per session.
    pub messages: u64,
    /// Open: spacing of the messages; closed: pause after each reply.
    pub interval: Duration,
    /// Open, closed or burst (resolved: never unspecified).
    pub pacing: Pacing,
    /// Time to keep the session open after the last response.
    pub hold: Duration,
    /// Approximate size of each message.
    pub payload_size: usize,
}

impl SeedSettings {
    /// The pacing a plan means: unspecified is open with an interval, burst without.
    pub fn resolve_pacing(p: Pacing, interval: Duration) -> Pacing {
        match p {
            Pacing::Unspecified if interval.is_zero() => Pacing::Burst,
            Pacing::Unspecified => Pacing::Open,
            p => p,
        }
    }
}

/// What a frame from the server means to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// The `session` event.
    Session,
    /// A `response` event with its `messageCount`.
    Response(u64),
    /// An `error` event.
    ErrorEvent,
    /// A `server-event` broadcast.
    ServerEvent,
    /// A close frame with its code (1005 when it has none).
    Closed(u16),
    /// A frame the session skips (ping, pong).
    Ignore,
    /// Anything else: a protocol error.
    Garbage,
}

fn classify(frame: &Frame) -> Incoming {
    classify_parts(frame.opcode(), frame.payload())
}

/// Classifies a server frame by its opcode and payload (the parsing the fuzz
/// target `agent_events` exercises).
pub fn classify_parts(opcode: OpCode, payload: &[u8]) -> Incoming {
    match opcode {
        OpCode::Text => match wire::parse(payload) {
            Some(ServerMessage::Session { .. }) => Incoming::Session,
            Some(ServerMessage::Response { message_count }) => Incoming::Response(message_count),
            Some(ServerMessage::Error { .. }) => Incoming::ErrorEvent,
            Some(ServerMessage::ServerEvent) => Incoming::ServerEvent,
            Some(ServerMessage::Other) | None => Incoming::Garbage,
        },
        OpCode::Close => Incoming::Closed(if payload.len() >= 2 {
            u16::from_be_bytes([payload[0], payload[1]])
        } else {
            1005
        }),
        OpCode::Binary => Incoming::Garbage,
        _ => Incoming::Ignore,
    }
}

/// Runs session number `index` to its end and reports it.
pub async fn run(ctx: &SessionCtx, index: u64, cancel: &CancellationToken) {
    // Phases are boxed so their (large) state is freed once done: an idle session
    // holding for minutes keeps only the small hold state in its task.
    let Some(mut ws) = Box::pin(open(ctx, index, cancel)).await else {
        return;
    };
    let result = drive(ctx, &mut ws, cancel).await;
    Box::pin(finish(ctx, ws, result)).await;
}

/// Connects within the connect timeout and reports the outcome.
async fn open(ctx: &SessionCtx, index: u64, cancel: &CancellationToken) -> Option<Ws> {
    let ev = &ctx.events;
    let _ = ev.send(Event::Started).await;
    match transport::open(ctx, &ctx.target, index, &[], cancel).await {
        Ok((ws, took)) => {
            let _ = ev.send(Event::Connected(took)).await;
            Some(ws)
        }
        Err(kind) => {
            let _ = ev.send(Event::ConnectFailed(kind)).await;
            None
        }
    }
}

/// Reports how the session ended and closes it with 1000 when it is still open.
async fn finish(ctx: &SessionCtx, mut ws: Ws, result: Result<(), SessionError>) {
    let ev = &ctx.events;
    if let Err(kind) = result {
        let _ = ev.send(Event::Failed(kind.into())).await;
    }
    if result.is_ok() || result.is_err_and(SessionError::closes_with_normal) {
        transport::close(&mut ws, 1000, b"", Duration::from_secs(2)).await;
    }
    let _ = ev.send(Event::Disconnected).await;
    let _ = ev.send(Event::Ended { ok: result.is_ok() }).await;
}

/// The server closed: counts its close code and fails the session.
async fn closed_by_server(ctx: &SessionCtx, code: u16) -> Result<(), SessionError> {
    let _ = ctx.events.send(Event::CloseCode(code)).await;
    Err(SessionError::PrematureClose)
}

/// Everything after the upgrade; `Err` carries the error kind.
async fn drive(ctx: &SessionCtx, ws: &mut Ws, cancel: &CancellationToken) -> Result<(), SessionError> {
    Box::pin(session_event(ctx, ws, cancel)).await?;
    Box::pin(exchange(ctx, ws, cancel)).await?;
    hold(ctx, ws, cancel).await
}

/// Waits for the server's `session` event.
async fn session_event(ctx: &SessionCtx, ws: &mut Ws, cancel: &CancellationToken) -> Result<(), SessionError> {
    let ev = &ctx.events;
    let opened = Instant::now();
    // 1. The session event.
    let deadline = opened + ctx.connect_timeout;
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => return Err(SessionError::Aborted),
            r = timeout_at(deadline, ws.next_frame()) => r.map_err(|_| SessionError::SessionTimeout)?.map_err(|_| SessionError::PrematureClose)?,
        };
        match classify(&frame) {
            Incoming::Session => break,
            Incoming::ServerEvent => {
                let _ = ev.send(Event::ServerEvent).await;
            }
            Incoming::ErrorEvent => return Err(SessionError::ErrorEvent),
            Incoming::Closed(code) => return closed_by_server(ctx, code).await,
            Incoming::Ignore => {}
            Incoming::Response(_) | Incoming::Garbage => return Err(SessionError::ProtocolError),
        }
    }
    let _ = ev.send(Event::SessionEvent(opened.elapsed())).await;
    Ok(())
}

/// Sends the messages and matches every response to the message that caused it; when
/// the session fails, the messages still waiting for their response are counted as
/// unanswered under the failure's kind, so every message sent is accounted for.
async fn exchange(ctx: &SessionCtx, ws: &mut Ws, cancel: &CancellationToken) -> Result<(), SessionError> {
    let mut outstanding = 0u64;
    let result = Box::pin(exchange_counted(ctx, ws, cancel, &mut outstanding)).await;
    if let Err(kind) = result {
        if outstanding > 0 {
            let _ = ctx.events.send(Event::Unanswered(kind.into(), outstanding)).await;
        }
    }
    result
}

/// [`exchange`], keeping `outstanding` (messages counted as sent, not answered yet).
async fn exchange_counted(
    ctx: &SessionCtx,
    ws: &mut Ws,
    cancel: &CancellationToken,
    outstanding: &mut u64,
) -> Result<(), SessionError> {
    let ev = &ctx.events;
    let seed = &ctx.seed;
    // 2. Messages, each response matched by messageCount to the message that caused it.
    let n = seed.messages;
    // Grows with the messages sent: a large count does not allocate up front.
    let mut sent_at: Vec<Option<(Instant, Instant)>> = Vec::with_capacity(usize::try_from(n.min(1024)).unwrap_or(0));
    let mut received = 0u64;
    let first_due = Instant::now();
    // Closed pacing: the next message is due an interval after the last reply.
    let mut last_reply = first_due;
    let due = |i: u64, last_reply: Instant| match seed.pacing {
        Pacing::Open => first_due + seed.interval * u32::try_from(i).unwrap_or(u32::MAX),
        Pacing::Closed if i == 0 => first_due,
        Pacing::Closed => last_reply + seed.interval,
        Pacing::Burst | Pacing::Unspecified => first_due,
    };
    let mut deadline = first_due + ctx.response_timeout;
    // "Never", for the silence bound when nothing is outstanding (the loop ends or
    // sends before it; a year keeps clear of Instant overflow).
    let no_bound = first_due + Duration::from_secs(365 * 24 * 3600);
    while received < n {
        let sent = sent_at.len() as u64;
        let waiting = seed.pacing == Pacing::Closed && received < sent;
        let next_due = (sent < n && !waiting).then(|| due(sent, last_reply));
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(SessionError::Aborted),
            _ = sleep_until(next_due.unwrap_or(deadline)), if next_due.is_some() => {
                let burst = if seed.pacing == Pacing::Burst { n - sent } else { 1 };
                let lag = Instant::now().saturating_duration_since(due(sent, last_reply));
                for i in sent..sent + burst {
                    let text = wire::client_message(i + 1, seed.payload_size);
                    ws.feed(&Frame::text(text));
                    sent_at.push(Some((due(i, last_reply), Instant::now())));
                }
                ws.flush().await.map_err(|_| SessionError::SendError)?;
                let _ = ev.send(Event::Sent(burst, Some(lag))).await;
                *outstanding += burst;
                deadline = Instant::now() + ctx.response_timeout;
            }
            // The silence bound holds only while a response is outstanding: between
            // answered messages (an interval longer than the response timeout) the
            // server owes nothing.
            r = timeout_at(if received < sent { deadline } else { no_bound }, ws.next_frame()) => {
                let frame = r.map_err(|_| SessionError::ResponseTimeout)?.map_err(|_| SessionError::PrematureClose)?;
                let now = Instant::now();
                match classify(&frame) {
                    Incoming::Response(count) => {
                        // Matched by count (the server's per-session counter); each
                        // message is answered at most once.
                        let slot = count.checked_sub(1).and_then(|i| sent_at.get_mut(usize::try_from(i).ok()?));
                        let Some((intended, actual)) = slot.and_then(Option::take) else {
                            return Err(SessionError::UnmatchedResponse);
                        };
                        received += 1;
                        *outstanding -= 1;
                        last_reply = now;
                        let _ = ev.send(Event::Response { intended: now - intended, actual: now - actual }).await;
                        deadline = now + ctx.response_timeout;
                    }
                    Incoming::ServerEvent => { let _ = ev.send(Event::ServerEvent).await; }
                    Incoming::ErrorEvent => return Err(SessionError::ErrorEvent),
                    Incoming::Closed(code) => return closed_by_server(ctx, code).await,
                    Incoming::Ignore => {}
                    Incoming::Session | Incoming::Garbage => return Err(SessionError::ProtocolError),
                }
            }
        }
    }

    Ok(())
}

/// Holds the session open, still counting broadcasts.
async fn hold(ctx: &SessionCtx, ws: &mut Ws, cancel: &CancellationToken) -> Result<(), SessionError> {
    let ev = &ctx.events;
    let hold_until = Instant::now() + ctx.seed.hold;
    loop {
        let r = tokio::select! {
            _ = cancel.cancelled() => return Err(SessionError::Aborted),
            r = timeout_at(hold_until, ws.next_frame()) => r,
        };
        let Ok(frame) = r else { return Ok(()) };
        match classify(&frame.map_err(|_| SessionError::PrematureClose)?) {
            Incoming::ServerEvent => {
                let _ = ev.send(Event::ServerEvent).await;
            }
            Incoming::ErrorEvent => return Err(SessionError::ErrorEvent),
            Incoming::Closed(code) => return closed_by_server(ctx, code).await,
            _ => {}
        }
    }
}
