//! One WebSocket connection: a receive task (this one) that answers messages in
//! order, and a send task that drains the bounded outbound queue.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use yawc::close::CloseCode;
use yawc::frame::{Frame, OpCode};
use yawc::{WebSocket, WebSocketError};

use crate::hub::{close_code, Client, Outbound, QueueError};
use crate::instance::Instance;
use crate::protocol;

/// Close "code" meaning: the peer is gone or already answered; send no close frame.
const NO_CLOSE: u16 = 1;
/// Close "code" meaning: yawc already queued its own close frame; only flush it.
const FLUSH_ONLY: u16 = 2;
/// How long a closing connection waits for the peer's half of the close handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Adapts yawc's socket to `Stream<Item = Result<Frame>>` (so read errors are seen,
/// which yawc's own `Stream` hides) and to `Sink<Frame>` whose flush also sends the
/// control frames yawc queued itself (pongs, close replies).
struct Frames<S>(WebSocket<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Frames<S> {
    type Item = Result<Frame, WebSocketError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().0.poll_next_frame(cx) {
            Poll::Ready(Err(WebSocketError::ConnectionClosed)) => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Frame> for Frames<S> {
    type Error = WebSocketError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().0).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Frame) -> Result<(), Self::Error> {
        Pin::new(&mut self.get_mut().0).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let ws = &mut self.get_mut().0;
        // poll_ready writes out what yawc queued on its own (e.g. a 1009 close).
        futures_util::ready!(Pin::new(&mut *ws).poll_ready(cx))?;
        Pin::new(ws).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().0).poll_close(cx)
    }
}

/// Serves one upgraded connection until it is closed.
pub async fn serve<S>(ws: WebSocket<S>, instance: Arc<Instance>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let metrics = &instance.metrics;
    metrics.connections_total.fetch_add(1, Ordering::Relaxed);
    let session_id = uuid::Uuid::new_v4().to_string();
    let created = protocol::now_iso();
    // Broker calls are boxed: in flight they are large, and inline they would
    // enlarge this task for the session's whole life.
    let info = instance.session_info(&created);
    let create = Box::pin(
        instance
            .broker
            .create_session(&session_id, &info, instance.opts.session_ttl),
    )
    .await;
    drop(info);

    let (key, client) = instance.hub.register(session_id.clone(), &instance.shutdown);
    let (sink, stream) = Frames(ws).split();
    let writer = tokio::spawn(write_loop(sink, client.clone()));

    let _ = client.try_queue(protocol::session(&session_id, &created), instance.opts.max_backpressure);
    if let Err(e) = create {
        tracing::warn!(session = %session_id, error = %e, "session not recorded");
        metrics.error(e.kind());
        let _ = client.try_queue(protocol::error(&e.to_string()), instance.opts.max_backpressure);
    }

    read_loop(stream, &client, &instance).await;

    instance.hub.unregister(key);
    client.close(NO_CLOSE);
    let _ = writer.await;
    instance.cleanup.enqueue(session_id);
    metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
}

/// Reads frames and answers them in order, then completes the close handshake.
async fn read_loop<St>(mut stream: St, client: &Arc<Client>, instance: &Instance)
where
    St: Stream<Item = Result<Frame, WebSocketError>> + Unpin,
{
    let limit = instance.opts.max_backpressure;
    loop {
        let frame = tokio::select! {
            biased;
            _ = client.closing.cancelled() => break,
            frame = stream.next() => frame,
        };
        let frame = match frame {
            None => return,
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                tracing::debug!(session = %client.id, error = %e, "read error");
                match e {
                    WebSocketError::InvalidUTF8 => client.close(close_code::INVALID_PAYLOAD),
                    e if e.is_io_error() => return,
                    // yawc queued a close frame with the matching code (1009, 1002...).
                    _ => client.close(FLUSH_ONLY),
                }
                break;
            }
        };
        instance.hub.touch(client);
        let reply = match frame.opcode() {
            OpCode::Text => {
                instance.metrics.messages_received.fetch_add(1, Ordering::Relaxed);
                match Box::pin(instance.broker.incr_message_count(&client.id)).await {
                    Ok(n) => {
                        instance.metrics.responses_sent.fetch_add(1, Ordering::Relaxed);
                        protocol::response(n)
                    }
                    Err(e) => {
                        instance.metrics.error(e.kind());
                        protocol::error(&e.to_string())
                    }
                }
            }
            OpCode::Binary => {
                instance.metrics.error("binary");
                protocol::error(protocol::BINARY_NOT_SUPPORTED)
            }
            _ => continue,
        };
        match client.try_queue(reply, limit) {
            Ok(()) => {}
            Err(QueueError::Overflow) => {
                tracing::info!(session = %client.id, queued = client.queued(), "slow consumer closed");
                instance.metrics.backpressure_closes.fetch_add(1, Ordering::Relaxed);
                client.close(close_code::POLICY);
                break;
            }
            Err(QueueError::Closed) => return,
        }
    }
    // Closing: keep reading so the peer's close frame is received and answered.
    let drain = async { while let Some(Ok(_)) = stream.next().await {} };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain).await;
}

/// Writes queued frames until the connection closes, then sends the close frame.
async fn write_loop<Si>(mut sink: Si, client: Arc<Client>)
where
    Si: Sink<Frame, Error = WebSocketError> + Unpin,
{
    loop {
        let (frame, len) = match client.next_outbound().await {
            Some(Outbound::Text(b)) => {
                let len = b.len();
                (Frame::text(b), len)
            }
            Some(Outbound::Ping) => (Frame::ping(Bytes::new()), 0),
            None => break,
        };
        let sent = tokio::select! {
            biased;
            _ = client.closing.cancelled() => break,
            r = sink.send(frame) => r,
        };
        client.sent(len);
        if sent.is_err() {
            client.close(NO_CLOSE);
            return;
        }
    }
    let code = client.close_code();
    let finish = async {
        match code {
            NO_CLOSE => Ok(()),
            FLUSH_ONLY => sink.flush().await,
            code => {
                let reason: &[u8] = match code {
                    close_code::GOING_AWAY => b"server shutting down",
                    close_code::POLICY => b"outbound queue limit exceeded",
                    close_code::INVALID_PAYLOAD => b"invalid UTF-8",
                    close_code::NORMAL => b"idle timeout",
                    _ => b"",
                };
                sink.send(Frame::close(CloseCode::from(code), reason)).await
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, finish).await;
}
