//! `results.txt`: the reference's fields, computed correctly, plus percentiles,
//! errors by kind, per-agent lines and threshold results; for scripted scenarios also
//! the named steps, handler counts and unexpected messages, and the server's close
//! codes whenever it closed connections. Sections that would be empty are left out,
//! so the built-in protocol's report reads as it always has.

use std::fmt::Write as _;

use super::format::{bytes, close_code_name, ms, ms_f, secs, short};
use super::model::{LatencyHistogram, LatencyStats, RunOutcome, RunReport, StepReport};

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
    latency_line(o, "Send lag (schedule)", &h.send_lag)?;
    latency_line(o, "Agent timer lag", &h.agent_lag)?;
    if !h.reconnect.is_empty() {
        latency_line(o, "Reconnect (drop->open)", &h.reconnect)?;
    }
    steps(o, &r.steps)?;

    writeln!(o)?;
    writeln!(o, "Errors by kind:")?;
    if t.errors.is_empty() {
        writeln!(o, "  none")?;
    }
    for (kind, n) in &t.errors {
        writeln!(o, "  {kind}: {n}")?;
    }
    tallies(o, r)?;

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

    generator_load(o, r)?;

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

/// Was the generator the bottleneck? Each agent's CPU and timer lag, and the seconds
/// in which one was saturated.
fn generator_load(o: &mut String, r: &RunReport) -> std::fmt::Result {
    use super::saturation::{self, CPU_BOUND, LAG_BOUND};
    writeln!(o)?;
    let seconds = saturation::saturated_seconds(r);
    writeln!(
        o,
        "Generator load (saturated: CPU >= {:.0}% of an agent's cores or timer lag p99 > {} ms):",
        CPU_BOUND * 100.0,
        LAG_BOUND.as_millis()
    )?;
    for a in r.agents.iter().filter(|a| !a.load.is_empty()) {
        let cpu = a.load.iter().map(|s| s.cpu_share()).fold(0.0, f64::max);
        let lag_max = a.load.iter().map(|s| s.lag_max_us).max().unwrap_or(0);
        let bad = a.load.iter().filter(|s| s.saturated()).count();
        writeln!(
            o,
            "  {}: cpu max {:.0}% of {} core(s), timer lag max {}, saturated {} of {} s",
            a.name,
            cpu * 100.0,
            a.load[0].cores,
            ms(lag_max),
            bad,
            a.load.len()
        )?;
    }
    if seconds == 0 {
        writeln!(o, "  no agent was saturated")?;
    } else {
        writeln!(
            o,
            "  SATURATED in {seconds} s: latencies of those seconds include the generator's own delay"
        )?;
        for line in saturation::agent_lines(r) {
            writeln!(o, "  {line}")?;
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

/// The "Scenario steps" table, in plan order; nothing without named steps.
fn steps(o: &mut String, steps: &[StepReport]) -> std::fmt::Result {
    if steps.is_empty() {
        return Ok(());
    }
    let w = steps.iter().map(|s| s.name.chars().count()).max().unwrap_or(0).max(22);
    writeln!(o)?;
    writeln!(
        o,
        "Scenario steps (merged HDR histograms; latency by kind: connect = connect time, request = RTT from \
         the intended send, expect = wait, ping = pong RTT, close = close handshake, listen = fan-out latency)"
    )?;
    writeln!(
        o,
        "  {:<w$} {:<8} {:>9} {:>9} {:>9} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "step", "kind", "ok", "failed", "messages", "p50", "p90", "p99", "p99.9", "max"
    )?;
    for step in steps {
        let s = &step.stats;
        write!(
            o,
            "  {:<w$} {:<8} {:>9} {:>9} {:>9}",
            step.name, step.kind, s.ok, s.failed, s.messages
        )?;
        match LatencyStats::from_histogram(&s.latency) {
            None => writeln!(o, " (no latency samples)")?,
            Some(l) => writeln!(
                o,
                " {:>12} {:>12} {:>12} {:>12} {:>12}",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                ms(l.max)
            )?,
        }
        let reach = step.fanout.map(|f| {
            let pct = if f.expected == 0 {
                "n/a".to_owned()
            } else {
                format!("{:.3} %", f.reach() * 100.0)
            };
            format!("expected {}, delivered {} (reach {pct}), ", f.expected, f.delivered)
        });
        if reach.is_some() || s.duplicates + s.out_of_order > 0 {
            writeln!(
                o,
                "  {:<w$}   fan-out: {}duplicates {}, out of order {}",
                "",
                reach.unwrap_or_default(),
                s.duplicates,
                s.out_of_order
            )?;
        }
    }
    Ok(())
}

/// Handler counts, unexpected messages and server close codes, each only when there
/// is something to show.
fn tallies(o: &mut String, r: &RunReport) -> std::fmt::Result {
    let t = &r.totals;
    if !t.counts.is_empty() {
        writeln!(o)?;
        writeln!(o, "Handler counts:")?;
        for (name, n) in &t.counts {
            writeln!(o, "  {name}: {n}")?;
        }
    }
    if t.reconnects > 0 {
        writeln!(o)?;
        writeln!(
            o,
            "Reconnects:           {} (sessions connected again after the server closed or dropped their connection)",
            t.reconnects
        )?;
    }
    if t.unexpected_messages > 0 {
        writeln!(o)?;
        writeln!(
            o,
            "Unexpected messages:  {} (claimed by no step, pending request or handler)",
            t.unexpected_messages
        )?;
    }
    if !t.close_codes.is_empty() {
        writeln!(o)?;
        writeln!(o, "Server close codes:")?;
        for (code, n) in &t.close_codes {
            match close_code_name(*code) {
                Some(name) => writeln!(o, "  {code} ({name}): {n}")?,
                None => writeln!(o, "  {code}: {n}")?,
            }
        }
    }
    Ok(())
}
