//! Is the generator the bottleneck? The agent's own load, measured per window: process
//! CPU time over wall time (`getrusage`, every thread, microsecond resolution), and the
//! scheduler lag of its runtime, how late a [`PROBE_INTERVAL`] timer task fires.
//!
//! A runtime whose threads are all busy, or a process starved of CPU by a neighbour,
//! runs a due task late; so do the sessions' sends and receives, and every latency the
//! agent measures grows by that much. The coordinator flags the windows in which an
//! agent was saturated so that such a run is not read as a slow server.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nix::sys::resource::{getrusage, UsageWho};
use wsload_proto::hist;
use wsload_proto::pb::AgentLoad;

/// How often the lag probe wakes up (10 samples per window).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// User + system CPU time of this process so far (zero if it cannot be read).
pub fn process_cpu() -> Duration {
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
        };
        tv(u.user_time()) + tv(u.system_time())
    })
}

/// Cores this process may run on (CPU affinity and cgroup quota), at least 1.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// Measures one window after another: CPU since the last take, lag samples since then.
pub struct LoadMeter {
    last_cpu: Duration,
    last_wall: Instant,
    cores: u32,
    lag: Arc<Mutex<Histogram<u64>>>,
    probe: tokio::task::JoinHandle<()>,
}

impl LoadMeter {
    /// Starts the lag probe on the current runtime.
    pub fn start() -> LoadMeter {
        let lag = Arc::new(Mutex::new(hist::new_histogram()));
        let probe = tokio::spawn(probe(lag.clone()));
        LoadMeter {
            last_cpu: process_cpu(),
            last_wall: Instant::now(),
            cores: cores(),
            lag,
            probe,
        }
    }

    /// The load since the previous call (or the start), and a fresh window.
    pub fn take(&mut self) -> AgentLoad {
        let (cpu, wall) = (process_cpu(), Instant::now());
        let elapsed = wall.duration_since(self.last_wall).as_secs_f64();
        let used = cpu.saturating_sub(self.last_cpu).as_secs_f64();
        // At most every core busy: when a starved runtime runs its late window ticks
        // back to back, a window lasts milliseconds and the process's CPU accounting,
        // updated in coarser steps, put it at "1641 % of 2 cores" in a 100K run.
        let ceiling = f64::from(self.cores) * 100.0;
        let cpu_percent = if elapsed > 0.0 {
            (used * 100.0 / elapsed).min(ceiling)
        } else {
            0.0
        };
        (self.last_cpu, self.last_wall) = (cpu, wall);
        let lag = std::mem::replace(
            &mut *self.lag.lock().unwrap_or_else(PoisonError::into_inner),
            hist::new_histogram(),
        );
        AgentLoad {
            cpu_percent,
            cores: self.cores,
            sched_lag: hist::encode(&lag).unwrap_or_default(),
        }
    }
}

impl Drop for LoadMeter {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

/// Sleeps to each next tick and records how late it woke up. A tick missed by more
/// than an interval is not made up for (the lag already says the runtime stalled).
async fn probe(lag: Arc<Mutex<Histogram<u64>>>) {
    let mut due = tokio::time::Instant::now() + PROBE_INTERVAL;
    loop {
        tokio::time::sleep_until(due).await;
        let now = tokio::time::Instant::now();
        let late = now.saturating_duration_since(due);
        hist::record(
            &mut lag.lock().unwrap_or_else(PoisonError::into_inner),
            u64::try_from(late.as_micros()).unwrap_or(u64::MAX),
        );
        due = (due + PROBE_INTERVAL).max(now + PROBE_INTERVAL / 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_cpu();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(process_cpu() > before, "{x}");
        assert!(cores() >= 1);
    }

    /// A task that hogs the only runtime thread makes the probe late by about as long
    /// as it runs.
    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_runtime_shows_as_lag() {
        let mut m = LoadMeter::start();
        tokio::time::sleep(PROBE_INTERVAL * 3 + PROBE_INTERVAL / 2).await;
        let idle = m.take();
        let h = hist::decode(&idle.sched_lag).unwrap();
        // Three ticks on time; on a loaded machine a late one may slip past the take.
        assert!((2..=3).contains(&h.len()), "{}", h.len());
        // Block the only thread for 300 ms past the next tick.
        std::thread::sleep(PROBE_INTERVAL * 4);
        tokio::time::sleep(PROBE_INTERVAL).await;
        let busy = m.take();
        let h = hist::decode(&busy.sched_lag).unwrap();
        assert!(h.max() >= 250_000, "lag {} us", h.max());
        // The CPU figure is the whole process's (other tests run beside this one), and
        // never more than every core busy.
        assert!(busy.cpu_percent <= cores() as f64 * 100.0, "{}", busy.cpu_percent);
    }
}
