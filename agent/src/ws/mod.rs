//! The agent's WebSocket client, lean enough for tens of thousands of idle sessions
//! per process: our own handshake and frame layer over tungstenite's header codec
//! and the shared codec pieces of `wsload-wscodec` (the server's frame layer uses
//! the same). An idle connection holds its socket and a few flags; reads go into a
//! buffer of the thread, and only a frame cut off by the end of a read is kept.

pub mod conn;
pub mod frame;
pub mod handshake;

pub use conn::{Ws, WsError};
pub use frame::{Frame, OpCode};
pub use handshake::HandshakeError;
