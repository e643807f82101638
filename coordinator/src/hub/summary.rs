//! The gRPC summary of a finished run's report.

use wsload_proto::pb::{Summary, ThresholdOutcome};

use crate::report::{LatencyStats, RunReport};

/// The gRPC summary of a report.
pub fn summary(report: &RunReport, sessions_completed: u64, lost_agents: Vec<String>, report_dir: String) -> Summary {
    let t = &report.totals;
    let rtt = LatencyStats::from_histogram(&report.histograms.rtt_intended).unwrap_or_default();
    let ms = |us: u64| us as f64 / 1000.0;
    Summary {
        run_id: report.run_id.clone(),
        state: report.outcome.to_string(),
        run_state: report.outcome.run_state() as i32,
        state_reason: report.outcome.reason().to_string(),
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
        sessions_failed: t.sessions_failed(),
        started_unix_micros: 0,
    }
}
