//! Merges the agents' per-second metric windows: counters are summed and histograms
//! merged (never averaged percentiles), per second and for the whole run.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use wsload_proto::hist::{self, HistError};
use wsload_proto::pb::{Counters, MetricWindow, ResourceSample, StepWindow};
use wsload_scenario::program::Reach;

use crate::report::model::{
    new_histogram, AgentReport, FanoutReach, MemorySample, RunHistograms, StepReport, StepStats, Totals, Window,
};
use crate::report::saturation::LoadSample;

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
    /// Named scenario steps over the whole run.
    steps: BTreeMap<String, StepStats>,
    agents: HashMap<u64, AgentSums>,
    completed: u64,
    /// Connect time per second (the dashboard's connect chart; the report keeps the
    /// whole-run histogram only).
    connect_seconds: BTreeMap<u64, crate::report::LatencyHistogram>,
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
        hist::merge_into(
            self.connect_seconds.entry(second).or_insert_with(new_histogram),
            &h.connect,
        )?;
        for (name, st) in &w.steps {
            hist::merge_into(&mut win.steps.entry(name.clone()).or_default().latency, &st.latency)?;
            let run = self.steps.entry(name.clone()).or_default();
            run.merge_counts(&step_counts(st));
            hist::merge_into(&mut run.latency, &st.latency)?;
        }
        hist::merge_into(&mut self.histograms.rtt_intended, &h.rtt_intended)?;
        hist::merge_into(&mut self.histograms.rtt_actual, &h.rtt_actual)?;
        hist::merge_into(&mut self.histograms.connect, &h.connect)?;
        hist::merge_into(&mut self.histograms.session_event, &h.session_event)?;
        hist::merge_into(&mut self.histograms.send_lag, &h.send_lag)?;
        if let Some(load) = &w.load {
            let lag = hist::decode(&load.sched_lag)?;
            hist::merge_into(&mut self.histograms.agent_lag, &load.sched_lag)?;
            let sample = LoadSample {
                t: second,
                cpu_percent: load.cpu_percent,
                cores: load.cores,
                lag_max_us: lag.max(),
                lag_p99_us: if lag.is_empty() { 0 } else { lag.value_at_quantile(0.99) },
            };
            let a = self.agents.entry(conn).or_default();
            if sample.saturated() {
                let line = format!("{} ({})", a.report.name, sample.describe());
                if let Some(win) = self.seconds.get_mut(&second) {
                    win.saturated.push(line);
                }
            }
            a.report.load.push(sample);
        }
        hist::merge_into(&mut self.histograms.reconnect, &h.reconnect)?;
        let t = &mut self.totals;
        t.sessions_opened += c.connects_ok;
        t.failed_connections += c.connect_failures;
        t.sessions_errored += c.sessions_failed.saturating_sub(c.connect_failures);
        t.messages_sent += c.messages_sent;
        t.responses_received += c.responses;
        t.server_events += c.server_events;
        t.unexpected_messages += c.unexpected_messages;
        t.reconnects += c.reconnects;
        for (code, n) in &c.close_codes {
            *t.close_codes
                .entry(u16::try_from(*code).unwrap_or(u16::MAX))
                .or_default() += n;
        }
        for (name, n) in &c.counts {
            *t.counts.entry(name.clone()).or_default() += n;
        }
        for (kind, n) in &c.unanswered {
            *t.unanswered.entry(kind.clone()).or_default() += n;
        }
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

    /// Connect time merged over agents during `second`, if any agent reported it.
    pub fn connect_second(&self, second: u64) -> Option<&crate::report::LatencyHistogram> {
        self.connect_seconds.get(&second)
    }

    /// Seconds reported by any agent after `second` (the dashboard's last points).
    pub fn seconds_after(&self, second: Option<u64>) -> impl Iterator<Item = &Window> + '_ {
        let from = second.map_or(0, |s| s + 1);
        self.seconds.range(from..).map(|(_, w)| w)
    }

    /// The named steps so far in plan order, with fan-out reach (live thresholds).
    pub fn live_steps(&self, program: &wsload_scenario::Program) -> Vec<StepReport> {
        step_reports(&mut self.steps.clone(), program)
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

    /// Named scenario steps so far, whole run.
    pub fn steps(&self) -> &BTreeMap<String, StepStats> {
        &self.steps
    }

    /// Final totals, histograms, gap-free windows, per-agent reports, and the named
    /// steps of `program` in plan order with their fan-out reach.
    pub fn finish(
        mut self,
        sessions_planned: u64,
        lost_sessions: u64,
        reassigned: u64,
        program: &wsload_scenario::Program,
    ) -> Finished {
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
        let steps = step_reports(&mut self.steps, program);
        Finished {
            totals: self.totals,
            histograms: self.histograms,
            windows,
            agents: agents.into_iter().map(|(_, a)| a.report).collect(),
            steps,
        }
    }
}

/// What a finished run's metrics come to.
#[derive(Debug)]
pub struct Finished {
    /// Whole-run counters.
    pub totals: Totals,
    /// Whole-run histograms.
    pub histograms: RunHistograms,
    /// One window per second, no gaps.
    pub windows: Vec<Window>,
    /// Per-agent reports.
    pub agents: Vec<AgentReport>,
    /// Named steps in plan order.
    pub steps: Vec<StepReport>,
}

/// The counters of a step window (latency merged separately, from its encoding).
fn step_counts(w: &StepWindow) -> StepStats {
    StepStats {
        ok: w.ok,
        failed: w.failed,
        messages: w.messages,
        duplicates: w.duplicates,
        out_of_order: w.out_of_order,
        ..StepStats::default()
    }
}

/// The named steps of `program` in plan order, with fan-out reach: expected deliveries
/// are the publisher's sends (or the fixed count) times the sessions that listened.
fn step_reports(steps: &mut BTreeMap<String, StepStats>, program: &wsload_scenario::Program) -> Vec<StepReport> {
    let sends = |id: u16| {
        program
            .named
            .get(usize::from(id))
            .and_then(|n| steps.get(&*n.name))
            .map_or(0, |s| s.ok)
    };
    let reach: Vec<Option<FanoutReach>> = program
        .named
        .iter()
        .map(|n| {
            let published = match n.reach? {
                Reach::From(id) => sends(id),
                Reach::Expected(k) => k,
            };
            let s = steps.get(&*n.name);
            let listeners = s.map_or(0, |s| s.ok + s.failed);
            Some(FanoutReach {
                expected: published * listeners,
                delivered: s.map_or(0, |s| s.messages.saturating_sub(s.duplicates)),
            })
        })
        .collect();
    program
        .named
        .iter()
        .zip(reach)
        .map(|(n, fanout)| StepReport {
            name: n.name.to_string(),
            kind: n.kind.to_string(),
            stats: steps.remove(&*n.name).unwrap_or_default(),
            fanout,
        })
        .collect()
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
        reconnects: c.reconnects,
        errors: c.errors.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        rtt: new_histogram(),
        steps: w.steps.iter().map(|(k, v)| (k.clone(), step_counts(v))).collect(),
        saturated: Vec::new(),
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
        let program = wsload_scenario::compile(&wsload_proto::pb::Plan {
            sessions: 1,
            ..Default::default()
        })
        .unwrap();
        let f = agg.finish(10, 0, 0, &program);
        let (totals, windows) = (f.totals, f.windows);
        assert_eq!(totals.responses_received, 6000);
        assert_eq!(windows.len(), 1);
    }
}
