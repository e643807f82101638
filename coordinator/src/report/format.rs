//! Small, shared number formatting for the human-readable outputs.

use std::time::Duration;

/// Formats microseconds as milliseconds with three decimals, e.g. `12.345 ms`.
pub fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

/// Formats a fractional microsecond value (a mean) as milliseconds, e.g. `12.345 ms`.
pub fn ms_f(us: f64) -> String {
    format!("{:.3} ms", us / 1000.0)
}

/// Formats a duration as seconds with three decimals, e.g. `12.345 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Formats a compact human duration for plan echoes, e.g. `500ms`, `10s`, `0s`.
pub fn short(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_owned()
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Formats bytes with a binary unit, e.g. `12.3 MiB`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The RFC 6455 name of a close code, e.g. `message too big` for 1009.
pub fn close_code_name(code: u16) -> Option<&'static str> {
    Some(match code {
        1000 => "normal",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status",
        1006 => "connection dropped",
        1007 => "invalid payload",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "extension required",
        1011 => "internal error",
        1012 => "service restart",
        1013 => "try again later",
        1014 => "bad gateway",
        1015 => "TLS handshake",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_units() {
        assert_eq!(ms(12_345), "12.345 ms");
        assert_eq!(ms_f(1500.0), "1.500 ms");
        assert_eq!(secs(Duration::from_millis(2500)), "2.500 s");
        assert_eq!(short(Duration::from_millis(500)), "500ms");
        assert_eq!(short(Duration::from_secs(10)), "10s");
        assert_eq!(short(Duration::ZERO), "0s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(close_code_name(1009), Some("message too big"));
        assert_eq!(close_code_name(4000), None);
    }
}
