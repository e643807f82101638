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

/// Ephemeral ports per source address (Linux default range 32768-60999).
const PORTS_PER_ADDRESS: u64 = 28_000;

/// The largest session count this agent can hold: below the file limit and the
/// ephemeral ports of its source addresses; `requested` is clamped to it.
pub fn max_sessions(limits: FileLimits, source_addresses: usize, requested: Option<u64>) -> u64 {
    let by_fds = limits.soft.saturating_sub(RESERVED_FDS).max(1);
    let by_ports = PORTS_PER_ADDRESS * source_addresses.max(1) as u64;
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
        assert_eq!(max_sessions(big, 2, None), 56_000);
    }
}
