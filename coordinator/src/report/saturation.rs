//! Was the generator the bottleneck? Each agent's window carries its process CPU use
//! and the lag of its runtime's timers (agent/src/load.rs); a second in which an agent
//! used [`CPU_BOUND`] of the cores it may run on, or whose timers fired more than
//! [`LAG_BOUND`] late (p99 of the window's samples), is *saturated*: the latencies it
//! measured then include its own queueing, and must not be read as the server's.
//!
//! CPU is judged against the agent's cores (its affinity or quota), so a 2-core agent
//! is saturated at 180 % in `top`'s terms; a single busy runtime thread on a
//! many-core agent does not count as CPU saturation, but the lag it causes does.

use std::time::Duration;

use super::model::RunReport;

/// CPU use, as a fraction of the agent's cores, from which a second is saturated.
pub const CPU_BOUND: f64 = 0.90;

/// Timer lag (p99 of a window's samples) above which a second is saturated.
pub const LAG_BOUND: Duration = Duration::from_millis(50);

/// One agent's load in one second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadSample {
    /// Seconds since the start barrier.
    pub t: u64,
    /// Process CPU over the window, percent of one core (as `top` shows it).
    pub cpu_percent: f64,
    /// Cores the agent may run on.
    pub cores: u32,
    /// Largest timer lag in the window, microseconds.
    pub lag_max_us: u64,
    /// 99th percentile of the window's timer lag, microseconds.
    pub lag_p99_us: u64,
}

impl LoadSample {
    /// CPU use as a fraction of the agent's cores (1.0: all of them busy).
    pub fn cpu_share(&self) -> f64 {
        self.cpu_percent / 100.0 / f64::from(self.cores.max(1))
    }

    /// The CPU share reached [`CPU_BOUND`].
    pub fn cpu_saturated(&self) -> bool {
        self.cpu_share() >= CPU_BOUND
    }

    /// The timer lag's p99 passed [`LAG_BOUND`].
    pub fn lag_saturated(&self) -> bool {
        Duration::from_micros(self.lag_p99_us) > LAG_BOUND
    }

    /// Either bound was reached.
    pub fn saturated(&self) -> bool {
        self.cpu_saturated() || self.lag_saturated()
    }

    /// `cpu 97% of 2 cores, lag p99 80ms` (what the progress line and report show).
    pub fn describe(&self) -> String {
        format!(
            "cpu {:.0}% of {} core{}, lag p99 {}ms",
            self.cpu_share() * 100.0,
            self.cores,
            if self.cores == 1 { "" } else { "s" },
            self.lag_p99_us / 1000
        )
    }
}

/// The largest CPU share of any agent in any second (`agent_cpu_max`), if any agent
/// reported its load.
pub fn cpu_max(r: &RunReport) -> Option<f64> {
    r.agents
        .iter()
        .flat_map(|a| &a.load)
        .map(LoadSample::cpu_share)
        .reduce(f64::max)
}

/// Seconds in which at least one agent was saturated (`saturated_seconds`).
pub fn saturated_seconds(r: &RunReport) -> u64 {
    r.windows.iter().filter(|w| !w.saturated.is_empty()).count() as u64
}

/// One line per saturated agent: its name, saturated seconds, and its worst second.
pub fn agent_lines(r: &RunReport) -> Vec<String> {
    r.agents
        .iter()
        .filter_map(|a| {
            let bad: Vec<&LoadSample> = a.load.iter().filter(|s| s.saturated()).collect();
            let worst = bad.iter().max_by(|x, y| {
                (x.cpu_share(), x.lag_p99_us)
                    .partial_cmp(&(y.cpu_share(), y.lag_p99_us))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })?;
            Some(format!(
                "{}: saturated {} of {} s (worst at {} s: {})",
                a.name,
                bad.len(),
                a.load.len(),
                worst.t,
                worst.describe()
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_judged_against_the_agents_cores() {
        let s = |cpu_percent, cores, lag_p99_us| LoadSample {
            t: 0,
            cpu_percent,
            cores,
            lag_max_us: lag_p99_us,
            lag_p99_us,
        };
        assert!(s(95.0, 1, 1_000).saturated());
        assert!(!s(95.0, 2, 1_000).saturated());
        assert!(s(180.0, 2, 1_000).cpu_saturated());
        assert!(s(10.0, 2, 50_001).lag_saturated());
        assert!(!s(10.0, 2, 50_000).saturated());
        assert_eq!(s(180.0, 2, 80_400).describe(), "cpu 90% of 2 cores, lag p99 80ms");
    }
}
