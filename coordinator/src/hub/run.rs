//! One run's life: wait for agents, split batches, barrier start, follow acks and
//! windows, handle agent loss (reassign or abort), stop, drain.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;
use wsload_proto::pb::{self, batch_ack::State, coordinator_message::Body, Progress};

use super::agents::Agents;
use super::aggregate::Aggregator;
use super::{OnAgentLoss, RunRequest};
use crate::report::RunOutcome;
use crate::schedule::{self, PlannedBatch};

/// How long the barrier start lies ahead of the assignment.
const BARRIER_LEAD: Duration = Duration::from_millis(750);
/// How long to wait for agents' last windows after Stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for enough idle agents.
    Waiting,
    /// Batches assigned and running.
    Running,
    /// Stop sent; waiting for the agents' last windows.
    Draining,
    /// Done: the hub writes the report.
    Finished,
}

/// Where a batch is, and on which agent connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    /// Given to the agent, not started yet (reassigned if the agent is lost).
    Assigned(u64),
    /// Its sessions are running (lost with the agent).
    Started(u64),
    /// All its sessions ended.
    Done(u64),
    /// Its agent was lost while it ran (or no agent was left to take it).
    Lost(u64),
}

/// An agent taking part in the run.
#[derive(Debug)]
pub struct Participant {
    /// Display name.
    pub name: String,
    /// Capacity (max sessions) used to split batches.
    pub weight: u64,
    /// Its link broke or its heartbeats stopped.
    pub lost: bool,
    /// It sent RunFinished (or refused the run).
    pub finished: bool,
    /// Its latest sample says the memory throttle is on.
    pub throttled: bool,
}

/// A run in progress.
pub struct RunState {
    /// Run id (`run-...`).
    pub id: String,
    /// What was asked.
    pub req: RunRequest,
    /// Where the run is.
    pub phase: Phase,
    /// Fail if the agents are not there by then.
    pub wait_deadline: Instant,
    /// Every batch with its status.
    pub batches: Vec<(PlannedBatch, BatchStatus)>,
    /// Agents in the run, by connection id.
    pub participants: BTreeMap<u64, Participant>,
    /// The barrier start (monotonic and wall clock).
    pub start: Option<(Instant, SystemTime)>,
    /// When Stop went out (the run's duration ends there).
    pub ended: Option<(Instant, SystemTime)>,
    /// Merged metrics.
    pub agg: Aggregator,
    /// How it ended (set once).
    pub outcome: Option<RunOutcome>,
    /// Give up waiting for the last windows then.
    pub drain_deadline: Option<Instant>,
    /// Sessions open on lost agents.
    pub lost_sessions: u64,
    /// Batches moved from lost or refusing agents.
    pub reassigned: u64,
    /// Names of lost (or refusing) agents.
    pub lost_agents: Vec<String>,
    /// WatchRun subscribers; a failed send means the watcher is gone.
    pub watchers: Vec<mpsc::Sender<Result<Progress, Status>>>,
    /// The newest second shown to watchers.
    pub shown: Option<u64>,
}

/// How long past its end a second waits for a late agent's window before it is shown
/// without it.
const LATE_WINDOW: Duration = Duration::from_secs(2);

fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl RunState {
    pub fn new(id: String, req: RunRequest, agent_wait: Duration) -> Self {
        RunState {
            id,
            req,
            phase: Phase::Waiting,
            wait_deadline: Instant::now() + agent_wait,
            batches: Vec::new(),
            participants: BTreeMap::new(),
            start: None,
            ended: None,
            agg: Aggregator::default(),
            outcome: None,
            drain_deadline: None,
            lost_sessions: 0,
            reassigned: 0,
            lost_agents: Vec::new(),
            watchers: Vec::new(),
            shown: None,
        }
    }

    fn live(&self) -> Vec<u64> {
        self.participants
            .iter()
            .filter(|(_, p)| !p.lost && !p.finished)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Seconds since the barrier.
    pub fn elapsed(&self) -> Duration {
        self.start.map_or(Duration::ZERO, |(i, _)| {
            let end = self.ended.map_or_else(Instant::now, |(e, _)| e);
            end.saturating_duration_since(i)
        })
    }

    fn plan_for(&self, weight: u64, total: u64) -> pb::Plan {
        let mut p = self.req.plan.to_pb();
        p.max_active_batches = schedule::max_active_share(self.req.plan.max_active_batches, weight, total);
        p
    }

    /// Waiting: assign and start once enough agents are idle.
    pub fn try_begin(&mut self, agents: &mut Agents) {
        if self.phase != Phase::Waiting {
            return;
        }
        let idle = agents.idle();
        let need = self.req.min_agents.max(1);
        if idle.len() < need {
            if Instant::now() >= self.wait_deadline {
                self.fail(format!("waited for {need} agent(s), only {} connected", idle.len()));
            }
            return;
        }
        let planned = schedule::batches(&self.req.plan);
        let weights: Vec<u64> = idle.iter().map(|id| agents.map[id].hello.max_sessions.max(1)).collect();
        let who = schedule::split(&planned, &weights);
        let total: u64 = weights.iter().sum();
        let mut per_agent: BTreeMap<u64, Vec<pb::Batch>> = BTreeMap::new();
        for (b, w) in planned.iter().zip(&who) {
            let conn = idle[*w];
            per_agent.entry(conn).or_default().push(to_pb(b));
            self.batches.push((*b, BatchStatus::Assigned(conn)));
        }
        let start_wall = SystemTime::now() + BARRIER_LEAD;
        let start_instant = Instant::now() + BARRIER_LEAD;
        for (i, conn) in idle.iter().enumerate() {
            let Some(batches) = per_agent.remove(conn) else {
                continue;
            };
            let agent = agents.map.get_mut(conn).expect("idle agent exists");
            agent.run = Some(self.id.clone());
            self.agg.add_agent(*conn, &agent.hello.name);
            for _ in &batches {
                self.agg.add_batch(*conn);
            }
            self.participants.insert(
                *conn,
                Participant {
                    name: agent.name(),
                    weight: weights[i],
                    lost: false,
                    finished: false,
                    throttled: false,
                },
            );
            let assign = pb::Assign {
                run_id: self.id.clone(),
                plan: Some(self.plan_for(weights[i], total)),
                batches,
            };
            agent.send(Body::Assign(assign));
            let start = pb::Start {
                run_id: self.id.clone(),
                start_unix_micros: unix_micros(start_wall) + agent.offset_us,
            };
            agent.send(Body::Start(start));
        }
        tracing::info!(run = %self.id, agents = self.participants.len(), batches = self.batches.len(), "run starting");
        self.start = Some((start_instant, start_wall));
        self.phase = Phase::Running;
    }

    /// An acknowledgement from `conn`.
    pub fn on_ack(&mut self, conn: u64, ack: &pb::BatchAck, agents: &mut Agents) {
        let Some((_, status)) = self.batches.iter_mut().find(|(b, _)| b.id == ack.batch_id) else {
            return;
        };
        match State::try_from(ack.state) {
            Ok(State::Started) => *status = BatchStatus::Started(conn),
            Ok(State::Done) => *status = BatchStatus::Done(conn),
            Ok(State::Refused) => {
                tracing::warn!(run = %self.id, agent = conn, detail = %ack.detail, "agent refused its batches");
                if let Some(p) = self.participants.get_mut(&conn) {
                    if !p.finished {
                        p.finished = true;
                        self.lost_agents.push(format!("{} (refused: {})", p.name, ack.detail));
                    }
                }
                let detail = ack.detail.clone();
                if !self.reassign_from(conn, agents) && self.outcome.is_none() {
                    self.fail(format!("agents refused the run: {detail}"));
                    self.stop_agents(agents);
                }
            }
            _ => {}
        }
    }

    /// Moves `conn`'s unstarted batches to the remaining agents; false if none remain.
    fn reassign_from(&mut self, conn: u64, agents: &mut Agents) -> bool {
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
            if let Some(agent) = agents.map.get(&to) {
                let weight = self.participants[&to].weight;
                let assign = pb::Assign {
                    run_id: self.id.clone(),
                    plan: Some(self.plan_for(weight, total)),
                    batches,
                };
                agent.send(Body::Assign(assign));
            }
        }
        tracing::warn!(run = %self.id, from = conn, batches = moving.len(), "reassigned unstarted batches");
        true
    }

    /// A participant's link broke or its heartbeats stopped.
    pub fn on_agent_lost(&mut self, conn: u64, agents: &mut Agents) {
        let Some(p) = self.participants.get_mut(&conn) else {
            return;
        };
        if p.lost || p.finished {
            return;
        }
        p.lost = true;
        let name = p.name.clone();
        self.agg.mark_lost(conn);
        if self.phase == Phase::Draining {
            return;
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
        self.lost_agents.push(name.clone());
        tracing::warn!(run = %self.id, agent = %name, lost_sessions = lost, "agent lost during the run");
        if self.req.on_loss == OnAgentLoss::Abort {
            self.outcome = Some(RunOutcome::Aborted(format!(
                "agent {name} lost (--on-agent-loss abort)"
            )));
            self.stop_agents(agents);
            return;
        }
        if !self.reassign_from(conn, agents) {
            self.fail(format!("every agent was lost (last: {name})"));
            self.stop_agents(agents);
        }
    }

    /// Marks the run failed (keeps an earlier outcome).
    fn fail(&mut self, reason: String) {
        tracing::error!(run = %self.id, %reason, "run failed");
        if self.outcome.is_none() {
            self.outcome = Some(RunOutcome::Failed(reason));
        }
        if self.phase == Phase::Waiting {
            self.phase = Phase::Finished;
        }
    }

    /// Sends Stop to every live participant and starts draining.
    pub fn stop_agents(&mut self, agents: &mut Agents) {
        match self.phase {
            Phase::Waiting => {
                self.phase = Phase::Finished;
                return;
            }
            Phase::Draining | Phase::Finished => return,
            Phase::Running => {}
        }
        let reason = match &self.outcome {
            None | Some(RunOutcome::Completed) => "completed".to_string(),
            Some(o) => format!("{o:?}"),
        };
        for conn in self.live() {
            if let Some(a) = agents.map.get(&conn) {
                a.send(Body::Stop(pb::Stop {
                    run_id: self.id.clone(),
                    reason: reason.clone(),
                }));
            }
        }
        self.ended = Some((Instant::now(), SystemTime::now()));
        self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
        self.phase = Phase::Draining;
    }

    /// Periodic checks; returns true when the run is finished.
    pub fn tick(&mut self, agents: &mut Agents) -> bool {
        match self.phase {
            Phase::Waiting => self.try_begin(agents),
            Phase::Running => {
                if let Some(max) = self.req.plan.max_duration.filter(|m| self.elapsed() >= *m) {
                    self.outcome.get_or_insert(RunOutcome::Aborted(format!(
                        "max duration {} reached",
                        humantime::format_duration(max)
                    )));
                    self.stop_agents(agents);
                } else if self
                    .batches
                    .iter()
                    .all(|(_, s)| matches!(s, BatchStatus::Done(_) | BatchStatus::Lost(_)))
                {
                    self.outcome.get_or_insert(RunOutcome::Completed);
                    self.stop_agents(agents);
                }
            }
            Phase::Draining => {
                let all_in = self.participants.values().all(|p| p.lost || p.finished);
                if all_in || self.drain_deadline.is_some_and(|d| Instant::now() >= d) {
                    self.phase = Phase::Finished;
                }
            }
            Phase::Finished => {}
        }
        self.phase == Phase::Finished
    }

    /// The newest second that is complete: every agent still in the run has sent its
    /// window, or the second ended [`LATE_WINDOW`] ago. None before the first.
    fn complete_second(&self) -> Option<u64> {
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

    /// Shows watchers each second once it is complete (a second whose windows are
    /// still on their way is not shown as zeros), every second exactly once.
    pub fn broadcast_due(&mut self) {
        if self.phase == Phase::Waiting {
            return;
        }
        let Some(newest) = self.complete_second() else { return };
        // One progress per second, in order, even when several complete at once.
        let first = self.shown.map_or(0, |s| s + 1);
        for second in first..=newest {
            self.shown = Some(second);
            self.broadcast(false);
        }
    }

    /// The progress as of the newest complete second.
    pub fn progress(&self, done: bool) -> Progress {
        let second = self.shown.unwrap_or(0);
        let w = self.agg.second(second);
        let t = self.agg.totals();
        let q = |p: f64| {
            w.filter(|w| !w.rtt.is_empty())
                .map_or(0.0, |w| w.rtt.value_at_quantile(p) as f64 / 1000.0)
        };
        let mut errors: std::collections::HashMap<String, u64> = t.errors.clone().into_iter().collect();
        if self.lost_sessions > 0 {
            errors.insert("lost_session".into(), self.lost_sessions);
        }
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
            state: self.state(),
        }
    }

    /// "waiting", "running", "draining", or the outcome.
    pub fn state(&self) -> String {
        match (&self.phase, &self.outcome) {
            (Phase::Waiting, _) => "waiting for agents".into(),
            (Phase::Running, _) => "running".into(),
            (Phase::Draining, _) => "draining".into(),
            (Phase::Finished, o) => super::summary::outcome_text(o.as_ref().unwrap_or(&RunOutcome::Completed)),
        }
    }

    /// Sends progress to every watcher, dropping those that are gone.
    pub fn broadcast(&mut self, done: bool) {
        let p = self.progress(done);
        self.watchers
            .retain(|w| !matches!(w.try_send(Ok(p.clone())), Err(mpsc::error::TrySendError::Closed(_))));
    }
}

fn to_pb(b: &PlannedBatch) -> pb::Batch {
    pb::Batch {
        batch_id: b.id,
        sessions: b.sessions,
        start_offset_ms: b.offset_ms,
        first_session: b.first_session,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanArgs;
    use wsload_proto::pb::MetricWindow;

    fn run_with_two_agents(started_ago: Duration) -> RunState {
        let plan = PlanArgs {
            target: Some("ws://127.0.0.1:1/ws".into()),
            sessions: Some(10),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let req = RunRequest {
            plan,
            min_agents: 2,
            on_loss: OnAgentLoss::Continue,
            thresholds: Vec::new(),
        };
        let mut run = RunState::new("run-test".into(), req, Duration::from_secs(1));
        run.phase = Phase::Running;
        run.start = Some((Instant::now() - started_ago, SystemTime::now()));
        for conn in [1, 2] {
            let p = Participant {
                name: format!("a{conn}"),
                weight: 1,
                lost: false,
                finished: false,
                throttled: false,
            };
            run.participants.insert(conn, p);
        }
        run
    }

    fn report(run: &mut RunState, conn: u64, second: i64) {
        let w = MetricWindow {
            run_id: run.id.clone(),
            second,
            ..Default::default()
        };
        run.agg.add_window(conn, &w).unwrap();
    }

    /// A second is shown once every agent still in the run has sent its window, and
    /// not before, unless the late agent is more than LATE_WINDOW behind.
    #[tokio::test]
    async fn a_second_is_complete_when_every_live_agent_sent_it() {
        let mut run = run_with_two_agents(Duration::from_millis(2500));
        assert_eq!(run.complete_second(), None, "no window yet");
        report(&mut run, 1, 0);
        assert_eq!(run.complete_second(), None, "agent 2 has not sent second 0");
        let mut run = run_with_two_agents(Duration::from_millis(3500));
        for s in 0..3 {
            report(&mut run, 1, s);
        }
        report(&mut run, 2, 0);
        report(&mut run, 2, 1);
        assert_eq!(run.complete_second(), Some(1), "agent 2 has not sent second 2");
        report(&mut run, 2, 2);
        assert_eq!(run.complete_second(), Some(2));
        // Only closed seconds: 3.5 s in, second 3 is still open.
        report(&mut run, 1, 3);
        report(&mut run, 2, 3);
        assert_eq!(run.complete_second(), Some(2));
        // A lost agent is not waited for.
        let mut run = run_with_two_agents(Duration::from_millis(3500));
        for s in 0..3 {
            report(&mut run, 1, s);
        }
        run.participants.get_mut(&2).unwrap().lost = true;
        assert_eq!(run.complete_second(), Some(2));
        // A late agent is waited for at most LATE_WINDOW.
        let mut run = run_with_two_agents(Duration::from_millis(5500));
        for s in 0..5 {
            report(&mut run, 1, s);
        }
        report(&mut run, 2, 0);
        assert_eq!(run.complete_second(), Some(2));
    }
}
