//! `results.txt`: the reference's fields, computed correctly, plus percentiles,
//! errors by kind, per-agent lines and threshold results.

use std::fmt::Write as _;

use super::format::{bytes, ms, ms_f, secs, short};
use super::model::{LatencyHistogram, LatencyStats, RunOutcome, RunReport};

/// Renders the whole `results.txt` content.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    // Writing into a String never fails; the `let _ =` keeps that explicit.
    let _ = write_all(&mut out, report);
    out
}

fn write_all(o: &mut String, r: &RunReport) -> std::fmt::Result {
    let t = &r.totals;
    let mem = r.memory_summary();
    writeln!(o, "wsload run report")?;
    writeln!(o, "=================")?;
    writeln!(o, "Run id:               {}", r.run_id)?;
    writeln!(o, "Target:               {}", r.target)?;
    writeln!(o, "Outcome:              {}", outcome(&r.outcome))?;
    writeln!(o, "Started:              {}", r.started_at.to_rfc3339())?;
    writeln!(o, "Ended:                {}", r.ended_at.to_rfc3339())?;
    let p = &r.plan;
    writeln!(
        o,
        "Plan:                 {} sessions, batches of {} every {} (max {} active), \
         connect timeout {}, {} messages/session {}, payload {} B, hold {}, compression {}",
        p.sessions,
        p.batch_size,
        short(p.batch_interval),
        p.max_active_batches,
        short(p.connect_timeout),
        p.messages_per_session,
        if p.message_interval.is_zero() {
            "back-to-back".to_owned()
        } else {
            format!("every {}", short(p.message_interval))
        },
        p.payload_size,
        short(p.hold_time),
        if p.compression { "on" } else { "off" },
    )?;
    writeln!(o)?;
    writeln!(o, "Total sessions:       {}", t.sessions_opened)?;
    writeln!(o, "Sessions planned:     {}", t.sessions_planned)?;
    writeln!(o, "Failed connections:   {}", t.failed_connections)?;
    writeln!(o, "Failed responses:     {}", t.failed_responses)?;
    writeln!(
        o,
        "Sessions failed:      {} (failed connections {}, errored {}, lost {})",
        t.sessions_failed(),
        t.failed_connections,
        t.sessions_errored,
        t.lost_sessions
    )?;
    writeln!(o, "Messages sent:        {}", t.messages_sent)?;
    writeln!(o, "Responses received:   {}", t.responses_received)?;
    writeln!(o, "Server events:        {}", t.server_events)?;
    writeln!(o, "Duration:             {}", secs(r.duration))?;
    writeln!(
        o,
        "Throughput:           {:.1} messages/s (responses received / run duration)",
        r.throughput()
    )?;
    writeln!(o, "Send rate:            {:.1} messages/s", r.send_rate())?;
    if mem.samples == 0 {
        writeln!(o, "Memory average:       n/a (no samples)")?;
        writeln!(o, "Memory max:           n/a")?;
        writeln!(o, "Memory min:           n/a")?;
    } else {
        writeln!(o, "Memory average:       {:.1} %", mem.average_percent)?;
        writeln!(o, "Memory max:           {:.1} %", mem.max_percent)?;
        writeln!(o, "Memory min:           {:.1} %", mem.min_percent)?;
        writeln!(o, "Agent RSS max:        {}", bytes(mem.max_rss_bytes))?;
    }
    writeln!(o, "Lost sessions:        {}", t.lost_sessions)?;
    writeln!(o, "Reassigned batches:   {}", t.reassigned_batches)?;

    writeln!(o)?;
    writeln!(
        o,
        "Latency (merged HDR histograms; RTT timed from the intended send of each message)"
    )?;
    writeln!(
        o,
        "  {:<22} {:>9} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "", "count", "min", "mean", "p50", "p90", "p99", "p99.9", "max"
    )?;
    let h = &r.histograms;
    latency_line(o, "RTT (intended send)", &h.rtt_intended)?;
    latency_line(o, "RTT (actual send)", &h.rtt_actual)?;
    latency_line(o, "Connect", &h.connect)?;
    latency_line(o, "Session event", &h.session_event)?;

    writeln!(o)?;
    writeln!(o, "Errors by kind:")?;
    if t.errors.is_empty() {
        writeln!(o, "  none")?;
    }
    for (kind, n) in &t.errors {
        writeln!(o, "  {kind}: {n}")?;
    }

    writeln!(o)?;
    writeln!(o, "Agents:")?;
    if r.agents.is_empty() {
        writeln!(o, "  none")?;
    }
    for a in &r.agents {
        let m = super::model::MemorySummary::from_agents(std::slice::from_ref(a));
        let memory = if m.samples == 0 {
            "memory n/a".to_owned()
        } else {
            format!(
                "memory avg {:.1} % max {:.1} % min {:.1} %, RSS max {}",
                m.average_percent,
                m.max_percent,
                m.min_percent,
                bytes(m.max_rss_bytes)
            )
        };
        writeln!(
            o,
            "  {}: {} sessions, {} batches, {}, throttled {}{}",
            a.name,
            a.sessions,
            a.batches,
            memory,
            secs(a.throttled),
            if a.lost { ", LOST" } else { "" }
        )?;
    }

    writeln!(o)?;
    writeln!(o, "Thresholds:")?;
    if r.thresholds.is_empty() {
        writeln!(o, "  none")?;
    } else {
        for th in &r.thresholds {
            writeln!(
                o,
                "  {} {} (observed {})",
                if th.passed { "PASS" } else { "FAIL" },
                th.expr,
                th.observed_display
            )?;
        }
        let failed = r.thresholds.iter().filter(|t| !t.passed).count();
        if failed == 0 {
            writeln!(o, "  all {} thresholds passed", r.thresholds.len())?;
        } else {
            writeln!(o, "  {failed} of {} thresholds FAILED", r.thresholds.len())?;
        }
    }
    Ok(())
}

fn outcome(o: &RunOutcome) -> String {
    match o {
        RunOutcome::Completed => "completed".to_owned(),
        RunOutcome::Stopped => "stopped by user".to_owned(),
        RunOutcome::Aborted(why) => format!("ABORTED: {why}"),
        RunOutcome::Failed(why) => format!("FAILED: {why}"),
    }
}

fn latency_line(o: &mut String, name: &str, h: &LatencyHistogram) -> std::fmt::Result {
    match LatencyStats::from_histogram(h) {
        None => writeln!(o, "  {name:<22} {:>9} (no samples)", 0),
        Some(s) => writeln!(
            o,
            "  {name:<22} {:>9} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
            s.count,
            ms(s.min),
            ms_f(s.mean),
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.p999),
            ms(s.max)
        ),
    }
}
