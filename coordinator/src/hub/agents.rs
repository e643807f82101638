//! The registry of connected agents: their hello, link sender, liveness and clock offset.

use std::collections::{BTreeMap, VecDeque};

/// Clock probes the offset estimate is taken from (one a second).
pub const CLOCK_PROBES: usize = 16;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;
use wsload_proto::pb::{coordinator_message::Body, AgentInfo, ClockPong, CoordinatorMessage, Hello, ResourceSample};

use super::resume::LinkState;
use super::run::Candidate;

/// Sender half of an agent's link stream.
pub type LinkTx = mpsc::Sender<Result<CoordinatorMessage, Status>>;

/// One connected agent.
#[derive(Debug)]
pub struct AgentEntry {
    /// What the agent announced.
    pub hello: Hello,
    /// Its remote address, for listings.
    pub peer: String,
    /// Where coordinator messages go (bounded; a full queue means the agent is stuck).
    pub tx: LinkTx,
    /// Last message from the agent (heartbeats every second).
    pub last_seen: Instant,
    /// Agent clock minus coordinator clock, from the lowest-RTT probe.
    pub offset_us: i64,
    /// RTT of the probe behind `offset_us`.
    pub best_rtt_us: i64,
    /// The latest clock probes: (RTT, offset).
    pub probes: VecDeque<(i64, i64)>,
    /// Latest resource sample.
    pub resources: Option<ResourceSample>,
    /// The run it is part of.
    pub run: Option<String>,
    /// Which link is current, report numbers taken, and the detached state.
    pub link: LinkState,
}

/// Why a message could not be queued to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undeliverable {
    /// Its queue is full: the agent does not read its link (stuck or starved).
    #[error("its message queue is full")]
    Full,
    /// Its link is gone.
    #[error("its link is closed")]
    Closed,
}

impl AgentEntry {
    /// Queues a message without blocking the hub.
    pub fn try_send(&self, body: Body) -> Result<(), Undeliverable> {
        self.tx
            .try_send(Ok(CoordinatorMessage { body: Some(body) }))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Undeliverable::Full,
                mpsc::error::TrySendError::Closed(_) => Undeliverable::Closed,
            })
    }

    /// Display name.
    pub fn name(&self) -> String {
        self.hello.name.clone()
    }

    /// Takes a clock probe echo received at `now_us` (coordinator clock).
    ///
    /// The estimate is the lowest-RTT probe among the last [`CLOCK_PROBES`] (one a
    /// second), so it follows a clock that drifts or steps during a long run. Returns
    /// true when the estimate changed (the agent is then told with a ClockSync).
    pub fn clock_pong(&mut self, pong: &ClockPong, now_us: i64) -> bool {
        let rtt = now_us - pong.coordinator_unix_micros;
        if rtt < 0 {
            return false;
        }
        // Offset = agent time at the probe's midpoint minus coordinator time then.
        let offset = pong.agent_unix_micros - (pong.coordinator_unix_micros + rtt / 2);
        if self.probes.len() == CLOCK_PROBES {
            self.probes.pop_front();
        }
        self.probes.push_back((rtt.max(1), offset));
        let (best_rtt, best_offset) = self.probes.iter().copied().min().unwrap_or((rtt, offset));
        let changed = best_offset != self.offset_us || self.best_rtt_us == 0;
        self.best_rtt_us = best_rtt;
        self.offset_us = best_offset;
        changed
    }

    /// The listing form.
    pub fn info(&self, id: u64) -> AgentInfo {
        let r = self.resources.unwrap_or_default();
        AgentInfo {
            agent_id: format!("{}#{id}", self.hello.agent_id),
            name: self.hello.name.clone(),
            version: self.hello.agent_version.clone(),
            cores: self.hello.cores,
            memory_bytes: self.hello.memory_bytes,
            max_sessions: self.hello.max_sessions,
            source_ips: self.hello.source_ips.clone(),
            clock_offset_micros: self.offset_us,
            memory_used_percent: r.memory_used_percent,
            rss_bytes: r.rss_bytes,
            cpu_percent: r.cpu_percent,
            busy: self.run.is_some(),
            peer: self.peer.clone(),
            nofile_soft: self.hello.nofile_soft,
            nofile_hard: self.hello.nofile_hard,
        }
    }
}

/// Connected agents keyed by connection id.
#[derive(Debug, Default)]
pub struct Agents {
    /// Live connections.
    pub map: BTreeMap<u64, AgentEntry>,
    next: u64,
    /// The last link id handed out.
    links: u64,
}

impl Agents {
    /// Registers a connection and returns its id.
    pub fn add(&mut self, entry: AgentEntry) -> u64 {
        self.next += 1;
        self.map.insert(self.next, entry);
        self.next
    }

    /// A new link id.
    pub fn next_link(&mut self) -> u64 {
        self.links += 1;
        self.links
    }

    /// The registration of the agent with `agent_id` (detached, or on a link that
    /// has not been seen to break yet), if it has one.
    pub fn find(&self, agent_id: &str) -> Option<u64> {
        if agent_id.is_empty() {
            return None;
        }
        self.map
            .iter()
            .find(|(_, a)| a.hello.agent_id == agent_id)
            .map(|(id, _)| *id)
    }

    /// Agents in no run (and attached), as candidates for a run waiting to start.
    pub fn idle(&self) -> Vec<Candidate> {
        self.map
            .iter()
            .filter(|(_, a)| a.run.is_none() && !a.link.is_detached())
            .map(|(id, a)| Candidate {
                conn: *id,
                name: a.name(),
                capacity: a.hello.max_sessions,
                offset_us: a.offset_us,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AgentEntry {
        let (tx, _rx) = mpsc::channel(1);
        AgentEntry {
            hello: Hello::default(),
            peer: String::new(),
            tx,
            last_seen: Instant::now(),
            offset_us: 0,
            best_rtt_us: 0,
            probes: VecDeque::new(),
            resources: None,
            run: None,
            link: LinkState::default(),
        }
    }

    fn pong(sent: i64, agent: i64) -> ClockPong {
        ClockPong {
            coordinator_unix_micros: sent,
            agent_unix_micros: agent,
        }
    }

    /// The offset comes from the lowest-RTT recent probe, and follows a clock that steps.
    #[test]
    fn clock_offset_follows_the_best_recent_probe() {
        let mut a = entry();
        // Agent 5 ms ahead; RTT 1 ms: midpoint at sent + 500 us.
        assert!(a.clock_pong(&pong(1_000_000, 1_005_500), 1_001_000));
        assert_eq!((a.offset_us, a.best_rtt_us), (5_000, 1_000));
        // A slower probe does not move it.
        assert!(!a.clock_pong(&pong(2_000_000, 2_009_000), 2_010_000));
        assert_eq!(a.offset_us, 5_000);
        // The agent's clock steps 20 ms ahead: once the old probes age out, it follows.
        let mut moved = false;
        for i in 0..CLOCK_PROBES as i64 {
            let t = 3_000_000 + i * 1_000_000;
            moved |= a.clock_pong(&pong(t, t + 20_000 + 750), t + 1_500);
        }
        assert!(moved);
        assert_eq!(a.offset_us, 20_000);
    }
}
