//! Waiting → running: split the batches over the idle agents by capacity, assign
//! them and send each agent the barrier start in its own clock.

use std::collections::BTreeMap;
use std::time::SystemTime;

use tokio::time::Instant;
use wsload_common::time::unix_micros;
use wsload_proto::pb::{self, coordinator_message::Body};

use super::{BatchStatus, Candidate, Effect, Effects, Participant, Phase, RunState, BARRIER_LEAD};
use crate::capacity::{self, AgentCapacity};
use crate::schedule::{self, PlannedBatch};

/// The wire form of a planned batch.
pub(super) fn to_pb(b: &PlannedBatch) -> pb::Batch {
    pb::Batch {
        batch_id: b.id,
        sessions: b.sessions,
        start_offset_ms: b.offset_ms,
        first_session: b.first_session,
    }
}

impl RunState {
    /// The plan as one agent receives it: its share of the max-active-batches bound.
    pub(super) fn plan_for(&self, weight: u64, total: u64) -> pb::Plan {
        let mut p = self.req.plan.to_pb();
        p.max_active_batches = schedule::max_active_share(self.req.plan.max_active_batches, weight, total);
        p
    }

    /// Waiting: assign and start once enough agents are idle; fail after the wait.
    pub(super) fn try_begin(&mut self, idle: &[Candidate]) -> Effects {
        let mut fx = Effects::default();
        let need = self.req.min_agents.max(1);
        if idle.len() < need {
            if Instant::now() >= self.wait_deadline {
                self.fail(format!("waited for {need} agent(s), only {} connected", idle.len()));
            }
            return fx;
        }
        if !self.req.allow_over_capacity {
            let caps: Vec<AgentCapacity> = idle
                .iter()
                .map(|c| AgentCapacity {
                    name: c.name.clone(),
                    max_sessions: c.capacity,
                })
                .collect();
            if let Some(why) = capacity::agent_cap_refusal(&self.req.plan, &caps) {
                self.fail(why);
                return fx;
            }
        }
        let planned = schedule::batches(&self.req.plan);
        let weights: Vec<u64> = idle.iter().map(|c| c.capacity.max(1)).collect();
        let who = schedule::split(&planned, &weights);
        let total: u64 = weights.iter().sum();
        let mut per_agent: BTreeMap<usize, Vec<pb::Batch>> = BTreeMap::new();
        for (b, w) in planned.iter().zip(&who) {
            per_agent.entry(*w).or_default().push(to_pb(b));
            self.batches.push((*b, BatchStatus::Assigned(idle[*w].conn)));
        }
        let start_wall = SystemTime::now() + BARRIER_LEAD;
        let start_instant = Instant::now() + BARRIER_LEAD;
        for (i, agent) in idle.iter().enumerate() {
            let Some(batches) = per_agent.remove(&i) else {
                continue;
            };
            fx.push(Effect::Enlist { conn: agent.conn });
            self.agg.add_agent(agent.conn, &agent.name);
            for _ in &batches {
                self.agg.add_batch(agent.conn);
            }
            let participant = Participant {
                name: agent.name.clone(),
                weight: weights[i],
                lost: false,
                finished: false,
                throttled: false,
            };
            self.participants.insert(agent.conn, participant);
            let assign = pb::Assign {
                run_id: self.id.clone(),
                plan: Some(self.plan_for(weights[i], total)),
                batches,
            };
            fx.send(agent.conn, Body::Assign(assign));
            let start = pb::Start {
                run_id: self.id.clone(),
                start_unix_micros: unix_micros(start_wall) + agent.offset_us,
            };
            fx.send(agent.conn, Body::Start(start));
        }
        tracing::info!(run = %self.id, agents = self.participants.len(), batches = self.batches.len(), "run starting");
        self.start = Some((start_instant, start_wall));
        self.phase = Phase::Running;
        fx
    }
}
