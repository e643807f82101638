//! Plan defaults: the one home of the values an unset plan field takes, read by the
//! coordinator when it validates a plan and by agents for a wire plan that leaves a
//! field unset (proto3 zero or an absent `optional`).

use std::time::Duration;

/// Sessions in a run without arrival stages.
pub const SESSIONS: u64 = 1000;

/// Sessions per batch.
pub const BATCH_SIZE: u64 = 1000;

/// Time between batch starts.
pub const BATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Batches in progress at once, across all agents.
pub const MAX_ACTIVE_BATCHES: u64 = 50;

/// Bound on TCP connect + upgrade, and on the wait for the `session` event.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on the silence while a session awaits responses.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages each session sends.
pub const MESSAGES_PER_SESSION: u64 = 30;

/// Pause between a session's messages (zero: back-to-back).
pub const MESSAGE_INTERVAL: Duration = Duration::ZERO;

/// Approximate size of each message in bytes (zero: the smallest message).
pub const PAYLOAD_SIZE: u64 = 0;

/// How long a session stays open after its last response.
pub const HOLD_TIME: Duration = Duration::ZERO;

/// Whether sessions offer permessage-deflate.
pub const COMPRESSION: bool = false;
