//! What can be wrong with a threshold: its text, or a name the plan does not have.

/// A threshold error that names the offending part of the expression.
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
    #[error("threshold `{expr}`: unknown metric `{metric}` (e.g. rtt_p99, connect_p95, error_rate, messages_per_second, sessions_failed, step.NAME.p99, count.NAME, close.1008)")]
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
    /// A `step.NAME.STAT` metric without a known statistic (or without a name).
    #[error("threshold `{expr}`: bad statistic `{stat}` in `{metric}` (use step.NAME.STAT with STAT one of min, max, mean, a percentile such as p99, ok, failed, messages, duplicates, out_of_order, error_rate or reach)")]
    BadStepStatistic {
        /// The whole expression.
        expr: String,
        /// The metric name.
        metric: String,
        /// The statistic part (after the last dot).
        stat: String,
    },
    /// `count.` or `step.` without a name.
    #[error("threshold `{expr}`: `{metric}` names nothing (e.g. count.NAME with a handler's count name)")]
    MissingName {
        /// The whole expression.
        expr: String,
        /// The metric name.
        metric: String,
    },
    /// `close.CODE` with something that is not a close code.
    #[error("threshold `{expr}`: `{code}` in `{metric}` is not a close code (a number such as 1000, 1006 or 1008)")]
    BadCloseCode {
        /// The whole expression.
        expr: String,
        /// The metric name.
        metric: String,
        /// The code part.
        code: String,
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
        reason: ValueError,
    },
    /// `step.NAME...` where the plan has no step named `NAME`.
    #[error("threshold `{expr}`: the plan has no step named `{name}` ({known})")]
    UnknownStep {
        /// The whole expression.
        expr: String,
        /// The step name as written.
        name: String,
        /// The plan's named steps, as text for people.
        known: String,
    },
    /// `count.NAME` where no handler of the plan counts `NAME`.
    #[error("threshold `{expr}`: no handler of the plan counts `{name}` ({known})")]
    UnknownCount {
        /// The whole expression.
        expr: String,
        /// The count name as written.
        name: String,
        /// The plan's count names, as text for people.
        known: String,
    },
    /// `step.NAME.reach` on a step without fan-out accounting.
    #[error("threshold `{expr}`: step `{name}` is a {kind} step without fan-out accounting; `reach` needs a listen step with fanout = {{ sent_at = ..., from = \"SEND STEP\" }} or expected = N")]
    NoFanout {
        /// The whole expression.
        expr: String,
        /// The step name.
        name: String,
        /// Its kind (`listen`, `request`...).
        kind: String,
    },
}

/// What is wrong with a threshold's value, given the kind of its metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value does not start with a digit.
    #[error("expected a non-negative number")]
    NoNumber,
    /// The digits and dots do not make a number.
    #[error("`{0}` is not a number")]
    NotANumber(String),
    /// A latency without a unit.
    #[error("a latency needs a time unit: us, ms, s or m (e.g. 250ms)")]
    MissingTimeUnit,
    /// A latency with a unit that is not a time unit.
    #[error("unknown time unit `{0}` (use us, ms, s or m)")]
    UnknownTimeUnit(String),
    /// A percentage above 100 %.
    #[error("a percentage must be at most 100%")]
    PercentOver100,
    /// A rate written as a fraction above 1; the number as written.
    #[error("a rate is a fraction between 0 and 1; did you mean {0}%?")]
    FractionOver1(String),
    /// A rate with a unit other than `%`.
    #[error("unknown unit `{0}` for a rate (use % or a fraction)")]
    UnknownRateUnit(String),
    /// A per-second rate with a unit other than `/s`.
    #[error("unknown unit `{0}` for a rate per second (use a number, optionally /s)")]
    UnknownPerSecondUnit(String),
    /// A count with a unit.
    #[error("a count takes no unit, got `{0}`")]
    CountWithUnit(String),
}
