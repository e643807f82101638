//! Wall-clock time as the wire carries it: microseconds since the Unix epoch (clock
//! pings and pongs, the start barrier).

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` as microseconds since the Unix epoch (0 before the epoch, saturating far after).
pub fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Now as microseconds since the Unix epoch.
pub fn now_unix_micros() -> i64 {
    unix_micros(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn micros_since_the_epoch() {
        assert_eq!(unix_micros(UNIX_EPOCH + Duration::from_micros(1_234_567)), 1_234_567);
        assert_eq!(unix_micros(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert!(now_unix_micros() > 1_700_000_000_000_000);
    }
}
