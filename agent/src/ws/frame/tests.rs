//! The client frame layer against frames written by tungstenite's codec (an
//! implementation not ours): every byte boundary, fragments, control frames between
//! fragments, compression, and what is held between reads.

use super::*;

/// A server frame (unmasked), written by tungstenite's codec.
fn server_frame(opcode: WireOp, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    wsload_testkit::wire_frame(opcode, fin, rsv1, payload, None)
}

fn text(payload: &[u8]) -> Vec<u8> {
    server_frame(WireOp::Data(Data::Text), true, false, payload)
}

/// Feeds `wire` cut at `cuts` and collects every frame (or the first error).
fn read_cut(
    reader: &mut FrameReader,
    wire: &[u8],
    cuts: &[usize],
    pool: Option<&DeflatePool>,
) -> Result<Vec<Frame>, FrameError> {
    let mut frames = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        reader.push(&wire[start..cut]);
        start = cut;
        while let Some(f) = reader.next(1 << 20, pool)? {
            frames.push(f);
        }
    }
    Ok(frames)
}

fn read_all(wire: &[u8], pool: Option<&DeflatePool>) -> Result<Vec<Frame>, FrameError> {
    read_cut(&mut FrameReader::new(pool.is_some()), wire, &[], pool)
}

#[test]
fn a_message_split_at_every_byte_boundary_arrives_once() {
    // 7-bit, 16-bit and 64-bit payload lengths.
    for len in [0usize, 5, 125, 126, 300, 65_535, 65_536, 70_000] {
        let body: String = "h\u{e9}\u{20ac}\u{1f600}".chars().cycle().take(len / 3).collect();
        let wire = text(body.as_bytes());
        let step = if wire.len() > 400 { 331 } else { 1 };
        for cut in (0..=wire.len()).step_by(step) {
            let mut reader = FrameReader::new(false);
            let frames = read_cut(&mut reader, &wire, &[cut], None).unwrap();
            assert_eq!(frames, vec![Frame::text(body.clone())], "len {len} cut {cut}");
            assert_eq!(reader.held(), 0, "nothing held after a whole frame");
        }
    }
    // Byte by byte, two messages and a ping in one stream: every header, length and
    // payload byte cut everywhere at once.
    let mut wire = text("byte \u{1f600} by byte".as_bytes());
    wire.extend(server_frame(WireOp::Control(Control::Ping), true, false, b"p"));
    wire.extend(text(&[b'x'; 200]));
    let cuts: Vec<usize> = (1..wire.len()).collect();
    let frames = read_cut(&mut FrameReader::new(false), &wire, &cuts, None).unwrap();
    assert_eq!(
        frames,
        vec![
            Frame::text("byte \u{1f600} by byte"),
            Frame::ping(&b"p"[..]),
            Frame::text(vec![b'x'; 200])
        ]
    );
}

#[test]
fn frames_of_one_read_are_handed_out_one_by_one_then_nothing_is_held() {
    let mut wire = Vec::new();
    for i in 0..50 {
        wire.extend(text(format!("{{\"messageCount\":{i}}}").as_bytes()));
    }
    let mut reader = FrameReader::new(false);
    reader.push(&wire);
    for i in 0..50 {
        let f = reader.next(1 << 20, None).unwrap().unwrap();
        assert_eq!(f.payload(), format!("{{\"messageCount\":{i}}}").as_bytes());
    }
    assert_eq!(reader.next(1 << 20, None).unwrap(), None);
    assert_eq!(reader.held(), 0);
}

#[test]
fn a_cut_off_frame_does_not_keep_the_whole_read() {
    let mut wire = text(&[b'a'; 30_000]);
    let second = text(&[b'b'; 100]);
    wire.extend_from_slice(&second[..10]);
    let mut reader = FrameReader::new(false);
    reader.push(&wire);
    let first = reader.next(1 << 20, None).unwrap().unwrap();
    assert_eq!(first.payload().len(), 30_000);
    assert_eq!(reader.next(1 << 20, None).unwrap(), None);
    // Room for the cut-off frame (102 bytes), not the 30 KB read it came in.
    assert_eq!(reader.held(), second.len());
    drop(first);
    reader.push(&second[10..]);
    assert_eq!(reader.next(1 << 20, None).unwrap(), Some(Frame::text(vec![b'b'; 100])));
    assert_eq!(reader.held(), 0);
}

#[test]
fn many_partial_frames_held_at_once() {
    // 5,000 connections, each with a frame cut at a different place; each holds
    // only its cut-off bytes, and all complete correctly afterwards.
    let msg = |i: usize| {
        format!(
            "{{\"type\":\"response\",\"messageCount\":{i},\"pad\":\"{}\"}}",
            "z".repeat(i % 300)
        )
    };
    let wires: Vec<Vec<u8>> = (0..5000).map(|i| text(msg(i).as_bytes())).collect();
    let mut readers: Vec<FrameReader> = (0..5000).map(|_| FrameReader::new(false)).collect();
    let mut held = 0;
    for (i, (r, w)) in readers.iter_mut().zip(&wires).enumerate() {
        let cut = 1 + i % (w.len() - 1);
        r.push(&w[..cut]);
        assert_eq!(r.next(1 << 20, None).unwrap(), None);
        assert!(
            r.held() <= w.len(),
            "connection {i} holds {} of a {}-byte frame",
            r.held(),
            w.len()
        );
        held += r.held();
    }
    let total: usize = wires.iter().map(Vec::len).sum();
    assert!(held <= total, "{held} held for {total} bytes on the wire");
    for (i, (r, w)) in readers.iter_mut().zip(&wires).enumerate() {
        let cut = 1 + i % (w.len() - 1);
        r.push(&w[cut..]);
        assert_eq!(
            r.next(1 << 20, None).unwrap(),
            Some(Frame::text(msg(i))),
            "connection {i}"
        );
        assert_eq!(r.held(), 0);
    }
}

#[test]
fn fragments_with_control_frames_between_them() {
    let body = "fragmented \u{1f600} message";
    let b = body.as_bytes();
    // The emoji is cut between fragments.
    let (a, rest) = b.split_at(12);
    let (c, d) = rest.split_at(2);
    let mut wire = server_frame(WireOp::Data(Data::Text), false, false, a);
    wire.extend(server_frame(WireOp::Control(Control::Ping), true, false, b"1"));
    wire.extend(server_frame(WireOp::Data(Data::Continue), false, false, c));
    wire.extend(server_frame(WireOp::Control(Control::Pong), true, false, b""));
    wire.extend(server_frame(WireOp::Data(Data::Continue), true, false, d));
    for cut in 0..=wire.len() {
        let frames = read_cut(&mut FrameReader::new(false), &wire, &[cut], None).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::ping(&b"1"[..]),
                Frame::new(OpCode::Pong, Vec::new()),
                Frame::text(body)
            ],
            "cut {cut}"
        );
    }
}

#[test]
fn compressed_messages_whole_and_fragmented() {
    let pool = DeflatePool::new(1);
    let body = "{\"type\":\"response\",\"messageCount\":1}".repeat(20);
    let mut z = Vec::new();
    pool.deflate(body.as_bytes(), &mut z);
    let whole = server_frame(WireOp::Data(Data::Text), true, true, &z);
    assert_eq!(read_all(&whole, Some(&pool)).unwrap(), vec![Frame::text(body.clone())]);
    let (a, b) = z.split_at(z.len() / 2);
    let mut frag = server_frame(WireOp::Data(Data::Text), false, true, a);
    frag.extend(server_frame(WireOp::Data(Data::Continue), true, false, b));
    for cut in 0..=frag.len() {
        let frames = read_cut(&mut FrameReader::new(true), &frag, &[cut], Some(&pool)).unwrap();
        assert_eq!(frames, vec![Frame::text(body.clone())], "cut {cut}");
    }
    // Without negotiation RSV1 is a protocol error; garbage does not inflate.
    assert!(matches!(read_all(&whole, None), Err(FrameError::Protocol(_))));
    let bad = server_frame(WireOp::Data(Data::Binary), true, true, &[0xff; 8]);
    assert_eq!(read_all(&bad, Some(&pool)), Err(FrameError::BadCompression));
}

#[test]
fn protocol_errors() {
    let mut masked = text(b"x");
    // The MASK bit and a key, as a client would send it.
    masked[1] |= 0x80;
    masked.splice(2..2, [1, 2, 3, 4]);
    let cases: Vec<(Vec<u8>, FrameError)> = vec![
        (masked, FrameError::Protocol("masked server frame")),
        (
            server_frame(WireOp::Data(Data::Continue), true, false, b"x"),
            FrameError::Protocol("continuation frame without a message"),
        ),
        (
            server_frame(WireOp::Control(Control::Ping), false, false, b""),
            FrameError::Protocol("fragmented control frame"),
        ),
        (
            server_frame(WireOp::Control(Control::Ping), true, false, &[0; 126]),
            FrameError::Protocol("control frame over 125 bytes"),
        ),
        (text(b"\xff\xfe"), FrameError::InvalidUtf8),
        (
            server_frame(WireOp::Control(Control::Close), true, false, &[0x03, 0xed]),
            FrameError::Protocol("invalid close code"),
        ),
        (text(&vec![b'a'; (1 << 20) + 1]), FrameError::TooBig),
    ];
    for (wire, err) in cases {
        // The header alone decides most of these: the error comes before the payload.
        assert_eq!(read_all(&wire, None), Err(err.clone()), "{err}");
    }
    // Too big is known from the header: nothing of the payload is waited for.
    let big = text(&vec![b'a'; (1 << 20) + 1]);
    let mut r = FrameReader::new(false);
    r.push(&big[..10]);
    assert_eq!(r.next(1 << 20, None), Err(FrameError::TooBig));
}

#[test]
fn nothing_is_read_after_a_close_frame() {
    let mut wire = server_frame(WireOp::Control(Control::Close), true, false, &[0x03, 0xe8, b'o', b'k']);
    wire.extend(text(b"late"));
    let mut r = FrameReader::new(false);
    r.push(&wire);
    let close = r.next(1 << 20, None).unwrap().unwrap();
    assert_eq!((close.opcode(), close.close_code()), (OpCode::Close, 1000));
    assert!(r.closed());
    assert_eq!(r.next(1 << 20, None).unwrap(), None);
    assert_eq!(r.held(), 0);
}

#[test]
fn encodes_masked_client_frames_tungstenite_reads() {
    let pool = DeflatePool::new(1);
    for (frame, pool) in [
        (Frame::text("Hello"), None),
        (Frame::binary(vec![7u8; 70_000]), None),
        (Frame::close(1000, b"bye"), None),
        (Frame::text("{\"type\":\"message\"}"), Some(&pool)),
    ] {
        let mut out = Vec::new();
        encode(&mut out, &frame, pool, &mut Vec::new());
        let mut cursor = Cursor::new(&out[..]);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert!(header.mask.is_some() && header.is_final);
        assert_eq!(header.rsv1, pool.is_some() && frame.opcode() != OpCode::Close);
        let start = cursor.position() as usize;
        assert_eq!(out.len(), start + len as usize);
        let mut payload = out[start..].to_vec();
        unmask(&mut payload, header.mask.unwrap(), 0);
        let payload = match pool {
            Some(p) => {
                let mut v = Vec::new();
                p.inflate(&payload, usize::MAX, |c| {
                    v.extend_from_slice(c);
                    Ok::<(), ()>(())
                })
                .unwrap();
                v
            }
            None => payload,
        };
        assert_eq!(payload, frame.payload());
    }
}
