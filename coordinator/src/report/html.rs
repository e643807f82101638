//! `report.html`: the whole report in one self-contained, printable file: summary,
//! thresholds, every chart as inline SVG (no script, no external reference: it opens
//! offline), latencies, errors and close codes, named steps and the per-agent table.

use std::fmt::Write as _;

use super::format::{bytes, close_code_name, secs, short};
use super::model::{LatencyHistogram, LatencyStats, RunOutcome, RunReport, Window};
use super::svg::{clock, line_chart, Series};

/// Ids of the charts `report.html` holds for `report` (in page order).
pub fn chart_ids(report: &RunReport) -> Vec<&'static str> {
    let mut ids = vec![
        "chart-sessions",
        "chart-connections",
        "chart-messages",
        "chart-rtt",
        "chart-errors",
        "chart-distribution",
        "chart-memory",
    ];
    if !report.steps.is_empty() {
        ids.push("chart-steps");
    }
    ids
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#1d232b;max-width:72em;margin:1.5em auto;padding:0 1em}\
h1{font-size:1.5em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #d9dee4}\
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.4em 0}th,td{text-align:left;padding:.15em .8em;border-bottom:1px solid #e6e9ed}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(30em,1fr));gap:1em}figure{margin:0;border:1px solid #d9dee4;border-radius:6px;padding:.5em;break-inside:avoid}\
figcaption{font-weight:600}svg.chart{width:100%;height:auto}svg text{font-size:11px;fill:#66717e}\
.pass{color:#1a7f37;font-weight:600}.fail{color:#c62828;font-weight:600}.muted{color:#66717e}\
@media print{body{margin:0;max-width:none}.charts{grid-template-columns:1fr 1fr}}";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders `report.html`.
pub fn render(r: &RunReport) -> String {
    let mut o = String::new();
    let _ = write_all(&mut o, r);
    o
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

fn q_ms(h: &LatencyHistogram, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

fn col(ws: &[Window], f: impl Fn(&Window) -> f64) -> Vec<f64> {
    ws.iter().map(f).collect()
}

fn series(name: &str, values: Vec<f64>) -> Series {
    Series {
        name: name.to_owned(),
        values,
    }
}

fn figure(o: &mut String, caption: &str, svg: String) -> std::fmt::Result {
    write!(o, "<figure><figcaption>{}</figcaption>{svg}</figure>", esc(caption))
}

fn write_all(o: &mut String, r: &RunReport) -> std::fmt::Result {
    let t = &r.totals;
    write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>wsload report {}</title><style>{STYLE}</style></head><body>",
        esc(&r.run_id)
    )?;
    let outcome = match &r.outcome {
        RunOutcome::Completed => "<span class=\"pass\">completed</span>".to_owned(),
        other => format!("<span class=\"fail\">{}</span>", esc(&other.to_string())),
    };
    write!(
        o,
        "<h1>wsload run {}</h1><p>{} → <code>{}</code><br>{} to {} ({})</p>",
        esc(&r.run_id),
        outcome,
        esc(&r.target),
        r.started_at.to_rfc3339(),
        r.ended_at.to_rfc3339(),
        secs(r.duration)
    )?;
    let p = &r.plan;
    write!(
        o,
        "<p class=\"muted\">Plan: {} sessions, batches of {} every {} (max {} active), {} messages/session, payload {} B, hold {}, compression {}.</p>",
        p.sessions,
        p.batch_size,
        short(p.batch_interval),
        p.max_active_batches,
        p.messages_per_session,
        p.payload_size,
        short(p.hold_time),
        if p.compression { "on" } else { "off" }
    )?;
    o.push_str("<h2>Summary</h2><table id=\"summary\">");
    let rows: [(&str, String); 11] = [
        ("Sessions planned", t.sessions_planned.to_string()),
        ("Sessions opened", t.sessions_opened.to_string()),
        ("Failed connections", t.failed_connections.to_string()),
        ("Sessions failed", t.sessions_failed().to_string()),
        ("Messages sent", t.messages_sent.to_string()),
        ("Responses received", t.responses_received.to_string()),
        ("Failed responses", t.failed_responses.to_string()),
        ("Throughput", format!("{:.1} responses/s", r.throughput())),
        ("Server events", t.server_events.to_string()),
        ("Errors", t.errors_total().to_string()),
        (
            "Lost sessions / reassigned batches",
            format!("{} / {}", t.lost_sessions, t.reassigned_batches),
        ),
    ];
    for (k, v) in rows {
        write!(o, "<tr><th>{k}</th><td>{v}</td></tr>")?;
    }
    o.push_str("</table>");
    if !r.thresholds.is_empty() {
        o.push_str(
            "<h2>Thresholds</h2><table id=\"thresholds\"><tr><th>threshold</th><th>observed</th><th>verdict</th></tr>",
        );
        for th in &r.thresholds {
            let (c, v) = if th.passed { ("pass", "pass") } else { ("fail", "FAIL") };
            write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"{c}\">{v}</td></tr>",
                esc(&th.expr),
                esc(&th.observed_display)
            )?;
        }
        o.push_str("</table>");
    }
    charts(o, r)?;
    o.push_str("<h2>Latency (ms)</h2><table id=\"latency\"><tr><th></th><th>count</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    let h = &r.histograms;
    for (name, hist) in [
        ("RTT (intended send)", &h.rtt_intended),
        ("RTT (actual send)", &h.rtt_actual),
        ("Connect", &h.connect),
        ("Session event", &h.session_event),
    ] {
        match LatencyStats::from_histogram(hist) {
            Some(s) => write!(
                o,
                "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.count,
                ms(s.min),
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.p999),
                ms(s.max)
            )?,
            None => write!(
                o,
                "<tr><td>{name}</td><td colspan=\"7\" class=\"muted\">no samples</td></tr>"
            )?,
        }
    }
    o.push_str("</table>");
    if !t.errors.is_empty() || !t.close_codes.is_empty() {
        o.push_str("<h2>Errors and close codes</h2><table id=\"errors\">");
        for (k, n) in &t.errors {
            write!(o, "<tr><td>{}</td><td>{n}</td></tr>", esc(k))?;
        }
        for (c, n) in &t.close_codes {
            let name = close_code_name(*c).map(|s| format!(" ({s})")).unwrap_or_default();
            write!(o, "<tr><td>close {c}{name}</td><td>{n}</td></tr>")?;
        }
        o.push_str("</table>");
    }
    if !r.steps.is_empty() {
        o.push_str("<h2>Named steps</h2><table id=\"steps\"><tr><th>step</th><th>kind</th><th>ok</th><th>failed</th><th>messages</th><th>p50</th><th>p99</th><th>reach</th></tr>");
        for s in &r.steps {
            let l = LatencyStats::from_histogram(&s.stats.latency).unwrap_or_default();
            let reach = s
                .fanout
                .map(|f| format!("{:.2}%", f.reach() * 100.0))
                .unwrap_or_default();
            write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{reach}</td></tr>",
                esc(&s.name),
                esc(&s.kind),
                s.stats.ok,
                s.stats.failed,
                s.stats.messages,
                ms(l.p50),
                ms(l.p99)
            )?;
        }
        o.push_str("</table>");
    }
    o.push_str("<h2>Agents</h2><table id=\"agents\"><tr><th>agent</th><th>sessions</th><th>batches</th><th>throttled</th><th>max RSS</th><th>max memory</th><th>lost</th></tr>");
    for a in &r.agents {
        let rss = a.memory.iter().map(|m| m.rss_bytes).max().unwrap_or(0);
        let mem = a.memory.iter().map(|m| m.system_percent).fold(0.0, f64::max);
        write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{mem:.1} %</td><td>{}</td></tr>",
            esc(&a.name),
            a.sessions,
            a.batches,
            short(a.throttled),
            bytes(rss),
            if a.lost {
                "<span class=\"fail\">lost</span>"
            } else {
                "no"
            }
        )?;
    }
    o.push_str("</table><p class=\"muted\">Also in this directory: results.txt, results.json, timeseries.csv and the PNG charts.</p></body></html>\n");
    Ok(())
}

fn charts(o: &mut String, r: &RunReport) -> std::fmt::Result {
    let ws = &r.windows;
    let xs: Vec<f64> = ws.iter().map(|w| w.t as f64).collect();
    o.push_str("<h2>Charts</h2><div class=\"charts\">");
    figure(
        o,
        "Active sessions",
        line_chart(
            "chart-sessions",
            &xs,
            &[series("active", col(ws, |w| w.active_sessions as f64))],
            clock,
        ),
    )?;
    figure(
        o,
        "Connections per second",
        line_chart(
            "chart-connections",
            &xs,
            &[
                series("opened/s", col(ws, |w| w.connections_opened as f64)),
                series("failed/s", col(ws, |w| w.connections_failed as f64)),
            ],
            clock,
        ),
    )?;
    figure(
        o,
        "Messages per second",
        line_chart(
            "chart-messages",
            &xs,
            &[
                series("sent/s", col(ws, |w| w.messages_sent as f64)),
                series("responses/s", col(ws, |w| w.responses as f64)),
            ],
            clock,
        ),
    )?;
    let rtt: Vec<Series> = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)]
        .iter()
        .map(|(n, q)| series(n, col(ws, |w| q_ms(&w.rtt, *q))))
        .collect();
    figure(
        o,
        "RTT from intended send per second (ms)",
        line_chart("chart-rtt", &xs, &rtt, clock),
    )?;
    figure(
        o,
        "Errors and server events per second",
        line_chart(
            "chart-errors",
            &xs,
            &[
                series("errors/s", col(ws, |w| w.errors_total() as f64)),
                series("server events/s", col(ws, |w| w.server_events as f64)),
            ],
            clock,
        ),
    )?;
    // Percentile distribution: x is the number of nines (p50 = 0.3, p90 = 1, p99 = 2...).
    let qs = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999];
    let nines: Vec<f64> = qs.iter().map(|q: &f64| -(1.0 - q).log10()).collect();
    let h = &r.histograms;
    let dist = [("RTT", &h.rtt_intended), ("connect", &h.connect)]
        .iter()
        .filter(|(_, hist)| !hist.is_empty())
        .map(|(n, hist)| series(n, qs.iter().map(|q| q_ms(hist, *q)).collect()))
        .collect::<Vec<_>>();
    let x_nines: Vec<f64> = if dist.is_empty() { Vec::new() } else { nines };
    figure(
        o,
        "Latency by percentile (ms)",
        line_chart("chart-distribution", &x_nines, &dist, |x| {
            format!("p{}", ((1.0 - 10f64.powf(-x)) * 100.0 * 100.0).round() / 100.0)
        }),
    )?;
    // Agent RSS over time, one series per agent, sampled on a common 1 s grid.
    let end = r
        .agents
        .iter()
        .flat_map(|a| a.memory.iter().map(|m| m.t))
        .fold(0.0, f64::max);
    let grid: Vec<f64> = if r.agents.iter().any(|a| !a.memory.is_empty()) {
        (0..=end.ceil() as u64).map(|s| s as f64).collect()
    } else {
        Vec::new()
    };
    let mem: Vec<Series> = r
        .agents
        .iter()
        .filter(|a| !a.memory.is_empty())
        .map(|a| {
            let values = grid
                .iter()
                .map(|g| {
                    a.memory
                        .iter()
                        .rev()
                        .find(|m| m.t <= g + 0.999)
                        .map_or(0.0, |m| m.rss_bytes as f64 / 1048576.0)
                })
                .collect();
            series(&format!("{} RSS MiB", a.name), values)
        })
        .collect();
    figure(
        o,
        "Agent memory (RSS, MiB)",
        line_chart("chart-memory", &grid, &mem, clock),
    )?;
    if !r.steps.is_empty() {
        let steps: Vec<Series> = r
            .steps
            .iter()
            .map(|s| {
                series(
                    &s.name,
                    col(ws, |w| w.steps.get(&s.name).map_or(0.0, |st| q_ms(&st.latency, 0.99))),
                )
            })
            .collect();
        figure(
            o,
            "Named steps: p99 latency per second (ms)",
            line_chart("chart-steps", &xs, &steps, clock),
        )?;
    }
    o.push_str("</div>");
    Ok(())
}
