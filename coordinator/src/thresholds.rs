//! Pass/fail thresholds such as `rtt_p99<250ms`, evaluated on the merged run data.
//!
//! Grammar: `METRIC OP VALUE` (spaces allowed), with `OP` one of `<`, `<=`, `>`,
//! `>=`, `==`, `!=`. Metrics:
//!
//! | metric | meaning | value |
//! |---|---|---|
//! | `rtt_STAT` | RTT from the intended send (whole run, merged) | time: `250ms`, `1s`, `800us` |
//! | `rtt_actual_STAT` | RTT from the actual send | time |
//! | `connect_STAT` | TCP connect + WebSocket upgrade | time |
//! | `session_STAT` | time from upgrade to the `session` event | time |
//! | `connect_error_rate` | failed connections / connection attempts | `1%` or a fraction `0.01` |
//! | `response_error_rate` | failed responses / messages sent | rate |
//! | `error_rate` | (failed connections + failed responses) / (attempts + messages sent) | rate |
//! | `messages_per_second` | responses received / run duration | number, optional `/s` |
//! | `sent_per_second` | messages sent / run duration | number |
//! | `connections_per_second` | sessions opened / run duration | number |
//! | `sessions_failed` | failed connections + errored + lost sessions | count |
//! | `sessions_opened`, `failed_connections`, `failed_responses`, `errors`, `lost_sessions`, `messages_sent`, `responses_received`, `server_events`, `reassigned_batches` | the totals | count |
//!
//! `STAT` is `min`, `max`, `mean` (or `avg`) or a percentile `pN` with `0 < N <= 100`
//! (`p50`, `p95`, `p99.9`; `p99_9` is accepted too). A metric without data (no RTT
//! sample, no connection attempt) has no observed value and fails its threshold.
//!
//! Percentiles come from the merged whole-run HDR histogram (3 significant figures),
//! so an observed percentile is exact to within 0.1 %.

use std::fmt;

use crate::report::model::{LatencyHistogram, RunReport, ThresholdResult};

/// A parse error that names the offending part of the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    /// The expression is empty.
    #[error("empty threshold expression")]
    Empty,
    /// No comparison operator was found.
    #[error("threshold `{expr}`: no comparison operator (use <, <=, >, >=, == or !=)")]
    MissingOperator {
        /// The whole expression.
        expr: String,
    },
    /// The metric name is not known.
    #[error("threshold `{expr}`: unknown metric `{metric}` (e.g. rtt_p99, connect_p95, error_rate, messages_per_second, sessions_failed)")]
    UnknownMetric {
        /// The whole expression.
        expr: String,
        /// The unknown metric name.
        metric: String,
    },
    /// The statistic of a latency metric is not `min`/`max`/`mean`/`pN`.
    #[error("threshold `{expr}`: bad statistic `{stat}` in `{metric}` (use min, max, mean or a percentile p0..p100 such as p99.9)")]
    BadStatistic {
        /// The whole expression.
        expr: String,
        /// The metric name.
        metric: String,
        /// The statistic part.
        stat: String,
    },
    /// Nothing follows the operator.
    #[error("threshold `{expr}`: missing value after `{op}`")]
    MissingValue {
        /// The whole expression.
        expr: String,
        /// The operator.
        op: String,
    },
    /// The value is not a number, or its unit does not fit the metric.
    #[error("threshold `{expr}`: bad value `{value}` for `{metric}`: {reason}")]
    BadValue {
        /// The whole expression.
        expr: String,
        /// The metric name.
        metric: String,
        /// The value part.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// Applies the operator to `observed OP limit`.
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
            Op::Eq => observed == limit,
            Op::Ne => observed != limit,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

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
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
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
            Metric::Latency(..) => Kind::Latency,
            Metric::ConnectErrorRate | Metric::ResponseErrorRate | Metric::ErrorRate => Kind::Rate,
            Metric::MessagesPerSecond | Metric::SentPerSecond | Metric::ConnectionsPerSecond => Kind::PerSecond,
            Metric::Count(_) => Kind::Count,
        }
    }

    /// The observed value in the base unit, or `None` when there is no data.
    pub fn observe(&self, r: &RunReport) -> Option<f64> {
        let t = &r.totals;
        let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
        let secs = r.duration.as_secs_f64();
        let rate = |n: u64| (secs > 0.0).then(|| n as f64 / secs);
        match *self {
            Metric::Latency(source, stat) => {
                let h = match source {
                    LatencySource::Rtt => &r.histograms.rtt_intended,
                    LatencySource::RttActual => &r.histograms.rtt_actual,
                    LatencySource::Connect => &r.histograms.connect,
                    LatencySource::SessionEvent => &r.histograms.session_event,
                };
                latency(h, stat)
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
                }) as f64,
            ),
        }
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

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as given (trimmed), echoed in results.
    pub expr: String,
    /// The metric name as written, e.g. `rtt_p99`.
    pub metric_name: String,
    /// What is measured.
    pub metric: Metric,
    /// How it is compared.
    pub op: Op,
    /// The limit in the metric's base unit (µs, fraction, per second, count).
    pub limit: f64,
}

impl std::str::FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parses one expression such as `rtt_p99<250ms`.
pub fn parse(input: &str) -> Result<Threshold, ThresholdError> {
    let expr = input.trim();
    if expr.is_empty() {
        return Err(ThresholdError::Empty);
    }
    let e = || expr.to_owned();
    let at = expr
        .find(['<', '>', '=', '!'])
        .ok_or_else(|| ThresholdError::MissingOperator { expr: e() })?;
    let rest = &expr[at..];
    let (op, op_len) = if rest.starts_with("<=") {
        (Op::Le, 2)
    } else if rest.starts_with(">=") {
        (Op::Ge, 2)
    } else if rest.starts_with("==") {
        (Op::Eq, 2)
    } else if rest.starts_with("!=") {
        (Op::Ne, 2)
    } else if rest.starts_with('<') {
        (Op::Lt, 1)
    } else if rest.starts_with('>') {
        (Op::Gt, 1)
    } else {
        // A lone `=` or `!`.
        return Err(ThresholdError::MissingOperator { expr: e() });
    };
    let metric_name = expr[..at].trim();
    let value = expr[at + op_len..].trim();
    let metric = parse_metric(expr, metric_name)?;
    if value.is_empty() {
        return Err(ThresholdError::MissingValue {
            expr: e(),
            op: op.symbol().to_owned(),
        });
    }
    let limit = parse_value(metric.kind(), value).map_err(|reason| ThresholdError::BadValue {
        expr: e(),
        metric: metric_name.to_owned(),
        value: value.to_owned(),
        reason,
    })?;
    Ok(Threshold {
        expr: e(),
        metric_name: metric_name.to_owned(),
        metric,
        op,
        limit,
    })
}

/// Parses every expression, stopping at the first bad one.
pub fn parse_all<S: AsRef<str>>(exprs: &[S]) -> Result<Vec<Threshold>, ThresholdError> {
    exprs.iter().map(|s| parse(s.as_ref())).collect()
}

fn parse_metric(expr: &str, name: &str) -> Result<Metric, ThresholdError> {
    let count = |c| Ok(Metric::Count(c));
    match name {
        "connect_error_rate" => return Ok(Metric::ConnectErrorRate),
        "response_error_rate" => return Ok(Metric::ResponseErrorRate),
        "error_rate" => return Ok(Metric::ErrorRate),
        "messages_per_second" => return Ok(Metric::MessagesPerSecond),
        "sent_per_second" => return Ok(Metric::SentPerSecond),
        "connections_per_second" => return Ok(Metric::ConnectionsPerSecond),
        "sessions_failed" => return count(Count::SessionsFailed),
        "sessions_opened" => return count(Count::SessionsOpened),
        "failed_connections" => return count(Count::FailedConnections),
        "failed_responses" => return count(Count::FailedResponses),
        "errors" => return count(Count::Errors),
        "lost_sessions" => return count(Count::LostSessions),
        "messages_sent" => return count(Count::MessagesSent),
        "responses_received" => return count(Count::ResponsesReceived),
        "server_events" => return count(Count::ServerEvents),
        "reassigned_batches" => return count(Count::ReassignedBatches),
        _ => {}
    }
    // Longest prefix first: `rtt_actual_` before `rtt_`.
    let sources = [
        ("rtt_actual_", LatencySource::RttActual),
        ("rtt_", LatencySource::Rtt),
        ("connect_", LatencySource::Connect),
        ("session_", LatencySource::SessionEvent),
    ];
    for (prefix, source) in sources {
        if let Some(stat) = name.strip_prefix(prefix) {
            let stat = parse_stat(stat).ok_or_else(|| ThresholdError::BadStatistic {
                expr: expr.to_owned(),
                metric: name.to_owned(),
                stat: stat.to_owned(),
            })?;
            return Ok(Metric::Latency(source, stat));
        }
    }
    Err(ThresholdError::UnknownMetric {
        expr: expr.to_owned(),
        metric: name.to_owned(),
    })
}

fn parse_stat(s: &str) -> Option<Stat> {
    match s {
        "min" => Some(Stat::Min),
        "max" => Some(Stat::Max),
        "mean" | "avg" => Some(Stat::Mean),
        _ => {
            let digits = s.strip_prefix('p')?.replace('_', ".");
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return None;
            }
            let p: f64 = digits.parse().ok()?;
            (p > 0.0 && p <= 100.0).then_some(Stat::Percentile(p))
        }
    }
}

/// Splits `12.5ms` into `(12.5, "ms")`.
fn split_number(s: &str) -> Result<(f64, &str), String> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() {
        return Err("expected a non-negative number".to_owned());
    }
    let n: f64 = num.parse().map_err(|_| format!("`{num}` is not a number"))?;
    Ok((n, unit.trim()))
}

fn parse_value(kind: Kind, s: &str) -> Result<f64, String> {
    let (n, unit) = split_number(s)?;
    match kind {
        Kind::Latency => {
            let us_per = match unit {
                "us" | "µs" => 1.0,
                "ms" => 1_000.0,
                "s" => 1_000_000.0,
                "m" | "min" => 60_000_000.0,
                "" => return Err("a latency needs a time unit: us, ms, s or m (e.g. 250ms)".to_owned()),
                other => return Err(format!("unknown time unit `{other}` (use us, ms, s or m)")),
            };
            Ok(n * us_per)
        }
        Kind::Rate => match unit {
            "%" => {
                if n > 100.0 {
                    Err("a percentage must be at most 100%".to_owned())
                } else {
                    Ok(n / 100.0)
                }
            }
            "" => {
                if n > 1.0 {
                    Err(format!("a rate is a fraction between 0 and 1; did you mean {n}%?"))
                } else {
                    Ok(n)
                }
            }
            other => Err(format!("unknown unit `{other}` for a rate (use % or a fraction)")),
        },
        Kind::PerSecond => match unit {
            "" | "/s" => Ok(n),
            other => Err(format!(
                "unknown unit `{other}` for a rate per second (use a number, optionally /s)"
            )),
        },
        Kind::Count => match unit {
            "" => Ok(n),
            other => Err(format!("a count takes no unit, got `{other}`")),
        },
    }
}

impl Threshold {
    /// Evaluates the threshold on `report`; no data means failed.
    pub fn evaluate(&self, report: &RunReport) -> ThresholdResult {
        let observed = self.metric.observe(report);
        ThresholdResult {
            expr: self.expr.clone(),
            metric: self.metric_name.clone(),
            observed,
            observed_display: observed
                .map(|v| display(self.metric.kind(), v))
                .unwrap_or_else(|| "n/a (no data)".to_owned()),
            passed: observed.is_some_and(|v| self.op.holds(v, self.limit)),
        }
    }
}

/// Evaluates every threshold, in order.
pub fn evaluate(thresholds: &[Threshold], report: &RunReport) -> Vec<ThresholdResult> {
    thresholds.iter().map(|t| t.evaluate(report)).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::report::model::{PlanEcho, RunHistograms, RunOutcome, Totals};

    fn th(s: &str) -> Threshold {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> ThresholdError {
        match parse(s) {
            Ok(t) => panic!("{s} parsed as {t:?}"),
            Err(e) => e,
        }
    }

    /// RTT samples 1..=1000 µs; connect 1000..=1099 µs; 99 opened + 1 failed
    /// connections; 19,900 sent, 19,891 responses, 9 failed responses, over 10 s.
    fn report() -> RunReport {
        let mut histograms = RunHistograms::default();
        for v in 1..=1000 {
            histograms.rtt_intended.record(v).unwrap();
        }
        for v in 1000..1100 {
            histograms.connect.record(v).unwrap();
        }
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        RunReport {
            run_id: "t".into(),
            target: "ws://127.0.0.1/ws".into(),
            plan: PlanEcho::default(),
            started_at: t0,
            ended_at: t0,
            duration: Duration::from_secs(10),
            outcome: RunOutcome::Completed,
            totals: Totals {
                sessions_planned: 100,
                sessions_opened: 99,
                failed_connections: 1,
                failed_responses: 9,
                messages_sent: 19_900,
                responses_received: 19_891,
                lost_sessions: 2,
                sessions_errored: 3,
                ..Totals::default()
            },
            histograms,
            windows: Vec::new(),
            agents: Vec::new(),
            thresholds: Vec::new(),
        }
    }

    #[test]
    fn parses_the_documented_examples() {
        let cases: [(&str, Metric, Op, f64); 7] = [
            (
                "rtt_p99<250ms",
                Metric::Latency(LatencySource::Rtt, Stat::Percentile(99.0)),
                Op::Lt,
                250_000.0,
            ),
            (
                "rtt_p50<=100ms",
                Metric::Latency(LatencySource::Rtt, Stat::Percentile(50.0)),
                Op::Le,
                100_000.0,
            ),
            (
                "connect_p95<1s",
                Metric::Latency(LatencySource::Connect, Stat::Percentile(95.0)),
                Op::Lt,
                1_000_000.0,
            ),
            ("connect_error_rate<1%", Metric::ConnectErrorRate, Op::Lt, 0.01),
            ("error_rate<0.5%", Metric::ErrorRate, Op::Lt, 0.005),
            ("messages_per_second>1000", Metric::MessagesPerSecond, Op::Gt, 1000.0),
            ("sessions_failed==0", Metric::Count(Count::SessionsFailed), Op::Eq, 0.0),
        ];
        for (expr, metric, op, limit) in cases {
            let t = th(expr);
            assert_eq!((t.metric, t.op, t.limit), (metric, op, limit), "{expr}");
            assert_eq!(t.expr, expr);
        }
    }

    #[test]
    fn parses_variants() {
        let t = th("  rtt_p99.9 >= 800us ");
        assert_eq!(t.expr, "rtt_p99.9 >= 800us");
        assert_eq!(t.metric_name, "rtt_p99.9");
        assert_eq!(t.metric, Metric::Latency(LatencySource::Rtt, Stat::Percentile(99.9)));
        assert_eq!((t.op, t.limit), (Op::Ge, 800.0));
        assert_eq!(
            th("rtt_p99_9<1ms").metric,
            Metric::Latency(LatencySource::Rtt, Stat::Percentile(99.9))
        );
        assert_eq!(
            th("rtt_actual_max!=2m").metric,
            Metric::Latency(LatencySource::RttActual, Stat::Max)
        );
        assert_eq!(th("rtt_actual_max!=2m").limit, 120_000_000.0);
        assert_eq!(
            th("session_avg<5µs").metric,
            Metric::Latency(LatencySource::SessionEvent, Stat::Mean)
        );
        assert_eq!(th("session_avg<5µs").limit, 5.0);
        assert_eq!(th("connect_min>1.5ms").limit, 1_500.0);
        assert_eq!(th("response_error_rate<0.01").limit, 0.01);
        assert_eq!(th("connections_per_second>=600/s").limit, 600.0);
        assert_eq!(th("errors<=3").metric, Metric::Count(Count::Errors));
        assert_eq!(
            th("rtt_p100<1s").metric,
            Metric::Latency(LatencySource::Rtt, Stat::Percentile(100.0))
        );
        let all = parse_all(&["rtt_p99<250ms", "sessions_failed==0"]).unwrap();
        assert_eq!(all.len(), 2);
        assert!("lost_sessions==0".parse::<Threshold>().is_ok());
    }

    #[test]
    fn rejects_bad_input_naming_the_bad_part() {
        assert_eq!(err("   "), ThresholdError::Empty);
        assert_eq!(
            err("rtt_p99"),
            ThresholdError::MissingOperator { expr: "rtt_p99".into() }
        );
        assert_eq!(
            err("rtt_p99=<1ms"),
            ThresholdError::MissingOperator {
                expr: "rtt_p99=<1ms".into()
            }
        );
        assert_eq!(
            err("rtt_p99<"),
            ThresholdError::MissingValue {
                expr: "rtt_p99<".into(),
                op: "<".into()
            }
        );
        assert_eq!(
            err("latency_p99<1ms"),
            ThresholdError::UnknownMetric {
                expr: "latency_p99<1ms".into(),
                metric: "latency_p99".into()
            }
        );
        assert_eq!(
            err("<1ms"),
            ThresholdError::UnknownMetric {
                expr: "<1ms".into(),
                metric: "".into()
            }
        );
        for (expr, stat) in [
            ("rtt_p0<1ms", "p0"),
            ("rtt_p101<1ms", "p101"),
            ("rtt_pxx<1ms", "pxx"),
            ("connect_median<1s", "median"),
            ("rtt_p<1ms", "p"),
        ] {
            match err(expr) {
                ThresholdError::BadStatistic { stat: s, .. } => assert_eq!(s, stat, "{expr}"),
                e => panic!("{expr}: {e:?}"),
            }
        }
        for (expr, value, reason_part) in [
            ("rtt_p99<250", "250", "needs a time unit"),
            ("rtt_p99<250parsecs", "250parsecs", "unknown time unit `parsecs`"),
            ("rtt_p99<-1ms", "-1ms", "non-negative number"),
            ("rtt_p99<1.2.3ms", "1.2.3ms", "`1.2.3` is not a number"),
            ("error_rate<5", "5", "did you mean 5%"),
            ("error_rate<150%", "150%", "at most 100%"),
            ("error_rate<1ms", "1ms", "unknown unit `ms` for a rate"),
            ("sessions_failed==0ms", "0ms", "a count takes no unit"),
            ("messages_per_second>fast", "fast", "non-negative number"),
            ("messages_per_second>10/min", "10/min", "unknown unit `/min`"),
        ] {
            match err(expr) {
                ThresholdError::BadValue {
                    value: v,
                    reason,
                    expr: e,
                    ..
                } => {
                    assert_eq!(v, value, "{expr}");
                    assert_eq!(e, expr);
                    assert!(reason.contains(reason_part), "{expr}: {reason}");
                }
                e => panic!("{expr}: {e:?}"),
            }
        }
        // Messages name the offending part.
        assert!(err("latency_p99<1ms").to_string().contains("`latency_p99`"));
        assert!(err("rtt_p99<250").to_string().contains("bad value `250` for `rtt_p99`"));
        assert!(parse_all(&["rtt_p99<1s", "nope<1"]).is_err());
    }

    #[test]
    fn evaluates_on_merged_data_with_exact_numbers() {
        let r = report();
        let results = evaluate(
            &parse_all(&[
                "rtt_p50<=500us",
                "rtt_p50<500us",
                "rtt_p99<1ms",
                "rtt_max==1ms",
                "rtt_min==1us",
                "rtt_mean>500us",
                "connect_p50==1049us",
                "connect_error_rate<1%",
                "connect_error_rate<=1%",
                "error_rate<0.05%",
                "error_rate<=0.0005",
                "response_error_rate>0",
                "messages_per_second>1989",
                "sent_per_second==1990",
                "connections_per_second==9.9",
                "sessions_failed==0",
                "sessions_failed==6",
                "lost_sessions!=0",
            ])
            .unwrap(),
            &r,
        );
        let got: Vec<(&str, Option<f64>, &str, bool)> = results
            .iter()
            .map(|t| (t.expr.as_str(), t.observed, t.observed_display.as_str(), t.passed))
            .collect();
        assert_eq!(
            got,
            vec![
                ("rtt_p50<=500us", Some(500.0), "0.500ms", true),
                ("rtt_p50<500us", Some(500.0), "0.500ms", false),
                ("rtt_p99<1ms", Some(990.0), "0.990ms", true),
                ("rtt_max==1ms", Some(1000.0), "1.000ms", true),
                ("rtt_min==1us", Some(1.0), "0.001ms", true),
                ("rtt_mean>500us", Some(500.5), "0.500ms", true),
                ("connect_p50==1049us", Some(1049.0), "1.049ms", true),
                ("connect_error_rate<1%", Some(0.01), "1.000%", false),
                ("connect_error_rate<=1%", Some(0.01), "1.000%", true),
                ("error_rate<0.05%", Some(0.0005), "0.050%", false),
                ("error_rate<=0.0005", Some(0.0005), "0.050%", true),
                ("response_error_rate>0", Some(9.0 / 19_900.0), "0.045%", true),
                ("messages_per_second>1989", Some(1989.1), "1989.1/s", true),
                ("sent_per_second==1990", Some(1990.0), "1990.0/s", true),
                ("connections_per_second==9.9", Some(9.9), "9.9/s", true),
                ("sessions_failed==0", Some(6.0), "6", false),
                ("sessions_failed==6", Some(6.0), "6", true),
                ("lost_sessions!=0", Some(2.0), "2", true),
            ]
        );
        assert_eq!(results[0].metric, "rtt_p50");
    }

    #[test]
    fn no_data_fails() {
        let mut r = report();
        r.duration = Duration::ZERO;
        r.totals = Totals::default();
        let results = evaluate(
            &parse_all(&[
                "rtt_actual_p99<1s",
                "connect_error_rate<1%",
                "messages_per_second>=0",
                "errors==0",
            ])
            .unwrap(),
            &r,
        );
        for res in &results[..3] {
            assert_eq!(res.observed, None, "{}", res.expr);
            assert_eq!(res.observed_display, "n/a (no data)");
            assert!(!res.passed);
        }
        assert!(results[3].passed);
    }

    #[test]
    fn operators_compare() {
        let cases = [
            (Op::Lt, [false, false, true]),
            (Op::Le, [false, true, true]),
            (Op::Gt, [true, false, false]),
            (Op::Ge, [true, true, false]),
            (Op::Eq, [false, true, false]),
            (Op::Ne, [true, false, true]),
        ];
        for (op, expect) in cases {
            assert_eq!(
                [op.holds(2.0, 1.0), op.holds(1.0, 1.0), op.holds(0.0, 1.0)],
                expect,
                "{op}"
            );
        }
    }
}
