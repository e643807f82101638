//! The registry of connected agents: their hello, link sender, liveness and clock offset.

use std::collections::BTreeMap;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;
use wsload_proto::pb::{coordinator_message::Body, AgentInfo, ClockPong, CoordinatorMessage, Hello, ResourceSample};

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
    /// Latest resource sample.
    pub resources: Option<ResourceSample>,
    /// The run it is part of.
    pub run: Option<String>,
}

impl AgentEntry {
    /// Queues a message without blocking the hub; false if the agent cannot take it.
    pub fn send(&self, body: Body) -> bool {
        self.tx.try_send(Ok(CoordinatorMessage { body: Some(body) })).is_ok()
    }

    /// Display name.
    pub fn name(&self) -> String {
        self.hello.name.clone()
    }

    /// Takes a clock probe echo received at `now_us` (coordinator clock).
    pub fn clock_pong(&mut self, pong: &ClockPong, now_us: i64) {
        let rtt = now_us - pong.coordinator_unix_micros;
        if rtt < 0 {
            return;
        }
        // Offset = agent time at the probe's midpoint minus coordinator time then.
        let offset = pong.agent_unix_micros - (pong.coordinator_unix_micros + rtt / 2);
        if self.best_rtt_us == 0 || rtt <= self.best_rtt_us {
            self.best_rtt_us = rtt.max(1);
            self.offset_us = offset;
        }
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
}

impl Agents {
    /// Registers a connection and returns its id.
    pub fn add(&mut self, entry: AgentEntry) -> u64 {
        self.next += 1;
        self.map.insert(self.next, entry);
        self.next
    }

    /// Connection ids of agents in no run.
    pub fn idle(&self) -> Vec<u64> {
        self.map
            .iter()
            .filter(|(_, a)| a.run.is_none())
            .map(|(id, _)| *id)
            .collect()
    }
}
