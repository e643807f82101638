//! The hub: one actor task that owns the agent registry and the runs. The gRPC
//! services and the CLI talk to it through [`Hub`] (a bounded channel of commands).

mod actor;
pub mod agents;
pub mod aggregate;
pub mod resume;
pub mod run;
mod summary;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use wsload_proto::pb::{AgentInfo, AgentLossPolicy, AgentMessage, Hello, Progress, Summary};

use crate::dashboard::feed::Feed;
use crate::plan::Plan;
use crate::report::RunReport;
use crate::thresholds::Threshold;

pub use agents::LinkTx;

/// What to do when an agent is lost mid-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnAgentLoss {
    /// Reassign its unstarted batches, count its open sessions as lost.
    #[default]
    Continue,
    /// End the run.
    Abort,
}

impl OnAgentLoss {
    /// `continue` or `abort`, as the flag spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnAgentLoss::Continue => "continue",
            OnAgentLoss::Abort => "abort",
        }
    }

    /// The wire policy.
    pub fn to_pb(self) -> AgentLossPolicy {
        match self {
            OnAgentLoss::Continue => AgentLossPolicy::Continue,
            OnAgentLoss::Abort => AgentLossPolicy::Abort,
        }
    }

    /// From a StartRun request: the enum, or the deprecated string when the enum is
    /// unset; a conflict or an unknown string is an error naming the field.
    pub fn from_request(policy: i32, legacy: &str) -> Result<OnAgentLoss, PolicyError> {
        let typed = match AgentLossPolicy::try_from(policy) {
            Ok(AgentLossPolicy::Unspecified) => None,
            Ok(AgentLossPolicy::Continue) => Some(OnAgentLoss::Continue),
            Ok(AgentLossPolicy::Abort) => Some(OnAgentLoss::Abort),
            Err(_) => return Err(PolicyError::Unknown(policy)),
        };
        let old = match legacy {
            "" => None,
            "continue" => Some(OnAgentLoss::Continue),
            "abort" => Some(OnAgentLoss::Abort),
            other => return Err(PolicyError::UnknownName(other.to_string())),
        };
        match (typed, old) {
            (Some(t), Some(o)) if t != o => Err(PolicyError::Conflict(t.as_str(), o.as_str())),
            (t, o) => Ok(t.or(o).unwrap_or_default()),
        }
    }
}

/// An agent-loss policy in a StartRun request that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// An enum value this coordinator does not know.
    #[error("agent_loss: unknown policy {0}")]
    Unknown(i32),
    /// The deprecated string field holds something else than continue/abort.
    #[error("on_agent_loss must be continue or abort, not {0}")]
    UnknownName(String),
    /// Both fields are set and say different things.
    #[error("agent_loss ({0}) and the deprecated on_agent_loss ({1}) disagree")]
    Conflict(&'static str, &'static str),
}

/// Where reports go.
#[derive(Debug, Clone)]
pub enum OutDir {
    /// Exactly this directory (one run: `ws-coordinator run --out`).
    Exact(PathBuf),
    /// `<base>/<run id>` (the `serve` daemon).
    PerRun(PathBuf),
}

/// Hub settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Report location.
    pub out: OutDir,
    /// How long a run waits for enough agents before failing.
    pub agent_wait: std::time::Duration,
    /// An agent silent this long is considered lost.
    pub heartbeat_timeout: std::time::Duration,
    /// Where runs are persisted (`serve`); none for a one-shot `run`.
    pub store: Option<crate::run_store::RunStore>,
}

/// A run request.
#[derive(Debug)]
pub struct RunRequest {
    /// The validated plan.
    pub plan: Plan,
    /// Agents to wait for (at least 1).
    pub min_agents: usize,
    /// Loss policy.
    pub on_loss: OnAgentLoss,
    /// Thresholds evaluated at the end.
    pub thresholds: Vec<Threshold>,
    /// Start even when the agents cannot hold the sessions the plan holds at once
    /// (`--allow-over-capacity`; see [`crate::capacity`]).
    pub allow_over_capacity: bool,
}

/// Why the hub refused a request.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Another run is in progress.
    #[error("run {0} is still in progress")]
    Busy(String),
    /// No such run.
    #[error("no run {0}")]
    UnknownRun(String),
    /// The hub is gone (shutting down).
    #[error("the coordinator is shutting down")]
    Gone,
}

impl From<HubError> for Status {
    fn from(e: HubError) -> Status {
        match e {
            HubError::Busy(_) => Status::resource_exhausted(e.to_string()),
            HubError::UnknownRun(_) => Status::not_found(e.to_string()),
            HubError::Gone => Status::unavailable(e.to_string()),
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Summary (also served over gRPC).
    pub summary: Summary,
    /// The full report.
    pub report: Arc<RunReport>,
}

/// Messages to the hub actor.
#[derive(Debug)]
pub(crate) enum HubMsg {
    AgentJoined {
        hello: Hello,
        peer: String,
        tx: LinkTx,
        reply: oneshot::Sender<(u64, u64)>,
    },
    FromAgent {
        conn: u64,
        msg: Box<AgentMessage>,
    },
    AgentLeft {
        conn: u64,
        link: u64,
        reason: String,
    },
    StartRun {
        req: RunRequest,
        reply: oneshot::Sender<Result<String, HubError>>,
    },
    Watch {
        run_id: String,
        tx: mpsc::Sender<Result<Progress, Status>>,
        reply: oneshot::Sender<Result<(), HubError>>,
    },
    StopRun {
        run_id: String,
        reply: oneshot::Sender<Result<bool, HubError>>,
    },
    ListAgents {
        reply: oneshot::Sender<Vec<AgentInfo>>,
    },
    GetSummary {
        run_id: String,
        reply: oneshot::Sender<Result<Summary, HubError>>,
    },
    ListRuns {
        reply: oneshot::Sender<Vec<Summary>>,
    },
    GetFinished {
        run_id: String,
        reply: oneshot::Sender<Option<Finished>>,
    },
    Written {
        run_id: String,
        finished: Finished,
    },
    ShutdownAgents {
        reason: String,
        reply: oneshot::Sender<()>,
    },
}

/// Handle to the hub actor.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: mpsc::Sender<HubMsg>,
}

impl Hub {
    /// Spawns the actor; it ends when `cancel` fires.
    pub fn spawn(config: HubConfig, cancel: CancellationToken) -> (Hub, tokio::task::JoinHandle<()>) {
        Hub::spawn_with_feed(config, Feed::new(), cancel)
    }

    /// Spawns the actor publishing every second of its runs to `feed` (the dashboard).
    pub fn spawn_with_feed(
        config: HubConfig,
        feed: Feed,
        cancel: CancellationToken,
    ) -> (Hub, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let hub = Hub { tx: tx.clone() };
        let task = tokio::spawn(actor::run(config, feed, rx, tx, cancel));
        (hub, task)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> HubMsg) -> Result<T, HubError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| HubError::Gone)?;
        rx.await.map_err(|_| HubError::Gone)
    }

    /// Registers an agent link (the hub sends its Welcome first); returns the
    /// connection id (an earlier one when the agent resumes) and the link id.
    pub async fn agent_joined(&self, hello: Hello, peer: String, tx: LinkTx) -> Result<(u64, u64), HubError> {
        self.ask(|reply| HubMsg::AgentJoined { hello, peer, tx, reply }).await
    }

    /// Forwards a message from an agent.
    pub async fn from_agent(&self, conn: u64, msg: AgentMessage) -> Result<(), HubError> {
        self.tx
            .send(HubMsg::FromAgent {
                conn,
                msg: Box::new(msg),
            })
            .await
            .map_err(|_| HubError::Gone)
    }

    /// Reports that link `link` of `conn` broke.
    pub async fn agent_left(&self, conn: u64, link: u64, reason: String) {
        let _ = self.tx.send(HubMsg::AgentLeft { conn, link, reason }).await;
    }

    /// Starts a run (it waits for agents, then runs); returns its id.
    pub async fn start_run(&self, req: RunRequest) -> Result<String, HubError> {
        self.ask(|reply| HubMsg::StartRun { req, reply }).await?
    }

    /// Subscribes `tx` to progress of `run_id` ("" = current).
    pub async fn watch(&self, run_id: String, tx: mpsc::Sender<Result<Progress, Status>>) -> Result<(), HubError> {
        self.ask(|reply| HubMsg::Watch { run_id, tx, reply }).await?
    }

    /// Stops `run_id` ("" = current); false if it had already ended.
    pub async fn stop_run(&self, run_id: String) -> Result<bool, HubError> {
        self.ask(|reply| HubMsg::StopRun { run_id, reply }).await?
    }

    /// Lists connected agents.
    pub async fn list_agents(&self) -> Result<Vec<AgentInfo>, HubError> {
        self.ask(|reply| HubMsg::ListAgents { reply }).await
    }

    /// Summary of `run_id` ("" = latest).
    pub async fn summary(&self, run_id: String) -> Result<Summary, HubError> {
        self.ask(|reply| HubMsg::GetSummary { run_id, reply }).await?
    }

    /// Every run known: the current one, then the persisted ones, newest first.
    pub async fn list_runs(&self) -> Result<Vec<Summary>, HubError> {
        self.ask(|reply| HubMsg::ListRuns { reply }).await
    }

    /// The full result of a finished run.
    pub async fn finished(&self, run_id: String) -> Result<Option<Finished>, HubError> {
        self.ask(|reply| HubMsg::GetFinished { run_id, reply }).await
    }

    /// Asks every agent to exit (end of a one-shot `run`).
    pub async fn shutdown_agents(&self, reason: String) -> Result<(), HubError> {
        self.ask(|reply| HubMsg::ShutdownAgents { reason, reply }).await
    }
}
