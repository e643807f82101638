//! The WebSocket codec pieces both ends of wsload share (RFC 6455, RFC 7692): the
//! server's frame layer (`ws-server`) and the agent's client frame layer use the
//! same permessage-deflate pool, UTF-8 validator, masking, close codes and frame errors, so a fix or a speed-up
//! lands on both sides. Frame headers are tungstenite's codec, used by each side
//! directly; what each side keeps per connection is its own business.

pub mod close_code;
pub mod deflate;
mod error;
pub mod mask;
pub mod utf8;

pub use deflate::DeflatePool;
pub use error::FrameError;
