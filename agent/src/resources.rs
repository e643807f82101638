//! Resource sampling (sysinfo) and the memory-aware throttle decision.
//!
//! # A throttle that lets go
//!
//! Memory a session frees stays in the process's RSS: glibc malloc keeps freed chunks
//! in its arenas for reuse rather than returning them to the system. Measured: an
//! agent with `--max-rss-mb 30` held 8,000 sessions, stopped starting batches, and
//! stayed throttled for the rest of the run after those sessions had closed (RSS
//! never came down), so the run ended aborted at `--max-duration`.
//!
//! The throttle therefore judges what the agent *could* hand back: the RSS it would
//! need for the sessions open now, `baseline + open x per_session`, where
//! - `baseline` is the lowest RSS seen with no session open (the agent at rest), and
//! - `per_session` is `(RSS - baseline) / open` measured whenever the open-session
//!   count reaches a new high (the first batches, then any wave that grows past
//!   them): it is the RSS growth per session as the allocator really served it
//!   (socket buffers, task, fragmentation), not a constant from a benchmark.
//!
//! The RSS cap holds back batches only when the real RSS is over it *and* so is that
//! estimate: freed memory that new sessions will reuse no longer blocks them, and an
//! allocator that does return memory is simply judged by its RSS. The system-memory
//! limit discounts the same reusable part (RSS above the estimate) from the memory in
//! use. Returning freed memory to the system (glibc `malloc_trim`) was the other way
//! out; it needs FFI (`unsafe`, which the workspace forbids), is glibc-only, and walks
//! the whole heap under its lock while sessions run.

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use wsload_proto::pb::ResourceSample;

/// Fewest open sessions a per-session cost is measured over (fewer is noise).
const MIN_SESSIONS_MEASURED: u64 = 32;

/// The RSS the agent needs for its open sessions, learned from its own samples.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RssModel {
    /// Lowest RSS seen with no session open.
    baseline: Option<u64>,
    /// Most sessions seen open at once.
    open_peak: u64,
    /// RSS per open session, measured at the latest `open_peak`.
    per_session: Option<u64>,
}

impl RssModel {
    /// Learns from one sample: `rss` bytes with `open` sessions open.
    pub fn observe(&mut self, rss: u64, open: u64) {
        if open == 0 {
            self.baseline = Some(self.baseline.map_or(rss, |b| b.min(rss)));
            return;
        }
        let Some(base) = self.baseline else { return };
        if open >= self.open_peak.max(MIN_SESSIONS_MEASURED) {
            self.open_peak = open;
            self.per_session = Some(rss.saturating_sub(base) / open);
        }
    }

    /// The RSS `open` sessions need (None until a cost was measured, or while none is
    /// known for sessions that are open).
    pub fn needed(&self, open: u64) -> Option<u64> {
        let base = self.baseline?;
        if open == 0 {
            return Some(base);
        }
        Some(base + open.saturating_mul(self.per_session?))
    }

    /// The part of `rss` the agent holds but does not need for `open` sessions (freed
    /// memory the allocator keeps for reuse).
    pub fn reusable(&self, rss: u64, open: u64) -> u64 {
        self.needed(open).map_or(0, |n| rss.saturating_sub(n))
    }

    /// Whether `rss` with `open` sessions is over `cap`: the real RSS is, and so is
    /// what the open sessions need.
    pub fn over(&self, cap: u64, rss: u64, open: u64) -> bool {
        rss > cap && self.needed(open).is_none_or(|n| n > cap)
    }
}

/// Samples system memory and this process's RSS and CPU.
pub struct Sampler {
    sys: System,
    pid: Option<Pid>,
    /// Throttle when system memory use passes this percent.
    max_memory_percent: f64,
    /// Throttle when our RSS passes this many bytes.
    max_rss_bytes: Option<u64>,
    /// What the open sessions need (see the module documentation).
    model: RssModel,
}

impl Sampler {
    /// A sampler with the agent's throttle limits.
    pub fn new(max_memory_percent: f64, max_rss_bytes: Option<u64>) -> Self {
        Sampler {
            sys: System::new(),
            pid: sysinfo::get_current_pid().ok(),
            max_memory_percent,
            max_rss_bytes,
            model: RssModel::default(),
        }
    }

    /// Total system memory in bytes.
    pub fn total_memory(&mut self) -> u64 {
        self.sys.refresh_memory();
        self.sys.total_memory()
    }

    /// Takes a sample with `open_sessions` open.
    pub fn sample(&mut self, open_sessions: u64) -> ResourceSample {
        self.sys.refresh_memory();
        let total = self.sys.total_memory().max(1);
        let (rss_bytes, cpu_percent) = match self.pid {
            Some(pid) => {
                self.sys.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    true,
                    ProcessRefreshKind::nothing().with_memory().with_cpu(),
                );
                self.sys
                    .process(pid)
                    .map_or((0, 0.0), |p| (p.memory(), f64::from(p.cpu_usage())))
            }
            None => (0, 0.0),
        };
        self.model.observe(rss_bytes, open_sessions);
        let used = self.sys.used_memory();
        let memory_used_percent = used as f64 * 100.0 / total as f64;
        let needed_used = used.saturating_sub(self.model.reusable(rss_bytes, open_sessions));
        let throttled = needed_used as f64 * 100.0 / total as f64 > self.max_memory_percent
            || self
                .max_rss_bytes
                .is_some_and(|cap| self.model.over(cap, rss_bytes, open_sessions));
        ResourceSample {
            memory_used_percent,
            rss_bytes,
            cpu_percent,
            open_sessions,
            throttled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    /// The measured failure: 30 MB cap, a wave of sessions pushes RSS over it; after
    /// they close RSS stays high, yet the throttle lets go.
    #[test]
    fn the_throttle_lets_go_when_the_sessions_that_filled_memory_close() {
        let cap = 30 * MB;
        let mut m = RssModel::default();
        m.observe(10 * MB, 0);
        assert!(!m.over(cap, 10 * MB, 0));
        // First wave: 4,000 sessions at 8 KB each, after the gauge caught up.
        m.observe(20 * MB, 1_000);
        m.observe(42 * MB, 4_000);
        assert!(m.over(cap, 42 * MB, 4_000), "over the cap with the sessions open");
        // They close; glibc keeps the memory.
        m.observe(42 * MB, 100);
        assert!(!m.over(cap, 42 * MB, 100), "100 sessions need ~11 MB");
        assert_eq!(m.needed(0), Some(10 * MB));
        assert!(!m.over(cap, 42 * MB, 0));
        // The baseline is the agent at rest, not the retained heap.
        m.observe(42 * MB, 0);
        assert_eq!(m.needed(0), Some(10 * MB));
        // A second wave reuses the memory: over the cap again at ~2,500 sessions.
        assert!(!m.over(cap, 42 * MB, 2_400));
        assert!(m.over(cap, 42 * MB, 2_700));
        assert_eq!(m.reusable(42 * MB, 100), 42 * MB - (10 * MB + 100 * (32 * MB / 4_000)));
    }

    #[test]
    fn without_a_measurement_the_rss_decides() {
        let cap = 30 * MB;
        let mut m = RssModel::default();
        // No sample at rest yet: nothing is known.
        m.observe(40 * MB, 500);
        assert!(m.over(cap, 40 * MB, 500));
        assert!(!m.over(cap, 20 * MB, 500));
        m.observe(10 * MB, 0);
        // Too few sessions to measure a cost.
        m.observe(40 * MB, 5);
        assert!(m.over(cap, 40 * MB, 5));
        assert_eq!(m.reusable(40 * MB, 5), 0);
        // A baseline over the cap throttles for good: nothing can be released.
        let mut fat = RssModel::default();
        fat.observe(50 * MB, 0);
        assert!(fat.over(cap, 50 * MB, 0));
    }
}
