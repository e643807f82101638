//! One WebSocket connection, served by one task that owns the socket.
//!
//! The task reads only when the socket is readable, into a buffer of its thread;
//! the frame reader keeps just what a read cut off. It answers messages in order,
//! one broker call at a time, and reads on only once everything read so far is
//! answered. It writes the outbound queue when something is in it, encoding into a
//! buffer of its thread and keeping only what the socket did not take. An idle
//! connection holds its socket, this task's few hundred bytes and its hub entry.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::broker::BrokerError;
use crate::hub::{Client, Outbound, QueueError};
use crate::instance::Instance;
use crate::protocol;
use crate::ws::close_code;
use crate::ws::frame::{self, Event, FrameError, FrameReader, ReadLimits};
use crate::ws::DeflatePool;

/// How long a closing connection waits for the peer's half of the close handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Most bytes read from a socket at once (the size of each thread's read buffer).
const READ_CHUNK: usize = 64 * 1024;
/// Queued frames are encoded into one write until it holds this many bytes.
const WRITE_BATCH: usize = 64 * 1024;
/// A thread's write or deflate buffer that grew past this is given back after use.
const SCRATCH_KEEP: usize = 256 * 1024;

thread_local! {
    /// Bytes just read from a socket of this thread; never held across an await.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
    /// Frames encoded for one write on this thread; never held across an await.
    static WRITE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The deflated payload of the frame being encoded.
    static DEFLATE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A broker call in flight, boxed: inline it would enlarge every idle connection.
/// It counts this many text messages at once and gives the counter after them.
type BrokerCall = Pin<Box<dyn Future<Output = (u32, Result<i64, BrokerError>)> + Send>>;

/// What the client asked for, in the order it asked, not yet answered.
#[derive(Debug)]
enum Todo {
    /// This many text messages, each answered with its new counter.
    Texts(u32),
    /// A binary message, answered with an error event.
    Binary,
    /// The client closed with this payload.
    Close(Bytes),
    /// A frame broke the protocol: the connection fails after the earlier answers.
    Fail(FrameError),
}

/// How the open phase of a connection ended, and so how it closes.
#[derive(Debug)]
enum End {
    /// The peer is gone (end of stream or a socket error): nothing more is sent.
    Gone,
    /// The server closes with this code and reason, then waits for the peer's close.
    Close(u16, &'static str),
    /// A bad frame: close with this code and reason, then read (unparsed) to the end.
    Fail(u16, &'static str),
    /// The peer closed: what is queued goes out, then its close payload comes back.
    Echo(Bytes),
}

/// The reason sent with a close the server initiates.
fn close_reason(code: u16) -> &'static str {
    match code {
        close_code::GOING_AWAY => "server shutting down",
        close_code::POLICY => "outbound queue limit exceeded",
        close_code::INVALID_PAYLOAD => "invalid UTF-8",
        close_code::NORMAL => "idle timeout",
        _ => "",
    }
}

/// Sets up a connection that was just upgraded: its session in the broker, its
/// hub entry and the session event. Returns the future that serves it until it is
/// closed, to be spawned as the connection's task: that future holds only the
/// connection's state, none of the setup's. `early` holds bytes the client sent
/// right behind its handshake; `deflate` says whether permessage-deflate was negotiated.
pub async fn start(
    stream: TcpStream,
    early: Bytes,
    deflate: bool,
    instance: Arc<Instance>,
) -> impl Future<Output = ()> + Send + 'static {
    let metrics = &instance.metrics;
    metrics.connections_total.fetch_add(1, Ordering::Relaxed);
    let session_id = uuid::Uuid::new_v4().to_string();
    let created = protocol::now_iso();
    let info = instance.session_info(&created);
    let create = Box::pin(
        instance
            .broker
            .create_session(&session_id, &info, instance.opts.session_ttl),
    )
    .await;

    let (key, client) = instance.hub.register(session_id);
    if instance.shutdown.is_cancelled() {
        // The hub closed its clients before this one was in it.
        client.close(close_code::GOING_AWAY);
    }
    let limit = instance.opts.max_backpressure;
    let _ = client.queue_own(protocol::session(&client.id, &created), limit);
    if let Err(e) = create {
        tracing::warn!(session = %client.id, error = %e, "session not recorded");
        metrics.error(e.kind());
        let _ = client.queue_own(protocol::error(&e.to_string()), limit);
    }
    let mut conn = Conn {
        stream,
        deflate: if deflate { instance.deflate.clone() } else { None },
        client,
        instance,
        key,
        reader: FrameReader::new(deflate),
        todo: VecDeque::new(),
        call: None,
        unsent: Vec::new(),
        unsent_at: 0,
        unsent_queued: 0,
    };
    if !early.is_empty() {
        conn.consume(&mut early.to_vec());
    }
    conn.serve()
}

/// The state of one connection's task.
struct Conn {
    stream: TcpStream,
    client: Arc<Client>,
    instance: Arc<Instance>,
    /// The connection's key in the hub.
    key: u64,
    reader: FrameReader,
    /// Read but not yet answered; empty (and unallocated) while idle.
    todo: VecDeque<Todo>,
    /// The broker call answering the text messages that were at the front of `todo`.
    call: Option<BrokerCall>,
    /// Encoded frames a write left unsent; empty (and unallocated) while idle.
    unsent: Vec<u8>,
    /// How much of `unsent` has been written since.
    unsent_at: usize,
    /// Queued text bytes that `unsent` stands for, released once it is written.
    unsent_queued: usize,
    /// The process's compressors, when permessage-deflate was negotiated.
    deflate: Option<DeflatePool>,
}

/// What the frame reader needs from the instance and the connection.
fn read_limits<'a>(instance: &Instance, deflate: &'a Option<DeflatePool>) -> ReadLimits<'a> {
    ReadLimits {
        max_payload: instance.opts.max_payload,
        deflate: deflate.as_ref(),
    }
}

impl Conn {
    /// Serves the connection until it is closed. Everything the future holds
    /// meanwhile is `self`, once: an `async move` block keeps what it captures in
    /// place (an `async fn` would keep its argument and a moved copy), and the
    /// closing handshake's state and timer are boxed.
    #[allow(clippy::manual_async_fn)] // as an `async fn` every idle connection is 256 bytes larger
    fn serve(mut self) -> impl Future<Output = ()> + Send + 'static {
        async move {
            let end = poll_fn(|cx| self.poll_open(cx)).await;
            self.instance.hub.unregister(self.key);
            let _ = Box::pin(tokio::time::timeout(CLOSE_TIMEOUT, self.finish(end))).await;
            self.instance.cleanup.enqueue(self.client.id.clone());
            let metrics = &self.instance.metrics;
            metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        self.client.register(cx.waker());
        loop {
            if let Some(code) = self.client.closing() {
                return Poll::Ready(End::Close(code, close_reason(code)));
            }
            if let Some(end) = self.answer(cx) {
                return Poll::Ready(end);
            }
            if let Poll::Ready(Err(_)) = self.poll_write(cx, true) {
                return Poll::Ready(End::Gone);
            }
            if !self.todo.is_empty() || self.call.is_some() {
                // Read on once everything read so far is answered.
                return Poll::Pending;
            }
            match ready!(self.poll_read(cx)) {
                Ok(()) => continue,
                Err(end) => return Poll::Ready(end),
            }
        }
    }

    /// Reads what the socket holds and feeds it to the frame reader; Ready(Ok)
    /// once something was read.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), End>> {
        READ_BUF.with_borrow_mut(|buf| match ready!(read_some(&mut self.stream, cx, buf)) {
            Ok(0) | Err(_) => Poll::Ready(Err(End::Gone)),
            Ok(n) => {
                self.consume(&mut buf[..n]);
                Poll::Ready(Ok(()))
            }
        })
    }

    /// Runs bytes from the client through the frame reader: pings are answered at
    /// once, messages, the close and any error wait their turn in `todo`.
    fn consume(&mut self, data: &mut [u8]) {
        let limits = read_limits(&self.instance, &self.deflate);
        let (client, todo) = (&*self.client, &mut self.todo);
        let mut on_event = |event: Event| match event {
            Event::Text => match todo.back_mut() {
                Some(Todo::Texts(n)) if *n < u32::MAX => *n += 1,
                _ => todo.push_back(Todo::Texts(1)),
            },
            Event::Binary => todo.push_back(Todo::Binary),
            Event::Ping(payload) => {
                let _ = client.push(Outbound::Pong(payload));
            }
            Event::Pong => {}
            Event::Close(payload) => todo.push_back(Todo::Close(payload)),
        };
        match self.reader.feed(data, limits, &mut on_event) {
            Ok(0) => {}
            Ok(_) => self.instance.hub.touch(client),
            Err(e) => {
                tracing::debug!(session = %client.id, error = %e, "bad frame");
                self.todo.push_back(Todo::Fail(e));
            }
        }
    }

    /// Answers what was read, in order, until a broker call is pending or nothing
    /// is left; returns how the connection ends if an answer ends it.
    fn answer(&mut self, cx: &mut Context<'_>) -> Option<End> {
        let metrics = &self.instance.metrics;
        loop {
            if let Some(call) = self.call.as_mut() {
                let Poll::Ready((texts, result)) = call.as_mut().poll(cx) else {
                    return None;
                };
                self.call = None;
                // A failed call answers each of its messages with the same event.
                let result = result.map_err(|e| (e.kind(), protocol::error(&e.to_string())));
                for i in (0..i64::from(texts)).rev() {
                    let reply = match &result {
                        Ok(count) => {
                            metrics.responses_sent.fetch_add(1, Ordering::Relaxed);
                            protocol::response(count - i)
                        }
                        Err((kind, event)) => {
                            metrics.error(kind);
                            event.clone()
                        }
                    };
                    if let Some(end) = self.reply(reply) {
                        return Some(end);
                    }
                }
                continue;
            }
            match self.todo.pop_front()? {
                Todo::Texts(n) => {
                    // Every text message read so far is counted in one broker call
                    // (one HINCRBY by n); the replies carry the counter after each.
                    metrics.messages_received.fetch_add(u64::from(n), Ordering::Relaxed);
                    let (broker, client) = (self.instance.broker.clone(), self.client.clone());
                    self.call = Some(Box::pin(
                        async move { (n, broker.incr_message_count(&client.id, n).await) },
                    ));
                }
                Todo::Binary => {
                    metrics.error("binary");
                    if let Some(end) = self.reply(protocol::error(protocol::BINARY_NOT_SUPPORTED)) {
                        return Some(end);
                    }
                }
                Todo::Close(payload) => return Some(End::Echo(payload)),
                Todo::Fail(e) => return Some(End::Fail(e.close_code(), e.reason())),
            }
            if self.todo.is_empty() && self.todo.capacity() > 0 {
                self.todo = VecDeque::new();
            }
        }
    }

    /// Queues a reply; a client too far behind is closed with 1008.
    fn reply(&self, event: Bytes) -> Option<End> {
        match self.client.queue_own(event, self.instance.opts.max_backpressure) {
            Ok(()) => None,
            Err(QueueError::Overflow) => {
                tracing::info!(session = %self.client.id, queued = self.client.queued(), "slow consumer closed");
                self.instance
                    .metrics
                    .backpressure_closes
                    .fetch_add(1, Ordering::Relaxed);
                self.client.close(close_code::POLICY);
                Some(End::Close(close_code::POLICY, close_reason(close_code::POLICY)))
            }
            Err(QueueError::Closed) => {
                let code = self.client.closing().unwrap_or(close_code::GOING_AWAY);
                Some(End::Close(code, close_reason(code)))
            }
        }
    }

    /// Writes what is unsent and then, with `queue`, the outbound queue, until all
    /// is written (Ready) or the socket is full (Pending).
    fn poll_write(&mut self, cx: &mut Context<'_>, queue: bool) -> Poll<io::Result<()>> {
        loop {
            if self.unsent_at < self.unsent.len() {
                let unsent = &self.unsent[self.unsent_at..];
                self.unsent_at += ready!(Pin::new(&mut self.stream).poll_write(cx, unsent))?;
                if self.unsent_at == self.unsent.len() {
                    self.unsent = Vec::new();
                    self.unsent_at = 0;
                    self.client.sent(std::mem::take(&mut self.unsent_queued));
                }
                continue;
            }
            if !queue || !self.write_queued(cx)? {
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// Encodes queued frames into the thread's buffer and writes them at once,
    /// keeping what the socket did not take; false if the queue was empty.
    fn write_queued(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        WRITE_BUF.with_borrow_mut(|buf| {
            buf.clear();
            let mut texts = 0;
            while buf.len() < WRITE_BATCH {
                let Some(item) = self.client.pop() else { break };
                texts += self.encode(item, buf);
            }
            if buf.is_empty() {
                return Ok(false);
            }
            let written = match Pin::new(&mut self.stream).poll_write(cx, buf) {
                Poll::Ready(written) => written?,
                Poll::Pending => 0,
            };
            if written == buf.len() {
                self.client.sent(texts);
            } else {
                self.unsent = buf[written..].to_vec();
                self.unsent_queued = texts;
            }
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            Ok(true)
        })
    }

    /// Appends one queued item as a frame; returns the text bytes it accounts for.
    fn encode(&self, item: Outbound, buf: &mut Vec<u8>) -> usize {
        match item {
            Outbound::Text(payload) => {
                let threshold = self.instance.opts.compression_threshold;
                match &self.deflate {
                    Some(pool) if payload.len() >= threshold => DEFLATE_BUF.with_borrow_mut(|z| {
                        z.clear();
                        pool.deflate(&payload, z);
                        frame::encode(buf, OpCode::Data(Data::Text), true, z);
                        if z.capacity() > SCRATCH_KEEP {
                            *z = Vec::new();
                        }
                    }),
                    _ => frame::encode(buf, OpCode::Data(Data::Text), false, &payload),
                }
                payload.len()
            }
            Outbound::Ping => {
                frame::encode(buf, OpCode::Control(Control::Ping), false, &[]);
                0
            }
            Outbound::Pong(payload) => {
                frame::encode(buf, OpCode::Control(Control::Pong), false, &payload);
                0
            }
        }
    }

    /// The closing handshake, bounded by the caller's timeout.
    async fn finish(&mut self, end: End) {
        let (code, reason, parse) = match end {
            End::Gone => return,
            End::Echo(payload) => {
                self.client.close(close_code::NORMAL);
                // The answers queued before the client's close go out first.
                if poll_fn(|cx| self.poll_write(cx, true)).await.is_ok() {
                    frame::encode(&mut self.unsent, OpCode::Control(Control::Close), false, &payload);
                    let _ = poll_fn(|cx| self.poll_write(cx, false)).await;
                }
                return;
            }
            End::Close(code, reason) => (code, reason, true),
            End::Fail(code, reason) => (code, reason, false),
        };
        self.client.close(code);
        self.client.discard();
        // Behind the rest of a frame a write cut short, never in its middle.
        frame::encode_close(&mut self.unsent, code, reason.as_bytes());
        if poll_fn(|cx| self.poll_write(cx, false)).await.is_ok() {
            poll_fn(|cx| self.poll_drain(cx, parse)).await;
        }
    }

    /// Reads until the peer's close frame (with `parse`) or the end of the stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>, parse: bool) -> Poll<()> {
        let Conn {
            stream,
            reader,
            instance,
            deflate,
            ..
        } = self;
        let limits = read_limits(instance, deflate);
        READ_BUF.with_borrow_mut(|buf| loop {
            let n = match ready!(read_some(stream, cx, buf)) {
                Ok(0) | Err(_) => return Poll::Ready(()),
                Ok(n) => n,
            };
            if parse {
                let mut closed = false;
                let fed = reader.feed(&mut buf[..n], limits, &mut |e| closed |= matches!(e, Event::Close(_)));
                if closed || fed.is_err() {
                    return Poll::Ready(());
                }
            }
        })
    }
}

/// Reads into `buf` when the socket is readable. Through `AsyncRead`, whose short
/// reads clear the readiness: no read is then tried only to learn it would block.
fn read_some(stream: &mut TcpStream, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    let mut buf = ReadBuf::new(buf);
    ready!(Pin::new(stream).poll_read(cx, &mut buf))?;
    Poll::Ready(Ok(buf.filled().len()))
}
