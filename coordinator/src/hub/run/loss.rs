//! Agents that leave a run: a refusal or a loss moves their unstarted batches to the
//! agents that remain (or ends the run, by policy or when none remain) and counts the
//! sessions that were open on them as lost.

use std::collections::BTreeMap;

use wsload_proto::pb::{self, coordinator_message::Body};

use super::begin::to_pb;
use super::{BatchStatus, Effects, LossCause, Phase, RunState};
use crate::hub::OnAgentLoss;
use crate::report::RunOutcome;
use crate::schedule::{self, PlannedBatch};

impl RunState {
    /// `conn` refused its batches (bad target, busy...): it leaves the run.
    pub(super) fn on_refused(&mut self, conn: u64, detail: &str) -> Effects {
        tracing::warn!(run = %self.id, agent = conn, %detail, "agent refused its batches");
        if let Some(p) = self.participants.get_mut(&conn) {
            if !p.finished {
                p.finished = true;
                self.lost_agents.push(format!("{} (refused: {detail})", p.name));
            }
        }
        let mut fx = Effects::default();
        if !self.reassign_from(conn, &mut fx) && self.outcome.is_none() {
            self.fail(format!("agents refused the run: {detail}"));
            fx.extend(self.stop_agents());
        }
        fx
    }

    /// A participant is lost: its link broke, its heartbeats stopped or it could not
    /// be sent a message. By policy the run goes on without it or is aborted.
    pub fn on_agent_lost(&mut self, conn: u64, cause: LossCause) -> Effects {
        let mut fx = Effects::default();
        let Some(p) = self.participants.get_mut(&conn) else {
            return fx;
        };
        if p.lost || p.finished {
            return fx;
        }
        p.lost = true;
        let name = p.name.clone();
        self.agg.mark_lost(conn);
        if self.phase == Phase::Draining {
            return fx;
        }
        let mut in_flight = 0;
        for (b, s) in &mut self.batches {
            match *s {
                BatchStatus::Started(c) if c == conn => {
                    in_flight += b.sessions;
                    *s = BatchStatus::Lost(conn);
                }
                BatchStatus::Done(c) | BatchStatus::Lost(c) if c == conn => in_flight += b.sessions,
                _ => {}
            }
        }
        let lost = in_flight.saturating_sub(self.agg.ended(conn));
        self.lost_sessions += lost;
        self.lost_agents.push(match cause {
            LossCause::LinkEnded | LossCause::Silent => name.clone(),
            LossCause::QueueFull => format!("{name} (its message queue was full)"),
        });
        tracing::warn!(run = %self.id, agent = %name, ?cause, lost_sessions = lost, "agent lost during the run");
        if self.req.on_loss == OnAgentLoss::Abort {
            return self.stop(RunOutcome::Aborted(format!(
                "agent {name} lost (--on-agent-loss abort)"
            )));
        }
        if !self.reassign_from(conn, &mut fx) {
            self.fail(format!("every agent was lost (last: {name})"));
            fx.extend(self.stop_agents());
        }
        fx
    }

    /// Moves `conn`'s unstarted batches to the remaining agents; false if none remain.
    fn reassign_from(&mut self, conn: u64, fx: &mut Effects) -> bool {
        let live = self.live();
        let moving: Vec<usize> = (0..self.batches.len())
            .filter(|i| self.batches[*i].1 == BatchStatus::Assigned(conn))
            .collect();
        if moving.is_empty() {
            return !live.is_empty();
        }
        if live.is_empty() {
            for i in moving {
                self.batches[i].1 = BatchStatus::Lost(conn);
            }
            return false;
        }
        let weights: Vec<u64> = live.iter().map(|c| self.participants[c].weight).collect();
        let planned: Vec<PlannedBatch> = moving.iter().map(|i| self.batches[*i].0).collect();
        let who = schedule::split(&planned, &weights);
        let mut per_agent: BTreeMap<u64, Vec<pb::Batch>> = BTreeMap::new();
        for (i, w) in moving.iter().zip(&who) {
            let to = live[*w];
            self.batches[*i].1 = BatchStatus::Assigned(to);
            per_agent.entry(to).or_default().push(to_pb(&self.batches[*i].0));
            self.agg.add_batch(to);
        }
        self.reassigned += moving.len() as u64;
        let total: u64 = weights.iter().sum();
        for (to, batches) in per_agent {
            let assign = pb::Assign {
                run_id: self.id.clone(),
                plan: Some(self.plan_for(self.participants[&to].weight, total)),
                batches,
            };
            fx.send(to, Body::Assign(assign));
        }
        tracing::warn!(run = %self.id, from = conn, batches = moving.len(), "reassigned unstarted batches");
        true
    }
}
