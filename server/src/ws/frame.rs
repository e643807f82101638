//! The server's frame layer over tungstenite's frame header codec: client frames
//! are checked against RFC 6455 (and RFC 7692) as their bytes arrive, payloads are
//! unmasked and validated in place in the caller's buffer and then forgotten.
//!
//! Between reads a connection keeps only what cannot be finished yet: the bytes of
//! a frame header cut short (at most 13), a control frame's payload (at most 125),
//! the code point a text message was cut in (at most 3), and, for a compressed
//! message, its compressed bytes until the last fragment (it is inflated whole).

use std::io::Cursor;

use bytes::Bytes;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::close_code;
use wsload_wscodec::deflate::{DeflatePool, InflateError};
use wsload_wscodec::utf8::Utf8Validator;

pub use wsload_wscodec::mask::unmask;

/// Longest frame header: 2 bytes, 8 of length, 4 of mask.
const MAX_HEAD: usize = 14;
/// Largest payload of a control frame (RFC 6455 5.5).
const MAX_CONTROL: u64 = 125;

/// What complete client frames mean to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole text message arrived (valid UTF-8, within the payload limit).
    Text,
    /// A whole binary message arrived.
    Binary,
    /// A ping; the pong carries this payload back.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// The client closes; the payload (code and reason, checked) to echo back.
    Close(Bytes),
}

pub use wsload_wscodec::FrameError;

/// Limits and shared state the reader needs but does not keep per connection.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits<'a> {
    /// Largest message, whole (all fragments; inflated and compressed alike).
    pub max_payload: usize,
    /// The process's compressors, when permessage-deflate was negotiated.
    pub deflate: Option<&'a DeflatePool>,
}

/// The kind of the frame whose payload is arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Ping,
    Pong,
    Close,
}

/// The frame whose payload is arriving.
#[derive(Debug, Clone, Copy)]
struct Payload {
    kind: Kind,
    fin: bool,
    /// Payload bytes still to come.
    remaining: u64,
    mask: [u8; 4],
    /// Payload bytes unmasked so far, modulo 4: where the mask continues.
    phase: u8,
}

/// The data message being received (from its first frame to its last).
#[derive(Debug, Clone, Copy)]
struct Message {
    text: bool,
    compressed: bool,
    /// Payload bytes so far (compressed bytes for a compressed message).
    len: usize,
    utf8: Utf8Validator,
}

/// Reads the client's frames of one connection, incrementally.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// A frame header cut short by the end of a read.
    head: [u8; MAX_HEAD],
    head_len: u8,
    payload: Option<Payload>,
    message: Option<Message>,
    /// The payload of the control frame arriving (at most 125 bytes).
    control: Vec<u8>,
    /// The compressed payload of the message arriving, inflated at its last frame.
    compressed: Vec<u8>,
    /// Whether RSV1 (a compressed message) is allowed: permessage-deflate was negotiated.
    deflate: bool,
    /// The client's close frame arrived: nothing after it is read.
    closed: bool,
}

impl FrameReader {
    /// A reader for a connection that negotiated permessage-deflate or not.
    pub fn new(deflate: bool) -> Self {
        Self {
            deflate,
            ..Self::default()
        }
    }

    /// Bytes held between reads (for tests and for reasoning about memory).
    pub fn held(&self) -> usize {
        usize::from(self.head_len) + self.control.capacity() + self.compressed.capacity()
    }

    /// Processes bytes just read: unmasks and checks them in place, and calls
    /// `on_event` for every complete control frame and message. Returns how many
    /// frames were completed. After an error the connection is to be failed.
    pub fn feed(
        &mut self,
        mut data: &mut [u8],
        limits: ReadLimits<'_>,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<usize, FrameError> {
        let mut frames = 0;
        while !data.is_empty() && !self.closed {
            let Some(mut p) = self.payload.take() else {
                let used = self.take_header(data, limits)?;
                data = &mut data[used..];
                if let Some(p) = self.payload.filter(|p| p.remaining == 0) {
                    self.payload = None;
                    frames += 1;
                    self.end_frame(p, limits, on_event)?;
                }
                continue;
            };
            let n = usize::try_from(p.remaining).map_or(data.len(), |r| r.min(data.len()));
            let (chunk, rest) = data.split_at_mut(n);
            data = rest;
            self.take_payload(&mut p, chunk)?;
            if p.remaining == 0 {
                frames += 1;
                self.end_frame(p, limits, on_event)?;
            } else {
                self.payload = Some(p);
            }
        }
        Ok(frames)
    }

    /// Parses a frame header from the held bytes and `data`; returns how many bytes
    /// of `data` it used (all of them, held, when the header is still incomplete).
    fn take_header(&mut self, data: &[u8], limits: ReadLimits<'_>) -> Result<usize, FrameError> {
        let held = usize::from(self.head_len);
        let add = (MAX_HEAD - held).min(data.len());
        let mut head = self.head;
        head[held..held + add].copy_from_slice(&data[..add]);
        let mut cursor = Cursor::new(&head[..held + add]);
        match FrameHeader::parse(&mut cursor) {
            Ok(Some((header, len))) => {
                let used = cursor.position() as usize - held;
                self.head_len = 0;
                self.start_frame(&header, len, limits)?;
                Ok(used)
            }
            Ok(None) => {
                // Fewer than 14 bytes, all of them a header cut short: keep them.
                self.head = head;
                self.head_len = (held + add) as u8;
                Ok(add)
            }
            Err(_) => Err(FrameError::Protocol("reserved opcode")),
        }
    }

    /// Checks a frame header against what may come now, and starts its payload.
    fn start_frame(&mut self, h: &FrameHeader, len: u64, limits: ReadLimits<'_>) -> Result<(), FrameError> {
        if h.rsv2 || h.rsv3 {
            return Err(FrameError::Protocol("RSV2 or RSV3 set"));
        }
        let Some(mask) = h.mask else {
            return Err(FrameError::Protocol("unmasked client frame"));
        };
        let kind = match h.opcode {
            OpCode::Control(c) => {
                if !h.is_final {
                    return Err(FrameError::Protocol("fragmented control frame"));
                }
                if len > MAX_CONTROL {
                    return Err(FrameError::Protocol("control frame over 125 bytes"));
                }
                if h.rsv1 {
                    return Err(FrameError::Protocol("RSV1 on a control frame"));
                }
                match c {
                    Control::Ping => Kind::Ping,
                    Control::Pong => Kind::Pong,
                    Control::Close => Kind::Close,
                    Control::Reserved(_) => return Err(FrameError::Protocol("reserved opcode")),
                }
            }
            OpCode::Data(d) => {
                let message = self.start_data(d, h.rsv1)?;
                let total = (message.len as u64).saturating_add(len);
                if total > limits.max_payload as u64 {
                    return Err(FrameError::TooBig);
                }
                message.len = total as usize;
                Kind::Data
            }
        };
        self.payload = Some(Payload {
            kind,
            fin: h.is_final,
            remaining: len,
            mask,
            phase: 0,
        });
        Ok(())
    }

    /// Starts a message or continues the one arriving, as the opcode says.
    fn start_data(&mut self, d: Data, rsv1: bool) -> Result<&mut Message, FrameError> {
        let text = match d {
            Data::Continue => {
                if rsv1 {
                    return Err(FrameError::Protocol("RSV1 on a continuation frame"));
                }
                return self
                    .message
                    .as_mut()
                    .ok_or(FrameError::Protocol("continuation frame without a message"));
            }
            Data::Text => true,
            Data::Binary => false,
            Data::Reserved(_) => return Err(FrameError::Protocol("reserved opcode")),
        };
        if self.message.is_some() {
            return Err(FrameError::Protocol("new message inside a fragmented one"));
        }
        if rsv1 && !self.deflate {
            return Err(FrameError::Protocol("RSV1 without permessage-deflate"));
        }
        Ok(self.message.insert(Message {
            text,
            compressed: rsv1,
            len: 0,
            utf8: Utf8Validator::default(),
        }))
    }

    /// Unmasks and consumes a piece of the payload arriving.
    fn take_payload(&mut self, p: &mut Payload, chunk: &mut [u8]) -> Result<(), FrameError> {
        unmask(chunk, p.mask, p.phase);
        p.phase = ((usize::from(p.phase) + chunk.len()) % 4) as u8;
        p.remaining -= chunk.len() as u64;
        if p.kind != Kind::Data {
            self.control.extend_from_slice(chunk);
            return Ok(());
        }
        let m = self.message.as_mut().expect("a data frame belongs to a message");
        if m.compressed {
            self.compressed.extend_from_slice(chunk);
        } else if m.text {
            m.utf8.feed(chunk).map_err(|_| FrameError::InvalidUtf8)?;
        }
        Ok(())
    }

    /// A frame is complete: reports a control frame, or a message at its last frame.
    fn end_frame(
        &mut self,
        p: Payload,
        limits: ReadLimits<'_>,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<(), FrameError> {
        // Control payloads move out (no copy) and leave nothing allocated behind.
        let control = std::mem::take(&mut self.control);
        match p.kind {
            Kind::Ping => on_event(Event::Ping(Bytes::from(control))),
            Kind::Pong => on_event(Event::Pong),
            Kind::Close => {
                check_close(&control)?;
                self.closed = true;
                on_event(Event::Close(Bytes::from(control)));
            }
            Kind::Data if p.fin => {
                let m = self.message.take().expect("a data frame belongs to a message");
                if m.compressed {
                    let data = std::mem::take(&mut self.compressed);
                    inflate_message(&data, m.text, limits)?;
                } else if m.text {
                    m.utf8.finish().map_err(|_| FrameError::InvalidUtf8)?;
                }
                on_event(if m.text { Event::Text } else { Event::Binary });
            }
            Kind::Data => {}
        }
        Ok(())
    }
}

/// Inflates a whole compressed message to check its size and, for text, its UTF-8.
fn inflate_message(data: &[u8], text: bool, limits: ReadLimits<'_>) -> Result<(), FrameError> {
    let pool = limits
        .deflate
        .ok_or(FrameError::Protocol("RSV1 without permessage-deflate"))?;
    let mut utf8 = Utf8Validator::default();
    pool.inflate(
        data,
        limits.max_payload,
        |chunk| if text { utf8.feed(chunk) } else { Ok(()) },
    )
    .map_err(|e| match e {
        InflateError::TooLarge => FrameError::TooBig,
        InflateError::Corrupt => FrameError::BadCompression,
        InflateError::Rejected(_) => FrameError::InvalidUtf8,
    })?;
    utf8.finish().map_err(|_| FrameError::InvalidUtf8)
}

/// Checks a client's close payload: empty, or a code a peer may send and a UTF-8 reason.
fn check_close(payload: &[u8]) -> Result<(), FrameError> {
    match payload {
        [] => Ok(()),
        [_] => Err(FrameError::Protocol("close frame with a 1-byte payload")),
        [hi, lo, reason @ ..] => {
            if !close_code::may_be_received(u16::from_be_bytes([*hi, *lo])) {
                return Err(FrameError::Protocol("invalid close code"));
            }
            std::str::from_utf8(reason).map_err(|_| FrameError::InvalidUtf8)?;
            Ok(())
        }
    }
}

/// Appends one unmasked, unfragmented server frame to `out`.
pub fn encode(out: &mut Vec<u8>, opcode: OpCode, compressed: bool, payload: &[u8]) {
    let header = FrameHeader {
        is_final: true,
        rsv1: compressed,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: None,
    };
    header
        .format(payload.len() as u64, out)
        .expect("writing to a Vec cannot fail");
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason` to `out`.
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &[u8]) {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason);
    encode(out, OpCode::Control(Control::Close), false, &payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame: masked, with the given first byte (FIN, RSV, opcode).
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&MASK);
        let mut body = payload.to_vec();
        unmask(&mut body, MASK, 0);
        out.extend_from_slice(&body);
        out
    }

    const TEXT: u8 = 0x1;
    const BINARY: u8 = 0x2;
    const CONT: u8 = 0x0;
    const CLOSE: u8 = 0x8;
    const PING: u8 = 0x9;
    const PONG: u8 = 0xA;
    const FIN: u8 = 0x80;
    const RSV1: u8 = 0x40;

    fn limits(max_payload: usize, pool: Option<&DeflatePool>) -> ReadLimits<'_> {
        ReadLimits {
            max_payload,
            deflate: pool,
        }
    }

    /// Feeds `wire` cut at `cuts`; returns the events and frame count, or the error.
    fn feed_cut(
        reader: &mut FrameReader,
        wire: &[u8],
        cuts: &[usize],
        l: ReadLimits<'_>,
    ) -> Result<(Vec<Event>, usize), FrameError> {
        let mut events = Vec::new();
        let mut frames = 0;
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
            let mut piece = wire[start..cut].to_vec();
            frames += reader.feed(&mut piece, l, &mut |e| events.push(e))?;
            start = cut;
        }
        Ok((events, frames))
    }

    fn read_all(wire: &[u8], l: ReadLimits<'_>) -> Result<Vec<Event>, FrameError> {
        feed_cut(&mut FrameReader::new(l.deflate.is_some()), wire, &[], l).map(|(e, _)| e)
    }

    #[test]
    fn unmask_matches_rfc_example_at_every_phase() {
        // RFC 6455 5.7: a masked "Hello".
        let mut hello = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        unmask(&mut hello, MASK, 0);
        assert_eq!(&hello, b"Hello");
        let data: Vec<u8> = (0..40).collect();
        let mut whole = data.clone();
        unmask(&mut whole, MASK, 0);
        for cut in 0..data.len() {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            unmask(a, MASK, 0);
            unmask(b, MASK, (cut % 4) as u8);
            assert_eq!(pieces, whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_message_split_at_every_byte_boundary_arrives_once() {
        // 7-bit, 16-bit and 64-bit payload lengths.
        for len in [0usize, 5, 125, 126, 300, 65_536] {
            let text: String = "h\u{e9}\u{20ac}\u{1f600}".chars().cycle().take(len / 3).collect();
            let wire = client_frame(FIN | TEXT, text.as_bytes());
            let step = if wire.len() > 400 { 97 } else { 1 };
            for cut in (0..=wire.len()).step_by(step) {
                let mut reader = FrameReader::new(false);
                let (events, frames) = feed_cut(&mut reader, &wire, &[cut], limits(1 << 20, None)).unwrap();
                assert_eq!(events, vec![Event::Text], "len {len} cut {cut}");
                assert_eq!(frames, 1);
                assert_eq!(reader.held(), 0, "nothing held after a whole frame");
            }
        }
        // Byte by byte: header, mask key and payload each cut everywhere at once.
        let wire = client_frame(FIN | TEXT, "byte \u{1f600} by byte".as_bytes());
        let cuts: Vec<usize> = (1..wire.len()).collect();
        let (events, _) = feed_cut(&mut FrameReader::new(false), &wire, &cuts, limits(1000, None)).unwrap();
        assert_eq!(events, vec![Event::Text]);
    }

    #[test]
    fn fragments_with_interleaved_control_frames() {
        let text = "fragmented \u{1f600} message";
        let bytes = text.as_bytes();
        // The emoji is cut between fragments.
        let mut wire = client_frame(TEXT, &bytes[..13]);
        wire.extend(client_frame(FIN | PING, b"p1"));
        wire.extend(client_frame(CONT, &bytes[13..15]));
        wire.extend(client_frame(FIN | PONG, b""));
        wire.extend(client_frame(FIN | CONT, &bytes[15..]));
        wire.extend(client_frame(FIN | BINARY, &[0, 1, 2]));
        let expect = vec![
            Event::Ping(Bytes::from_static(b"p1")),
            Event::Pong,
            Event::Text,
            Event::Binary,
        ];
        for cut in 0..=wire.len() {
            for second in [cut, (cut + 7).min(wire.len())] {
                let mut reader = FrameReader::new(false);
                let (events, frames) = feed_cut(&mut reader, &wire, &[cut, second], limits(100, None)).unwrap();
                assert_eq!(events, expect, "cut at {cut}, {second}");
                assert_eq!(frames, 6);
                assert_eq!(reader.held(), 0);
            }
        }
    }

    #[test]
    fn payload_limit_counts_the_whole_message() {
        let l = limits(10, None);
        assert_eq!(
            read_all(&client_frame(FIN | TEXT, &[b'a'; 10]), l),
            Ok(vec![Event::Text])
        );
        assert_eq!(
            read_all(&client_frame(FIN | TEXT, &[b'a'; 11]), l),
            Err(FrameError::TooBig)
        );
        let mut wire = client_frame(TEXT, &[b'a'; 6]);
        wire.extend(client_frame(FIN | CONT, &[b'a'; 4]));
        assert_eq!(read_all(&wire, l), Ok(vec![Event::Text]));
        wire.extend(client_frame(TEXT, &[b'a'; 6]));
        wire.extend(client_frame(FIN | CONT, &[b'a'; 5]));
        assert_eq!(read_all(&wire, l), Err(FrameError::TooBig));
        // Refused at the header: the 11 bytes of payload never had to arrive.
        let head = &client_frame(FIN | BINARY, &[0; 11])[..6];
        assert_eq!(read_all(head, l), Err(FrameError::TooBig));
    }

    #[test]
    fn invalid_utf8_is_found_across_fragments() {
        let l = limits(100, None);
        let mut wire = client_frame(TEXT, b"ok \xe2\x82");
        wire.extend(client_frame(FIN | CONT, b"\xac fine"));
        assert_eq!(read_all(&wire, l), Ok(vec![Event::Text]));
        let mut wire = client_frame(TEXT, b"ok \xe2\x82");
        wire.extend(client_frame(FIN | CONT, b"x"));
        assert_eq!(read_all(&wire, l), Err(FrameError::InvalidUtf8));
        let wire = client_frame(FIN | TEXT, b"cut \xe2\x82");
        assert_eq!(read_all(&wire, l), Err(FrameError::InvalidUtf8));
        // Binary messages are not text.
        assert_eq!(
            read_all(&client_frame(FIN | BINARY, b"\xff"), l),
            Ok(vec![Event::Binary])
        );
    }

    #[test]
    fn protocol_violations_fail_with_1002() {
        let l = limits(1000, None);
        let mut unmasked = client_frame(FIN | TEXT, b"x");
        unmasked[1] &= 0x7f;
        unmasked.drain(2..6);
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("unmasked", unmasked),
            ("rsv2", client_frame(FIN | 0x20 | TEXT, b"x")),
            ("rsv3", client_frame(FIN | 0x10 | TEXT, b"x")),
            ("rsv1 without deflate", client_frame(FIN | RSV1 | TEXT, b"x")),
            ("reserved data opcode", client_frame(FIN | 0x3, b"x")),
            ("reserved control opcode", client_frame(FIN | 0xB, b"")),
            ("long ping", client_frame(FIN | PING, &[0; 126])),
            ("long close", client_frame(FIN | CLOSE, &[0x03, 0xe8].repeat(63))),
            ("fragmented ping", client_frame(PING, b"")),
            ("lone continuation", client_frame(FIN | CONT, b"x")),
            ("1-byte close", client_frame(FIN | CLOSE, &[0x03])),
            ("close 1005", client_frame(FIN | CLOSE, &1005u16.to_be_bytes())),
            ("close 999", client_frame(FIN | CLOSE, &999u16.to_be_bytes())),
            ("close 5000", client_frame(FIN | CLOSE, &5000u16.to_be_bytes())),
            (
                "message in a message",
                [client_frame(TEXT, b"a"), client_frame(FIN | TEXT, b"b")].concat(),
            ),
        ];
        for (what, wire) in bad {
            let err = read_all(&wire, l).expect_err(what);
            assert_eq!(err.close_code(), 1002, "{what}: {err}");
        }
        let bad_reason = client_frame(FIN | CLOSE, &[0x03, 0xe8, 0xff]);
        assert_eq!(read_all(&bad_reason, l), Err(FrameError::InvalidUtf8));
        // Accepted: the largest control frame, and close codes a peer may send.
        assert!(read_all(&client_frame(FIN | PING, &[7; 125]), l).is_ok());
        for code in [1000u16, 1001, 1003, 1007, 1011, 3000, 4999] {
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice("bye \u{e9}".as_bytes());
            let events = read_all(&client_frame(FIN | CLOSE, &payload), l).unwrap();
            assert_eq!(events, vec![Event::Close(Bytes::from(payload))], "code {code}");
        }
    }

    #[test]
    fn nothing_is_read_after_the_close_frame() {
        let mut wire = client_frame(FIN | CLOSE, b"");
        wire.extend(client_frame(FIN | TEXT, b"late"));
        wire.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(read_all(&wire, limits(100, None)), Ok(vec![Event::Close(Bytes::new())]));
    }

    #[test]
    fn compressed_fragmented_messages() {
        let pool = DeflatePool::new(1);
        let l = limits(1000, Some(&pool));
        let text = "compressible \u{1f600} ".repeat(40);
        let mut deflated = Vec::new();
        pool.deflate(text.as_bytes(), &mut deflated);
        let third = deflated.len() / 3;
        let mut wire = client_frame(RSV1 | TEXT, &deflated[..third]);
        wire.extend(client_frame(FIN | PING, b""));
        wire.extend(client_frame(CONT, &deflated[third..2 * third]));
        wire.extend(client_frame(FIN | CONT, &deflated[2 * third..]));
        wire.extend(client_frame(FIN | TEXT, b"plain too"));
        let expect = vec![Event::Ping(Bytes::new()), Event::Text, Event::Text];
        for cut in 0..=wire.len() {
            let mut reader = FrameReader::new(true);
            let (events, _) = feed_cut(&mut reader, &wire, &[cut], l).unwrap();
            assert_eq!(events, expect, "cut at {cut}");
            assert_eq!(reader.held(), 0);
        }
        // RSV1 belongs on the first frame only.
        let mut wire = client_frame(RSV1 | TEXT, &deflated[..third]);
        wire.extend(client_frame(FIN | RSV1 | CONT, &deflated[third..]));
        assert_eq!(read_all(&wire, l).unwrap_err().close_code(), 1002);
        // Inflated size counts against the limit; so does garbage.
        let mut bomb = Vec::new();
        pool.deflate(&[b'a'; 1001], &mut bomb);
        assert_eq!(
            read_all(&client_frame(FIN | RSV1 | TEXT, &bomb), l),
            Err(FrameError::TooBig)
        );
        let mut invalid = Vec::new();
        pool.deflate(b"\xff\xfe", &mut invalid);
        assert_eq!(
            read_all(&client_frame(FIN | RSV1 | TEXT, &invalid), l),
            Err(FrameError::InvalidUtf8)
        );
        assert_eq!(
            read_all(&client_frame(FIN | RSV1 | BINARY, &invalid), l),
            Ok(vec![Event::Binary])
        );
        assert_eq!(
            read_all(&client_frame(FIN | RSV1 | BINARY, &[0xff; 8]), l),
            Err(FrameError::BadCompression)
        );
    }

    #[test]
    fn encodes_server_frames() {
        let mut out = Vec::new();
        encode(&mut out, OpCode::Data(Data::Text), false, b"Hello");
        assert_eq!(out, b"\x81\x05Hello");
        out.clear();
        encode(&mut out, OpCode::Data(Data::Text), true, &[0; 300]);
        assert_eq!(&out[..4], &[0xc1, 126, 0x01, 0x2c]);
        out.clear();
        encode_close(&mut out, 1001, b"bye");
        assert_eq!(out, b"\x88\x05\x03\xe9bye");
    }
}
