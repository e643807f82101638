//! Open-file limit and session capacity sizing.

/// The open-file limits after raising the soft limit to the hard limit.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Soft limit in force now.
    pub soft: u64,
    /// Hard limit (ceiling for the soft limit).
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and reports both.
pub fn raise_nofile() -> FileLimits {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, hard)) => FileLimits { soft, hard },
        Err(_) => FileLimits { soft: 1024, hard: 1024 },
    }
}

/// File descriptors kept back for the runtime, gRPC and logs.
const RESERVED_FDS: u64 = 256;

/// Ephemeral ports per source address when the kernel's range cannot be read
/// (Linux default range 32768-60999).
const DEFAULT_PORTS_PER_ADDRESS: u64 = 28_000;

/// Ephemeral ports per source address: the size of the kernel's
/// `ip_local_port_range` (a tuned load machine has ~64,000).
pub fn ports_per_address() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| parse_port_range(&s))
        .unwrap_or(DEFAULT_PORTS_PER_ADDRESS)
}

fn parse_port_range(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace().map(str::parse::<u64>);
    let (lo, hi) = (it.next()?.ok()?, it.next()?.ok()?);
    (hi >= lo).then(|| hi - lo + 1)
}

/// The largest session count this agent can hold: below the file limit and the
/// ephemeral ports of its source addresses; `requested` is clamped to it.
pub fn max_sessions(limits: FileLimits, source_addresses: usize, requested: Option<u64>) -> u64 {
    max_sessions_with_ports(limits, source_addresses, requested, ports_per_address())
}

fn max_sessions_with_ports(limits: FileLimits, source_addresses: usize, requested: Option<u64>, ports: u64) -> u64 {
    let by_fds = limits.soft.saturating_sub(RESERVED_FDS).max(1);
    let by_ports = ports * source_addresses.max(1) as u64;
    let cap = by_fds.min(by_ports);
    requested.map_or(cap, |r| r.min(cap)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_stays_below_limits() {
        let l = FileLimits { soft: 1024, hard: 4096 };
        assert_eq!(max_sessions(l, 1, None), 768);
        assert_eq!(max_sessions(l, 1, Some(10)), 10);
        let big = FileLimits {
            soft: 1_000_000,
            hard: 1_000_000,
        };
        assert_eq!(max_sessions_with_ports(big, 2, None, 28_000), 56_000);
        assert_eq!(max_sessions_with_ports(big, 2, None, 64_512), 129_024);
    }

    #[test]
    fn port_range_is_read_from_the_kernel_format() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(28_232));
        assert_eq!(parse_port_range("1024 65535"), Some(64_512));
        assert_eq!(parse_port_range("garbage"), None);
        assert!(ports_per_address() > 0);
    }
}
