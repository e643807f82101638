//! The dashboard's live feed: what the hub publishes every second (a run's complete
//! seconds as [`Point`]s and a [`Status`] of the run and the agents), kept as a
//! bounded history per run and pushed to the browsers through a small tokio
//! broadcast channel of pre-serialised events.
//!
//! Memory is bounded everywhere: the broadcast holds [`CHANNEL_CAPACITY`] events (a
//! browser that falls behind loses the oldest and gets a fresh snapshot instead), a
//! run's history is halved (keeping each pair's maximum) past [`MAX_POINTS`], and only
//! the [`KEEP_RUNS`] latest runs are kept.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::broadcast;

/// Events queued per browser before it is considered lagging (then it resyncs).
pub const CHANNEL_CAPACITY: usize = 16;
/// Points kept per run; beyond, neighbours are merged keeping their maximum.
pub const MAX_POINTS: usize = 3600;
/// Runs whose history and status are kept for the run pages.
pub const KEEP_RUNS: usize = 8;

/// A named step during one second.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StepPoint {
    /// Successful executions.
    pub ok: u64,
    /// Failed executions.
    pub failed: u64,
    /// Messages received (listen) or sent (send).
    pub messages: u64,
    /// Median latency, ms.
    pub p50: f64,
    /// 99th percentile latency, ms.
    pub p99: f64,
}

/// One complete second of a run, merged over agents.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Point {
    /// Seconds since the start barrier.
    pub t: u64,
    /// Sessions open at the end of the second.
    pub active: u64,
    /// Connections opened during the second.
    pub opened: u64,
    /// Connection attempts that failed during the second.
    pub failed: u64,
    /// Messages sent during the second.
    pub sent: u64,
    /// Responses received during the second.
    pub recv: u64,
    /// Server events received during the second.
    pub events: u64,
    /// Errors of every kind during the second.
    pub errors: u64,
    /// RTT from the intended send time, ms: p50, p90, p99, p99.9 (0 without sample).
    pub rtt: [f64; 4],
    /// Connect + upgrade time, ms: p50, p99 (0 without sample).
    pub connect: [f64; 2],
    /// Named steps active in the second.
    pub steps: BTreeMap<String, StepPoint>,
}

impl Point {
    /// Folds `other` into `self` keeping every field's maximum (downsampling must not
    /// hide a peak); `t` stays the earlier one.
    pub fn keep_max(&mut self, other: &Point) {
        self.active = self.active.max(other.active);
        self.opened = self.opened.max(other.opened);
        self.failed = self.failed.max(other.failed);
        self.sent = self.sent.max(other.sent);
        self.recv = self.recv.max(other.recv);
        self.events = self.events.max(other.events);
        self.errors = self.errors.max(other.errors);
        for (a, b) in self.rtt.iter_mut().zip(other.rtt) {
            *a = a.max(b);
        }
        for (a, b) in self.connect.iter_mut().zip(other.connect) {
            *a = a.max(b);
        }
        for (name, s) in &other.steps {
            let e = self.steps.entry(name.clone()).or_default();
            e.ok = e.ok.max(s.ok);
            e.failed = e.failed.max(s.failed);
            e.messages = e.messages.max(s.messages);
            e.p50 = e.p50.max(s.p50);
            e.p99 = e.p99.max(s.p99);
        }
    }
}

/// Halves `points` by merging neighbours (keeping the maximum of each pair).
pub fn halve(points: &mut Vec<Point>) {
    let merged = points
        .chunks(2)
        .map(|pair| {
            let mut p = pair[0].clone();
            if let Some(q) = pair.get(1) {
                p.keep_max(q);
            }
            p
        })
        .collect();
    *points = merged;
}

/// Whole-run latency statistics, ms.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

/// A named step over the whole run so far.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StepRow {
    /// Step name.
    pub name: String,
    /// Step kind (`request`, `listen`...).
    pub kind: String,
    /// Successful executions.
    pub ok: u64,
    /// Failed executions.
    pub failed: u64,
    /// Messages received or sent.
    pub messages: u64,
    /// Its latency.
    pub latency: Latency,
}

/// A threshold evaluated on the data merged so far.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ThresholdRow {
    /// The expression as given.
    pub expr: String,
    /// The observed value with its unit (`n/a (no data)` before any).
    pub observed: String,
    /// Whether it holds right now.
    pub passed: bool,
}

/// One agent's health as the dashboard shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AgentRow {
    /// Agent name.
    pub name: String,
    /// Sessions it holds open now (its latest heartbeat).
    pub sessions: u64,
    /// Process CPU, percent of one core.
    pub cpu_percent: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// System memory in use, percent.
    pub memory_percent: f64,
    /// Its memory throttle is on.
    pub throttled: bool,
    /// Agent clock minus coordinator clock, ms.
    pub clock_offset_ms: f64,
    /// Seconds since its last message (heartbeats come every second).
    pub last_heartbeat_s: f64,
    /// Taking part in a run.
    pub busy: bool,
}

/// Histogram buckets of a whole-run latency (Prometheus `_bucket` series).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    /// Upper bounds in seconds, ascending (+Inf implied).
    pub bounds: Vec<f64>,
    /// Samples at or below each bound.
    pub cumulative: Vec<u64>,
    /// All samples.
    pub count: u64,
    /// Sum of the samples, seconds.
    pub sum: f64,
}

/// The live state of a run (and the agents) at one instant.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Run id (empty when no run has been started yet).
    pub run_id: String,
    /// `waiting`, `running`, `draining`, `completed`, `stopped`, `aborted`, `failed`.
    pub state: String,
    /// The state as a sentence (with the reason of an abort or failure).
    pub state_text: String,
    /// Finished and its report written (or failed to be).
    pub finished: bool,
    /// The WebSocket URL under load.
    pub target: String,
    /// Sessions planned.
    pub sessions_planned: u64,
    /// Seconds since the start barrier.
    pub elapsed_s: f64,
    /// Sessions started (opened + failed to connect).
    pub sessions_started: u64,
    /// Sessions opened.
    pub sessions_opened: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Sessions open now (latest complete second).
    pub active_sessions: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Responses received.
    pub responses: u64,
    /// Server events received.
    pub server_events: u64,
    /// Scenario messages nothing claimed.
    pub unexpected_messages: u64,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Server-initiated closes by code.
    pub close_codes: BTreeMap<String, u64>,
    /// Whole-run RTT.
    pub rtt: Latency,
    /// Whole-run connect time.
    pub connect: Latency,
    /// Named steps, plan order.
    pub steps: Vec<StepRow>,
    /// Thresholds with their live verdict.
    pub thresholds: Vec<ThresholdRow>,
    /// Agents connected (and lost ones of the run, flagged by their name).
    pub agents: Vec<AgentRow>,
    /// Where the report is (once written).
    pub report_dir: String,
    /// Whole-run RTT buckets (for `/metrics`; not sent to browsers).
    #[serde(skip)]
    pub rtt_buckets: Buckets,
    /// Whole-run connect-time buckets (for `/metrics`).
    #[serde(skip)]
    pub connect_buckets: Buckets,
    /// Failed responses (sent without a matching response), known at the end.
    pub failed_responses: u64,
    /// Sessions lost with their agent.
    pub lost_sessions: u64,
}

/// A run as the run list shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunRow {
    /// Run id.
    pub run_id: String,
    /// Its state word.
    pub state: String,
    /// Target URL.
    pub target: String,
    /// Sessions planned.
    pub sessions: u64,
    /// Seconds it ran.
    pub elapsed_s: f64,
    /// Report directory once written.
    pub report_dir: String,
}

/// One run's kept data.
#[derive(Debug, Default)]
struct RunData {
    points: Vec<Point>,
    status: Status,
}

#[derive(Debug, Default)]
struct Inner {
    /// Newest first.
    runs: VecDeque<(String, RunData)>,
    /// Agents as of the latest status (also when no run exists).
    agents: Vec<AgentRow>,
}

/// Snapshot sent to a browser when it connects or falls behind.
#[derive(Debug, Serialize)]
pub struct Snapshot<'a> {
    /// The run shown (empty when none).
    pub run_id: &'a str,
    /// Its points (possibly downsampled).
    pub points: &'a [Point],
    /// Its latest status.
    pub status: Option<&'a Status>,
    /// Every kept run, newest first.
    pub runs: Vec<RunRow>,
    /// Agents connected now.
    pub agents: &'a [AgentRow],
}

/// The feed: cheap to clone, shared by the hub (writer) and the dashboard (readers).
#[derive(Debug, Clone)]
pub struct Feed {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Arc<Event>>,
}

/// An event as sent over SSE: its name and its JSON, serialised once for all browsers.
#[derive(Debug)]
pub struct Event {
    /// `point` or `status`.
    pub name: &'static str,
    /// The run it belongs to.
    pub run_id: String,
    /// JSON text.
    pub data: String,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    /// An empty feed.
    pub fn new() -> Feed {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Feed {
            inner: Arc::default(),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes to new events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Browsers listening now.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    fn run_mut<'a>(inner: &'a mut Inner, run_id: &str) -> &'a mut RunData {
        if let Some(i) = inner.runs.iter().position(|(id, _)| id == run_id) {
            return &mut inner.runs[i].1;
        }
        inner.runs.push_front((run_id.to_owned(), RunData::default()));
        inner.runs.truncate(KEEP_RUNS);
        &mut inner.runs[0].1
    }

    /// A complete second of `run_id`.
    pub fn point(&self, run_id: &str, p: Point) {
        let data = if self.listeners() > 0 {
            serde_json::to_string(&p).ok()
        } else {
            None
        };
        {
            let mut inner = self.lock();
            let run = Self::run_mut(&mut inner, run_id);
            if run.points.last().is_some_and(|last| last.t >= p.t) {
                return; // shown already (seconds arrive in order, exactly once)
            }
            run.points.push(p);
            if run.points.len() > MAX_POINTS {
                halve(&mut run.points);
            }
        }
        if let Some(data) = data {
            let _ = self.tx.send(Arc::new(Event {
                name: "point",
                run_id: run_id.to_owned(),
                data,
            }));
        }
    }

    /// The status of a run (and of the agents).
    pub fn status(&self, s: Status) {
        let data = if self.listeners() > 0 {
            serde_json::to_string(&s).ok()
        } else {
            None
        };
        let run_id = s.run_id.clone();
        {
            let mut inner = self.lock();
            inner.agents.clone_from(&s.agents);
            if !run_id.is_empty() {
                Self::run_mut(&mut inner, &run_id).status = s;
            }
        }
        if let Some(data) = data {
            let _ = self.tx.send(Arc::new(Event {
                name: "status",
                run_id,
                data,
            }));
        }
    }

    /// Agents only (no run yet).
    pub fn agents(&self, agents: Vec<AgentRow>) {
        self.status(Status {
            agents,
            ..Status::default()
        });
    }

    /// The report of `run_id` is written to `dir` (or could not be: `dir` says why).
    pub fn written(&self, run_id: &str, dir: String) {
        let s = {
            let mut inner = self.lock();
            let Some((_, run)) = inner.runs.iter_mut().find(|(id, _)| id == run_id) else {
                return;
            };
            run.status.finished = true;
            run.status.report_dir = dir;
            run.status.clone()
        };
        self.status(s);
    }

    /// The JSON snapshot of `run_id` ("" = the newest run).
    pub fn snapshot_json(&self, run_id: &str) -> Option<String> {
        let inner = self.lock();
        let run = if run_id.is_empty() {
            inner.runs.front()
        } else {
            inner.runs.iter().find(|(id, _)| id == run_id)
        };
        if run.is_none() && !run_id.is_empty() {
            return None;
        }
        let snap = Snapshot {
            run_id: run.map_or("", |(id, _)| id.as_str()),
            points: run.map_or(&[], |(_, r)| r.points.as_slice()),
            status: run.map(|(_, r)| &r.status),
            runs: Self::rows(&inner),
            agents: &inner.agents,
        };
        serde_json::to_string(&snap).ok()
    }

    fn rows(inner: &Inner) -> Vec<RunRow> {
        inner
            .runs
            .iter()
            .map(|(id, r)| RunRow {
                run_id: id.clone(),
                state: r.status.state.clone(),
                target: r.status.target.clone(),
                sessions: r.status.sessions_planned,
                elapsed_s: r.status.elapsed_s,
                report_dir: r.status.report_dir.clone(),
            })
            .collect()
    }

    /// Every kept run, newest first.
    pub fn runs(&self) -> Vec<RunRow> {
        Self::rows(&self.lock())
    }

    /// The newest run's status, and the agents (for `/metrics`).
    pub fn latest(&self) -> (Option<Status>, Vec<AgentRow>) {
        let inner = self.lock();
        (inner.runs.front().map(|(_, r)| r.status.clone()), inner.agents.clone())
    }

    /// The report directory of `run_id`, once written.
    pub fn report_dir(&self, run_id: &str) -> Option<String> {
        let inner = self.lock();
        let (_, r) = inner.runs.iter().find(|(id, _)| id == run_id)?;
        (r.status.finished && !r.status.report_dir.is_empty()).then(|| r.status.report_dir.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: u64, active: u64, p99: f64) -> Point {
        Point {
            t,
            active,
            rtt: [0.0, 0.0, p99, 0.0],
            ..Point::default()
        }
    }

    #[test]
    fn halving_keeps_the_maximum_of_each_pair() {
        let mut v = vec![p(0, 1, 5.0), p(1, 3, 2.0), p(2, 2, 9.0)];
        halve(&mut v);
        assert_eq!(v, vec![p(0, 3, 5.0), p(2, 2, 9.0)]);
    }

    #[test]
    fn history_is_bounded_and_ordered() {
        let feed = Feed::new();
        for t in 0..(MAX_POINTS as u64 + 1) {
            feed.point("r", p(t, t, 1.0));
        }
        feed.point("r", p(3, 0, 0.0)); // already shown: ignored
        let inner = feed.lock();
        let pts = &inner.runs[0].1.points;
        assert_eq!(pts.len(), MAX_POINTS / 2 + 1);
        assert_eq!(pts.last().unwrap().active, MAX_POINTS as u64);
        assert_eq!(pts[0].active, 1);
    }

    #[test]
    fn only_the_latest_runs_are_kept_and_a_lagging_reader_is_told() {
        let feed = Feed::new();
        let mut rx = feed.subscribe();
        for i in 0..(KEEP_RUNS + 3) {
            feed.point(&format!("run-{i}"), p(0, 1, 1.0));
        }
        assert_eq!(feed.runs().len(), KEEP_RUNS);
        assert_eq!(feed.runs()[0].run_id, format!("run-{}", KEEP_RUNS + 2));
        assert!(feed.snapshot_json("run-0").is_none());
        for _ in 0..CHANNEL_CAPACITY {
            feed.point("x", p(0, 0, 0.0));
            feed.status(Status::default());
        }
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(_))));
    }
}
