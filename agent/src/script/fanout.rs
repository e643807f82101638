//! Broadcast delivery accounting for one listening session: latency from the send
//! time the message carries, duplicates (an identity seen among the last
//! [`RECENT`] messages) and out-of-order deliveries (a send time older than one
//! already received from the same publisher's stream; up to [`STREAMS`] streams are
//! followed, the least recently heard one is forgotten first).

use std::collections::VecDeque;

use serde_json::Value;

/// Identities remembered for duplicate detection.
pub const RECENT: usize = 64;
/// Publisher streams followed for ordering.
pub const STREAMS: usize = 64;

/// What one delivery was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Receive time minus send time, microseconds (0 when the clocks disagree).
    pub latency_us: u64,
    /// Seen before.
    pub duplicate: bool,
    /// Sent before a message already received.
    pub out_of_order: bool,
}

/// One session's view of a broadcast stream.
#[derive(Debug, Default)]
pub struct Tracker {
    recent: VecDeque<u64>,
    /// The newest send time per stream, most recently heard last.
    newest: VecDeque<(u64, i64)>,
}

/// A send time: microseconds since the epoch as a number, or an RFC 3339 string.
pub fn sent_at_micros(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => {
            let t = humantime::parse_rfc3339_weak(s).ok()?;
            let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
            i64::try_from(d.as_micros()).ok()
        }
        _ => None,
    }
}

/// A message identity as a number (strings are hashed).
pub fn identity(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap_or_else(|| hash(n.to_string().as_bytes())),
        Value::String(s) => hash(s.as_bytes()),
        other => hash(other.to_string().as_bytes()),
    }
}

/// FNV-1a: stable across agents and runs.
fn hash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Tracker {
    /// Accounts a message of publisher `stream` sent at `sent_us` with identity `id`,
    /// received at `now_us` (both in the coordinator's clock).
    pub fn deliver(&mut self, stream: u64, id: u64, sent_us: i64, now_us: i64) -> Delivery {
        let duplicate = self.recent.contains(&id);
        if !duplicate {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(id);
        }
        let newest = match self.newest.iter().position(|(s, _)| *s == stream) {
            Some(i) => self.newest.remove(i).map(|(_, t)| t),
            None => {
                if self.newest.len() == STREAMS {
                    self.newest.pop_front();
                }
                None
            }
        };
        let out_of_order = !duplicate && newest.is_some_and(|n| sent_us < n);
        self.newest
            .push_back((stream, newest.map_or(sent_us, |n| n.max(sent_us))));
        Delivery {
            latency_us: u64::try_from(now_us - sent_us).unwrap_or(0),
            duplicate,
            out_of_order,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_order() {
        let mut t = Tracker::default();
        let d = t.deliver(0, 1, 1_000, 1_500);
        assert_eq!((d.latency_us, d.duplicate, d.out_of_order), (500, false, false));
        let d = t.deliver(0, 3, 3_000, 3_100);
        assert!(!d.duplicate && !d.out_of_order);
        let d = t.deliver(0, 2, 2_000, 3_200);
        assert!(!d.duplicate && d.out_of_order, "2 arrived after 3");
        let d = t.deliver(0, 3, 3_000, 3_300);
        assert!(d.duplicate && !d.out_of_order);
        assert_eq!(t.deliver(0, 4, 5_000, 4_000).latency_us, 0, "clock skew reads as 0");
        // Another publisher's older message is not out of order.
        let d = t.deliver(9, 5, 2_500, 5_100);
        assert!(!d.duplicate && !d.out_of_order);
    }

    #[test]
    fn send_times_and_identities() {
        assert_eq!(
            sent_at_micros(&serde_json::json!(1_700_000_000_000_123i64)),
            Some(1_700_000_000_000_123)
        );
        assert_eq!(
            sent_at_micros(&serde_json::json!("2026-12-01T00:00:00.000123Z")),
            Some(1_796_083_200_000_123)
        );
        assert_eq!(sent_at_micros(&serde_json::json!("yesterday")), None);
        assert_eq!(identity(&serde_json::json!(7)), 7);
        assert_eq!(identity(&serde_json::json!("a")), identity(&serde_json::json!("a")));
        assert_ne!(identity(&serde_json::json!("a")), identity(&serde_json::json!("b")));
    }
}
