//! `/metrics`: the newest run (live, then final) and the agents as Prometheus text
//! (format 0.0.4), so Grafana shows wsload next to the server's own `/metrics`.
//! Counters are the run's totals so far: after the run they equal `results.json`.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::feed::{AgentRow, Buckets, Status};
use super::Dashboard;

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn metrics(State(st): State<Dashboard>) -> Response {
    let (status, agents) = st.feed.latest();
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        render(status.as_ref(), &agents, st.feed.listeners()),
    )
        .into_response()
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, help: &str, run: &str, b: &Buckets) {
    family(out, name, "histogram", help);
    for (le, n) in b.bounds.iter().zip(&b.cumulative) {
        let _ = writeln!(out, "{name}_bucket{{run=\"{run}\",le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{run=\"{run}\",le=\"+Inf\"}} {}", b.count);
    let _ = writeln!(out, "{name}_sum{{run=\"{run}\"}} {}", b.sum);
    let _ = writeln!(out, "{name}_count{{run=\"{run}\"}} {}", b.count);
}

/// The exposition text.
pub fn render(s: Option<&Status>, agents: &[AgentRow], dashboards: usize) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "wsload_dashboard_clients",
        "gauge",
        "Dashboards following the live feed.",
    );
    let _ = writeln!(out, "wsload_dashboard_clients {dashboards}");
    family(
        &mut out,
        "wsload_agents_connected",
        "gauge",
        "Agents connected to the coordinator.",
    );
    let _ = writeln!(out, "wsload_agents_connected {}", agents.len());
    type AgentField = fn(&AgentRow) -> f64;
    let per_agent: [(&str, &str, AgentField); 6] = [
        ("wsload_agent_sessions", "Sessions the agent holds open.", |a| {
            a.sessions as f64
        }),
        (
            "wsload_agent_cpu_percent",
            "Agent process CPU, percent of one core.",
            |a| a.cpu_percent,
        ),
        ("wsload_agent_rss_bytes", "Agent resident set size.", |a| {
            a.rss_bytes as f64
        }),
        (
            "wsload_agent_throttled",
            "1 when the agent's memory throttle is on.",
            |a| f64::from(u8::from(a.throttled)),
        ),
        (
            "wsload_agent_clock_offset_seconds",
            "Agent clock minus coordinator clock.",
            |a| a.clock_offset_ms / 1000.0,
        ),
        (
            "wsload_agent_last_heartbeat_seconds",
            "Seconds since the agent's last message.",
            |a| a.last_heartbeat_s,
        ),
    ];
    for (name, help, f) in per_agent {
        family(&mut out, name, "gauge", help);
        for a in agents {
            let _ = writeln!(out, "{name}{{agent=\"{}\"}} {}", esc(&a.name), f(a));
        }
    }
    let Some(s) = s else { return out };
    let run = esc(&s.run_id);
    family(
        &mut out,
        "wsload_run_info",
        "gauge",
        "The newest run: 1, with its state and target.",
    );
    let _ = writeln!(
        out,
        "wsload_run_info{{run=\"{run}\",state=\"{}\",target=\"{}\"}} 1",
        esc(&s.state),
        esc(&s.target)
    );
    let gauges: [(&str, &str, f64); 4] = [
        (
            "wsload_run_finished",
            "1 once the run ended and its report is written.",
            f64::from(u8::from(s.finished)),
        ),
        (
            "wsload_run_elapsed_seconds",
            "Seconds since the start barrier.",
            s.elapsed_s,
        ),
        (
            "wsload_sessions_active",
            "Sessions open (latest complete second).",
            s.active_sessions as f64,
        ),
        (
            "wsload_sessions_planned",
            "Sessions the plan asks for.",
            s.sessions_planned as f64,
        ),
    ];
    for (name, help, v) in gauges {
        family(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name}{{run=\"{run}\"}} {v}");
    }
    let counters: [(&str, &str, u64); 8] = [
        (
            "wsload_sessions_opened_total",
            "Sessions whose upgrade succeeded.",
            s.sessions_opened,
        ),
        (
            "wsload_connect_failures_total",
            "Connection attempts that failed.",
            s.connect_failures,
        ),
        ("wsload_messages_sent_total", "Messages sent.", s.messages_sent),
        ("wsload_responses_total", "Responses received and matched.", s.responses),
        ("wsload_server_events_total", "Server events received.", s.server_events),
        (
            "wsload_failed_responses_total",
            "Messages sent without their response.",
            s.failed_responses,
        ),
        (
            "wsload_lost_sessions_total",
            "Sessions open on agents that were lost.",
            s.lost_sessions,
        ),
        (
            "wsload_unexpected_messages_total",
            "Scenario messages nothing claimed.",
            s.unexpected_messages,
        ),
    ];
    for (name, help, v) in counters {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name}{{run=\"{run}\"}} {v}");
    }
    family(&mut out, "wsload_errors_total", "counter", "Errors by kind.");
    for (kind, n) in &s.errors {
        let _ = writeln!(out, "wsload_errors_total{{run=\"{run}\",kind=\"{}\"}} {n}", esc(kind));
    }
    family(
        &mut out,
        "wsload_close_codes_total",
        "counter",
        "Server-initiated closes by code.",
    );
    for (code, n) in &s.close_codes {
        let _ = writeln!(
            out,
            "wsload_close_codes_total{{run=\"{run}\",code=\"{}\"}} {n}",
            esc(code)
        );
    }
    family(
        &mut out,
        "wsload_step_ok_total",
        "counter",
        "Named step executions that succeeded.",
    );
    for st in &s.steps {
        let _ = writeln!(
            out,
            "wsload_step_ok_total{{run=\"{run}\",step=\"{}\"}} {}",
            esc(&st.name),
            st.ok
        );
    }
    family(
        &mut out,
        "wsload_step_failed_total",
        "counter",
        "Named step executions that failed.",
    );
    for st in &s.steps {
        let _ = writeln!(
            out,
            "wsload_step_failed_total{{run=\"{run}\",step=\"{}\"}} {}",
            esc(&st.name),
            st.failed
        );
    }
    family(
        &mut out,
        "wsload_threshold_passed",
        "gauge",
        "1 while the threshold holds on the data so far.",
    );
    for t in &s.thresholds {
        let _ = writeln!(
            out,
            "wsload_threshold_passed{{run=\"{run}\",threshold=\"{}\"}} {}",
            esc(&t.expr),
            u8::from(t.passed)
        );
    }
    histogram(
        &mut out,
        "wsload_rtt_seconds",
        "Round-trip time from the intended send time, whole run.",
        &run,
        &s.rtt_buckets,
    );
    histogram(
        &mut out,
        "wsload_connect_seconds",
        "TCP connect + WebSocket upgrade time, whole run.",
        &run,
        &s.connect_buckets,
    );
    out
}
