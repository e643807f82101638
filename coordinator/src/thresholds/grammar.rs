//! The threshold grammar: `METRIC OP VALUE` into a [`Threshold`], every error naming
//! the offending part (see the table in [`super`]).

use std::fmt;

use super::error::{ThresholdError, ValueError};
use super::metrics::{Count, Kind, LatencySource, Metric, Stat, StepStat};

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
        "unexpected_messages" => return count(Count::UnexpectedMessages),
        "saturated_seconds" => return count(Count::SaturatedSeconds),
        "agent_cpu_max" => return Ok(Metric::AgentCpuMax),
        _ => {}
    }
    if let Some(rest) = name.strip_prefix("step.") {
        return parse_step(expr, name, rest);
    }
    if let Some(count_name) = name.strip_prefix("count.") {
        if count_name.is_empty() {
            return Err(ThresholdError::MissingName {
                expr: expr.to_owned(),
                metric: name.to_owned(),
            });
        }
        return Ok(Metric::HandlerCount(count_name.to_owned()));
    }
    if let Some(code) = name.strip_prefix("close.") {
        return match code.parse::<u16>() {
            Ok(c) if code.chars().all(|ch| ch.is_ascii_digit()) => Ok(Metric::CloseCode(c)),
            _ => Err(ThresholdError::BadCloseCode {
                expr: expr.to_owned(),
                metric: name.to_owned(),
                code: code.to_owned(),
            }),
        };
    }
    // Longest prefix first: `rtt_actual_` before `rtt_`.
    let sources = [
        ("rtt_actual_", LatencySource::RttActual),
        ("rtt_", LatencySource::Rtt),
        ("connect_", LatencySource::Connect),
        ("session_", LatencySource::SessionEvent),
        ("send_lag_", LatencySource::SendLag),
        ("agent_lag_", LatencySource::AgentLag),
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

/// `step.NAME.STAT` (with `rest` = `NAME.STAT`). Step names may hold dots and a
/// percentile may too (`p99.9`), so the statistic is the shortest valid tail: a tail
/// that is all digits (the `9` of `p99.9`) is never a statistic, which makes the split
/// unambiguous.
fn parse_step(expr: &str, name: &str, rest: &str) -> Result<Metric, ThresholdError> {
    let split = rest
        .match_indices('.')
        .rev()
        .find_map(|(at, _)| parse_step_stat(&rest[at + 1..]).map(|stat| (&rest[..at], stat)));
    match split {
        Some(("", _)) => Err(ThresholdError::MissingName {
            expr: expr.to_owned(),
            metric: name.to_owned(),
        }),
        Some((step, stat)) => Ok(Metric::Step(step.to_owned(), stat)),
        None => Err(ThresholdError::BadStepStatistic {
            expr: expr.to_owned(),
            metric: name.to_owned(),
            stat: rest.rsplit_once('.').map_or(rest, |(_, s)| s).to_owned(),
        }),
    }
}

fn parse_step_stat(s: &str) -> Option<StepStat> {
    Some(match s {
        "ok" => StepStat::Ok,
        "failed" => StepStat::Failed,
        "messages" => StepStat::Messages,
        "duplicates" => StepStat::Duplicates,
        "out_of_order" => StepStat::OutOfOrder,
        "error_rate" => StepStat::ErrorRate,
        "reach" => StepStat::Reach,
        _ => StepStat::Latency(parse_stat(s)?),
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

/// Splits `12.5ms` into `(12.5, "12.5", "ms")`: the number, as written, and the unit.
fn split_number(s: &str) -> Result<(f64, &str, &str), ValueError> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() {
        return Err(ValueError::NoNumber);
    }
    let n: f64 = num.parse().map_err(|_| ValueError::NotANumber(num.to_owned()))?;
    Ok((n, num, unit.trim()))
}

/// `99.9` (percent, as written) as the fraction `0.999`, by moving the decimal point in
/// the text: `99.9 / 100.0` would be `0.9990000000000001`, and 999 of 1,000 deliveries
/// would then fail `reach>=99.9%`. `written` is the number as written, `n` its value.
fn percent_fraction(written: &str, n: f64) -> f64 {
    let (int, frac) = written.split_once('.').unwrap_or((written, ""));
    let int = format!("{int:0>3}");
    let (whole, hundredths) = int.split_at(int.len() - 2);
    format!("{whole}.{hundredths}{frac}").parse().unwrap_or(n / 100.0)
}

fn parse_value(kind: Kind, s: &str) -> Result<f64, ValueError> {
    let (n, written, unit) = split_number(s)?;
    match kind {
        Kind::Latency => {
            let us_per = match unit {
                "us" | "µs" => 1.0,
                "ms" => 1_000.0,
                "s" => 1_000_000.0,
                "m" | "min" => 60_000_000.0,
                "" => return Err(ValueError::MissingTimeUnit),
                other => return Err(ValueError::UnknownTimeUnit(other.to_owned())),
            };
            Ok(n * us_per)
        }
        Kind::Rate => match unit {
            "%" if n > 100.0 => Err(ValueError::PercentOver100),
            "%" => Ok(percent_fraction(written, n)),
            "" if n > 1.0 => Err(ValueError::FractionOver1(written.to_owned())),
            "" => Ok(n),
            other => Err(ValueError::UnknownRateUnit(other.to_owned())),
        },
        Kind::PerSecond => match unit {
            "" | "/s" => Ok(n),
            other => Err(ValueError::UnknownPerSecondUnit(other.to_owned())),
        },
        Kind::Count => match unit {
            "" => Ok(n),
            other => Err(ValueError::CountWithUnit(other.to_owned())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for (expr, value, why) in [
            ("rtt_p99<250", "250", ValueError::MissingTimeUnit),
            (
                "rtt_p99<250parsecs",
                "250parsecs",
                ValueError::UnknownTimeUnit("parsecs".into()),
            ),
            ("rtt_p99<-1ms", "-1ms", ValueError::NoNumber),
            ("rtt_p99<1.2.3ms", "1.2.3ms", ValueError::NotANumber("1.2.3".into())),
            ("error_rate<5", "5", ValueError::FractionOver1("5".into())),
            ("error_rate<150%", "150%", ValueError::PercentOver100),
            ("error_rate<1ms", "1ms", ValueError::UnknownRateUnit("ms".into())),
            ("sessions_failed==0ms", "0ms", ValueError::CountWithUnit("ms".into())),
            ("messages_per_second>fast", "fast", ValueError::NoNumber),
            (
                "messages_per_second>10/min",
                "10/min",
                ValueError::UnknownPerSecondUnit("/min".into()),
            ),
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
                    assert_eq!(reason, why, "{expr}");
                }
                e => panic!("{expr}: {e:?}"),
            }
        }
        // The user sees what is wrong, in words.
        assert!(err("error_rate<5").to_string().contains("did you mean 5%?"));
        // Messages name the offending part.
        assert!(err("latency_p99<1ms").to_string().contains("`latency_p99`"));
        assert!(err("rtt_p99<250").to_string().contains("bad value `250` for `rtt_p99`"));
        assert!(parse_all(&["rtt_p99<1s", "nope<1"]).is_err());
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

    #[test]
    fn parses_scenario_metrics() {
        let step = |name: &str, stat| Metric::Step(name.into(), stat);
        let lat = |stat| StepStat::Latency(stat);
        let cases: Vec<(&str, Metric, f64)> = vec![
            (
                "step.echo.p99<10ms",
                step("echo", lat(Stat::Percentile(99.0))),
                10_000.0,
            ),
            (
                "step.echo.p99.9<=1s",
                step("echo", lat(Stat::Percentile(99.9))),
                1_000_000.0,
            ),
            (
                "step.echo.p99_9<=1s",
                step("echo", lat(Stat::Percentile(99.9))),
                1_000_000.0,
            ),
            ("step.echo.avg<1ms", step("echo", lat(Stat::Mean)), 1_000.0),
            // Names may hold dots: the statistic is the shortest valid tail.
            ("step.a.b.max<1ms", step("a.b", lat(Stat::Max)), 1_000.0),
            ("step.x.p99.mean<1ms", step("x.p99", lat(Stat::Mean)), 1_000.0),
            (
                "step.x.p99.p99.9<1ms",
                step("x.p99", lat(Stat::Percentile(99.9))),
                1_000.0,
            ),
            ("step.echo.ok>=100", step("echo", StepStat::Ok), 100.0),
            ("step.echo.failed==0", step("echo", StepStat::Failed), 0.0),
            ("step.news.messages>10", step("news", StepStat::Messages), 10.0),
            ("step.news.duplicates==0", step("news", StepStat::Duplicates), 0.0),
            ("step.news.out_of_order==0", step("news", StepStat::OutOfOrder), 0.0),
            ("step.echo.error_rate<1%", step("echo", StepStat::ErrorRate), 0.01),
            ("step.news.reach>=99.9%", step("news", StepStat::Reach), 0.999),
            ("count.errors_seen<=3", Metric::HandlerCount("errors_seen".into()), 3.0),
            ("count.a.b==0", Metric::HandlerCount("a.b".into()), 0.0),
            ("unexpected_messages==0", Metric::Count(Count::UnexpectedMessages), 0.0),
            ("close.1008==0", Metric::CloseCode(1008), 0.0),
            ("saturated_seconds==0", Metric::Count(Count::SaturatedSeconds), 0.0),
        ];
        for (expr, metric, limit) in cases {
            let t = th(expr);
            assert_eq!((&t.metric, t.limit), (&metric, limit), "{expr}");
        }
        assert_eq!(th("step.echo.ok>=1").metric.kind(), Kind::Count);
        assert_eq!(th("step.echo.p50>=1ms").metric.kind(), Kind::Latency);
        assert_eq!(th("step.echo.reach>=1%").metric.kind(), Kind::Rate);
        assert_eq!(th("close.1000>=1").metric.kind(), Kind::Count);
    }

    /// A percentage is the decimal fraction it reads as, so 999 of 1,000 (computed as
    /// 999.0 / 1000.0) meets `>=99.9%`.
    #[test]
    fn percentages_are_exact_decimal_fractions() {
        for (expr, limit) in [
            ("error_rate<=99.9%", 999.0 / 1000.0),
            ("error_rate<=0.05%", 5.0 / 10_000.0),
            ("error_rate<=100%", 1.0),
            ("error_rate<=7%", 0.07),
            ("error_rate<=.5%", 0.005),
            ("error_rate<=12.%", 0.12),
        ] {
            assert_eq!(th(expr).limit, limit, "{expr}");
        }
        assert!(Op::Ge.holds(999.0 / 1000.0, th("step.news.reach>=99.9%").limit));
    }

    #[test]
    fn rejects_bad_scenario_metrics_naming_the_bad_part() {
        for (expr, stat) in [
            ("step.echo<1ms", "echo"),
            ("step.echo.median<1ms", "median"),
            ("step.echo.p99.x<1ms", "x"),
        ] {
            match err(expr) {
                ThresholdError::BadStepStatistic { stat: s, .. } => assert_eq!(s, stat, "{expr}"),
                e => panic!("{expr}: {e:?}"),
            }
        }
        for expr in ["step..p99<1ms", "count.<1"] {
            assert!(matches!(err(expr), ThresholdError::MissingName { .. }), "{expr}");
        }
        for (expr, code) in [
            ("close.abc==0", "abc"),
            ("close.70000==0", "70000"),
            ("close.+5==0", "+5"),
        ] {
            match err(expr) {
                ThresholdError::BadCloseCode { code: c, .. } => assert_eq!(c, code, "{expr}"),
                e => panic!("{expr}: {e:?}"),
            }
        }
        for (expr, why) in [
            ("step.echo.ok<1ms", ValueError::CountWithUnit("ms".into())),
            ("step.echo.p99<5", ValueError::MissingTimeUnit),
            ("step.news.reach>=150%", ValueError::PercentOver100),
            ("close.1000<1%", ValueError::CountWithUnit("%".into())),
        ] {
            match err(expr) {
                ThresholdError::BadValue { reason, .. } => assert_eq!(reason, why, "{expr}"),
                e => panic!("{expr}: {e:?}"),
            }
        }
        let text = err("step.echo.median<1ms").to_string();
        assert!(
            text.contains("`median`") && text.contains("error_rate or reach"),
            "{text}"
        );
    }

    #[test]
    fn parses_the_saturation_metrics() {
        let t = th("agent_cpu_max<90%");
        assert_eq!((t.metric.clone(), t.limit), (Metric::AgentCpuMax, 0.9));
        assert_eq!(t.metric.kind(), Kind::Rate);
        assert_eq!(
            th("agent_lag_p99<50ms").metric,
            Metric::Latency(LatencySource::AgentLag, Stat::Percentile(99.0))
        );
        assert_eq!(th("agent_lag_p99<50ms").limit, 50_000.0);
        assert_eq!(
            th("send_lag_max<=1s").metric,
            Metric::Latency(LatencySource::SendLag, Stat::Max)
        );
    }
}
