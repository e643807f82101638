//! `timeseries.csv`: one row per one-second window, with a header.
//!
//! RTT columns are microseconds from the merged histogram of that second (empty when
//! no response arrived in it). `errors_by_kind` is `kind=n` pairs joined by `;`.

use std::fmt::Write as _;

use super::model::{LatencyStats, RunReport};

/// The header line (without newline).
pub const HEADER: &str = "t_s,active_sessions,connections_opened_per_s,connections_failed_per_s,\
messages_sent_per_s,responses_per_s,server_events_per_s,errors_per_s,errors_by_kind,\
rtt_count,rtt_min_us,rtt_mean_us,rtt_p50_us,rtt_p90_us,rtt_p99_us,rtt_p99_9_us,rtt_max_us";

/// Renders the whole CSV file.
pub fn render(report: &RunReport) -> String {
    let mut out = String::with_capacity(64 * (report.windows.len() + 1));
    out.push_str(HEADER);
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
        out.push('\n');
    }
    out
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
