//! What the dashboard sees of a run: each complete second as a [`Point`] and the run's
//! [`Status`] (counters, whole-run latencies, steps, live thresholds, agents).

use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::{Phase, RunState};
use crate::dashboard::feed::{AgentRow, Buckets, Latency, Point, Status, StepPoint, StepRow, ThresholdRow};
use crate::report::{LatencyHistogram, PlanEcho, RunOutcome, RunReport, Window};

/// Upper bounds of the `/metrics` latency buckets, seconds.
pub const BUCKET_BOUNDS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl RunState {
    /// The dashboard point of `second`, if any agent reported it.
    pub fn dash_point(&self, second: u64) -> Option<Point> {
        let w = self.agg.second(second)?;
        Some(self.point_of(w))
    }

    /// Points of the seconds reported after the last one shown (the end of a run,
    /// which is never "complete" for the live view).
    pub fn dash_tail(&self) -> Vec<Point> {
        self.agg.seconds_after(self.shown).map(|w| self.point_of(w)).collect()
    }

    fn point_of(&self, w: &Window) -> Point {
        let connect = self.agg.connect_second(w.t);
        Point {
            t: w.t,
            active: w.active_sessions,
            opened: w.connections_opened,
            failed: w.connections_failed,
            sent: w.messages_sent,
            recv: w.responses,
            events: w.server_events,
            errors: w.errors_total(),
            rtt: [0.5, 0.9, 0.99, 0.999].map(|q| ms_at(&w.rtt, q)),
            connect: [0.5, 0.99].map(|q| connect.map_or(0.0, |h| ms_at(h, q))),
            steps: w
                .steps
                .iter()
                .map(|(name, s)| {
                    let p = StepPoint {
                        ok: s.ok,
                        failed: s.failed,
                        messages: s.messages,
                        p50: ms_at(&s.latency, 0.5),
                        p99: ms_at(&s.latency, 0.99),
                    };
                    (name.clone(), p)
                })
                .collect(),
        }
    }

    /// The run's status now; `agents` are the connected agents.
    pub fn dash_status(&self, agents: Vec<AgentRow>) -> Status {
        let t = self.agg.totals();
        let h = self.agg.histograms();
        let (_, _, text) = self.state();
        let state = match self.phase {
            Phase::Waiting => "waiting",
            Phase::Running => "running",
            Phase::Draining => "draining",
            Phase::Finished => self.outcome.as_ref().unwrap_or(&RunOutcome::Completed).status(),
        };
        // The newest shown second with data (a late second may not have arrived yet).
        let active = self
            .shown
            .and_then(|shown| self.agg.seconds_after(None).take_while(|w| w.t <= shown).last())
            .map_or(0, |w| w.active_sessions);
        // As results.json has them (lost sessions are their own counter).
        let errors = t.errors.clone();
        let steps = self.agg.live_steps(&self.program);
        let thresholds = if self.req.thresholds.is_empty() {
            Vec::new()
        } else {
            let now: DateTime<Utc> = SystemTime::now().into();
            let report = RunReport {
                run_id: self.id.clone(),
                target: String::new(),
                plan: PlanEcho::default(),
                started_at: now,
                ended_at: now,
                duration: self.elapsed(),
                outcome: RunOutcome::Completed,
                totals: crate::report::Totals {
                    failed_responses: t.messages_sent.saturating_sub(t.responses_received),
                    lost_sessions: self.lost_sessions,
                    sessions_planned: self.req.plan.sessions,
                    ..t.clone()
                },
                histograms: h.clone(),
                windows: Vec::new(),
                agents: Vec::new(),
                thresholds: Vec::new(),
                steps: steps.clone(),
            };
            crate::thresholds::evaluate(&self.req.thresholds, &report)
                .into_iter()
                .map(|r| ThresholdRow {
                    expr: r.expr,
                    observed: r.observed_display,
                    passed: r.passed,
                })
                .collect()
        };
        Status {
            run_id: self.id.clone(),
            state: state.to_owned(),
            state_text: text,
            finished: false,
            target: self.req.plan.target.clone(),
            sessions_planned: self.req.plan.sessions,
            elapsed_s: self.elapsed().as_secs_f64(),
            sessions_started: t.sessions_opened + t.failed_connections,
            sessions_opened: t.sessions_opened,
            connect_failures: t.failed_connections,
            active_sessions: active,
            messages_sent: t.messages_sent,
            responses: t.responses_received,
            server_events: t.server_events,
            unexpected_messages: t.unexpected_messages,
            errors,
            close_codes: t.close_codes.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            rtt: latency(&h.rtt_intended),
            connect: latency(&h.connect),
            steps: steps
                .iter()
                .map(|s| StepRow {
                    name: s.name.clone(),
                    kind: s.kind.clone(),
                    ok: s.stats.ok,
                    failed: s.stats.failed,
                    messages: s.stats.messages,
                    latency: latency(&s.stats.latency),
                })
                .collect(),
            thresholds,
            agents,
            report_dir: String::new(),
            rtt_buckets: buckets(&h.rtt_intended),
            connect_buckets: buckets(&h.connect),
            failed_responses: t.messages_sent.saturating_sub(t.responses_received),
            lost_sessions: self.lost_sessions,
        }
    }
}

/// The `q` quantile of `h` in ms (0 when empty).
fn ms_at(h: &LatencyHistogram, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Whole-run statistics of `h`, ms.
pub fn latency(h: &LatencyHistogram) -> Latency {
    Latency {
        count: h.len(),
        p50: ms_at(h, 0.5),
        p90: ms_at(h, 0.9),
        p99: ms_at(h, 0.99),
        p999: ms_at(h, 0.999),
        max: if h.is_empty() { 0.0 } else { h.max() as f64 / 1000.0 },
    }
}

/// Cumulative bucket counts of `h` (µs) at [`BUCKET_BOUNDS`].
pub fn buckets(h: &LatencyHistogram) -> Buckets {
    let cumulative = BUCKET_BOUNDS
        .iter()
        .map(|b| {
            let us = (b * 1e6) as u64;
            if h.is_empty() {
                0
            } else {
                h.count_between(0, us)
            }
        })
        .collect();
    Buckets {
        bounds: BUCKET_BOUNDS.to_vec(),
        cumulative,
        count: h.len(),
        sum: if h.is_empty() {
            0.0
        } else {
            h.mean() * h.len() as f64 / 1e6
        },
    }
}
