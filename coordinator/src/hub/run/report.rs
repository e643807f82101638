//! A finished run becomes its report (thresholds evaluated on the merged data).

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

use super::RunState;
use crate::report::{PlanEcho, RunOutcome, RunReport};

/// What a finished run leaves: the report and the counts the summary needs.
#[derive(Debug)]
pub struct Ended {
    /// The full report.
    pub report: RunReport,
    /// Sessions that completed normally.
    pub sessions_completed: u64,
    /// Lost (or refusing) agents.
    pub lost_agents: Vec<String>,
}

impl RunState {
    /// Builds the report; thresholds are evaluated here.
    pub fn into_report(self) -> Ended {
        let now = SystemTime::now();
        let (start_wall, end_wall) = (self.start.map_or(now, |s| s.1), self.ended.map_or(now, |e| e.1));
        let duration = self.elapsed();
        let p = &self.req.plan;
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
                "on_agent_loss": self.req.on_loss.as_str(),
                "lost_agents": self.lost_agents,
            }),
        };
        let outcome = self.outcome.clone().unwrap_or(RunOutcome::Completed);
        let sessions_completed = self.agg.completed();
        let f = self
            .agg
            .finish(p.sessions, self.lost_sessions, self.reassigned, &self.program);
        let to_dt = |t: SystemTime| -> DateTime<Utc> { DateTime::<Utc>::from(t.max(UNIX_EPOCH)) };
        let mut report = RunReport {
            run_id: self.id.clone(),
            // Reports are shared: no password or credential in the URL they show.
            target: wsload_common::redact_url(&p.target),
            plan,
            started_at: to_dt(start_wall),
            ended_at: to_dt(end_wall),
            duration,
            outcome,
            totals: f.totals,
            histograms: f.histograms,
            windows: f.windows,
            agents: f.agents,
            thresholds: Vec::new(),
            steps: f.steps,
        };
        report.thresholds = crate::thresholds::evaluate(&self.req.thresholds, &report);
        Ended {
            report,
            sessions_completed,
            lost_agents: self.lost_agents,
        }
    }
}
