//! The report contract: everything a finished run hands to the report writers.
//!
//! The coordinator fills a [`RunReport`] from the merged agent metrics; the writers in
//! the sibling modules only read it. Latencies are kept as HDR histograms in
//! **microseconds** and merged with [`merge_histogram`] (`Histogram::add`): percentiles
//! are always read from a merged histogram, never averaged across agents or seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
/// A fresh, empty, auto-resizing latency histogram (microseconds): the one constructor
/// agents and coordinator share, so merging or recording a very long stall never fails.
pub use wsload_proto::hist::new_histogram;

/// A latency histogram in microseconds.
pub type LatencyHistogram = Histogram<u64>;

/// Adds every sample of `src` into `dst` (the only correct way to combine percentiles).
///
/// Fails only if `dst` was created without auto-resize and `src` holds larger values.
pub fn merge_histogram(dst: &mut LatencyHistogram, src: &LatencyHistogram) -> Result<(), hdrhistogram::AdditionError> {
    dst.add(src)
}

/// Merges a sequence of histograms into a new one (e.g. one per agent for a second).
pub fn merged<'a, I>(parts: I) -> Result<LatencyHistogram, hdrhistogram::AdditionError>
where
    I: IntoIterator<Item = &'a LatencyHistogram>,
{
    let mut out = new_histogram();
    for part in parts {
        out.add(part)?;
    }
    Ok(out)
}

/// One finished (or aborted) run, as merged by the coordinator.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Run identifier, so artefacts can be matched to coordinator logs.
    pub run_id: String,
    /// The WebSocket URL that was attacked, e.g. `ws://127.0.0.1/ws`.
    pub target: String,
    /// The plan as run, echoed so a report is self-describing.
    pub plan: PlanEcho,
    /// Wall-clock instant of the start barrier (all agents started together).
    pub started_at: DateTime<Utc>,
    /// Wall-clock instant the last agent finished (or the run was stopped).
    pub ended_at: DateTime<Utc>,
    /// Run duration used for every rate (throughput = responses / duration).
    pub duration: Duration,
    /// How the run ended; anything but `Completed` is shown prominently.
    pub outcome: RunOutcome,
    /// Whole-run counters summed over agents.
    pub totals: Totals,
    /// Whole-run histograms merged over agents and seconds.
    pub histograms: RunHistograms,
    /// One entry per second since the start, merged across agents, in time order.
    pub windows: Vec<Window>,
    /// One entry per agent that took part (including lost ones).
    pub agents: Vec<AgentReport>,
    /// Threshold results; empty when none were given. See [`crate::thresholds`].
    pub thresholds: Vec<ThresholdResult>,
    /// The plan's named scenario steps, in plan order (empty for the built-in protocol).
    pub steps: Vec<StepReport>,
}

/// A named scenario step's figures (whole run or one second), merged across agents.
#[derive(Debug, Clone)]
pub struct StepStats {
    /// Executions that succeeded.
    pub ok: u64,
    /// Executions that failed (timeout, mismatch, connect failure).
    pub failed: u64,
    /// Messages received (listen) or sent (send).
    pub messages: u64,
    /// Fan-out: deliveries a session had already seen.
    pub duplicates: u64,
    /// Fan-out: deliveries sent before one the session had already received.
    pub out_of_order: u64,
    /// The step's latency in microseconds: connect time, request RTT from the intended
    /// send, expect wait, pong RTT, close handshake, or fan-out latency.
    pub latency: LatencyHistogram,
}

impl Default for StepStats {
    fn default() -> Self {
        StepStats {
            ok: 0,
            failed: 0,
            messages: 0,
            duplicates: 0,
            out_of_order: 0,
            latency: new_histogram(),
        }
    }
}

impl StepStats {
    /// Adds the counters of `other`, leaving `latency` alone.
    pub fn merge_counts(&mut self, other: &StepStats) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.messages += other.messages;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
    }

    /// Adds `other` (counters summed, latency merged).
    pub fn merge(&mut self, other: &StepStats) -> Result<(), hdrhistogram::AdditionError> {
        self.merge_counts(other);
        self.latency.add(&other.latency)
    }
}

/// A named step of the plan with its whole-run figures.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// The step's name (unique in the plan).
    pub name: String,
    /// `connect`, `send`, `expect`, `request`, `listen`, `ping` or `close`.
    pub kind: String,
    /// Its figures.
    pub stats: StepStats,
    /// For a fan-out listen step with an expected count: delivery accounting.
    pub fanout: Option<FanoutReach>,
}

impl StepReport {
    /// What the step's throughput counts: see [`throughput_counts_messages`].
    pub fn throughput(&self, s: &StepStats) -> u64 {
        if throughput_counts_messages(&self.kind) {
            s.messages
        } else {
            s.ok
        }
    }
}

/// A step's throughput is the messages it received for a `listen` step (one execution
/// listens to many), and its successful executions for every other kind.
pub fn throughput_counts_messages(kind: &str) -> bool {
    kind == "listen"
}

/// Delivery accounting of a fan-out listen step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutReach {
    /// Deliveries expected: messages published x sessions that listened.
    pub expected: u64,
    /// Distinct deliveries received (duplicates not counted).
    pub delivered: u64,
}

impl FanoutReach {
    /// Delivered / expected (1.0 when nothing was expected).
    pub fn reach(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.delivered as f64 / self.expected as f64
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every planned batch ran (possibly after reassigning a lost agent's batches).
    Completed,
    /// Stopped by a user (stop RPC / Ctrl-C) before the plan finished.
    Stopped,
    /// Aborted by `--on-agent-loss abort` or max duration; the reason is shown.
    Aborted(String),
    /// Failed, e.g. every agent lost; the reason is shown.
    Failed(String),
}

impl RunOutcome {
    /// The wire state of this outcome (what exit codes and remote clients read).
    pub fn run_state(&self) -> wsload_proto::pb::RunState {
        use wsload_proto::pb::RunState;
        match self {
            RunOutcome::Completed => RunState::Completed,
            RunOutcome::Stopped => RunState::Stopped,
            RunOutcome::Aborted(_) => RunState::Aborted,
            RunOutcome::Failed(_) => RunState::Failed,
        }
    }

    /// One word: `completed`, `stopped`, `aborted` or `failed`.
    pub fn status(&self) -> &'static str {
        match self {
            RunOutcome::Completed => "completed",
            RunOutcome::Stopped => "stopped",
            RunOutcome::Aborted(_) => "aborted",
            RunOutcome::Failed(_) => "failed",
        }
    }

    /// Why the run was aborted or failed; empty otherwise.
    pub fn reason(&self) -> &str {
        match self {
            RunOutcome::Completed | RunOutcome::Stopped => "",
            RunOutcome::Aborted(why) | RunOutcome::Failed(why) => why,
        }
    }
}

/// `completed`, `stopped`, `aborted: <reason>`, `failed: <reason>` (the summary's text).
impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason() {
            "" => f.write_str(self.status()),
            why => write!(f, "{}: {why}", self.status()),
        }
    }
}

/// The plan parameters that shape the numbers, echoed into the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanEcho {
    /// Sessions planned in total.
    pub sessions: u64,
    /// Sessions per batch.
    pub batch_size: u64,
    /// Pause between starting two batches.
    pub batch_interval: Duration,
    /// Upper bound of batches running at once.
    pub max_active_batches: u64,
    /// Timeout for TCP connect + WebSocket upgrade.
    pub connect_timeout: Duration,
    /// Messages each session sends.
    pub messages_per_session: u64,
    /// Pause between messages of a session; zero means back-to-back.
    pub message_interval: Duration,
    /// Payload size of each message, bytes.
    pub payload_size: u64,
    /// How long a session is kept open after its last response.
    pub hold_time: Duration,
    /// Whether permessage-deflate was offered.
    pub compression: bool,
    /// Anything else worth echoing (arrival stages, max duration, ...), as JSON.
    /// `Value::Null` when there is nothing more.
    pub extra: serde_json::Value,
}

/// Whole-run counters, summed over all agents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Sessions the plan asked for.
    pub sessions_planned: u64,
    /// Sessions whose WebSocket upgrade succeeded.
    pub sessions_opened: u64,
    /// Sessions that opened but ended abnormally (error event, premature close,
    /// timeout waiting for a response). Counts towards `sessions_failed`.
    pub sessions_errored: u64,
    /// Connection attempts that failed (refused, timeout, upgrade rejected).
    pub failed_connections: u64,
    /// Messages sent that never got their matching `response`.
    pub failed_responses: u64,
    /// `failed_responses` by the error kind that ended their session (built-in
    /// protocol): with them, `messages_sent = responses_received + sum`, exactly.
    pub unanswered: BTreeMap<String, u64>,
    /// Text messages sent by all sessions.
    pub messages_sent: u64,
    /// `response` events received and matched to their message.
    pub responses_received: u64,
    /// `server-event` broadcasts received.
    pub server_events: u64,
    /// Error counts by kind (e.g. `connect_timeout`, `error_event`, `premature_close`).
    pub errors: BTreeMap<String, u64>,
    /// Sessions that were open on an agent when it was lost.
    pub lost_sessions: u64,
    /// Batches moved from a lost agent to the remaining ones.
    pub reassigned_batches: u64,
    /// Scenario messages that no step, pending request or handler claimed.
    pub unexpected_messages: u64,
    /// Closes the server initiated, by close code (1006: the connection dropped).
    pub close_codes: BTreeMap<u16, u64>,
    /// Scenario handler counts, by name.
    pub counts: BTreeMap<String, u64>,
    /// Scenario sessions connected again after the server closed their connection (or
    /// it dropped).
    pub reconnects: u64,
}

impl Totals {
    /// Sessions that did not complete normally: failed connections + errored + lost.
    pub fn sessions_failed(&self) -> u64 {
        self.failed_connections + self.sessions_errored + self.lost_sessions
    }

    /// Connection attempts made: opened + failed.
    pub fn connection_attempts(&self) -> u64 {
        self.sessions_opened + self.failed_connections
    }

    /// Sum of `errors` over all kinds.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Whole-run latency histograms (microseconds), merged over agents and seconds.
#[derive(Debug, Clone)]
pub struct RunHistograms {
    /// TCP connect + WebSocket upgrade time.
    pub connect: LatencyHistogram,
    /// Time from upgrade to the server's `session` event.
    pub session_event: LatencyHistogram,
    /// Round-trip time measured from the **intended** send time (no coordinated omission);
    /// this is "the" RTT of the report and of `rtt_*` thresholds.
    pub rtt_intended: LatencyHistogram,
    /// Round-trip time from the actual send time (for comparison with other tools).
    pub rtt_actual: LatencyHistogram,
    /// Send-schedule lag: how long after its intended time each paced message was
    /// written (the built-in protocol and scripted requests).
    pub send_lag: LatencyHistogram,
    /// How late the agents' ~100 ms probe timers fired (see [`super::saturation`]).
    pub agent_lag: LatencyHistogram,
    /// Scenario reconnects: from the lost connection to the new one open (backoff included).
    pub reconnect: LatencyHistogram,
}

impl Default for RunHistograms {
    fn default() -> Self {
        Self {
            connect: new_histogram(),
            session_event: new_histogram(),
            rtt_intended: new_histogram(),
            rtt_actual: new_histogram(),
            send_lag: new_histogram(),
            agent_lag: new_histogram(),
            reconnect: new_histogram(),
        }
    }
}

impl RunHistograms {
    /// Merges another set (e.g. one agent's) into this one.
    pub fn merge(&mut self, other: &RunHistograms) -> Result<(), hdrhistogram::AdditionError> {
        self.connect.add(&other.connect)?;
        self.session_event.add(&other.session_event)?;
        self.rtt_intended.add(&other.rtt_intended)?;
        self.rtt_actual.add(&other.rtt_actual)?;
        self.send_lag.add(&other.send_lag)?;
        self.agent_lag.add(&other.agent_lag)?;
        self.reconnect.add(&other.reconnect)
    }
}

/// One second of the run, merged across agents (agent clocks aligned by the coordinator).
#[derive(Debug, Clone)]
pub struct Window {
    /// Seconds since the start barrier; window covers `[t, t+1)`.
    pub t: u64,
    /// Sessions open at the end of the second.
    pub active_sessions: u64,
    /// Connections opened during the second (= connections/s).
    pub connections_opened: u64,
    /// Connection attempts that failed during the second.
    pub connections_failed: u64,
    /// Messages sent during the second (= messages/s).
    pub messages_sent: u64,
    /// Responses received during the second (= responses/s).
    pub responses: u64,
    /// Server events received during the second.
    pub server_events: u64,
    /// Scenario sessions connected again during the second.
    pub reconnects: u64,
    /// Errors during the second, by kind.
    pub errors: BTreeMap<String, u64>,
    /// RTT from intended send for responses received this second, merged across agents.
    pub rtt: LatencyHistogram,
    /// Named scenario steps this second.
    pub steps: BTreeMap<String, StepStats>,
    /// Agents saturated this second, as `NAME (cpu 97% of 1 core, lag p99 80ms)`
    /// (see [`super::saturation`]).
    pub saturated: Vec<String>,
}

impl Window {
    /// An empty window at second `t`.
    pub fn empty(t: u64) -> Self {
        Self {
            t,
            active_sessions: 0,
            connections_opened: 0,
            connections_failed: 0,
            messages_sent: 0,
            responses: 0,
            server_events: 0,
            reconnects: 0,
            errors: BTreeMap::new(),
            rtt: new_histogram(),
            steps: BTreeMap::new(),
            saturated: Vec::new(),
        }
    }

    /// Adds another agent's window for the same second (counts summed, histograms merged).
    pub fn merge(&mut self, other: &Window) -> Result<(), hdrhistogram::AdditionError> {
        self.merge_counts(other);
        for (name, s) in &other.steps {
            self.steps.entry(name.clone()).or_default().latency.add(&s.latency)?;
        }
        self.rtt.add(&other.rtt)
    }

    /// Adds the counters and error counts of `other`, leaving `rtt` alone.
    ///
    /// Separate from [`Window::merge`] so the coordinator's aggregator, which merges the
    /// RTT straight from an agent's encoded histogram, sums the counters the same way.
    pub fn merge_counts(&mut self, other: &Window) {
        self.active_sessions += other.active_sessions;
        self.connections_opened += other.connections_opened;
        self.connections_failed += other.connections_failed;
        self.messages_sent += other.messages_sent;
        self.responses += other.responses;
        self.server_events += other.server_events;
        self.reconnects += other.reconnects;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += n;
        }
        for (name, s) in &other.steps {
            self.steps.entry(name.clone()).or_default().merge_counts(s);
        }
        self.saturated.extend(other.saturated.iter().cloned());
    }

    /// Sum of `errors` over all kinds in this second.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Merges per-agent windows into one window per second, `0..=last t` with no gaps
/// (a second nobody reported becomes an empty window), in time order.
pub fn merge_windows<'a, I>(parts: I) -> Result<Vec<Window>, hdrhistogram::AdditionError>
where
    I: IntoIterator<Item = &'a Window>,
{
    let mut by_second: BTreeMap<u64, Window> = BTreeMap::new();
    for part in parts {
        by_second
            .entry(part.t)
            .or_insert_with(|| Window::empty(part.t))
            .merge(part)?;
    }
    let Some(&last) = by_second.keys().next_back() else {
        return Ok(Vec::new());
    };
    Ok((0..=last)
        .map(|t| by_second.remove(&t).unwrap_or_else(|| Window::empty(t)))
        .collect())
}

/// One agent's part of the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentReport {
    /// Agent name as given by `--name` (or its id), used in legends.
    pub name: String,
    /// Sessions this agent opened.
    pub sessions: u64,
    /// Batches this agent ran (including reassigned ones).
    pub batches: u64,
    /// Resource samples over time (one per heartbeat), in time order.
    pub memory: Vec<MemorySample>,
    /// Total time the agent refused to start batches because of memory pressure.
    pub throttled: Duration,
    /// True if the agent was lost during the run (stream broke / heartbeats stopped).
    pub lost: bool,
    /// Its CPU use and timer lag, one sample per second it reported.
    pub load: Vec<super::saturation::LoadSample>,
}

/// One resource sample of an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemorySample {
    /// Seconds since the start barrier (fractional: heartbeats are not aligned).
    pub t: f64,
    /// System memory in use, percent of total (what `--max-memory` compares against).
    pub system_percent: f64,
    /// The agent process's resident set size, bytes.
    pub rss_bytes: u64,
}

/// Average / max / min of system memory use over every sample of every agent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemorySummary {
    /// Mean of all samples, percent.
    pub average_percent: f64,
    /// Highest sample, percent.
    pub max_percent: f64,
    /// Lowest sample, percent.
    pub min_percent: f64,
    /// Highest RSS of any agent, bytes.
    pub max_rss_bytes: u64,
    /// Number of samples the summary is based on (0 = no data).
    pub samples: u64,
}

impl MemorySummary {
    /// Computes the summary from the agents' samples; all zero if there are none.
    pub fn from_agents(agents: &[AgentReport]) -> Self {
        let mut s = MemorySummary {
            min_percent: f64::INFINITY,
            max_percent: f64::NEG_INFINITY,
            ..MemorySummary::default()
        };
        let mut sum = 0.0;
        for m in agents.iter().flat_map(|a| a.memory.iter()) {
            sum += m.system_percent;
            s.samples += 1;
            s.max_percent = s.max_percent.max(m.system_percent);
            s.min_percent = s.min_percent.min(m.system_percent);
            s.max_rss_bytes = s.max_rss_bytes.max(m.rss_bytes);
        }
        if s.samples == 0 {
            return MemorySummary::default();
        }
        s.average_percent = sum / s.samples as f64;
        s
    }
}

/// Summary statistics of one histogram, all in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencyStats {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Arithmetic mean of the samples (not of percentiles).
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl LatencyStats {
    /// Reads the statistics of `h`; `None` if it holds no sample.
    pub fn from_histogram(h: &LatencyHistogram) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        Some(Self {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// Result of one threshold evaluated on the merged data.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdResult {
    /// The expression as given, e.g. `rtt_p99<250ms`.
    pub expr: String,
    /// Metric name, e.g. `rtt_p99`.
    pub metric: String,
    /// Observed value in the metric's base unit (µs for latencies, fraction 0..1 for
    /// rates, per second for throughput, plain count for counts); `None` when the
    /// metric had no data (e.g. no RTT sample), which fails the threshold.
    pub observed: Option<f64>,
    /// Observed value formatted with its unit, e.g. `212.4ms`, `0.35%`, `n/a`.
    pub observed_display: String,
    /// Whether the condition held.
    pub passed: bool,
}

impl RunReport {
    /// Memory average/max/min over all agents' samples.
    pub fn memory_summary(&self) -> MemorySummary {
        MemorySummary::from_agents(&self.agents)
    }

    /// Real throughput: responses received per second of run duration.
    pub fn throughput(&self) -> f64 {
        per_second(self.totals.responses_received, self.duration)
    }

    /// Messages sent per second of run duration.
    pub fn send_rate(&self) -> f64 {
        per_second(self.totals.messages_sent, self.duration)
    }

    /// True if every threshold passed (also true when there are none).
    pub fn thresholds_passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }
}

/// `count / duration` in 1/s; 0 for a zero duration.
pub fn per_second(count: u64, duration: Duration) -> f64 {
    let secs = duration.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, pct: f64, rss: u64) -> MemorySample {
        MemorySample {
            t,
            system_percent: pct,
            rss_bytes: rss,
        }
    }

    #[test]
    fn memory_summary_spans_all_agents() {
        let agents = vec![
            AgentReport {
                name: "a".into(),
                memory: vec![sample(0.0, 10.0, 5), sample(1.0, 20.0, 7)],
                ..AgentReport::default()
            },
            AgentReport {
                name: "b".into(),
                memory: vec![sample(0.5, 60.0, 3)],
                ..AgentReport::default()
            },
        ];
        let m = MemorySummary::from_agents(&agents);
        assert_eq!(m.samples, 3);
        assert_eq!(m.average_percent, 30.0);
        assert_eq!(m.max_percent, 60.0);
        assert_eq!(m.min_percent, 10.0);
        assert_eq!(m.max_rss_bytes, 7);
        assert_eq!(MemorySummary::from_agents(&[]), MemorySummary::default());
    }

    #[test]
    fn merge_windows_groups_by_second_and_fills_gaps() {
        let mut a0 = Window::empty(0);
        a0.responses = 3;
        a0.rtt.record(10).unwrap();
        let mut b0 = Window::empty(0);
        b0.responses = 4;
        b0.rtt.record(30).unwrap();
        let mut a2 = Window::empty(2);
        a2.messages_sent = 9;
        let merged = merge_windows([&a2, &a0, &b0]).unwrap();
        assert_eq!(merged.iter().map(|w| w.t).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(merged[0].responses, 7);
        assert_eq!(merged[0].rtt.len(), 2);
        assert_eq!(merged[1].responses, 0);
        assert_eq!(merged[2].messages_sent, 9);
        assert!(merge_windows([]).unwrap().is_empty());
    }

    #[test]
    fn stats_and_rates() {
        assert_eq!(LatencyStats::from_histogram(&new_histogram()), None);
        let mut h = new_histogram();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let s = LatencyStats::from_histogram(&h).unwrap();
        assert_eq!(
            (s.count, s.min, s.p50, s.p90, s.p99, s.p999, s.max),
            (1000, 1, 500, 900, 990, 999, 1000)
        );
        assert_eq!(s.mean, 500.5);
        assert_eq!(per_second(3000, Duration::from_secs(20)), 150.0);
        assert_eq!(per_second(3000, Duration::ZERO), 0.0);
        let t = Totals {
            failed_connections: 2,
            sessions_errored: 3,
            lost_sessions: 4,
            sessions_opened: 10,
            errors: BTreeMap::from([("a".to_owned(), 1), ("b".to_owned(), 2)]),
            ..Totals::default()
        };
        assert_eq!(t.sessions_failed(), 9);
        assert_eq!(t.connection_attempts(), 12);
        assert_eq!(t.errors_total(), 3);
    }
}
