//! Frames on the wire, sent byte by byte where it matters: a frame cut at every
//! byte boundary, thousands of connections each holding part of a frame at once,
//! fragmented messages with control frames between the fragments, and compressed
//! fragmented messages. The client here writes frames (encoded by tungstenite) on a
//! raw socket, so the server sees exactly the bytes and the cuts the test chooses.

use std::time::Duration;

use std::io::Write;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use wsload_testkit::*;

const TEXT: OpCode = OpCode::Data(Data::Text);
const BINARY: OpCode = OpCode::Data(Data::Binary);
const CONT: OpCode = OpCode::Data(Data::Continue);
const CLOSE: OpCode = OpCode::Control(Control::Close);
const PING: OpCode = OpCode::Control(Control::Ping);
const PONG: OpCode = OpCode::Control(Control::Pong);

/// A masked client frame as tungstenite writes it; `rsv1` marks a compressed message.
fn client_frame(opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    wire_frame(opcode, fin, rsv1, payload, Some(mask))
}

/// The last (or only) frame of a message, or a control frame.
fn last(opcode: OpCode, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    client_frame(opcode, true, false, payload, mask)
}

/// A frame of a message with more frames to come.
fn more(opcode: OpCode, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    client_frame(opcode, false, false, payload, mask)
}

/// A WebSocket client on a raw socket.
struct Raw {
    socket: TcpStream,
    /// Bytes read and not yet taken as a frame.
    pending: Vec<u8>,
}

impl Raw {
    /// Connects and upgrades, offering `extensions` and sending `early` in the same
    /// write as the request; returns the client and the response's headers, after
    /// checking it is a 101.
    async fn open(port: u16, extensions: Option<&str>, early: &[u8]) -> (Raw, String) {
        let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        socket.set_nodelay(true).unwrap();
        let offer = extensions.map_or(String::new(), |e| format!("Sec-WebSocket-Extensions: {e}\r\n"));
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
        );
        socket.write_all(&[request.as_bytes(), early].concat()).await.unwrap();
        let mut raw = Raw {
            socket,
            pending: Vec::new(),
        };
        let end = loop {
            if let Some(i) = raw.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            raw.fill().await;
        };
        let headers = String::from_utf8(raw.pending.drain(..end).collect()).unwrap();
        assert!(headers.starts_with("HTTP/1.1 101"), "{headers}");
        (raw, headers)
    }

    /// Opens a session: upgrade, then the session event.
    async fn session(port: u16) -> Raw {
        let (mut raw, _) = Raw::open(port, None, &[]).await;
        assert_eq!(raw.json().await["type"], "session");
        raw
    }

    async fn fill(&mut self) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), self.socket.read(&mut buf))
            .await
            .expect("no data within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed by the server");
        self.pending.extend_from_slice(&buf[..n]);
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }

    /// The next server frame, its header read by tungstenite.
    async fn frame(&mut self) -> (FrameHeader, Vec<u8>) {
        loop {
            let mut cursor = std::io::Cursor::new(&self.pending);
            if let Some((header, len)) = FrameHeader::parse(&mut cursor).unwrap() {
                let start = cursor.position() as usize;
                let end = start + len as usize;
                if self.pending.len() >= end {
                    assert!(header.mask.is_none(), "server frames are not masked");
                    let payload = self.pending[start..end].to_vec();
                    self.pending.drain(..end);
                    return (header, payload);
                }
            }
            self.fill().await;
        }
    }

    /// The next frame's opcode and payload.
    async fn opcode_and_payload(&mut self) -> (OpCode, Vec<u8>) {
        let (header, payload) = self.frame().await;
        (header.opcode, payload)
    }

    /// The next text frame as JSON, skipping pings.
    async fn json(&mut self) -> Value {
        loop {
            match self.opcode_and_payload().await {
                (TEXT, payload) => return serde_json::from_slice(&payload).expect("JSON"),
                (PING, _) => continue,
                (op, _) => panic!("unexpected opcode {op}"),
            }
        }
    }

    /// Reads until the close frame; returns its code.
    async fn close_code(&mut self) -> u16 {
        loop {
            if let (CLOSE, payload) = self.opcode_and_payload().await {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    }
}

#[tokio::test]
async fn a_frame_cut_at_every_byte_boundary_arrives_as_one_message() {
    let server = WsServer::memory(&[]);
    let mut raw = Raw::session(server.port(0)).await;
    let mut count = 0;
    // 7-bit and 16-bit lengths: every cut in the header, the mask key and the payload.
    for text in ["cut \u{1f600} here".to_owned(), "\u{e9}".repeat(100)] {
        let frame = last(TEXT, text.as_bytes(), [0x11, 0x22, 0x33, 0x44]);
        for cut in 1..frame.len() {
            raw.send(&frame[..cut]).await;
            // Let the server read the first part on its own.
            tokio::time::sleep(Duration::from_millis(2)).await;
            raw.send(&frame[cut..]).await;
            count += 1;
            let reply = raw.json().await;
            assert_eq!(reply["type"], "response", "cut at {cut}: {reply}");
            assert_eq!(reply["messageCount"], count, "cut at {cut}");
        }
    }
    // And byte by byte, a fragmented message with a ping between its fragments.
    let mut wire = more(TEXT, "frag".as_bytes(), [1, 2, 3, 4]);
    wire.extend(last(PING, b"hi", [5, 6, 7, 8]));
    wire.extend(last(CONT, "ments".as_bytes(), [9, 10, 11, 12]));
    for b in &wire {
        raw.send(std::slice::from_ref(b)).await;
    }
    assert_eq!(
        raw.opcode_and_payload().await,
        (PONG, b"hi".to_vec()),
        "the ping is answered"
    );
    assert_eq!(raw.json().await["messageCount"], count + 1);
}

#[tokio::test]
async fn frames_sent_with_the_handshake_are_answered() {
    let server = WsServer::memory(&[]);
    // hyper reads these bytes with the request; the connection takes them over.
    let mut early = last(PING, b"early", [1, 2, 3, 4]);
    early.extend(last(TEXT, b"right behind the handshake", [5, 6, 7, 8]));
    early.extend(more(TEXT, b"and a partial ", [5, 6, 7, 8]));
    let (mut raw, _) = Raw::open(server.port(0), None, &early).await;
    assert_eq!(raw.json().await["type"], "session", "the session event comes first");
    assert_eq!(raw.opcode_and_payload().await, (PONG, b"early".to_vec()));
    assert_eq!(raw.json().await["messageCount"], 1);
    raw.send(&last(CONT, b"message", [9, 9, 9, 9])).await;
    assert_eq!(raw.json().await["messageCount"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_connections_hold_partial_frames_at_once() {
    const N: usize = 2000;
    let server = WsServer::memory(&["--max-connections", "5000"]);
    let port = server.port(0);
    let mut clients = Vec::with_capacity(N);
    for chunk in 0..N / 100 {
        let opened: Vec<_> = (0..100).map(|_| tokio::spawn(Raw::session(port))).collect();
        for c in opened {
            clients.push(c.await.unwrap());
        }
        assert_eq!(clients.len(), (chunk + 1) * 100);
    }
    // Every client sends part of a message: a cut header, a cut mask key, a cut
    // payload, or a whole first fragment and a cut continuation.
    let message = |i: usize| {
        let mask = (i as u32).to_be_bytes();
        let text = format!("client {i} says \u{1f600}");
        let mut wire = more(TEXT, &text.as_bytes()[..5], mask);
        wire.extend(last(CONT, &text.as_bytes()[5..], mask));
        wire
    };
    let cut = |i: usize| 1 + i % (message(i).len() - 1);
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&message(i)[..cut(i)]).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(metric(port, "ws_connections_open").await, N as f64);
    assert_eq!(
        metric(port, "ws_messages_received_total").await,
        0.0,
        "no message is whole yet"
    );
    // A new session is served meanwhile.
    let mut fresh = Raw::session(port).await;
    fresh.send(&last(TEXT, b"x", [0; 4])).await;
    assert_eq!(fresh.json().await["messageCount"], 1);
    // Then every client completes its message and gets its one response.
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&message(i)[cut(i)..]).await;
    }
    for c in clients.iter_mut() {
        let reply = c.json().await;
        assert_eq!(reply["type"], "response", "{reply}");
        assert_eq!(reply["messageCount"], 1);
    }
    assert_eq!(metric(port, "ws_messages_received_total").await, (N + 1) as f64);
}

#[tokio::test]
async fn fragmented_messages_with_control_frames_between_fragments() {
    let server = WsServer::memory(&["--max-payload", "100"]);
    let port = server.port(0);
    let mask = [0xa, 0xb, 0xc, 0xd];
    let mut raw = Raw::session(port).await;
    // Text in three fragments, the emoji cut between two; a ping and a pong between.
    let text = "three \u{1f600} fragments".as_bytes();
    let mut wire = more(TEXT, &text[..8], mask);
    wire.extend(last(PING, b"between", mask));
    wire.extend(more(CONT, &text[8..10], mask));
    wire.extend(last(PONG, b"", mask));
    wire.extend(last(CONT, &text[10..], mask));
    raw.send(&wire).await;
    assert_eq!(raw.opcode_and_payload().await, (PONG, b"between".to_vec()));
    assert_eq!(raw.json().await["messageCount"], 1);
    // A fragmented binary message is one error event, and is not counted.
    let mut wire = more(BINARY, &[1, 2], mask);
    wire.extend(last(CONT, &[3], mask));
    raw.send(&wire).await;
    assert_eq!(raw.json().await["error"], "Binary messages are not supported");
    // 100 bytes over two fragments is within --max-payload.
    let mut wire = more(TEXT, &[b'a'; 60], mask);
    wire.extend(last(CONT, &[b'a'; 40], mask));
    raw.send(&wire).await;
    assert_eq!(raw.json().await["messageCount"], 2);
    // 101 is not: 1009.
    let mut wire = more(TEXT, &[b'a'; 60], mask);
    wire.extend(last(CONT, &[b'a'; 41], mask));
    raw.send(&wire).await;
    assert_eq!(raw.close_code().await, 1009);

    // Invalid UTF-8 found across fragments: 1007.
    let mut raw = Raw::session(port).await;
    let mut wire = more(TEXT, b"ok \xe2\x82", mask);
    wire.extend(last(CONT, b"x", mask));
    raw.send(&wire).await;
    assert_eq!(raw.close_code().await, 1007);
    // A control frame may not be fragmented, nor carry more than 125 bytes: 1002.
    for bad in [more(PING, b"", mask), last(PING, &[0; 126], mask)] {
        let mut raw = Raw::session(port).await;
        raw.send(&bad).await;
        assert_eq!(raw.close_code().await, 1002);
    }
    // A close frame is answered with the same code.
    let mut raw = Raw::session(port).await;
    raw.send(&last(CLOSE, &[0x0f, 0xa0, b'b', b'y', b'e'], mask)).await;
    assert_eq!(raw.close_code().await, 4000);
}

#[tokio::test]
async fn compressed_fragmented_messages() {
    let server = WsServer::memory(&["--compression-threshold", "0"]);
    let (mut raw, headers) = Raw::open(server.port(0), Some("permessage-deflate; client_max_window_bits"), &[]).await;
    assert!(
        headers.to_ascii_lowercase().contains(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ),
        "{headers}"
    );
    // RFC 7692: the sender drops the sync-flush tail; put it back and inflate.
    let inflate = |payload: &[u8]| {
        let mut inflater = flate2::write::DeflateDecoder::new(Vec::new());
        inflater.write_all(payload).unwrap();
        inflater.write_all(&[0, 0, 0xff, 0xff]).unwrap();
        inflater.flush().unwrap();
        serde_json::from_slice::<Value>(inflater.get_ref()).unwrap()
    };
    let (header, payload) = raw.frame().await;
    assert_eq!((header.opcode, header.rsv1), (TEXT, true), "compressed session event");
    assert_eq!(inflate(&payload)["type"], "session");

    let mask = [7, 7, 7, 7];
    for n in 1..=3u64 {
        // RFC 7692: deflate the whole message, drop the sync tail, then fragment;
        // RSV1 only on the first fragment. A ping travels between the fragments.
        let text = format!("compressed and fragmented message number {n} ").repeat(20);
        let mut deflated = Vec::with_capacity(text.len() + 64);
        flate2::Compress::new(flate2::Compression::default(), false)
            .compress_vec(text.as_bytes(), &mut deflated, flate2::FlushCompress::Sync)
            .unwrap();
        deflated.truncate(deflated.len() - 4);
        let third = deflated.len() / 3;
        let mut wire = client_frame(TEXT, false, true, &deflated[..third], mask);
        wire.extend(last(PING, b"p", mask));
        wire.extend(more(CONT, &deflated[third..2 * third], mask));
        wire.extend(last(CONT, &deflated[2 * third..], mask));
        // Cut the whole sequence in two at a different place each time.
        let cut = wire.len() * n as usize / 4;
        raw.send(&wire[..cut]).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        raw.send(&wire[cut..]).await;
        assert_eq!(raw.opcode_and_payload().await, (PONG, b"p".to_vec()));
        let (header, payload) = raw.frame().await;
        assert_eq!((header.opcode, header.rsv1, header.is_final), (TEXT, true, true));
        assert_eq!(inflate(&payload)["messageCount"], n);
    }
    // RSV1 on a continuation frame is a protocol error.
    let mut wire = client_frame(TEXT, false, true, &[0x4a], mask);
    wire.extend(client_frame(CONT, true, true, &[0x04, 0x00], mask));
    raw.send(&wire).await;
    assert_eq!(raw.close_code().await, 1002);
}
