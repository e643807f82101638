//! Close codes (RFC 6455 7.4) that both ends send or check.

/// Normal closure (idle timeout).
pub const NORMAL: u16 = 1000;
/// Going away: the server shuts down.
pub const GOING_AWAY: u16 = 1001;
/// A frame broke the protocol.
pub const PROTOCOL: u16 = 1002;
/// Invalid payload data (not UTF-8, or compressed data that does not inflate).
pub const INVALID_PAYLOAD: u16 = 1007;
/// Policy violation: the client does not read fast enough.
pub const POLICY: u16 = 1008;
/// A message over the size limit.
pub const TOO_BIG: u16 = 1009;

/// Whether a peer may send `code` in a close frame: the codes RFC 6455 defines
/// for use in frames and those registered since, and the ranges for libraries
/// and applications; never 1004-1006, 1015 or anything unassigned.
pub fn may_be_received(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
