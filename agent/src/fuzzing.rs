//! Entry point of the fuzz target `agent_events` (`fuzz/`, run by
//! `scripts/fuzz.sh`): the agent's reading of what the target server sends. It takes
//! arbitrary bytes, must not panic, and asserts what must hold for any input; the
//! unit test replays the committed corpus (`fuzz/corpus/agent_events/`).

use crate::session::seed::{classify_parts, Incoming};
use crate::wire::{self, ServerMessage};
use crate::ws::OpCode;

/// Target `agent_events`: the first byte picks the frame's opcode, the rest is its
/// payload, classified as the built-in session does; text is also parsed as the
/// wire contract. The first bytes also size a client message, which must be JSON.
pub fn events(data: &[u8]) {
    let Some((&op, payload)) = data.split_first() else {
        return;
    };
    let opcode = match op % 5 {
        0 => OpCode::Text,
        1 => OpCode::Binary,
        2 => OpCode::Close,
        3 => OpCode::Ping,
        _ => OpCode::Pong,
    };
    let incoming = classify_parts(opcode, payload);
    match opcode {
        OpCode::Text => {
            let parsed = wire::parse(payload);
            match (&parsed, incoming) {
                (Some(ServerMessage::Response { message_count }), Incoming::Response(n)) => {
                    assert_eq!(*message_count, n)
                }
                (Some(ServerMessage::Response { .. }), other) => panic!("a response read as {other:?}"),
                (None | Some(ServerMessage::Other), i) => assert_eq!(i, Incoming::Garbage),
                _ => {}
            }
        }
        OpCode::Close => assert!(matches!(incoming, Incoming::Closed(_))),
        OpCode::Binary => assert_eq!(incoming, Incoming::Garbage),
        _ => assert_eq!(incoming, Incoming::Ignore),
    }
    let seq = payload.iter().take(8).fold(0u64, |a, &b| a << 8 | u64::from(b));
    let size = usize::from(op) * 40;
    let text = wire::client_message(seq, size);
    let json: serde_json::Value = serde_json::from_str(&text).expect("client messages are JSON");
    assert_eq!(json["seq"], seq);
    assert!(text.len() >= size, "padded to {size}: {}", text.len());
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_corpus_replays() {
        let n = wsload_testkit::fuzz_corpus::replay("agent_events", super::events);
        assert!(n >= 5, "{n} corpus files");
    }
}
