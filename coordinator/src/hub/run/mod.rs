//! One run's life as a state machine that decides without sending: wait for agents,
//! split batches, barrier start, follow acknowledgements and windows, handle agent
//! loss (reassign or abort), stop, drain.
//!
//! Every input is a method call and every method returns the [`Effects`] the hub
//! actor must carry out (messages to agents, agents to mark busy, progress for
//! watchers). Nothing here touches a channel, a socket or the wall clock's passing
//! except through `tokio::time::Instant`, so tests drive it with a paused clock.

mod begin;
mod dash;
mod effects;
mod loss;
mod progress;
mod report;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use wsload_proto::hist::HistError;
use wsload_proto::pb::{self, batch_ack::State, MetricWindow, ResourceSample};

use wsload_scenario::Program;

use super::aggregate::Aggregator;
use super::RunRequest;
use crate::report::RunOutcome;
use crate::schedule::PlannedBatch;

pub use effects::{Effect, Effects};

/// How long the barrier start lies ahead of the assignment.
const BARRIER_LEAD: Duration = Duration::from_millis(750);
/// How long to wait for agents' last windows after Stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long past its end a second waits for a late agent's window before it is shown
/// without it.
const LATE_WINDOW: Duration = Duration::from_secs(2);

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
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
enum BatchStatus {
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
struct Participant {
    /// Display name.
    name: String,
    /// Capacity (max sessions) used to split batches.
    weight: u64,
    /// Its link broke, its heartbeats stopped or its queue overflowed.
    lost: bool,
    /// It sent RunFinished (or refused the run).
    finished: bool,
    /// Its latest sample says the memory throttle is on.
    throttled: bool,
}

/// An idle agent the run may enlist, as the registry describes it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Connection id.
    pub conn: u64,
    /// Display name.
    pub name: String,
    /// Most sessions it can hold: batches are split in proportion.
    pub capacity: u64,
    /// Agent clock minus coordinator clock, applied to the barrier start.
    pub offset_us: i64,
}

/// Why an agent is lost to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossCause {
    /// Its link ended (stream closed or failed).
    LinkEnded,
    /// No heartbeat within the heartbeat timeout.
    Silent,
    /// Its outbound queue was full: an Assign, Start or Stop could not be delivered.
    QueueFull,
}

/// A run in progress.
pub struct RunState {
    /// Run id (`run-...`).
    id: String,
    /// What was asked.
    req: RunRequest,
    /// Where the run is.
    phase: Phase,
    /// Fail if the agents are not there by then.
    wait_deadline: Instant,
    /// Every batch with its status.
    batches: Vec<(PlannedBatch, BatchStatus)>,
    /// Agents in the run, by connection id.
    participants: BTreeMap<u64, Participant>,
    /// The barrier start (monotonic and wall clock).
    start: Option<(Instant, SystemTime)>,
    /// When Stop went out (the run's duration ends there).
    ended: Option<(Instant, SystemTime)>,
    /// Merged metrics.
    agg: Aggregator,
    /// How it ended (set once; the first reason wins).
    outcome: Option<RunOutcome>,
    /// Give up waiting for the last windows then.
    drain_deadline: Option<Instant>,
    /// Sessions open on lost agents.
    lost_sessions: u64,
    /// Batches moved from lost or refusing agents.
    reassigned: u64,
    /// Names of lost (or refusing) agents, with the cause where it is not a broken link.
    lost_agents: Vec<String>,
    /// The newest second shown to watchers.
    shown: Option<u64>,
    /// The plan's compiled scenarios (named steps for the report).
    program: Arc<Program>,
}

impl RunState {
    /// A run waiting up to `agent_wait` for its agents.
    pub fn new(id: String, req: RunRequest, agent_wait: Duration) -> Self {
        // The plan was validated by compiling it; this cannot fail.
        let program = req.plan.program().map(Arc::new).unwrap_or_else(|e| {
            tracing::error!("a validated plan does not compile: {e}");
            Arc::new(Program::empty())
        });
        RunState {
            program,
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
            shown: None,
        }
    }

    /// The run id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Still waiting for agents (only then does [`RunState::tick`] need candidates).
    pub fn is_waiting(&self) -> bool {
        self.phase == Phase::Waiting
    }

    /// Done: the report can be built.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Whether the agent on `conn` takes part in the run.
    pub fn takes_part(&self, conn: u64) -> bool {
        self.participants.contains_key(&conn)
    }

    /// Whether the run still waits for the agent on `conn` (it takes part and has
    /// neither finished nor been lost): only such an agent is detached, not lost,
    /// when its link breaks.
    pub fn awaits(&self, conn: u64) -> bool {
        self.participants.get(&conn).is_some_and(|p| !p.lost && !p.finished)
    }

    /// Names of the agents lost so far.
    pub fn lost_agents(&self) -> &[String] {
        &self.lost_agents
    }

    /// Time since the barrier start (up to the stop).
    pub fn elapsed(&self) -> Duration {
        self.start.map_or(Duration::ZERO, |(i, _)| {
            let end = self.ended.map_or_else(Instant::now, |(e, _)| e);
            end.saturating_duration_since(i)
        })
    }

    fn live(&self) -> Vec<u64> {
        self.participants
            .iter()
            .filter(|(_, p)| !p.lost && !p.finished)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Periodic progress: start once enough agents are idle (`idle`, needed only while
    /// waiting), end when every batch is done or the max duration passed, finish
    /// draining, and show every second that has become complete.
    pub fn tick(&mut self, idle: &[Candidate]) -> Effects {
        let mut fx = Effects::default();
        match self.phase {
            Phase::Waiting => fx.extend(self.try_begin(idle)),
            Phase::Running => {
                if let Some(max) = self.req.plan.max_duration.filter(|m| self.elapsed() >= *m) {
                    let why = format!("max duration {} reached", humantime::format_duration(max));
                    fx.extend(self.stop(RunOutcome::Aborted(why)));
                } else if self
                    .batches
                    .iter()
                    .all(|(_, s)| matches!(s, BatchStatus::Done(_) | BatchStatus::Lost(_)))
                {
                    fx.extend(self.stop(RunOutcome::Completed));
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
        if self.phase != Phase::Finished {
            fx.extend(self.broadcast_due());
        }
        fx
    }

    /// Merges a metric window of a participant and shows what became complete.
    pub fn on_window(&mut self, conn: u64, w: &MetricWindow) -> Result<Effects, HistError> {
        if w.run_id != self.id || !self.takes_part(conn) {
            return Ok(Effects::default());
        }
        self.agg.add_window(conn, w)?;
        Ok(self.broadcast_due())
    }

    /// A participant's resource sample (memory chart, throttling flag).
    pub fn on_heartbeat(&mut self, conn: u64, r: &ResourceSample) {
        if self.phase != Phase::Running {
            return;
        }
        let t = self.elapsed().as_secs_f64();
        if let Some(p) = self.participants.get_mut(&conn) {
            p.throttled = r.throttled;
            self.agg.resource_sample(conn, t, r);
        }
    }

    /// A participant has ended its part of the run (its last window came before).
    pub fn on_run_finished(&mut self, conn: u64) {
        if let Some(p) = self.participants.get_mut(&conn) {
            p.finished = true;
        }
    }

    /// An acknowledgement from `conn`.
    pub fn on_ack(&mut self, conn: u64, ack: &pb::BatchAck) -> Effects {
        if ack.run_id != self.id {
            return Effects::default();
        }
        let Some((_, status)) = self.batches.iter_mut().find(|(b, _)| b.id == ack.batch_id) else {
            return Effects::default();
        };
        match State::try_from(ack.state) {
            Ok(State::Started) => *status = BatchStatus::Started(conn),
            Ok(State::Done) => *status = BatchStatus::Done(conn),
            Ok(State::Refused) => return self.on_refused(conn, &ack.detail),
            _ => {}
        }
        Effects::default()
    }

    /// Ends the run with `outcome` (unless it already has one): Stop to every live
    /// participant, then drain their last windows.
    pub fn stop(&mut self, outcome: RunOutcome) -> Effects {
        self.outcome.get_or_insert(outcome);
        self.stop_agents()
    }

    /// Marks the run failed (keeps an earlier outcome).
    fn fail(&mut self, reason: String) {
        tracing::error!(run = %self.id, %reason, "run failed");
        self.outcome.get_or_insert(RunOutcome::Failed(reason));
        if self.phase == Phase::Waiting {
            self.phase = Phase::Finished;
        }
    }

    /// Sends Stop to every live participant and starts draining.
    fn stop_agents(&mut self) -> Effects {
        let mut fx = Effects::default();
        match self.phase {
            Phase::Waiting => {
                self.phase = Phase::Finished;
                return fx;
            }
            Phase::Draining | Phase::Finished => return fx,
            Phase::Running => {}
        }
        let reason = self.outcome.as_ref().unwrap_or(&RunOutcome::Completed).to_string();
        for conn in self.live() {
            let stop = pb::Stop {
                run_id: self.id.clone(),
                reason: reason.clone(),
            };
            fx.send(conn, pb::coordinator_message::Body::Stop(stop));
        }
        self.ended = Some((Instant::now(), SystemTime::now()));
        self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
        self.phase = Phase::Draining;
        fx
    }
}
