//! Turns a finished run into the report model and the gRPC summary.

use std::time::UNIX_EPOCH;

use chrono::{DateTime, Utc};
use wsload_proto::pb::{Summary, ThresholdOutcome};

use super::run::RunState;
use crate::report::{LatencyStats, PlanEcho, RunOutcome, RunReport};

/// Human text of an outcome (also the summary's `state`).
pub fn outcome_text(o: &RunOutcome) -> String {
    match o {
        RunOutcome::Completed => "completed".into(),
        RunOutcome::Stopped => "stopped".into(),
        RunOutcome::Aborted(r) => format!("aborted: {r}"),
        RunOutcome::Failed(r) => format!("failed: {r}"),
    }
}

/// Builds the report (thresholds evaluated here, on the merged data).
pub fn build_report(run: RunState) -> RunReport {
    let now = std::time::SystemTime::now();
    let (start_wall, end_wall) = (run.start.map_or(now, |s| s.1), run.ended.map_or(now, |e| e.1));
    let duration = run.elapsed();
    let p = &run.req.plan;
    let plan = PlanEcho {
        sessions: p.sessions,
        batch_size: p.batch_size,
        batch_interval: p.batch_interval,
        max_active_batches: p.max_active_batches,
        connect_timeout: p.connect_timeout,
        messages_per_session: p.messages_per_session,
        message_interval: p.message_interval,
        payload_size: p.payload_size,
        hold_time: p.hold_time,
        compression: p.compression,
        extra: serde_json::json!({
            "response_timeout_ms": p.response_timeout.as_millis() as u64,
            "max_duration_ms": p.max_duration.map(|d| d.as_millis() as u64),
            "stages": p.stages.iter().map(|s| serde_json::json!({"duration_ms": s.duration.as_millis() as u64, "target_rate": s.target_rate})).collect::<Vec<_>>(),
            "on_agent_loss": format!("{:?}", run.req.on_loss).to_lowercase(),
            "lost_agents": run.lost_agents,
        }),
    };
    let outcome = run.outcome.clone().unwrap_or(RunOutcome::Completed);
    let (totals, histograms, windows, agents) = run.agg.finish(p.sessions, run.lost_sessions, run.reassigned);
    let to_dt = |t: std::time::SystemTime| -> DateTime<Utc> { DateTime::<Utc>::from(t.max(UNIX_EPOCH)) };
    let mut report = RunReport {
        run_id: run.id.clone(),
        target: p.target.clone(),
        plan,
        started_at: to_dt(start_wall),
        ended_at: to_dt(end_wall),
        duration,
        outcome,
        totals,
        histograms,
        windows,
        agents,
        thresholds: Vec::new(),
    };
    report.thresholds = crate::thresholds::evaluate(&run.req.thresholds, &report);
    report
}

/// The gRPC summary of a report.
pub fn summary(report: &RunReport, sessions_completed: u64, lost_agents: Vec<String>, report_dir: String) -> Summary {
    let t = &report.totals;
    let rtt = LatencyStats::from_histogram(&report.histograms.rtt_intended).unwrap_or_default();
    let ms = |us: u64| us as f64 / 1000.0;
    Summary {
        run_id: report.run_id.clone(),
        state: outcome_text(&report.outcome),
        sessions: t.sessions_planned,
        sessions_completed,
        failed_connections: t.failed_connections,
        messages_sent: t.messages_sent,
        responses: t.responses_received,
        server_events: t.server_events,
        duration_seconds: report.duration.as_secs_f64(),
        messages_per_second: report.throughput(),
        rtt_p50_ms: ms(rtt.p50),
        rtt_p90_ms: ms(rtt.p90),
        rtt_p99_ms: ms(rtt.p99),
        rtt_p999_ms: ms(rtt.p999),
        rtt_max_ms: ms(rtt.max),
        errors: t.errors.clone().into_iter().collect(),
        lost_sessions: t.lost_sessions,
        reassigned_batches: t.reassigned_batches,
        lost_agents,
        finished: true,
        thresholds: report
            .thresholds
            .iter()
            .map(|r| ThresholdOutcome {
                expr: r.expr.clone(),
                observed: r.observed_display.clone(),
                passed: r.passed,
            })
            .collect(),
        report_dir,
    }
}
