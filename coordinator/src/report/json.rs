//! `results.json`: the text report's data plus the per-second time series.
//!
//! The shape is documented by `docs/results-schema.json` (JSON Schema 2020-12) and a
//! test checks every produced file against it. Latencies are integers in microseconds
//! (`*_us`), durations are seconds as floats (`*_s`) or milliseconds (`*_ms`).
//!
//! Version 2 added the scripted scenarios' figures: `steps` (the plan's named steps,
//! in plan order), `totals.counts`, `totals.unexpected_messages`, `totals.close_codes`
//! and, in a second where a named step did something, `timeseries[].steps`.
//!
//! Version 3 added the generator's own load (is the client the bottleneck?):
//! `latency_us.send_lag` and `latency_us.agent_lag`, `agents[].load` (one sample per
//! second: CPU, cores, timer lag, saturated), `timeseries[].saturated_agents`,
//! `saturated_seconds` and `agent_cpu_max`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::{
    AgentReport, FanoutReach, LatencyHistogram, LatencyStats, MemorySummary, RunReport, StepReport, StepStats,
    ThresholdResult, Window,
};

/// Version of the JSON layout; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 3;

/// Builds the `results.json` document.
pub fn to_value(report: &RunReport) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::to_value(Doc::from(report))
}

/// Renders `results.json` as pretty-printed text.
pub fn render(report: &RunReport) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&Doc::from(report))
}

#[derive(Serialize)]
struct Doc<'a> {
    schema_version: u32,
    run_id: &'a str,
    target: &'a str,
    outcome: Outcome<'a>,
    started_at: String,
    ended_at: String,
    duration_s: f64,
    plan: Plan<'a>,
    totals: Totals<'a>,
    throughput_msgs_per_s: f64,
    send_rate_msgs_per_s: f64,
    latency_us: Latency,
    memory: Memory,
    agents: Vec<Agent<'a>>,
    thresholds: Vec<Threshold<'a>>,
    thresholds_passed: bool,
    steps: Vec<Step<'a>>,
    timeseries: Vec<Second<'a>>,
    /// Seconds in which at least one agent was saturated.
    saturated_seconds: u64,
    /// Largest CPU share of any agent in any second (fraction of its cores).
    agent_cpu_max: Option<f64>,
}

#[derive(Serialize)]
struct Outcome<'a> {
    status: &'static str,
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Plan<'a> {
    sessions: u64,
    batch_size: u64,
    batch_interval_ms: u64,
    max_active_batches: u64,
    connect_timeout_ms: u64,
    messages_per_session: u64,
    message_interval_ms: u64,
    payload_size: u64,
    hold_time_ms: u64,
    compression: bool,
    extra: &'a serde_json::Value,
}

#[derive(Serialize)]
struct Totals<'a> {
    sessions_planned: u64,
    sessions_opened: u64,
    sessions_errored: u64,
    sessions_failed: u64,
    failed_connections: u64,
    failed_responses: u64,
    unanswered: &'a BTreeMap<String, u64>,
    messages_sent: u64,
    responses_received: u64,
    server_events: u64,
    errors: &'a BTreeMap<String, u64>,
    errors_total: u64,
    lost_sessions: u64,
    reassigned_batches: u64,
    unexpected_messages: u64,
    close_codes: &'a BTreeMap<u16, u64>,
    counts: &'a BTreeMap<String, u64>,
    reconnects: u64,
}

#[derive(Serialize)]
struct Latency {
    rtt: Option<Stats>,
    rtt_actual: Option<Stats>,
    connect: Option<Stats>,
    session_event: Option<Stats>,
    send_lag: Option<Stats>,
    agent_lag: Option<Stats>,
    reconnect: Option<Stats>,
}

#[derive(Serialize)]
struct Stats {
    count: u64,
    min: u64,
    mean: f64,
    p50: u64,
    p90: u64,
    p99: u64,
    p99_9: u64,
    max: u64,
}

#[derive(Serialize)]
struct Memory {
    samples: u64,
    average_percent: Option<f64>,
    max_percent: Option<f64>,
    min_percent: Option<f64>,
    max_rss_bytes: Option<u64>,
}

#[derive(Serialize)]
struct Agent<'a> {
    name: &'a str,
    sessions: u64,
    batches: u64,
    throttled_s: f64,
    lost: bool,
    memory: Vec<Sample>,
    load: Vec<Load>,
}

#[derive(Serialize)]
struct Load {
    t: u64,
    cpu_percent: f64,
    cores: u32,
    cpu_share: f64,
    lag_max_us: u64,
    lag_p99_us: u64,
    saturated: bool,
}

#[derive(Serialize)]
struct Sample {
    t: f64,
    system_percent: f64,
    rss_bytes: u64,
}

#[derive(Serialize)]
struct Threshold<'a> {
    expr: &'a str,
    metric: &'a str,
    observed: Option<f64>,
    observed_display: &'a str,
    passed: bool,
}

#[derive(Serialize)]
struct Second<'a> {
    t: u64,
    active_sessions: u64,
    connections_opened: u64,
    connections_failed: u64,
    messages_sent: u64,
    responses: u64,
    server_events: u64,
    reconnects: u64,
    errors: &'a BTreeMap<String, u64>,
    rtt_us: Option<Stats>,
    /// Named steps active in this second; left out when none was.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    steps: BTreeMap<&'a str, StepFigures>,
    saturated_agents: &'a [String],
}

/// A named step of the plan with its whole-run figures.
#[derive(Serialize)]
struct Step<'a> {
    name: &'a str,
    kind: &'a str,
    #[serde(flatten)]
    figures: StepFigures,
    fanout: Option<Fanout>,
}

/// A step's counters and latency (whole run, or one second).
#[derive(Serialize)]
struct StepFigures {
    ok: u64,
    failed: u64,
    messages: u64,
    duplicates: u64,
    out_of_order: u64,
    latency_us: Option<Stats>,
}

#[derive(Serialize)]
struct Fanout {
    expected: u64,
    delivered: u64,
    reach: Option<f64>,
}

fn stats(h: &LatencyHistogram) -> Option<Stats> {
    LatencyStats::from_histogram(h).map(|s| Stats {
        count: s.count,
        min: s.min,
        mean: s.mean,
        p50: s.p50,
        p90: s.p90,
        p99: s.p99,
        p99_9: s.p999,
        max: s.max,
    })
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<'a> From<&'a RunReport> for Doc<'a> {
    fn from(r: &'a RunReport) -> Self {
        let t = &r.totals;
        let p = &r.plan;
        let status = r.outcome.status();
        let reason = Some(r.outcome.reason()).filter(|why| !why.is_empty());
        Doc {
            schema_version: SCHEMA_VERSION,
            run_id: &r.run_id,
            target: &r.target,
            outcome: Outcome { status, reason },
            started_at: r.started_at.to_rfc3339(),
            ended_at: r.ended_at.to_rfc3339(),
            duration_s: r.duration.as_secs_f64(),
            plan: Plan {
                sessions: p.sessions,
                batch_size: p.batch_size,
                batch_interval_ms: millis(p.batch_interval),
                max_active_batches: p.max_active_batches,
                connect_timeout_ms: millis(p.connect_timeout),
                messages_per_session: p.messages_per_session,
                message_interval_ms: millis(p.message_interval),
                payload_size: p.payload_size,
                hold_time_ms: millis(p.hold_time),
                compression: p.compression,
                extra: &p.extra,
            },
            totals: Totals {
                sessions_planned: t.sessions_planned,
                sessions_opened: t.sessions_opened,
                sessions_errored: t.sessions_errored,
                sessions_failed: t.sessions_failed(),
                failed_connections: t.failed_connections,
                failed_responses: t.failed_responses,
                unanswered: &t.unanswered,
                messages_sent: t.messages_sent,
                responses_received: t.responses_received,
                server_events: t.server_events,
                errors: &t.errors,
                errors_total: t.errors_total(),
                lost_sessions: t.lost_sessions,
                reassigned_batches: t.reassigned_batches,
                unexpected_messages: t.unexpected_messages,
                close_codes: &t.close_codes,
                counts: &t.counts,
                reconnects: t.reconnects,
            },
            throughput_msgs_per_s: r.throughput(),
            send_rate_msgs_per_s: r.send_rate(),
            latency_us: Latency {
                rtt: stats(&r.histograms.rtt_intended),
                rtt_actual: stats(&r.histograms.rtt_actual),
                connect: stats(&r.histograms.connect),
                session_event: stats(&r.histograms.session_event),
                send_lag: stats(&r.histograms.send_lag),
                agent_lag: stats(&r.histograms.agent_lag),
                reconnect: stats(&r.histograms.reconnect),
            },
            memory: memory(&r.memory_summary()),
            agents: r.agents.iter().map(agent).collect(),
            thresholds: r.thresholds.iter().map(threshold).collect(),
            thresholds_passed: r.thresholds_passed(),
            steps: r.steps.iter().map(step).collect(),
            timeseries: r.windows.iter().map(second).collect(),
            saturated_seconds: super::saturation::saturated_seconds(r),
            agent_cpu_max: super::saturation::cpu_max(r),
        }
    }
}

fn memory(m: &MemorySummary) -> Memory {
    let some = m.samples > 0;
    Memory {
        samples: m.samples,
        average_percent: some.then_some(m.average_percent),
        max_percent: some.then_some(m.max_percent),
        min_percent: some.then_some(m.min_percent),
        max_rss_bytes: some.then_some(m.max_rss_bytes),
    }
}

fn agent(a: &AgentReport) -> Agent<'_> {
    Agent {
        name: &a.name,
        sessions: a.sessions,
        batches: a.batches,
        throttled_s: a.throttled.as_secs_f64(),
        lost: a.lost,
        memory: a
            .memory
            .iter()
            .map(|m| Sample {
                t: m.t,
                system_percent: m.system_percent,
                rss_bytes: m.rss_bytes,
            })
            .collect(),
        load: a
            .load
            .iter()
            .map(|s| Load {
                t: s.t,
                cpu_percent: s.cpu_percent,
                cores: s.cores,
                cpu_share: s.cpu_share(),
                lag_max_us: s.lag_max_us,
                lag_p99_us: s.lag_p99_us,
                saturated: s.saturated(),
            })
            .collect(),
    }
}

fn threshold(t: &ThresholdResult) -> Threshold<'_> {
    Threshold {
        expr: &t.expr,
        metric: &t.metric,
        observed: t.observed,
        observed_display: &t.observed_display,
        passed: t.passed,
    }
}

fn second(w: &Window) -> Second<'_> {
    Second {
        t: w.t,
        active_sessions: w.active_sessions,
        connections_opened: w.connections_opened,
        connections_failed: w.connections_failed,
        messages_sent: w.messages_sent,
        responses: w.responses,
        server_events: w.server_events,
        reconnects: w.reconnects,
        errors: &w.errors,
        rtt_us: stats(&w.rtt),
        steps: w.steps.iter().map(|(name, s)| (name.as_str(), figures(s))).collect(),
        saturated_agents: &w.saturated,
    }
}

fn step(s: &StepReport) -> Step<'_> {
    Step {
        name: &s.name,
        kind: &s.kind,
        figures: figures(&s.stats),
        fanout: s.fanout.map(|f: FanoutReach| Fanout {
            expected: f.expected,
            delivered: f.delivered,
            reach: (f.expected > 0).then(|| f.reach()),
        }),
    }
}

fn figures(s: &StepStats) -> StepFigures {
    StepFigures {
        ok: s.ok,
        failed: s.failed,
        messages: s.messages,
        duplicates: s.duplicates,
        out_of_order: s.out_of_order,
        latency_us: stats(&s.latency),
    }
}
