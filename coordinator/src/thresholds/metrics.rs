//! What a threshold measures, and how each metric is observed on a finished report.

use crate::report::model::{LatencyHistogram, RunReport};

/// Which latency histogram a latency metric reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencySource {
    /// `rtt_*`: RTT from the intended send time.
    Rtt,
    /// `rtt_actual_*`: RTT from the actual send time.
    RttActual,
    /// `connect_*`: connect + upgrade time.
    Connect,
    /// `session_*`: time to the `session` event.
    SessionEvent,
    /// `send_lag_*`: how late paced messages went out.
    SendLag,
    /// `agent_lag_*`: how late the agents' probe timers fired.
    AgentLag,
}

/// The statistic read from a histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// Smallest sample.
    Min,
    /// Largest sample.
    Max,
    /// Mean of the samples.
    Mean,
    /// Percentile in `(0, 100]`.
    Percentile(f64),
}

/// A whole-run counter usable in thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// [`crate::report::Totals::sessions_failed`].
    SessionsFailed,
    /// Sessions opened.
    SessionsOpened,
    /// Failed connection attempts.
    FailedConnections,
    /// Messages without their response.
    FailedResponses,
    /// Sum of errors over all kinds.
    Errors,
    /// Sessions lost with their agent.
    LostSessions,
    /// Messages sent.
    MessagesSent,
    /// Responses received.
    ResponsesReceived,
    /// Server events received.
    ServerEvents,
    /// Batches moved off lost agents.
    ReassignedBatches,
    /// Scenario messages nothing claimed.
    UnexpectedMessages,
    /// Seconds in which an agent was saturated.
    SaturatedSeconds,
}

/// What is read of a named scenario step (`step.NAME.STAT`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepStat {
    /// A statistic of the step's latency histogram, in microseconds.
    Latency(Stat),
    /// Executions that succeeded.
    Ok,
    /// Executions that failed.
    Failed,
    /// Messages received (listen).
    Messages,
    /// Fan-out deliveries seen twice.
    Duplicates,
    /// Fan-out deliveries older than one already received.
    OutOfOrder,
    /// failed / (ok + failed), fraction.
    ErrorRate,
    /// Fan-out: distinct deliveries / expected deliveries, fraction.
    Reach,
}

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// A latency statistic, in microseconds.
    Latency(LatencySource, Stat),
    /// Failed connections / attempts, fraction.
    ConnectErrorRate,
    /// Failed responses / messages sent, fraction.
    ResponseErrorRate,
    /// Failed operations / operations, fraction.
    ErrorRate,
    /// Responses per second of run duration.
    MessagesPerSecond,
    /// Messages sent per second of run duration.
    SentPerSecond,
    /// Sessions opened per second of run duration.
    ConnectionsPerSecond,
    /// A whole-run counter.
    Count(Count),
    /// A named scenario step's figure: the step's name and what is read of it.
    Step(String, StepStat),
    /// A scenario handler's count, by name.
    HandlerCount(String),
    /// Server-initiated closes with this close code.
    CloseCode(u16),
    /// The largest CPU share of any agent in any second, fraction of its cores.
    AgentCpuMax,
}

/// The unit family of a metric, which decides how values parse and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Microseconds; values need a time unit.
    Latency,
    /// Fraction 0..1; values are `N%` or a fraction.
    Rate,
    /// Per second; values are plain numbers, optionally with `/s`.
    PerSecond,
    /// Plain non-negative count.
    Count,
}

impl Metric {
    /// The unit family.
    pub fn kind(&self) -> Kind {
        match self {
            Metric::Latency(..) | Metric::Step(_, StepStat::Latency(_)) => Kind::Latency,
            Metric::ConnectErrorRate
            | Metric::ResponseErrorRate
            | Metric::ErrorRate
            | Metric::AgentCpuMax
            | Metric::Step(_, StepStat::ErrorRate | StepStat::Reach) => Kind::Rate,
            Metric::MessagesPerSecond | Metric::SentPerSecond | Metric::ConnectionsPerSecond => Kind::PerSecond,
            Metric::Count(_) | Metric::Step(..) | Metric::HandlerCount(_) | Metric::CloseCode(_) => Kind::Count,
        }
    }

    /// The observed value in the base unit, or `None` when there is no data.
    pub fn observe(&self, r: &RunReport) -> Option<f64> {
        let t = &r.totals;
        let secs = r.duration.as_secs_f64();
        let rate = |n: u64| (secs > 0.0).then(|| n as f64 / secs);
        match self {
            Metric::Latency(source, stat) => {
                let h = match source {
                    LatencySource::Rtt => &r.histograms.rtt_intended,
                    LatencySource::RttActual => &r.histograms.rtt_actual,
                    LatencySource::Connect => &r.histograms.connect,
                    LatencySource::SessionEvent => &r.histograms.session_event,
                    LatencySource::SendLag => &r.histograms.send_lag,
                    LatencySource::AgentLag => &r.histograms.agent_lag,
                };
                latency(h, *stat)
            }
            Metric::ConnectErrorRate => ratio(t.failed_connections, t.connection_attempts()),
            Metric::ResponseErrorRate => ratio(t.failed_responses, t.messages_sent),
            Metric::ErrorRate => ratio(
                t.failed_connections + t.failed_responses,
                t.connection_attempts() + t.messages_sent,
            ),
            Metric::MessagesPerSecond => rate(t.responses_received),
            Metric::SentPerSecond => rate(t.messages_sent),
            Metric::ConnectionsPerSecond => rate(t.sessions_opened),
            Metric::Count(c) => Some(
                (match c {
                    Count::SessionsFailed => t.sessions_failed(),
                    Count::SessionsOpened => t.sessions_opened,
                    Count::FailedConnections => t.failed_connections,
                    Count::FailedResponses => t.failed_responses,
                    Count::Errors => t.errors_total(),
                    Count::LostSessions => t.lost_sessions,
                    Count::MessagesSent => t.messages_sent,
                    Count::ResponsesReceived => t.responses_received,
                    Count::ServerEvents => t.server_events,
                    Count::ReassignedBatches => t.reassigned_batches,
                    Count::UnexpectedMessages => t.unexpected_messages,
                    Count::SaturatedSeconds => crate::report::saturation::saturated_seconds(r),
                }) as f64,
            ),
            Metric::Step(name, stat) => observe_step(r, name, *stat),
            Metric::HandlerCount(name) => Some(t.counts.get(name).copied().unwrap_or(0) as f64),
            Metric::CloseCode(code) => Some(t.close_codes.get(code).copied().unwrap_or(0) as f64),
            Metric::AgentCpuMax => crate::report::saturation::cpu_max(r),
        }
    }
}

/// `num / den`, `None` for a zero denominator (no data).
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// A named step's figure; `None` when the report has no such step, its histogram is
/// empty, it never ran (error rate) or no delivery was expected (reach).
fn observe_step(r: &RunReport, name: &str, stat: StepStat) -> Option<f64> {
    let step = r.steps.iter().find(|s| s.name == name)?;
    let s = &step.stats;
    let count = |n: u64| Some(n as f64);
    match stat {
        StepStat::Latency(stat) => latency(&s.latency, stat),
        StepStat::Ok => count(s.ok),
        StepStat::Failed => count(s.failed),
        StepStat::Messages => count(s.messages),
        StepStat::Duplicates => count(s.duplicates),
        StepStat::OutOfOrder => count(s.out_of_order),
        StepStat::ErrorRate => ratio(s.failed, s.ok + s.failed),
        StepStat::Reach => step.fanout.filter(|f| f.expected > 0).map(|f| f.reach()),
    }
}

fn latency(h: &LatencyHistogram, stat: Stat) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    Some(match stat {
        Stat::Min => h.min() as f64,
        Stat::Max => h.max() as f64,
        Stat::Mean => h.mean(),
        Stat::Percentile(p) => h.value_at_quantile(p / 100.0) as f64,
    })
}

/// Formats a value of `kind` (in its base unit) for humans: `12.345ms`, `0.350%`.
pub fn display(kind: Kind, value: f64) -> String {
    match kind {
        Kind::Latency => format!("{:.3}ms", value / 1000.0),
        Kind::Rate => format!("{:.3}%", value * 100.0),
        Kind::PerSecond => format!("{value:.1}/s"),
        Kind::Count => format!("{value}"),
    }
}
