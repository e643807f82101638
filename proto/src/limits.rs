//! Size limits of the wire: every gRPC service and client of wsload uses
//! [`MAX_MESSAGE_BYTES`] for the messages it decodes and encodes (tonic's default
//! would be 4 MiB in and unlimited out), sized from the largest legitimate message:
//! an Assign or StartRun carrying a plan at [`MAX_PLAN_BYTES`].

/// Largest feeder file a plan may read (it travels to every agent in the plan).
pub const MAX_FEEDER_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Largest encoded plan. A 32 MiB CSV feeder grows on the wire by a few bytes per
/// row and cell (each is a length-prefixed field): typical data by well under 2x,
/// so such a plan fits; a feeder of millions of empty cells may not, and is refused
/// with this limit named.
pub const MAX_PLAN_BYTES: usize = 64 * 1024 * 1024;

/// Largest gRPC message sent or accepted: a plan at its limit plus room for the
/// message around it.
pub const MAX_MESSAGE_BYTES: usize = MAX_PLAN_BYTES + 1024 * 1024;
