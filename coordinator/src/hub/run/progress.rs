//! What watchers see: each second once it is complete (every live agent sent it, or
//! it ended [`LATE_WINDOW`] ago), in order, exactly once; and the live summary.

use wsload_proto::pb::{Progress, RunState as WireState, StepProgress, Summary};

use super::{Effect, Effects, Phase, RunState, LATE_WINDOW};
use crate::report::{LatencyHistogram, RunOutcome, Window};

impl RunState {
    /// The newest second that is complete: every agent still in the run has sent its
    /// window, or the second ended [`LATE_WINDOW`] ago. None before the first.
    pub(super) fn complete_second(&self) -> Option<u64> {
        let elapsed = self.elapsed();
        let closed = elapsed.as_secs().checked_sub(1)?;
        let waited = elapsed.saturating_sub(LATE_WINDOW).as_secs().checked_sub(1);
        let reported = match self.live().iter().map(|c| self.agg.reported(*c)).min() {
            None => Some(closed),
            Some(0) => None,
            Some(n) => Some((n - 1).min(closed)),
        };
        reported.max(waited)
    }

    /// Progress for each second that became complete (a second whose windows are
    /// still on their way is not shown as zeros), every second exactly once.
    pub(super) fn broadcast_due(&mut self) -> Effects {
        let mut fx = Effects::default();
        if self.phase == Phase::Waiting {
            return fx;
        }
        let Some(newest) = self.complete_second() else {
            return fx;
        };
        let first = self.shown.map_or(0, |s| s + 1);
        for second in first..=newest {
            self.shown = Some(second);
            fx.push(Effect::Progress(self.progress(false)));
        }
        fx
    }

    /// The state on the wire, its reason, and the human text of both.
    pub fn state(&self) -> (WireState, &str, String) {
        match (self.phase, &self.outcome) {
            (Phase::Waiting, _) => (WireState::Waiting, "", "waiting for agents".into()),
            (Phase::Running, _) => (WireState::Running, "", "running".into()),
            (Phase::Draining, _) => (WireState::Draining, "", "draining".into()),
            (Phase::Finished, o) => {
                let o = o.as_ref().unwrap_or(&RunOutcome::Completed);
                (o.run_state(), o.reason(), o.to_string())
            }
        }
    }

    /// The progress as of the newest complete second.
    pub fn progress(&self, done: bool) -> Progress {
        let second = self.shown.unwrap_or(0);
        let w = self.agg.second(second);
        let t = self.agg.totals();
        let q = |p: f64| w.map_or(0.0, |w| quantile_ms(&w.rtt, p));
        let mut errors: std::collections::HashMap<String, u64> = t.errors.clone().into_iter().collect();
        if self.lost_sessions > 0 {
            errors.insert("lost_session".into(), self.lost_sessions);
        }
        let (run_state, reason, text) = self.state();
        Progress {
            run_id: self.id.clone(),
            second: i64::try_from(second).unwrap_or(0),
            active_sessions: w.map_or(0, |w| w.active_sessions),
            connections_per_second: w.map_or(0.0, |w| w.connections_opened as f64),
            messages_per_second: w.map_or(0.0, |w| w.responses as f64),
            rtt_p50_ms: q(0.5),
            rtt_p99_ms: q(0.99),
            errors,
            sessions_started: t.sessions_opened + t.failed_connections,
            sessions_total: self.req.plan.sessions,
            messages_sent: t.messages_sent,
            responses: t.responses_received,
            throttled_agents: self
                .participants
                .values()
                .filter(|p| p.throttled)
                .map(|p| p.name.clone())
                .collect(),
            done,
            state: text,
            run_state: run_state as i32,
            state_reason: reason.to_string(),
            steps: w.map(|w| self.step_progress(w)).unwrap_or_default(),
            saturated_agents: w.map(|w| w.saturated.clone()).unwrap_or_default(),
            reconnects: t.reconnects,
        }
    }

    /// The named steps that did something in `w`, in plan order.
    fn step_progress(&self, w: &Window) -> Vec<StepProgress> {
        self.program
            .named
            .iter()
            .filter_map(|n| {
                let s = w.steps.get(&*n.name)?;
                Some(StepProgress {
                    name: n.name.to_string(),
                    kind: n.kind.to_owned(),
                    ok: s.ok,
                    failed: s.failed,
                    messages: s.messages,
                    p50_ms: quantile_ms(&s.latency, 0.5),
                    p99_ms: quantile_ms(&s.latency, 0.99),
                })
            })
            .collect()
    }

    /// The summary of the run so far (GetSummary while it runs).
    pub fn live_summary(&self) -> Summary {
        let p = self.progress(false);
        Summary {
            run_id: self.id.clone(),
            state: p.state,
            run_state: p.run_state,
            state_reason: p.state_reason,
            sessions: p.sessions_total,
            messages_sent: p.messages_sent,
            responses: p.responses,
            errors: p.errors,
            duration_seconds: self.elapsed().as_secs_f64(),
            lost_agents: self.lost_agents.clone(),
            finished: false,
            ..Summary::default()
        }
    }
}

/// The `q` quantile of `h` in milliseconds; 0 for an empty histogram.
fn quantile_ms(h: &LatencyHistogram, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}
