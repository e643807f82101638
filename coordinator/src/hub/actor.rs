//! The hub actor loop: registry, current run, finished runs, periodic ticks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{interval, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use wsload_common::time::now_unix_micros as now_micros;
use wsload_proto::pb::{
    agent_message, coordinator_message::Body, ClockPing, ClockSync, CoordinatorMessage, ReportAck, Shutdown, Summary,
    Welcome,
};

use super::agents::{AgentEntry, Agents, Undeliverable};
use super::resume::LinkState;
use super::run::{Effect, Effects, LossCause, RunState};
use super::{summary, Finished, HubConfig, HubError, HubMsg, OutDir};
use crate::dashboard::feed::{AgentRow, Feed, ThresholdRow};
use crate::report::RunOutcome;

/// Finished runs kept for GetSummary.
const KEEP_FINISHED: usize = 32;

/// A WatchRun subscriber.
type Watcher = mpsc::Sender<Result<wsload_proto::pb::Progress, tonic::Status>>;

struct State {
    config: HubConfig,
    agents: Agents,
    current: Option<RunState>,
    /// WatchRun subscribers of the current run; a failed send means the watcher is gone.
    watchers: Vec<Watcher>,
    /// Messages that could not be queued to an agent (each one made its agent lost).
    undeliverable: u64,
    /// Runs whose report is being written: id -> watchers.
    writing: BTreeMap<String, (Vec<Watcher>, Summary)>,
    finished: VecDeque<(String, Finished)>,
    /// When the current run was accepted (microseconds since the epoch).
    current_started: i64,
    tx: mpsc::Sender<HubMsg>,
    /// The dashboard's feed: complete seconds and a status every second.
    feed: Feed,
    /// A second has passed since the last status.
    status_due: bool,
}

pub(super) async fn run(
    config: HubConfig,
    feed: Feed,
    mut rx: mpsc::Receiver<HubMsg>,
    tx: mpsc::Sender<HubMsg>,
    cancel: CancellationToken,
) {
    let mut st = State {
        config,
        agents: Agents::default(),
        current: None,
        watchers: Vec::new(),
        undeliverable: 0,
        writing: BTreeMap::new(),
        finished: VecDeque::new(),
        current_started: 0,
        tx,
        feed,
        status_due: false,
    };
    let mut tick = interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_ping = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            msg = rx.recv() => match msg {
                Some(m) => st.handle(m),
                None => break,
            },
            _ = tick.tick() => {
                st.check_liveness();
                st.ack_reports();
                if last_ping.elapsed() >= Duration::from_secs(1) {
                    last_ping = Instant::now();
                    st.status_due = true;
                    let ping = ClockPing { coordinator_unix_micros: now_micros() };
                    let conns: Vec<u64> = st.agents.map.keys().copied().collect();
                    for conn in conns {
                        st.deliver(conn, Body::ClockPing(ping));
                    }
                }
                st.tick_run();
                st.publish_status();
            }
        }
    }
    if let Some(run) = st.current.as_mut() {
        let fx = run.stop(RunOutcome::Stopped);
        st.apply(fx);
    }
}

impl State {
    fn handle(&mut self, msg: HubMsg) {
        match msg {
            HubMsg::AgentJoined { hello, peer, tx, reply } => {
                let link = self.agents.next_link();
                if let Some(conn) = self.agents.find(&hello.agent_id) {
                    // The same agent again: its old link broke (perhaps unnoticed yet).
                    let awaited = self.agents.map[&conn].link.is_detached()
                        || self.current.as_ref().is_some_and(|r| r.awaits(conn));
                    if awaited {
                        self.resume(conn, link, hello, peer, tx);
                        let _ = reply.send((conn, link));
                        self.tick_run();
                        return;
                    }
                    // Not in a run: the old registration just goes.
                    self.agents.map.remove(&conn);
                }
                tracing::info!(agent = %hello.name, %peer, max_sessions = hello.max_sessions, "agent registered");
                let _ = tx.try_send(Ok(welcome(String::new())));
                let entry = AgentEntry {
                    hello,
                    peer,
                    tx,
                    last_seen: Instant::now(),
                    offset_us: 0,
                    best_rtt_us: 0,
                    probes: Default::default(),
                    resources: None,
                    run: None,
                    link: LinkState {
                        link,
                        ..Default::default()
                    },
                };
                let _ = reply.send((self.agents.add(entry), link));
                self.tick_run();
            }
            HubMsg::FromAgent { conn, msg } => self.on_agent_message(conn, *msg),
            HubMsg::AgentLeft { conn, link, reason } => {
                if self.agents.map.get(&conn).is_some_and(|a| a.link.link != link) {
                    // An older link of an agent that has reconnected since.
                    return;
                }
                self.agent_gone(conn, &reason, LossCause::LinkEnded);
                self.tick_run();
            }
            HubMsg::StartRun { req, reply } => {
                if let Some(cur) = &self.current {
                    let _ = reply.send(Err(HubError::Busy(cur.id().to_string())));
                    return;
                }
                let id = format!("run-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                tracing::info!(run = %id, target = %wsload_common::redact_url(&req.plan.target), sessions = req.plan.sessions, "run requested");
                let run = RunState::new(id.clone(), req, self.config.agent_wait);
                self.current_started = now_micros();
                if let Some(store) = self.config.store.as_mut() {
                    // In progress: found so after a crash, it is listed as interrupted.
                    let s = Summary {
                        started_unix_micros: self.current_started,
                        ..run.live_summary()
                    };
                    if let Err(e) = store.put(&s) {
                        tracing::error!(run = %id, "cannot persist the run: {e}");
                    }
                }
                self.current = Some(run);
                self.watchers.clear();
                let _ = reply.send(Ok(id));
                self.tick_run();
            }
            HubMsg::Watch { run_id, tx, reply } => {
                if let Some(cur) = self.current.as_ref().filter(|c| run_id.is_empty() || c.id() == run_id) {
                    let _ = tx.try_send(Ok(cur.progress(false)));
                    self.watchers.push(tx);
                    let _ = reply.send(Ok(()));
                } else if let Some((watchers, _)) = self.writing.get_mut(&run_id) {
                    watchers.push(tx);
                    let _ = reply.send(Ok(()));
                } else if let Some((_, f)) = self.finished.iter().find(|(id, _)| run_id.is_empty() || *id == run_id) {
                    let _ = tx.try_send(Ok(final_progress(&f.summary)));
                    let _ = reply.send(Ok(()));
                } else if let Some(s) = self.stored(&run_id) {
                    let _ = tx.try_send(Ok(final_progress(s)));
                    let _ = reply.send(Ok(()));
                } else {
                    let _ = reply.send(Err(HubError::UnknownRun(run_id)));
                }
            }
            HubMsg::StopRun { run_id, reply } => {
                let known = self.writing.contains_key(&run_id)
                    || self.finished.iter().any(|(id, _)| *id == run_id)
                    || self.stored(&run_id).is_some();
                let res = match self.current.as_mut().filter(|c| run_id.is_empty() || c.id() == run_id) {
                    Some(cur) => {
                        tracing::info!(run = %cur.id(), "run stopped on request");
                        let fx = cur.stop(RunOutcome::Stopped);
                        self.apply(fx);
                        Ok(true)
                    }
                    None if known => Ok(false),
                    None => Err(HubError::UnknownRun(run_id)),
                };
                let _ = reply.send(res);
                self.tick_run();
            }
            HubMsg::ListAgents { reply } => {
                let _ = reply.send(self.agents.map.iter().map(|(id, a)| a.info(*id)).collect());
            }
            HubMsg::GetSummary { run_id, reply } => {
                let _ = reply.send(self.summary(&run_id));
            }
            HubMsg::ListRuns { reply } => {
                let _ = reply.send(self.list_runs());
            }
            HubMsg::GetFinished { run_id, reply } => {
                let f = self
                    .finished
                    .iter()
                    .find(|(id, _)| *id == run_id)
                    .map(|(_, f)| f.clone());
                let _ = reply.send(f);
            }
            HubMsg::Written { run_id, finished } => {
                self.feed.written(&run_id, finished.summary.report_dir.clone());
                if let Some((watchers, _)) = self.writing.remove(&run_id) {
                    let p = final_progress(&finished.summary);
                    for w in watchers {
                        let _ = w.try_send(Ok(p.clone()));
                    }
                }
                if let Some(store) = self.config.store.as_mut() {
                    // Written to disk by the report task before this message was sent.
                    store.remember(finished.summary.clone());
                }
                self.finished.push_front((run_id, finished));
                self.finished.truncate(KEEP_FINISHED);
            }
            HubMsg::ShutdownAgents { reason, reply } => {
                let conns: Vec<u64> = self.agents.map.keys().copied().collect();
                for conn in conns {
                    self.deliver(conn, Body::Shutdown(Shutdown { reason: reason.clone() }));
                }
                let _ = reply.send(());
            }
        }
    }

    /// A persisted run (`""`: the newest).
    fn stored(&self, run_id: &str) -> Option<&Summary> {
        let store = self.config.store.as_ref()?;
        if run_id.is_empty() {
            store.list().into_iter().next()
        } else {
            store.get(run_id)
        }
    }

    /// The current run, then the persisted ones (those still being written from
    /// memory), newest first.
    fn list_runs(&self) -> Vec<Summary> {
        let mut out = Vec::new();
        if let Some(cur) = &self.current {
            out.extend(self.summary(cur.id()).ok());
        }
        for id in self.writing.keys() {
            if let Ok(s) = self.summary(id) {
                out.push(s);
            }
        }
        let stored = self.config.store.as_ref().map(|s| s.list()).unwrap_or_default();
        for s in stored {
            if !out.iter().any(|o| o.run_id == s.run_id) {
                out.push(s.clone());
            }
        }
        if self.config.store.is_none() {
            out.extend(self.finished.iter().map(|(_, f)| f.summary.clone()));
        }
        out
    }

    fn summary(&self, run_id: &str) -> Result<Summary, HubError> {
        if let Some(cur) = self.current.as_ref().filter(|c| run_id.is_empty() || c.id() == run_id) {
            return Ok(Summary {
                started_unix_micros: self.current_started,
                ..cur.live_summary()
            });
        }
        if let Some((_, s)) = self
            .writing
            .iter()
            .find(|(id, _)| run_id.is_empty() || id.as_str() == run_id)
            .map(|(id, (_, s))| (id, s))
        {
            return Ok(Summary {
                finished: false,
                ..s.clone()
            });
        }
        self.finished
            .iter()
            .find(|(id, _)| run_id.is_empty() || id == run_id)
            .map(|(_, f)| f.summary.clone())
            .or_else(|| self.stored(run_id).cloned())
            .ok_or_else(|| HubError::UnknownRun(run_id.to_string()))
    }

    fn on_agent_message(&mut self, conn: u64, msg: wsload_proto::pb::AgentMessage) {
        let Some(agent) = self.agents.map.get_mut(&conn) else {
            return;
        };
        agent.last_seen = Instant::now();
        if !agent.link.take(msg.seq) {
            // A report sent again after a reconnect that had arrived before.
            return;
        }
        use agent_message::Body as A;
        match msg.body {
            Some(A::Heartbeat(hb)) => {
                let sync = match &hb.pong {
                    Some(p) if agent.clock_pong(p, now_micros()) => Some(ClockSync {
                        offset_us: agent.offset_us,
                        rtt_us: agent.best_rtt_us,
                    }),
                    _ => None,
                };
                if let Some(r) = hb.resources {
                    agent.resources = Some(r);
                    if let Some(run) = self.current.as_mut() {
                        run.on_heartbeat(conn, &r);
                    }
                }
                if let Some(sync) = sync {
                    // Agents stamp and read send times in the coordinator's clock.
                    self.deliver(conn, Body::ClockSync(sync));
                }
            }
            Some(A::Metrics(w)) => {
                if let Some(run) = self.current.as_mut() {
                    match run.on_window(conn, &w) {
                        Ok(fx) => self.apply(fx),
                        Err(e) => tracing::warn!(run = %run.id(), "dropping an undecodable window: {e}"),
                    }
                }
            }
            Some(A::BatchAck(ack)) => {
                if let Some(run) = self.current.as_mut() {
                    let fx = run.on_ack(conn, &ack);
                    self.apply(fx);
                }
            }
            Some(A::RunFinished(f)) => {
                if agent.run.as_deref() == Some(&f.run_id) {
                    agent.run = None;
                }
                if let Some(run) = self.current.as_mut().filter(|r| r.id() == f.run_id) {
                    run.on_run_finished(conn);
                }
                self.tick_run();
            }
            Some(A::Hello(_)) | None => {}
        }
    }

    /// Carries out what the run decided.
    fn apply(&mut self, fx: Effects) {
        for e in fx {
            match e {
                Effect::Send { conn, body } => self.deliver(conn, body),
                Effect::Enlist { conn } => {
                    let run = self.current.as_ref().map(|r| r.id().to_string());
                    if let Some(a) = self.agents.map.get_mut(&conn) {
                        a.run = run;
                    }
                }
                Effect::Progress(p) => {
                    if let Some(run) = &self.current {
                        if let Some(point) = run.dash_point(u64::try_from(p.second).unwrap_or(0)) {
                            self.feed.point(run.id(), point);
                        }
                    }
                    self.watchers
                        .retain(|w| !matches!(w.try_send(Ok(p.clone())), Err(mpsc::error::TrySendError::Closed(_))))
                }
            }
        }
    }

    /// Queues `body` to `conn` without waiting. An agent that cannot take it (its
    /// queue full, its link closed) is dropped as lost: a message that cannot be
    /// delivered is never silently skipped.
    fn deliver(&mut self, conn: u64, body: Body) {
        let Some(agent) = self.agents.map.get_mut(&conn) else {
            return;
        };
        if agent.link.is_detached() {
            if let Err(why) = agent.link.keep(body) {
                tracing::warn!(agent = %agent.hello.name, "cannot keep a message for a detached agent: {why}");
                self.undeliverable += 1;
                self.agent_gone(conn, &why.to_string(), LossCause::QueueFull);
            }
            return;
        }
        if let Err(why) = agent.try_send(body) {
            self.undeliverable += 1;
            let cause = match why {
                Undeliverable::Full => LossCause::QueueFull,
                Undeliverable::Closed => LossCause::LinkEnded,
            };
            tracing::warn!(agent = %agent.hello.name, undeliverable = self.undeliverable, "cannot deliver a message: {why}");
            self.agent_gone(conn, &format!("a message could not be delivered: {why}"), cause);
        }
    }

    /// Removes an agent (dropping its queue ends its link) and tells the run; an agent
    /// the run still waits for whose link broke or who went silent is detached
    /// instead, for its grace period.
    fn agent_gone(&mut self, conn: u64, reason: &str, cause: LossCause) {
        if cause != LossCause::QueueFull && self.detach(conn, reason) {
            return;
        }
        let Some(agent) = self.agents.map.remove(&conn) else {
            return;
        };
        tracing::warn!(agent = %agent.hello.name, %reason, "agent disconnected");
        if let Some(run) = self.current.as_mut() {
            let fx = run.on_agent_lost(conn, cause);
            self.apply(fx);
        }
    }

    /// Detaches `conn` if the current run waits for it and it announced a grace
    /// period: its place is kept until the grace period after it was last heard
    /// from. Returns whether it did.
    fn detach(&mut self, conn: u64, reason: &str) -> bool {
        let Some(run) = self.current.as_ref() else {
            return false;
        };
        if !run.awaits(conn) {
            return false;
        }
        let Some(a) = self.agents.map.get_mut(&conn) else {
            return false;
        };
        if a.link.is_detached() || a.hello.grace_ms == 0 {
            return false;
        }
        let grace = Duration::from_millis(a.hello.grace_ms);
        a.link.detach(a.last_seen, grace);
        // Dropping the old sender ends the old link's stream.
        a.tx = mpsc::channel(1).0;
        tracing::warn!(agent = %a.hello.name, %reason, ?grace, "agent detached: its place in the run is kept for its grace period");
        true
    }

    /// Reattaches `conn` (detached, or on an old link not seen to break yet) on a new
    /// link: it is welcomed back into its run and gets the messages that waited for it.
    fn resume(&mut self, conn: u64, link: u64, hello: wsload_proto::pb::Hello, peer: String, tx: super::LinkTx) {
        let Some(a) = self.agents.map.get_mut(&conn) else {
            return;
        };
        let run = a.run.clone().unwrap_or_default();
        let _ = tx.try_send(Ok(welcome(run.clone())));
        tracing::info!(agent = %hello.name, %peer, %run, "agent reconnected within its grace period: run resumed");
        a.tx = tx;
        a.peer = peer;
        a.hello = hello;
        a.last_seen = Instant::now();
        for body in a.link.reattach(link) {
            self.deliver(conn, body);
        }
    }

    /// Acknowledges the run reports taken since the last acknowledgement.
    fn ack_reports(&mut self) {
        let due: Vec<(u64, u64)> = self
            .agents
            .map
            .iter_mut()
            .filter(|(_, a)| !a.link.is_detached())
            .filter_map(|(id, a)| a.link.ack_due().map(|seq| (*id, seq)))
            .collect();
        for (conn, seq) in due {
            self.deliver(conn, Body::ReportAck(ReportAck { seq }));
        }
    }

    fn check_liveness(&mut self) {
        let now = Instant::now();
        let expired: Vec<u64> = self
            .agents
            .map
            .iter()
            .filter(|(_, a)| a.link.expired(now))
            .map(|(id, _)| *id)
            .collect();
        for conn in expired {
            self.agent_gone(conn, "not back within its grace period", LossCause::LinkEnded);
        }
        let timeout = self.config.heartbeat_timeout;
        let silent: Vec<u64> = self
            .agents
            .map
            .iter()
            .filter(|(_, a)| !a.link.is_detached() && a.last_seen.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for conn in silent {
            if let Some(a) = self.agents.map.get(&conn) {
                let _ = a.tx.try_send(Err(tonic::Status::deadline_exceeded("no heartbeat")));
            }
            self.agent_gone(conn, "heartbeats stopped", LossCause::Silent);
        }
    }

    fn tick_run(&mut self) {
        let Some(run) = self.current.as_mut() else { return };
        let idle = if run.is_waiting() {
            self.agents.idle()
        } else {
            Vec::new()
        };
        let fx = run.tick(&idle);
        self.apply(fx);
        if !self.current.as_ref().is_some_and(RunState::is_finished) {
            return;
        }
        let run = self.current.take().expect("checked above");
        for a in self.agents.map.values_mut() {
            if a.run.as_deref() == Some(run.id()) {
                a.run = None;
            }
        }
        self.finish(run);
    }

    /// The agents as the dashboard shows them.
    fn agent_rows(&self) -> Vec<AgentRow> {
        self.agents
            .map
            .values()
            .map(|a| {
                let r = a.resources.unwrap_or_default();
                AgentRow {
                    name: a.hello.name.clone(),
                    sessions: r.open_sessions,
                    cpu_percent: r.cpu_percent,
                    rss_bytes: r.rss_bytes,
                    memory_percent: r.memory_used_percent,
                    throttled: r.throttled,
                    clock_offset_ms: a.offset_us as f64 / 1000.0,
                    last_heartbeat_s: a.last_seen.elapsed().as_secs_f64(),
                    busy: a.run.is_some(),
                }
            })
            .collect()
    }

    /// Once a second: the current run's status (or the agents alone) to the dashboard.
    fn publish_status(&mut self) {
        if !std::mem::take(&mut self.status_due) {
            return;
        }
        let agents = self.agent_rows();
        match &self.current {
            Some(run) => self.feed.status(run.dash_status(agents)),
            None if self.writing.is_empty() => self.feed.agents(agents),
            None => {}
        }
    }

    fn finish(&mut self, run: RunState) {
        let id = run.id().to_string();
        for point in run.dash_tail() {
            self.feed.point(&id, point);
        }
        let mut status = run.dash_status(self.agent_rows());
        let watchers = std::mem::take(&mut self.watchers);
        let dir = match &self.config.out {
            OutDir::Exact(p) => p.clone(),
            OutDir::PerRun(base) => base.join(&id),
        };
        let ended = run.into_report();
        let report = ended.report;
        status.thresholds = report
            .thresholds
            .iter()
            .map(|t| ThresholdRow {
                expr: t.expr.clone(),
                observed: t.observed_display.clone(),
                passed: t.passed,
            })
            .collect();
        status.failed_responses = report.totals.failed_responses;
        status.lost_sessions = report.totals.lost_sessions;
        status.elapsed_s = report.duration.as_secs_f64();
        self.feed.status(status);
        let s = Summary {
            started_unix_micros: self.current_started,
            ..summary::summary(
                &report,
                ended.sessions_completed,
                ended.lost_agents,
                dir.display().to_string(),
            )
        };
        let store_dir = self.config.store.as_ref().map(|s| s.dir().to_path_buf());
        tracing::info!(run = %id, state = %s.state, "run finished; writing the report to {}", dir.display());
        self.writing.insert(id.clone(), (watchers, s.clone()));
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let report = Arc::new(report);
            let r = report.clone();
            let written = tokio::task::spawn_blocking(move || crate::report::write_all(&r, &dir)).await;
            let mut s = s;
            match written {
                Ok(Ok(files)) => tracing::info!(run = %id, files = files.len(), "report written"),
                Ok(Err(e)) => {
                    tracing::error!(run = %id, "cannot write the report: {e}");
                    s.report_dir = format!("(not written: {e})");
                }
                Err(e) => tracing::error!(run = %id, "report writer panicked: {e}"),
            }
            if let Some(store_dir) = store_dir {
                // On disk before the run shows as finished, so a crash after that loses nothing.
                let record = s.clone();
                let persisted =
                    tokio::task::spawn_blocking(move || crate::run_store::write_record(&store_dir, &record)).await;
                match persisted {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(run = %id, "cannot persist the finished run: {e}"),
                    Err(e) => tracing::error!(run = %id, "run store writer panicked: {e}"),
                }
            }
            let _ = tx
                .send(HubMsg::Written {
                    run_id: id,
                    finished: Finished { summary: s, report },
                })
                .await;
        });
    }
}

/// The first message on an agent's link; `resumed_run_id` names the run it takes its
/// place in again after a broken link (empty for a fresh registration).
fn welcome(resumed_run_id: String) -> CoordinatorMessage {
    CoordinatorMessage {
        body: Some(Body::Welcome(Welcome {
            protocol_version: wsload_proto::PROTOCOL_VERSION,
            coordinator_version: env!("CARGO_PKG_VERSION").into(),
            heartbeat_interval_ms: crate::link_service::HEARTBEAT_INTERVAL_MS,
            resumed_run_id,
        })),
    }
}

fn final_progress(s: &Summary) -> wsload_proto::pb::Progress {
    wsload_proto::pb::Progress {
        run_id: s.run_id.clone(),
        second: s.duration_seconds as i64,
        sessions_total: s.sessions,
        messages_sent: s.messages_sent,
        responses: s.responses,
        rtt_p50_ms: s.rtt_p50_ms,
        rtt_p99_ms: s.rtt_p99_ms,
        errors: s.errors.clone(),
        done: true,
        state: s.state.clone(),
        run_state: s.run_state,
        state_reason: s.state_reason.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A run of 4 sessions against an unreachable target, on one agent, continuing
    /// past agent loss.
    fn four_session_run() -> RunRequest {
        let plan = PlanArgs {
            target: Some("ws://127.0.0.1:1/ws".into()),
            sessions: Some(4),
            ..Default::default()
        }
        .validate()
        .unwrap();
        RunRequest {
            plan,
            min_agents: 1,
            on_loss: OnAgentLoss::Continue,
            thresholds: Vec::new(),
            allow_over_capacity: false,
        }
    }

    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;
    use wsload_proto::pb::{coordinator_message::Body, Hello, RunState as WireState};

    use crate::hub::{Hub, HubConfig, OnAgentLoss, OutDir, RunRequest};
    use crate::plan::PlanArgs;

    /// A hub writing reports under a temporary `wsload-hub-<name>-<pid>` (removed by the
    /// test), with a long heartbeat timeout: its task, its shutdown and that folder.
    fn test_hub(name: &str) -> (Hub, tokio::task::JoinHandle<()>, CancellationToken, std::path::PathBuf) {
        let out = std::env::temp_dir().join(format!("wsload-hub-{name}-{}", std::process::id()));
        let config = HubConfig {
            out: OutDir::Exact(out.clone()),
            agent_wait: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
            store: None,
        };
        let cancel = CancellationToken::new();
        let (hub, task) = Hub::spawn(config, cancel.clone());
        (hub, task, cancel, out)
    }

    /// An agent whose queue cannot take the Start is lost (never silently skipped):
    /// its link is dropped and the run reports it.
    #[tokio::test]
    async fn an_agent_that_cannot_take_a_message_is_lost_and_reported() {
        let (hub, task, cancel, out) = test_hub("undeliverable");
        // Room for two messages, and nobody reading: the Welcome and the Assign fit,
        // the Start does not.
        let (tx, mut rx) = mpsc::channel(2);
        let hello = Hello {
            name: "stuck".into(),
            max_sessions: 10,
            protocol_version: wsload_proto::PROTOCOL_VERSION,
            ..Default::default()
        };
        hub.agent_joined(hello, "peer".into(), tx).await.unwrap();
        let req = four_session_run();
        let id = hub.start_run(req).await.unwrap();
        let finished = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(f) = hub.finished(id.clone()).await.unwrap() {
                    break f;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the run ends");
        assert_eq!(finished.summary.run_state(), WireState::Failed);
        assert_eq!(
            finished.summary.lost_agents,
            vec!["stuck (its message queue was full)".to_string()]
        );
        let first = rx.recv().await.unwrap().unwrap();
        assert!(matches!(first.body, Some(Body::Welcome(_))), "{first:?}");
        let second = rx.recv().await.unwrap().unwrap();
        assert!(matches!(second.body, Some(Body::Assign(_))), "{second:?}");
        assert!(rx.recv().await.is_none(), "the hub dropped the agent's link");
        assert!(hub.list_agents().await.unwrap().is_empty());
        cancel.cancel();
        task.await.unwrap();
        let _ = std::fs::remove_dir_all(out);
    }

    /// The next message on an agent's link.
    async fn next(rx: &mut mpsc::Receiver<Result<wsload_proto::pb::CoordinatorMessage, tonic::Status>>) -> Body {
        rx.recv().await.unwrap().unwrap().body.unwrap()
    }

    /// A participant whose link breaks is detached, not lost: a reconnect with the same
    /// agent id within its grace is welcomed back into the run, gets the messages that
    /// waited (the Stop), and a report it sends again is taken once.
    #[tokio::test]
    async fn a_reconnect_within_grace_resumes_the_run_and_reports_are_taken_once() {
        use wsload_proto::pb::{agent_message, AgentMessage, Counters, MetricWindow};
        let (hub, task, cancel, out) = test_hub("resume");
        let hello = Hello {
            name: "cut".into(),
            agent_id: "agent-1".into(),
            max_sessions: 10,
            grace_ms: 10_000,
            protocol_version: wsload_proto::PROTOCOL_VERSION,
            ..Default::default()
        };
        let (tx, mut rx) = mpsc::channel(16);
        let (conn, link) = hub.agent_joined(hello.clone(), "p1".into(), tx).await.unwrap();
        let req = four_session_run();
        let id = hub.start_run(req).await.unwrap();
        assert!(matches!(next(&mut rx).await, Body::Welcome(w) if w.resumed_run_id.is_empty()));
        assert!(matches!(next(&mut rx).await, Body::Assign(_)));
        let window = |seq: u64| AgentMessage {
            seq,
            body: Some(agent_message::Body::Metrics(MetricWindow {
                run_id: id.clone(),
                second: 0,
                counters: Some(Counters {
                    messages_sent: 5,
                    ..Default::default()
                }),
                ..Default::default()
            })),
        };
        hub.from_agent(conn, window(1)).await.unwrap();
        // The link breaks; the run is stopped meanwhile: the Stop waits.
        hub.agent_left(conn, link, "cut".into()).await;
        assert!(hub.stop_run(id.clone()).await.unwrap());
        let (tx, mut rx) = mpsc::channel(16);
        let (again, link2) = hub.agent_joined(hello, "p2".into(), tx).await.unwrap();
        assert_eq!(again, conn, "the same place in the run");
        assert_ne!(link2, link);
        assert!(matches!(next(&mut rx).await, Body::Welcome(w) if w.resumed_run_id == id));
        // The old link's end, arriving late, changes nothing.
        hub.agent_left(conn, link, "old link".into()).await;
        // Window 1 again (its ack was lost with the link), then window 2.
        hub.from_agent(conn, window(1)).await.unwrap();
        hub.from_agent(conn, window(2)).await.unwrap();
        let mut stopped = false;
        let mut acked = 0;
        while !(stopped && acked == 2) {
            match tokio::time::timeout(Duration::from_secs(5), next(&mut rx))
                .await
                .expect("stop and ack")
            {
                Body::Stop(_) => stopped = true,
                Body::ReportAck(a) => acked = a.seq,
                _ => {}
            }
        }
        let done = AgentMessage {
            seq: 3,
            body: Some(agent_message::Body::RunFinished(wsload_proto::pb::RunFinished {
                run_id: id.clone(),
            })),
        };
        hub.from_agent(conn, done).await.unwrap();
        let finished = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(f) = hub.finished(id.clone()).await.unwrap() {
                    break f;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the run ends");
        assert!(
            finished.summary.lost_agents.is_empty(),
            "{:?}",
            finished.summary.lost_agents
        );
        assert_eq!(
            finished.report.totals.messages_sent, 10,
            "window 1 taken once, window 2 once"
        );
        cancel.cancel();
        task.await.unwrap();
        let _ = std::fs::remove_dir_all(out);
    }
}
