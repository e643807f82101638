//! The hub actor loop: registry, current run, finished runs, periodic ticks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::{interval, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use wsload_proto::pb::{agent_message, coordinator_message::Body, ClockPing, Shutdown, Summary};

use super::agents::{AgentEntry, Agents};
use super::run::{Phase, RunState};
use super::{summary, Finished, HubConfig, HubError, HubMsg, OutDir};
use crate::report::RunOutcome;

/// Finished runs kept for GetSummary.
const KEEP_FINISHED: usize = 32;

/// A WatchRun subscriber.
type Watcher = mpsc::Sender<Result<wsload_proto::pb::Progress, tonic::Status>>;

struct State {
    config: HubConfig,
    agents: Agents,
    current: Option<RunState>,
    /// Runs whose report is being written: id -> watchers.
    writing: BTreeMap<String, (Vec<Watcher>, Summary)>,
    finished: VecDeque<(String, Finished)>,
    tx: mpsc::Sender<HubMsg>,
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(super) async fn run(
    config: HubConfig,
    mut rx: mpsc::Receiver<HubMsg>,
    tx: mpsc::Sender<HubMsg>,
    cancel: CancellationToken,
) {
    let mut st = State {
        config,
        agents: Agents::default(),
        current: None,
        writing: BTreeMap::new(),
        finished: VecDeque::new(),
        tx,
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
                if last_ping.elapsed() >= Duration::from_secs(1) {
                    last_ping = Instant::now();
                    let ping = ClockPing { coordinator_unix_micros: now_micros() };
                    for a in st.agents.map.values() {
                        a.send(Body::ClockPing(ping));
                    }
                }
                st.tick_run();
            }
        }
    }
    if let Some(run) = st.current.as_mut() {
        run.outcome.get_or_insert(RunOutcome::Stopped);
        run.stop_agents(&mut st.agents);
    }
}

impl State {
    fn handle(&mut self, msg: HubMsg) {
        match msg {
            HubMsg::AgentJoined { hello, peer, tx, reply } => {
                tracing::info!(agent = %hello.name, %peer, max_sessions = hello.max_sessions, "agent registered");
                let entry = AgentEntry {
                    hello,
                    peer,
                    tx,
                    last_seen: Instant::now(),
                    offset_us: 0,
                    best_rtt_us: 0,
                    resources: None,
                    run: None,
                };
                let _ = reply.send(self.agents.add(entry));
                self.tick_run();
            }
            HubMsg::FromAgent { conn, msg } => self.on_agent_message(conn, msg),
            HubMsg::AgentLeft { conn, reason } => self.agent_gone(conn, &reason),
            HubMsg::StartRun { req, reply } => {
                if let Some(cur) = &self.current {
                    let _ = reply.send(Err(HubError::Busy(cur.id.clone())));
                    return;
                }
                let id = format!("run-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                tracing::info!(run = %id, target = %req.plan.target, sessions = req.plan.sessions, "run requested");
                self.current = Some(RunState::new(id.clone(), req, self.config.agent_wait));
                let _ = reply.send(Ok(id));
                self.tick_run();
            }
            HubMsg::Watch { run_id, tx, reply } => {
                if let Some(cur) = self.current.as_mut().filter(|c| run_id.is_empty() || c.id == run_id) {
                    let _ = tx.try_send(Ok(cur.progress(false)));
                    cur.watchers.push(tx);
                    let _ = reply.send(Ok(()));
                } else if let Some((watchers, _)) = self.writing.get_mut(&run_id) {
                    watchers.push(tx);
                    let _ = reply.send(Ok(()));
                } else if let Some((_, f)) = self.finished.iter().find(|(id, _)| run_id.is_empty() || *id == run_id) {
                    let _ = tx.try_send(Ok(final_progress(&f.summary)));
                    let _ = reply.send(Ok(()));
                } else {
                    let _ = reply.send(Err(HubError::UnknownRun(run_id)));
                }
            }
            HubMsg::StopRun { run_id, reply } => {
                let res = match self.current.as_mut().filter(|c| run_id.is_empty() || c.id == run_id) {
                    Some(cur) => {
                        tracing::info!(run = %cur.id, "run stopped on request");
                        cur.outcome.get_or_insert(RunOutcome::Stopped);
                        cur.stop_agents(&mut self.agents);
                        Ok(true)
                    }
                    None if self.writing.contains_key(&run_id) || self.finished.iter().any(|(id, _)| *id == run_id) => {
                        Ok(false)
                    }
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
            HubMsg::GetFinished { run_id, reply } => {
                let f = self
                    .finished
                    .iter()
                    .find(|(id, _)| *id == run_id)
                    .map(|(_, f)| f.clone());
                let _ = reply.send(f);
            }
            HubMsg::Written { run_id, finished } => {
                if let Some((watchers, _)) = self.writing.remove(&run_id) {
                    let p = final_progress(&finished.summary);
                    for w in watchers {
                        let _ = w.try_send(Ok(p.clone()));
                    }
                }
                self.finished.push_front((run_id, finished));
                self.finished.truncate(KEEP_FINISHED);
            }
            HubMsg::ShutdownAgents { reason, reply } => {
                for a in self.agents.map.values() {
                    a.send(Body::Shutdown(Shutdown { reason: reason.clone() }));
                }
                let _ = reply.send(());
            }
        }
    }

    fn summary(&self, run_id: &str) -> Result<Summary, HubError> {
        if let Some(cur) = self.current.as_ref().filter(|c| run_id.is_empty() || c.id == run_id) {
            let p = cur.progress(false);
            return Ok(Summary {
                run_id: cur.id.clone(),
                state: p.state,
                sessions: p.sessions_total,
                messages_sent: p.messages_sent,
                responses: p.responses,
                errors: p.errors,
                duration_seconds: cur.elapsed().as_secs_f64(),
                lost_agents: cur.lost_agents.clone(),
                finished: false,
                ..Summary::default()
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
            .ok_or_else(|| HubError::UnknownRun(run_id.to_string()))
    }

    fn on_agent_message(&mut self, conn: u64, msg: wsload_proto::pb::AgentMessage) {
        let Some(agent) = self.agents.map.get_mut(&conn) else {
            return;
        };
        agent.last_seen = Instant::now();
        use agent_message::Body as A;
        match msg.body {
            Some(A::Heartbeat(hb)) => {
                if let Some(p) = &hb.pong {
                    agent.clock_pong(p, now_micros());
                }
                if let Some(r) = hb.resources {
                    if let Some(run) = self.current.as_mut().filter(|r| r.phase == Phase::Running) {
                        if let Some(p) = run.participants.get_mut(&conn) {
                            p.throttled = r.throttled;
                            let t = run.elapsed().as_secs_f64();
                            run.agg.resource_sample(conn, t, &r);
                        }
                    }
                    agent.resources = Some(r);
                }
            }
            Some(A::Metrics(w)) => {
                if let Some(run) = self
                    .current
                    .as_mut()
                    .filter(|r| r.id == w.run_id && r.participants.contains_key(&conn))
                {
                    if let Err(e) = run.agg.add_window(conn, &w) {
                        tracing::warn!(run = %run.id, "dropping an undecodable window: {e}");
                    }
                    run.broadcast_due();
                }
            }
            Some(A::BatchAck(ack)) => {
                if let Some(run) = self.current.as_mut().filter(|r| r.id == ack.run_id) {
                    run.on_ack(conn, &ack, &mut self.agents);
                }
            }
            Some(A::RunFinished(f)) => {
                if let Some(a) = self
                    .agents
                    .map
                    .get_mut(&conn)
                    .filter(|a| a.run.as_deref() == Some(&f.run_id))
                {
                    a.run = None;
                }
                if let Some(run) = self.current.as_mut().filter(|r| r.id == f.run_id) {
                    if let Some(p) = run.participants.get_mut(&conn) {
                        p.finished = true;
                    }
                }
                self.tick_run();
            }
            Some(A::Hello(_)) | None => {}
        }
    }

    fn agent_gone(&mut self, conn: u64, reason: &str) {
        let Some(agent) = self.agents.map.remove(&conn) else {
            return;
        };
        tracing::warn!(agent = %agent.hello.name, %reason, "agent disconnected");
        if let Some(run) = self.current.as_mut() {
            run.on_agent_lost(conn, &mut self.agents);
        }
        self.tick_run();
    }

    fn check_liveness(&mut self) {
        let timeout = self.config.heartbeat_timeout;
        let silent: Vec<u64> = self
            .agents
            .map
            .iter()
            .filter(|(_, a)| a.last_seen.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for conn in silent {
            if let Some(a) = self.agents.map.get(&conn) {
                let _ = a.tx.try_send(Err(tonic::Status::deadline_exceeded("no heartbeat")));
            }
            self.agent_gone(conn, "heartbeats stopped");
        }
    }

    fn tick_run(&mut self) {
        let Some(run) = self.current.as_mut() else { return };
        let done = run.tick(&mut self.agents);
        if !done {
            run.broadcast_due();
            return;
        }
        let run = self.current.take().expect("checked above");
        for a in self.agents.map.values_mut() {
            if a.run.as_deref() == Some(run.id.as_str()) {
                a.run = None;
            }
        }
        self.finish(run);
    }

    fn finish(&mut self, mut run: RunState) {
        let id = run.id.clone();
        let watchers = std::mem::take(&mut run.watchers);
        let completed = run.agg.completed();
        let lost_agents = run.lost_agents.clone();
        let dir = match &self.config.out {
            OutDir::Exact(p) => p.clone(),
            OutDir::PerRun(base) => base.join(&id),
        };
        let report = summary::build_report(run);
        let s = summary::summary(&report, completed, lost_agents, dir.display().to_string());
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
            let _ = tx
                .send(HubMsg::Written {
                    run_id: id,
                    finished: Finished { summary: s, report },
                })
                .await;
        });
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
        ..Default::default()
    }
}
