//! One WebSocket connection of a session: the socket, the frame reader and the
//! bytes a write left unsent, nothing else. Reads happen when the socket is
//! readable, into a buffer of the thread; writes encode into a buffer of the thread
//! and keep only what the socket did not take. An idle connection holds no buffer.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use url::Url;
use wsload_wscodec::DeflatePool;

use super::frame::{encode, Frame, FrameError, FrameReader, OpCode};
use super::handshake::{self, HandshakeError};
use crate::target_tls::Stream;

/// Largest message read (whole, inflated), as the WebSocket crate used before.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// The thread's read buffer: as much as a read takes in one go.
const READ_BUF_SIZE: usize = 64 * 1024;

thread_local! {
    /// Where every connection of the thread reads into; only cut-off frames and
    /// frames not yet taken are copied out.
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF_SIZE].into_boxed_slice());
    /// Where frames are encoded before a write (and the deflated payload beside it).
    static WRITE_BUF: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The server broke the protocol.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The socket failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The socket closed without a close frame.
    #[error("connection closed")]
    Eof,
    /// The close handshake is over: nothing more is read.
    #[error("connection already closed")]
    Closed,
}

/// A client WebSocket connection.
#[derive(Debug)]
pub struct Ws {
    stream: Stream,
    reader: FrameReader,
    /// Encoded frames not yet written (fed but not flushed, or left by a short
    /// write); no allocation while empty.
    unsent: Vec<u8>,
    /// How much of `unsent` went out.
    unsent_at: usize,
    /// Compressors, when permessage-deflate was negotiated.
    deflate: Option<DeflatePool>,
    /// Our close frame went out (a close from the server is not answered again).
    close_sent: bool,
}

impl Ws {
    /// Upgrades `stream` for `url`; compression is offered when `pool` is given and
    /// used when the server agrees.
    pub async fn handshake(
        mut stream: Stream,
        url: &Url,
        pool: Option<&DeflatePool>,
        headers: &[(String, String)],
    ) -> Result<Ws, HandshakeError> {
        let up = handshake::client(&mut stream, url, pool.is_some(), headers).await?;
        let mut reader = FrameReader::new(up.deflate);
        reader.push(&up.early);
        Ok(Ws {
            stream,
            reader,
            unsent: Vec::new(),
            unsent_at: 0,
            deflate: pool.filter(|_| up.deflate).cloned(),
            close_sent: false,
        })
    }

    /// Bytes this connection holds beyond its fixed size (tests).
    pub fn held(&self) -> usize {
        self.reader.held() + self.unsent.capacity()
    }

    /// The next message or control frame. Pings are answered and closes echoed
    /// here; after the server's close frame every call returns `Closed`.
    /// Cancel-safe: what was read stays in the reader.
    pub async fn next_frame(&mut self) -> Result<Frame, WsError> {
        loop {
            if let Some(frame) = self.reader.next(MAX_PAYLOAD, self.deflate.as_ref())? {
                match frame.opcode() {
                    OpCode::Ping => {
                        self.feed(&Frame::new(OpCode::Pong, frame.payload().to_vec()));
                        self.flush().await?;
                    }
                    OpCode::Close if !self.close_sent => {
                        // Echo the code (RFC 6455 5.5.1); a failed write changes nothing.
                        let reply = match frame.close_code() {
                            1005 => Frame::new(OpCode::Close, Vec::new()),
                            code => Frame::close(code, b""),
                        };
                        self.feed(&reply);
                        self.close_sent = true;
                        let _ = self.flush().await;
                    }
                    _ => {}
                }
                return Ok(frame);
            }
            if self.reader.closed() {
                return Err(WsError::Closed);
            }
            poll_fn(|cx| self.poll_read(cx)).await?;
        }
    }

    /// Reads what the socket has into the thread's buffer and hands it to the reader.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        READ_BUF.with_borrow_mut(|buf| {
            let mut rb = ReadBuf::new(&mut buf[..]);
            ready!(Pin::new(&mut self.stream).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                return Poll::Ready(Err(WsError::Eof));
            }
            self.reader.push(rb.filled());
            Poll::Ready(Ok(()))
        })
    }

    /// After the close handshake: reads (and drops) whatever still comes until the
    /// server ends the connection.
    pub async fn wait_end(&mut self) {
        poll_fn(|cx| {
            READ_BUF.with_borrow_mut(|buf| loop {
                let mut rb = ReadBuf::new(&mut buf[..]);
                match ready!(Pin::new(&mut self.stream).poll_read(cx, &mut rb)) {
                    Ok(()) if !rb.filled().is_empty() => continue,
                    _ => return Poll::Ready(()),
                }
            })
        })
        .await;
    }

    /// Bytes queued and not written yet.
    pub fn unsent(&self) -> usize {
        self.unsent.len() - self.unsent_at
    }

    /// Queues `frame` without writing (a burst is written by one `flush`).
    pub fn feed(&mut self, frame: &Frame) {
        if frame.opcode() == OpCode::Close {
            self.close_sent = true;
        }
        WRITE_BUF.with_borrow_mut(|(_, scratch)| encode(&mut self.unsent, frame, self.deflate.as_ref(), scratch));
    }

    /// Writes `frame` (after anything queued).
    pub async fn send(&mut self, frame: Frame) -> Result<(), WsError> {
        if frame.opcode() == OpCode::Close {
            self.close_sent = true;
        }
        if self.unsent.is_empty() {
            // The usual case: encode into the thread's buffer and write at once;
            // only what the socket does not take is kept.
            let written = WRITE_BUF.with_borrow_mut(|(out, scratch)| {
                out.clear();
                encode(out, &frame, self.deflate.as_ref(), scratch);
                let n = write_now(&mut self.stream, out);
                if let Ok(n) = n {
                    if n < out.len() {
                        self.unsent.extend_from_slice(&out[n..]);
                    }
                }
                if out.capacity() > READ_BUF_SIZE {
                    // A rare large message does not stay in every thread.
                    *out = Vec::new();
                }
                n
            });
            written?;
        } else {
            self.feed(&frame);
        }
        self.flush().await
    }

    /// Writes everything queued; the queue's memory is freed once it is out.
    pub async fn flush(&mut self) -> Result<(), WsError> {
        poll_fn(|cx| self.poll_flush(cx)).await?;
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.unsent_at < self.unsent.len() {
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.unsent[self.unsent_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.unsent_at += n;
        }
        if !self.unsent.is_empty() {
            self.unsent = Vec::new();
            self.unsent_at = 0;
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }
}

/// Writes as much of `data` as the socket takes without waiting.
fn write_now(stream: &mut Stream, data: &[u8]) -> io::Result<usize> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut at = 0;
    while at < data.len() {
        match Pin::new(&mut *stream).poll_write(&mut cx, &data[at..]) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => at += n,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => break,
        }
    }
    Ok(at)
}
