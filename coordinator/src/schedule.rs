//! The batch schedule of a run, and its split across agents by capacity.

use std::time::Duration;

use crate::plan::{Plan, Stage};

/// One batch as planned: which sessions, and when (ms after the start barrier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedBatch {
    /// Run-unique id.
    pub id: u64,
    /// Sessions in the batch.
    pub sessions: u64,
    /// Index of its first session in the run.
    pub first_session: u64,
    /// Start offset from the barrier.
    pub offset_ms: u64,
}

/// Simulation step for arrival-rate stages.
const STEP: Duration = Duration::from_millis(10);

/// Calls `f(t, cumulative_arrivals)` every step through the stages.
fn walk_stages(stages: &[Stage], mut f: impl FnMut(Duration, f64) -> bool) {
    let (mut t, mut total, mut rate) = (Duration::ZERO, 0.0f64, 0.0f64);
    for s in stages {
        let steps = (s.duration.as_secs_f64() / STEP.as_secs_f64()).ceil().max(1.0) as u64;
        let from = rate;
        for i in 1..=steps {
            let r = from + (s.target_rate - from) * (i as f64 / steps as f64);
            total += (rate + r) / 2.0 * STEP.as_secs_f64();
            rate = r;
            t += STEP;
            if !f(t, total) {
                return;
            }
        }
    }
}

/// Sessions the stages produce in total.
pub fn stage_arrivals(stages: &[Stage]) -> u64 {
    let mut out = 0.0;
    walk_stages(stages, |_, total| {
        out = total;
        true
    });
    out.round() as u64
}

/// Splits the plan's sessions into batches with their start offsets.
pub fn batches(plan: &Plan) -> Vec<PlannedBatch> {
    let n = plan.sessions.div_ceil(plan.batch_size);
    let mut out: Vec<PlannedBatch> = (0..n)
        .map(|i| PlannedBatch {
            id: i,
            sessions: plan.batch_size.min(plan.sessions - i * plan.batch_size),
            first_session: i * plan.batch_size,
            offset_ms: u64::try_from(plan.batch_interval.as_millis())
                .unwrap_or(u64::MAX)
                .saturating_mul(i),
        })
        .collect();
    if !plan.stages.is_empty() {
        // Batch i starts when the arrivals reach its first session.
        let mut i = 1;
        walk_stages(&plan.stages, |t, total| {
            while i < out.len() && total >= out[i].first_session as f64 {
                out[i].offset_ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
                i += 1;
            }
            i < out.len()
        });
        for b in out.iter_mut().skip(i) {
            b.offset_ms = u64::MAX / 4; // arrivals never reach them: run last
        }
    }
    out
}

/// Picks, for each batch, an agent so that each agent's share of sessions follows
/// its capacity (`weights`). Returns the agent index per batch.
pub fn split(batches: &[PlannedBatch], weights: &[u64]) -> Vec<usize> {
    let mut assigned = vec![0u64; weights.len()];
    batches
        .iter()
        .map(|b| {
            let best = (0..weights.len())
                .min_by(|&x, &y| {
                    let fx = (assigned[x] + b.sessions) as f64 / weights[x].max(1) as f64;
                    let fy = (assigned[y] + b.sessions) as f64 / weights[y].max(1) as f64;
                    fx.total_cmp(&fy)
                })
                .unwrap_or(0);
            assigned[best] += b.sessions;
            best
        })
        .collect()
}

/// Each agent's share of the global max-active-batches bound (at least 1).
pub fn max_active_share(max_active: u64, weight: u64, total_weight: u64) -> u64 {
    ((max_active as f64 * weight as f64 / total_weight.max(1) as f64).round() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::plan::loopback_plan_for_tests as plan;

    #[test]
    fn batches_cover_every_session_once() {
        let b = batches(&plan(&[
            "--sessions",
            "2500",
            "--batch-size",
            "1000",
            "--batch-interval",
            "500ms",
        ]));
        assert_eq!(b.iter().map(|b| b.sessions).collect::<Vec<_>>(), vec![1000, 1000, 500]);
        assert_eq!(b.iter().map(|b| b.offset_ms).collect::<Vec<_>>(), vec![0, 500, 1000]);
    }

    #[test]
    fn split_follows_capacity() {
        let b = batches(&plan(&["--sessions", "4000", "--batch-size", "100"]));
        let who = split(&b, &[3000, 1000]);
        let first: u64 = b
            .iter()
            .zip(&who)
            .filter(|(_, w)| **w == 0)
            .map(|(b, _)| b.sessions)
            .sum();
        assert_eq!(first, 3000);
        assert_eq!(max_active_share(50, 3000, 4000), 38);
        assert_eq!(max_active_share(1, 1, 100), 1);
    }

    #[test]
    fn stages_ramp_arrivals() {
        let p = plan(&["--stage", "10s:100", "--batch-size", "50"]);
        assert_eq!(p.sessions, 500);
        let b = batches(&p);
        assert_eq!(b.len(), 10);
        assert!(b.windows(2).all(|w| w[0].offset_ms <= w[1].offset_ms));
        // Half the arrivals of a linear ramp come in its last ~30 %.
        assert!(b[5].offset_ms > 6_500 && b[5].offset_ms < 7_500, "{}", b[5].offset_ms);
    }
}
