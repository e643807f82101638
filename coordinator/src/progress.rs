//! The live progress line printed once per second (the same numbers as WatchRun).

use wsload_proto::pb::Progress;

/// `[#######-------------]  35%` from started/total sessions.
pub fn bar(done: u64, total: u64) -> String {
    let width = 20usize;
    let frac = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (frac * width as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "#".repeat(filled),
        "-".repeat(width - filled),
        frac * 100.0
    )
}

/// One progress line.
pub fn line(p: &Progress) -> String {
    let mut errors: Vec<_> = p.errors.iter().collect();
    errors.sort();
    let errors = if errors.is_empty() {
        "none".to_string()
    } else {
        errors
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut s = format!(
        "{} {:>4}s {} | active {} | conn/s {:.0} | msg/s {:.0} | p50 {:.2}ms p99 {:.2}ms | sent {} resp {} | errors {}",
        bar(p.sessions_started, p.sessions_total),
        p.second,
        p.state,
        p.active_sessions,
        p.connections_per_second,
        p.messages_per_second,
        p.rtt_p50_ms,
        p.rtt_p99_ms,
        p.messages_sent,
        p.responses,
        errors
    );
    if !p.throttled_agents.is_empty() {
        s.push_str(&format!(" | throttled: {}", p.throttled_agents.join(",")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_and_line_render() {
        assert_eq!(bar(5, 10), "[##########----------]  50%");
        let p = Progress {
            sessions_total: 10,
            errors: [("x".to_string(), 2)].into(),
            ..Default::default()
        };
        assert!(line(&p).contains("errors x=2"));
    }
}
