//! The agent's frame layer: server frames parsed with tungstenite's header codec as
//! their bytes arrive, client frames encoded (masked) straight into a write.
//!
//! The reader keeps only bytes it could not hand out yet: frames of a read not yet
//! taken by the session, a frame cut off by the end of a read, and the fragments of
//! a message until its last frame. A session that has read everything holds an
//! empty `Bytes` (no allocation).

use std::io::Cursor;

use bytes::{Buf, Bytes, BytesMut};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode as WireOp};
use tungstenite::protocol::frame::FrameHeader;
use wsload_wscodec::deflate::{DeflatePool, InflateError};
use wsload_wscodec::mask::unmask;
use wsload_wscodec::utf8::Utf8Validator;

/// Largest payload of a control frame (RFC 6455 5.5).
const MAX_CONTROL: u64 = 125;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// A whole text message (valid UTF-8).
    Text,
    /// A whole binary message.
    Binary,
    /// The peer closes.
    Close,
    /// A ping (answered by the connection itself).
    Ping,
    /// A pong.
    Pong,
}

/// A whole message or a control frame; the payload is a view of the bytes read
/// (or the inflated message), shared, not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    opcode: OpCode,
    payload: Bytes,
}

impl Frame {
    /// A frame of `opcode` carrying `payload`.
    pub fn new(opcode: OpCode, payload: impl Into<Bytes>) -> Self {
        Frame {
            opcode,
            payload: payload.into(),
        }
    }

    /// A text message.
    pub fn text(payload: impl Into<Bytes>) -> Self {
        Self::new(OpCode::Text, payload)
    }

    /// A binary message.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Self::new(OpCode::Binary, payload)
    }

    /// A ping.
    pub fn ping(payload: impl Into<Bytes>) -> Self {
        Self::new(OpCode::Ping, payload)
    }

    /// A close frame with `code` and `reason`.
    pub fn close(code: u16, reason: &[u8]) -> Self {
        let mut p = Vec::with_capacity(2 + reason.len());
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(reason);
        Self::new(OpCode::Close, p)
    }

    /// What the frame is.
    pub fn opcode(&self) -> OpCode {
        self.opcode
    }

    /// Its payload (inflated, for a compressed message).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// A close frame's code (1005 when it has none).
    pub fn close_code(&self) -> u16 {
        match self.payload[..] {
            [hi, lo, ..] => u16::from_be_bytes([hi, lo]),
            _ => 1005,
        }
    }
}

pub use wsload_wscodec::FrameError;

/// A fragmented message being assembled (boxed: only while one is arriving).
#[derive(Debug)]
struct Fragments {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
}

/// Reads the server's frames of one connection, incrementally.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// Bytes read and not yet handed out: whole frames, then at most one cut off.
    buf: BytesMut,
    /// Whether `buf` may be a view into a larger allocation (frames were taken from
    /// it since it was made): a cut-off frame is then copied out before waiting.
    shared: bool,
    /// The fragmented message arriving.
    fragments: Option<Box<Fragments>>,
    /// permessage-deflate was negotiated (RSV1 allowed on a first data frame).
    deflate: bool,
    /// The server's close frame arrived: nothing after it is read.
    closed: bool,
}

/// A parsed header: what the frame is and where its payload lies in `buf`.
struct Head {
    header: FrameHeader,
    start: usize,
    len: usize,
}

/// Largest room reserved up front for a frame still arriving (it grows past that
/// as its bytes come).
const MAX_RESERVE: usize = 1 << 20;

impl FrameReader {
    /// A reader for a connection that negotiated permessage-deflate or not.
    pub fn new(deflate: bool) -> Self {
        FrameReader {
            deflate,
            ..Self::default()
        }
    }

    /// Bytes held between reads (for tests and for reasoning about memory).
    pub fn held(&self) -> usize {
        self.buf.capacity() + self.fragments.as_ref().map_or(0, |f| f.data.capacity())
    }

    /// Whether the server's close frame was read.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Adds bytes just read (from a buffer the caller reuses): held with whatever
    /// was cut off before, in room reserved for the frame they complete.
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.buf.capacity() == 0 {
            self.buf = BytesMut::from(data);
            self.shared = false;
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next whole message or control frame, if the bytes held contain one.
    pub fn next(&mut self, max_payload: usize, pool: Option<&DeflatePool>) -> Result<Option<Frame>, FrameError> {
        while !self.closed {
            let head = match self.head(max_payload)? {
                Ok(head) => head,
                Err(frame_len) => {
                    self.keep_cut_off(frame_len);
                    return Ok(None);
                }
            };
            let mut whole = self.buf.split_to(head.start + head.len);
            whole.advance(head.start);
            self.shared = true;
            if self.buf.is_empty() {
                // Drop the view: it would keep the whole read's allocation alive.
                self.buf = BytesMut::new();
            }
            if let Some(frame) = self.complete(&head.header, whole.freeze(), max_payload, pool)? {
                return Ok(Some(frame));
            }
        }
        Ok(None)
    }

    /// Parses the header at the front of `buf`; while the frame is incomplete,
    /// `Err` with its whole length once the header says it.
    fn head(&self, max_payload: usize) -> Result<Result<Head, Option<usize>>, FrameError> {
        let mut cursor = Cursor::new(&self.buf[..]);
        let (header, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(Err(None)),
            Err(_) => return Err(FrameError::Protocol("reserved opcode")),
        };
        self.check(&header, len, max_payload)?;
        let start = cursor.position() as usize;
        // Within max_payload (checked), so it fits.
        let len = len as usize;
        if self.buf.len() - start < len {
            return Ok(Err(Some(start + len)));
        }
        Ok(Ok(Head { header, start, len }))
    }

    /// Checks a header against what may come now.
    fn check(&self, h: &FrameHeader, len: u64, max_payload: usize) -> Result<(), FrameError> {
        if h.mask.is_some() {
            return Err(FrameError::Protocol("masked server frame"));
        }
        if h.rsv2 || h.rsv3 {
            return Err(FrameError::Protocol("RSV2 or RSV3 set"));
        }
        match h.opcode {
            WireOp::Control(c) => {
                if matches!(c, Control::Reserved(_)) {
                    return Err(FrameError::Protocol("reserved opcode"));
                }
                if !h.is_final {
                    return Err(FrameError::Protocol("fragmented control frame"));
                }
                if len > MAX_CONTROL {
                    return Err(FrameError::Protocol("control frame over 125 bytes"));
                }
                if h.rsv1 {
                    return Err(FrameError::Protocol("RSV1 on a control frame"));
                }
            }
            WireOp::Data(d) => {
                let so_far = match (d, &self.fragments) {
                    (Data::Reserved(_), _) => return Err(FrameError::Protocol("reserved opcode")),
                    (Data::Continue, None) => return Err(FrameError::Protocol("continuation frame without a message")),
                    (Data::Continue, Some(_)) if h.rsv1 => {
                        return Err(FrameError::Protocol("RSV1 on a continuation frame"))
                    }
                    (Data::Continue, Some(f)) => f.data.len() as u64,
                    (_, Some(_)) => return Err(FrameError::Protocol("new message inside a fragmented one")),
                    (_, None) if h.rsv1 && !self.deflate => {
                        return Err(FrameError::Protocol("RSV1 without permessage-deflate"))
                    }
                    (_, None) => 0,
                };
                if so_far.saturating_add(len) > max_payload as u64 {
                    return Err(FrameError::TooBig);
                }
            }
        }
        Ok(())
    }

    /// A frame is whole: a control frame, a message, or a fragment kept for later.
    fn complete(
        &mut self,
        h: &FrameHeader,
        payload: Bytes,
        max_payload: usize,
        pool: Option<&DeflatePool>,
    ) -> Result<Option<Frame>, FrameError> {
        let (opcode, compressed) = match h.opcode {
            WireOp::Control(Control::Close) => {
                check_close(&payload)?;
                self.closed = true;
                // Nothing after a close frame is read: free what is held.
                self.buf = BytesMut::new();
                self.fragments = None;
                return Ok(Some(Frame::new(OpCode::Close, payload)));
            }
            WireOp::Control(Control::Ping) => return Ok(Some(Frame::new(OpCode::Ping, payload))),
            WireOp::Control(_) => return Ok(Some(Frame::new(OpCode::Pong, payload))),
            WireOp::Data(Data::Continue) => {
                let f = self.fragments.as_mut().expect("checked: a message is arriving");
                f.data.extend_from_slice(&payload);
                if !h.is_final {
                    return Ok(None);
                }
                let f = self.fragments.take().expect("checked: a message is arriving");
                let opcode = if f.text { OpCode::Text } else { OpCode::Binary };
                return message(opcode, f.compressed, Bytes::from(f.data), max_payload, pool).map(Some);
            }
            WireOp::Data(Data::Text) => (OpCode::Text, h.rsv1),
            WireOp::Data(_) => (OpCode::Binary, h.rsv1),
        };
        if !h.is_final {
            self.fragments = Some(Box::new(Fragments {
                text: opcode == OpCode::Text,
                compressed,
                data: payload.to_vec(),
            }));
            return Ok(None);
        }
        message(opcode, compressed, payload, max_payload, pool).map(Some)
    }

    /// Before waiting for more bytes: a cut-off frame that is a view into a larger
    /// read is copied out (so the read's allocation is freed), into room for the
    /// whole frame when its header says how long it is.
    fn keep_cut_off(&mut self, frame_len: Option<usize>) {
        let want = frame_len.unwrap_or(0).min(MAX_RESERVE).max(self.buf.len());
        if !self.buf.is_empty() && (self.shared || want > self.buf.capacity()) {
            // An exact allocation (`reserve` may double).
            let mut own = BytesMut::with_capacity(want);
            own.extend_from_slice(&self.buf);
            self.buf = own;
        }
        self.shared = false;
    }
}

/// A whole message: inflated when compressed, its text checked.
fn message(
    opcode: OpCode,
    compressed: bool,
    payload: Bytes,
    max_payload: usize,
    pool: Option<&DeflatePool>,
) -> Result<Frame, FrameError> {
    let payload = if compressed {
        let pool = pool.ok_or(FrameError::Protocol("RSV1 without permessage-deflate"))?;
        let mut out = Vec::new();
        pool.inflate(&payload, max_payload, |chunk| {
            out.extend_from_slice(chunk);
            Ok::<(), ()>(())
        })
        .map_err(|e| match e {
            InflateError::TooLarge => FrameError::TooBig,
            InflateError::Corrupt | InflateError::Rejected(()) => FrameError::BadCompression,
        })?;
        Bytes::from(out)
    } else {
        payload
    };
    if opcode == OpCode::Text {
        let mut v = Utf8Validator::default();
        v.feed(&payload)
            .and_then(|()| v.finish())
            .map_err(|_| FrameError::InvalidUtf8)?;
    }
    Ok(Frame::new(opcode, payload))
}

/// Checks the server's close payload: empty, or a code and a UTF-8 reason.
fn check_close(payload: &[u8]) -> Result<(), FrameError> {
    match payload {
        [] => Ok(()),
        [_] => Err(FrameError::Protocol("close frame with a 1-byte payload")),
        [hi, lo, reason @ ..] => {
            if !wsload_wscodec::close_code::may_be_received(u16::from_be_bytes([*hi, *lo])) {
                return Err(FrameError::Protocol("invalid close code"));
            }
            std::str::from_utf8(reason).map_err(|_| FrameError::InvalidUtf8)?;
            Ok(())
        }
    }
}

/// Appends `frame` to `out` as one masked client frame; data messages are deflated
/// (RSV1) when `pool` is given (permessage-deflate was negotiated).
pub fn encode(out: &mut Vec<u8>, frame: &Frame, pool: Option<&DeflatePool>, scratch: &mut Vec<u8>) {
    let data = matches!(frame.opcode, OpCode::Text | OpCode::Binary);
    let (payload, compressed) = match pool {
        Some(pool) if data => {
            scratch.clear();
            pool.deflate(&frame.payload, scratch);
            (&scratch[..], true)
        }
        _ => (&frame.payload[..], false),
    };
    let opcode = match frame.opcode {
        OpCode::Text => WireOp::Data(Data::Text),
        OpCode::Binary => WireOp::Data(Data::Binary),
        OpCode::Close => WireOp::Control(Control::Close),
        OpCode::Ping => WireOp::Control(Control::Ping),
        OpCode::Pong => WireOp::Control(Control::Pong),
    };
    let mask = fastrand::u32(..).to_ne_bytes();
    let header = FrameHeader {
        is_final: true,
        rsv1: compressed,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: Some(mask),
    };
    header
        .format(payload.len() as u64, out)
        .expect("writing to a Vec cannot fail");
    let start = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[start..], mask, 0);
}

#[cfg(test)]
mod tests;
