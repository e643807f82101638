//! Why a frame layer fails its connection, and the close frame that says so.

use crate::close_code;

/// Why the connection must be failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame breaks RFC 6455 or the negotiated extension.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A message over the size limit (the server's `--max-payload`).
    #[error("message too big")]
    TooBig,
    /// A text message that is not UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A compressed message that does not inflate.
    #[error("invalid compressed data")]
    BadCompression,
}

impl FrameError {
    /// The close code that reports this error.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::Protocol(_) => close_code::PROTOCOL,
            FrameError::TooBig => close_code::TOO_BIG,
            FrameError::InvalidUtf8 | FrameError::BadCompression => close_code::INVALID_PAYLOAD,
        }
    }

    /// The reason the close frame gives.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::Protocol(what) => what,
            FrameError::TooBig => "message too big",
            FrameError::InvalidUtf8 => "invalid UTF-8",
            FrameError::BadCompression => "invalid compressed data",
        }
    }
}
