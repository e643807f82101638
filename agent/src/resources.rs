//! Resource sampling (sysinfo) and the memory-aware throttle decision.

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use wsload_proto::pb::ResourceSample;

/// Samples system memory and this process's RSS and CPU.
pub struct Sampler {
    sys: System,
    pid: Option<Pid>,
    /// Throttle when system memory use passes this percent.
    max_memory_percent: f64,
    /// Throttle when our RSS passes this many bytes.
    max_rss_bytes: Option<u64>,
}

impl Sampler {
    /// A sampler with the agent's throttle limits.
    pub fn new(max_memory_percent: f64, max_rss_bytes: Option<u64>) -> Self {
        Sampler {
            sys: System::new(),
            pid: sysinfo::get_current_pid().ok(),
            max_memory_percent,
            max_rss_bytes,
        }
    }

    /// Total system memory in bytes.
    pub fn total_memory(&mut self) -> u64 {
        self.sys.refresh_memory();
        self.sys.total_memory()
    }

    /// Takes a sample; `open_sessions` is filled in by the caller.
    pub fn sample(&mut self, open_sessions: u64) -> ResourceSample {
        self.sys.refresh_memory();
        let total = self.sys.total_memory().max(1);
        let memory_used_percent = self.sys.used_memory() as f64 * 100.0 / total as f64;
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
        let throttled =
            memory_used_percent > self.max_memory_percent || self.max_rss_bytes.is_some_and(|cap| rss_bytes > cap);
        ResourceSample {
            memory_used_percent,
            rss_bytes,
            cpu_percent,
            open_sessions,
            throttled,
        }
    }
}
