//! Entry points of the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`) for what a
//! client sends: its frames and its upgrade request. Each takes arbitrary bytes,
//! must not panic, and asserts what must hold for any input; the unit tests replay
//! the committed corpora (`fuzz/corpus/<target>/`) through the same functions.

use http::{HeaderName, HeaderValue, Request};

use crate::ws::frame::{unmask, Event, FrameError, FrameReader, ReadLimits};
use crate::ws::{handshake, DeflatePool};

/// The payload limits the targets choose among (`--max-payload`).
const LIMITS: [usize; 4] = [16, 125, 1000, 65_536];

/// Every event and the error (if any) of a client stream, and the frames completed.
type Outcome = (Vec<Event>, Result<usize, FrameError>);

/// Feeds `wire` to a fresh reader in pieces of the sizes `sizes` cycles through (the
/// whole stream at once when `sizes` is empty), stopping at the first error.
fn read(wire: &[u8], sizes: &[usize], deflate: bool, limits: ReadLimits<'_>) -> Outcome {
    let mut reader = FrameReader::new(deflate);
    let mut events = Vec::new();
    let mut frames = 0;
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .map_or(rest.len(), |&s| s.clamp(1, rest.len()));
        i += 1;
        let mut piece = rest[..n].to_vec();
        rest = &rest[n..];
        match reader.feed(&mut piece, limits, &mut |e| events.push(e)) {
            Ok(f) => frames += f,
            Err(e) => return (events, Err(e)),
        }
        // Between reads a connection keeps a header cut short, a control payload
        // and a compressed message, each within its limit.
        let bound = 14 + 2 * 125 + 2 * limits.max_payload + 64;
        assert!(reader.held() <= bound, "held {} > {bound}", reader.held());
    }
    (events, Ok(frames))
}

/// Reads a client stream whole and in pieces: both must mean the same.
fn check_stream(wire: &[u8], deflate: bool, max_payload: usize, sizes: &[usize]) {
    let pool = DeflatePool::new(1);
    let limits = ReadLimits {
        max_payload,
        deflate: deflate.then_some(&pool),
    };
    let whole = read(wire, &[], deflate, limits);
    let pieces = read(wire, sizes, deflate, limits);
    assert_eq!(whole, pieces, "the same stream read whole and in pieces {sizes:?}");
    if let (_, Err(e)) = &whole {
        assert!(matches!(e.close_code(), 1002 | 1007 | 1009), "{e}");
    }
}

/// Target `server_frames`: arbitrary bytes as a client's stream after the upgrade.
/// The first byte picks compression, the payload limit and how reads cut the stream.
pub fn frames(data: &[u8]) {
    let Some((&cfg, wire)) = data.split_first() else {
        return;
    };
    let deflate = cfg & 1 == 1;
    let max_payload = LIMITS[usize::from(cfg >> 1) & 3];
    let step = usize::from(cfg >> 3) + 1;
    check_stream(wire, deflate, max_payload, &[step, 1, 2 * step + 3]);
}

/// Target `server_frame_seq`: a sequence of well-formed-looking frames, each from a
/// few bytes of the input (FIN/RSV/opcode byte, a mask choice, a length, then that
/// many payload bytes), so the fuzzer explores sequences (fragments, interleaved
/// control frames, compressed messages) rather than header bit patterns. With
/// RSV1 on a data frame and compression on, the payload is deflated first so the
/// inflate path sees valid streams too.
pub fn frame_seq(data: &[u8]) {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let deflate = cfg & 1 == 1;
    let max_payload = LIMITS[usize::from(cfg >> 1) & 3];
    let pool = DeflatePool::new(1);
    let mut wire = Vec::new();
    while rest.len() >= 3 {
        let (first, mask_sel, len) = (rest[0], rest[1], usize::from(rest[2]));
        rest = &rest[3..];
        let take = len.min(rest.len());
        let mut payload = rest[..take].to_vec();
        rest = &rest[take..];
        if first & 0x40 != 0 && first & 0x08 == 0 && deflate {
            let mut deflated = Vec::new();
            pool.deflate(&payload, &mut deflated);
            payload = deflated;
        }
        // With the mask byte's top bit, the frame declares more payload than
        // follows: the stream ends inside it.
        let cut_short = mask_sel & 0x80 != 0;
        wire.push(first);
        let len = payload.len()
            + if cut_short {
                usize::from(mask_sel & 0x7f) * 1000 + 1
            } else {
                0
            };
        if len < 126 {
            wire.push(0x80 | len as u8);
        } else if len <= 0xffff {
            wire.push(0x80 | 126);
            wire.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            wire.push(0x80 | 127);
            wire.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [mask_sel & 0x7f, 0xfa, 0x21, mask_sel];
        wire.extend_from_slice(&mask);
        unmask(&mut payload, mask, 0);
        wire.extend_from_slice(&payload);
        if cut_short {
            break;
        }
    }
    let step = usize::from(cfg >> 3) + 1;
    check_stream(&wire, deflate, max_payload, &[step, 7]);
}

/// Target `server_handshake`: the upgrade request's headers, one `name: value` per
/// line; the answer must be a 101 exactly when the key and version 13 are there, and
/// the extension agreed only on a permessage-deflate offer.
pub fn handshake(data: &[u8]) {
    let mut req = Request::builder().uri("/ws");
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        req = req.header(name, value);
    }
    let Ok(req) = req.body(()) else { return };
    let offered = handshake::negotiate_deflate(req.headers());
    if let Some(terms) = &offered {
        assert!(terms.starts_with("permessage-deflate; server_no_context_takeover"));
    }
    match handshake::accept(&req, true) {
        Ok(a) => {
            assert_eq!(a.response.status(), 101);
            assert_eq!(a.deflate, offered.is_some());
            assert!(req.headers().contains_key("sec-websocket-key"));
        }
        Err(_) => assert!(
            !req.headers().contains_key("sec-websocket-key")
                || req.headers().get("sec-websocket-version").map(HeaderValue::as_bytes) != Some(b"13")
        ),
    }
    let plain = handshake::accept(&req, false).map(|a| a.deflate);
    assert!(!plain.unwrap_or(false), "no compression unless the server offers it");
}

#[cfg(test)]
mod tests {
    use wsload_testkit::fuzz_corpus::replay;

    #[test]
    fn the_fuzz_corpora_replay() {
        assert!(replay("server_frames", super::frames) >= 5);
        assert!(replay("server_frame_seq", super::frame_seq) >= 3);
        assert!(replay("server_handshake", super::handshake) >= 3);
    }
}
