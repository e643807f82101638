//! The WebSocket protocol as this server speaks it, with nothing kept per
//! connection that an idle connection does not need: the handshake answered on
//! hyper's upgrade, client frames checked and consumed as their bytes arrive
//! (tungstenite's header codec), server frames encoded straight into a write, and
//! permessage-deflate without context takeover from one pool per process.

pub mod frame;
pub mod handshake;

pub use wsload_wscodec::{close_code, deflate, utf8, DeflatePool};
