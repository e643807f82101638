//! Merges the agents' per-second metric windows: counters are summed and histograms
//! merged (never averaged percentiles), per second and for the whole run.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use wsload_proto::hist::{self, HistError};
use wsload_proto::pb::{Counters, MetricWindow, ResourceSample};

use crate::report::model::{new_histogram, AgentReport, MemorySample, RunHistograms, Totals, Window};

/// One agent's running sums.
#[derive(Debug, Default)]
struct AgentSums {
    report: AgentReport,
    /// Sessions that ended (completed or failed), for lost-session accounting.
    ended: u64,
    /// Sessions that completed normally.
    completed: u64,
    /// Seconds it has reported (its last second + 1): a second is shown live only
    /// once every agent still in the run has sent it.
    reported: u64,
}

/// The merged metrics of one run.
#[derive(Debug, Default)]
pub struct Aggregator {
    seconds: BTreeMap<u64, Window>,
    totals: Totals,
    histograms: RunHistograms,
    agents: HashMap<u64, AgentSums>,
    completed: u64,
}

impl Aggregator {
    /// Declares a participating agent (so it appears in the report even without data).
    pub fn add_agent(&mut self, conn: u64, name: &str) {
        self.agents.entry(conn).or_default().report.name = name.to_string();
    }

    /// Counts one batch given to `conn`.
    pub fn add_batch(&mut self, conn: u64) {
        self.agents.entry(conn).or_default().report.batches += 1;
    }

    /// Marks an agent as lost.
    pub fn mark_lost(&mut self, conn: u64) {
        self.agents.entry(conn).or_default().report.lost = true;
    }

    /// Sessions of `conn` that have ended (completed or failed) so far.
    pub fn ended(&self, conn: u64) -> u64 {
        self.agents.get(&conn).map_or(0, |a| a.ended)
    }

    /// Adds a memory sample of `conn` taken `t` seconds after the start.
    pub fn resource_sample(&mut self, conn: u64, t: f64, r: &ResourceSample) {
        let a = self.agents.entry(conn).or_default();
        a.report.memory.push(MemorySample {
            t,
            system_percent: r.memory_used_percent,
            rss_bytes: r.rss_bytes,
        });
    }

    /// Merges one window of `conn`.
    pub fn add_window(&mut self, conn: u64, w: &MetricWindow) -> Result<(), HistError> {
        let c = w.counters.clone().unwrap_or_default();
        let h = w.histograms.clone().unwrap_or_default();
        let second = u64::try_from(w.second).unwrap_or(0);
        let a = self.agents.entry(conn).or_default();
        a.reported = a.reported.max(second + 1);
        let win = self.seconds.entry(second).or_insert_with(|| Window::empty(second));
        win.merge_counts(&counts_window(second, w, &c));
        for (k, v) in &c.errors {
            *self.totals.errors.entry(k.clone()).or_default() += v;
        }
        hist::merge_into(&mut win.rtt, &h.rtt_intended)?;
        hist::merge_into(&mut self.histograms.rtt_intended, &h.rtt_intended)?;
        hist::merge_into(&mut self.histograms.rtt_actual, &h.rtt_actual)?;
        hist::merge_into(&mut self.histograms.connect, &h.connect)?;
        hist::merge_into(&mut self.histograms.session_event, &h.session_event)?;
        let t = &mut self.totals;
        t.sessions_opened += c.connects_ok;
        t.failed_connections += c.connect_failures;
        t.sessions_errored += c.sessions_failed.saturating_sub(c.connect_failures);
        t.messages_sent += c.messages_sent;
        t.responses_received += c.responses;
        t.server_events += c.server_events;
        self.completed += c.sessions_completed;
        let a = self.agents.entry(conn).or_default();
        a.report.sessions += c.connects_ok;
        a.report.throttled += Duration::from_millis(w.throttled_ms);
        a.ended += c.sessions_completed + c.sessions_failed;
        a.completed += c.sessions_completed;
        Ok(())
    }

    /// How many seconds `conn` has reported (its last second + 1).
    pub fn reported(&self, conn: u64) -> u64 {
        self.agents.get(&conn).map_or(0, |a| a.reported)
    }

    /// The merged window of `second`, if any agent reported it.
    pub fn second(&self, second: u64) -> Option<&Window> {
        self.seconds.get(&second)
    }

    /// Totals so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Sessions completed normally so far.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Whole-run histograms so far.
    pub fn histograms(&self) -> &RunHistograms {
        &self.histograms
    }

    /// Final totals, histograms, gap-free windows and per-agent reports.
    pub fn finish(
        mut self,
        sessions_planned: u64,
        lost_sessions: u64,
        reassigned: u64,
    ) -> (Totals, RunHistograms, Vec<Window>, Vec<AgentReport>) {
        let t = &mut self.totals;
        t.sessions_planned = sessions_planned;
        t.failed_responses = t.messages_sent.saturating_sub(t.responses_received);
        t.lost_sessions = lost_sessions;
        t.reassigned_batches = reassigned;
        let last = self.seconds.keys().next_back().copied();
        let windows = match last {
            None => Vec::new(),
            Some(last) => (0..=last)
                .map(|s| self.seconds.remove(&s).unwrap_or_else(|| Window::empty(s)))
                .collect(),
        };
        let mut agents: Vec<_> = self.agents.into_iter().collect();
        agents.sort_by_key(|(id, _)| *id);
        (
            self.totals,
            self.histograms,
            windows,
            agents.into_iter().map(|(_, a)| a.report).collect(),
        )
    }
}

/// The counters of one agent's window `w` (with `c`, its counters) as a report [`Window`]
/// with an empty RTT, so [`Window::merge_counts`] is the one place that sums windows; the
/// RTT is merged from the encoded histogram by the caller.
fn counts_window(second: u64, w: &MetricWindow, c: &Counters) -> Window {
    Window {
        t: second,
        active_sessions: w.active_sessions,
        connections_opened: c.connects_ok,
        connections_failed: c.connect_failures,
        messages_sent: c.messages_sent,
        responses: c.responses,
        server_events: c.server_events,
        errors: c.errors.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        rtt: new_histogram(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsload_proto::pb::Histograms;

    fn window(second: i64, samples: &[u64]) -> MetricWindow {
        let mut h = hist::new_histogram();
        for s in samples {
            h.record(*s).unwrap();
        }
        MetricWindow {
            second,
            counters: Some(Counters {
                responses: samples.len() as u64,
                messages_sent: samples.len() as u64,
                ..Default::default()
            }),
            histograms: Some(Histograms {
                rtt_intended: hist::encode(&h).unwrap(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Merged percentiles of two agents equal those of one histogram of all samples.
    #[test]
    fn merged_percentiles_equal_single_histogram() {
        let a: Vec<u64> = (1..=5000).map(|i| i * 3).collect();
        let b: Vec<u64> = (1..=1000).map(|i| 40_000 + i * 97).collect();
        let mut agg = Aggregator::default();
        agg.add_window(1, &window(0, &a)).unwrap();
        agg.add_window(2, &window(0, &b)).unwrap();
        let mut all = hist::new_histogram();
        for v in a.iter().chain(&b) {
            all.record(*v).unwrap();
        }
        let merged = &agg.histograms().rtt_intended;
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(merged.value_at_quantile(q), all.value_at_quantile(q), "q={q}");
        }
        assert_eq!(
            agg.second(0).unwrap().rtt.value_at_quantile(0.99),
            all.value_at_quantile(0.99)
        );
        // Averaging the two agents' p99 would be badly wrong here.
        let (mut ha, mut hb) = (hist::new_histogram(), hist::new_histogram());
        a.iter().for_each(|v| ha.record(*v).unwrap());
        b.iter().for_each(|v| hb.record(*v).unwrap());
        let avg = (ha.value_at_quantile(0.99) + hb.value_at_quantile(0.99)) / 2;
        assert_ne!(avg, all.value_at_quantile(0.99));
        let (totals, _, windows, _) = agg.finish(10, 0, 0);
        assert_eq!(totals.responses_received, 6000);
        assert_eq!(windows.len(), 1);
    }
}
