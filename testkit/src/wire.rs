//! WebSocket frames as another implementation (tungstenite's codec) writes them, for
//! tests of our own frame layers: the server's reader gets masked client frames, the
//! agent's reader unmasked server frames.

use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// One frame on the wire: masked with `mask` when given (a client's), `rsv1` marks
/// a compressed message.
pub fn wire_frame(opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        is_final: fin,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode,
        mask,
    };
    let mut out = Vec::new();
    Frame::from_payload(header, payload.to_vec().into())
        .format(&mut out)
        .expect("a frame formats into a Vec");
    out
}
