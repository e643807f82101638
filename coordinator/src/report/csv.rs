//! `timeseries.csv`: one row per one-second window, with a header.
//!
//! RTT columns are microseconds from the merged histogram of that second (empty when
//! no response arrived in it). `errors_by_kind` is `kind=n` pairs joined by `;`.
//!
//! A plan with named scenario steps gets five more columns per step, in plan order,
//! after those of [`HEADER`]: `step.NAME.ok`, `.failed`, `.messages` (that second's
//! counts) and `.p50_ms`, `.p99_ms` (that second's merged latency, milliseconds; empty
//! without samples).

use std::fmt::Write as _;

use super::model::{LatencyStats, RunReport, StepStats};

/// The header line of the built-in protocol's columns (without newline); see [`header`].
pub const HEADER: &str = "t_s,active_sessions,connections_opened_per_s,connections_failed_per_s,\
messages_sent_per_s,responses_per_s,server_events_per_s,errors_per_s,errors_by_kind,\
rtt_count,rtt_min_us,rtt_mean_us,rtt_p50_us,rtt_p90_us,rtt_p99_us,rtt_p99_9_us,rtt_max_us,reconnects_per_s";

/// Columns per named step.
const STEP_COLUMNS: [&str; 5] = ["ok", "failed", "messages", "p50_ms", "p99_ms"];

/// The header line of `report`: [`HEADER`], then the columns of its named steps.
pub fn header(report: &RunReport) -> String {
    let mut h = HEADER.to_owned();
    for step in &report.steps {
        for column in STEP_COLUMNS {
            let _ = write!(h, ",step.{}.{column}", sanitize(&step.name));
        }
    }
    h
}

/// Renders the whole CSV file.
pub fn render(report: &RunReport) -> String {
    let mut out = String::with_capacity(64 * (report.windows.len() + 1));
    out.push_str(&header(report));
    out.push('\n');
    for w in &report.windows {
        let kinds: Vec<String> = w.errors.iter().map(|(k, n)| format!("{}={n}", sanitize(k))).collect();
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},",
            w.t,
            w.active_sessions,
            w.connections_opened,
            w.connections_failed,
            w.messages_sent,
            w.responses,
            w.server_events,
            w.errors_total(),
            kinds.join(";"),
        );
        match LatencyStats::from_histogram(&w.rtt) {
            Some(s) => {
                let _ = write!(
                    out,
                    "{},{},{:.1},{},{},{},{},{}",
                    s.count, s.min, s.mean, s.p50, s.p90, s.p99, s.p999, s.max
                );
            }
            None => out.push_str("0,,,,,,,"),
        }
        let _ = write!(out, ",{}", w.reconnects);
        for step in &report.steps {
            step_cells(&mut out, w.steps.get(&step.name));
        }
        out.push('\n');
    }
    out
}

/// `,ok,failed,messages,p50_ms,p99_ms` of one step in one second (zeros when idle).
fn step_cells(out: &mut String, s: Option<&StepStats>) {
    let Some(s) = s else {
        out.push_str(",0,0,0,,");
        return;
    };
    let _ = write!(out, ",{},{},{},", s.ok, s.failed, s.messages);
    if let Some(l) = LatencyStats::from_histogram(&s.latency) {
        let _ = write!(out, "{:.3},{:.3}", l.p50 as f64 / 1000.0, l.p99 as f64 / 1000.0);
    } else {
        out.push(',');
    }
}

/// Error kinds come from agents; keep the CSV well-formed whatever they contain.
fn sanitize(kind: &str) -> String {
    kind.chars()
        .map(|c| match c {
            ',' | ';' | '=' | '"' | '\n' | '\r' => '_',
            c => c,
        })
        .collect()
}
