//! Live progress, once per second (the same numbers as WatchRun): an indicatif bar
//! when stderr is a terminal, otherwise one plain line per second (CI logs and tests
//! read those, so their text is fixed: see [`line()`]).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use wsload_proto::pb::{Progress, StepProgress};

use crate::report::model::throughput_counts_messages;

/// Width of the bar, in characters, in both renderings.
const BAR_WIDTH: usize = 20;

/// `[#######-------------]  35%` from started/total sessions.
pub fn bar(done: u64, total: u64) -> String {
    let frac = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (frac * BAR_WIDTH as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        frac * 100.0
    )
}

/// Everything of a progress update but the bar: second, state, rates, latency,
/// counts, errors by kind, throttled agents, saturated agents (the generator, not the
/// server, may be what is slow: [`crate::report::saturation`]) and the named scenario steps.
pub fn details(p: &Progress) -> String {
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
        "{:>4}s {} | active {} | conn/s {:.0} | msg/s {:.0} | p50 {:.2}ms p99 {:.2}ms | sent {} resp {} | errors {}",
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
    if p.reconnects > 0 {
        s.push_str(&format!(" | reconnects {}", p.reconnects));
    }
    if !p.throttled_agents.is_empty() {
        s.push_str(&format!(" | throttled: {}", p.throttled_agents.join(",")));
    }
    if !p.saturated_agents.is_empty() {
        s.push_str(&format!(" | SATURATED: {}", p.saturated_agents.join(", ")));
    }
    for step in &p.steps {
        s.push_str(" | ");
        s.push_str(&step_part(step));
    }
    s
}

/// One named step in the shown second: `echo 120/s p99 3.10ms`, `news 950 msg/s`
/// (a listen step's rate is its messages), `echo 118/s 2 failed p99 3.10ms`; no
/// latency without samples (a send step has none).
fn step_part(step: &StepProgress) -> String {
    let mut s = if throughput_counts_messages(&step.kind) {
        format!("{} {} msg/s", step.name, step.messages)
    } else {
        format!("{} {}/s", step.name, step.ok)
    };
    if step.failed > 0 {
        s.push_str(&format!(" {} failed", step.failed));
    }
    if step.p99_ms > 0.0 {
        s.push_str(&format!(" p99 {:.2}ms", step.p99_ms));
    }
    s
}

/// One plain progress line: the bar, then the [`details`].
pub fn line(p: &Progress) -> String {
    format!("{} {}", bar(p.sessions_started, p.sessions_total), details(p))
}

/// Where progress goes during a run.
#[derive(Debug)]
pub struct ProgressView {
    out: Output,
}

#[derive(Debug)]
enum Output {
    /// `--quiet`: no progress at all.
    Quiet,
    /// Not a terminal: one [`line`] per update on stderr.
    Lines,
    /// A terminal: one bar redrawn in place.
    Bar(ProgressBar),
}

impl ProgressView {
    /// Progress on stderr: a bar on a terminal, plain lines otherwise, nothing if `quiet`.
    pub fn new(quiet: bool) -> Self {
        if quiet {
            Self { out: Output::Quiet }
        } else if std::io::stderr().is_terminal() {
            Self::bar(ProgressDrawTarget::stderr())
        } else {
            Self { out: Output::Lines }
        }
    }

    /// A bar drawn to `target`.
    fn bar(target: ProgressDrawTarget) -> Self {
        let style = ProgressStyle::with_template(&format!("[{{bar:{BAR_WIDTH}}}] {{percent:>3}}% {{wide_msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("#-");
        // Abandoned when dropped: the last state stays on screen above the report.
        let bar = ProgressBar::with_draw_target(Some(0), target)
            .with_style(style)
            .with_finish(ProgressFinish::Abandon);
        Self { out: Output::Bar(bar) }
    }

    /// Shows one update.
    pub fn show(&self, p: &Progress) {
        match &self.out {
            Output::Quiet => {}
            Output::Lines => eprintln!("{}", line(p)),
            Output::Bar(b) => {
                b.set_length(p.sessions_total);
                b.set_position(p.sessions_started.min(p.sessions_total));
                b.set_message(details(p));
            }
        }
    }

    /// Prints a message on its own line (above the bar on a terminal), even if quiet.
    pub fn note(&self, msg: &str) {
        match &self.out {
            Output::Bar(b) => b.println(msg),
            Output::Quiet | Output::Lines => eprintln!("{msg}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use indicatif::InMemoryTerm;

    use super::*;

    fn progress() -> Progress {
        Progress {
            sessions_total: 10,
            sessions_started: 5,
            second: 3,
            state: "running".into(),
            active_sessions: 4,
            errors: [("x".to_string(), 2), ("a".to_string(), 1)].into(),
            throttled_agents: vec!["a1".into()],
            ..Default::default()
        }
    }

    #[test]
    fn the_line_ends_with_the_named_steps() {
        let step = |name: &str, kind: &str, ok, failed, messages, p99_ms| StepProgress {
            name: name.into(),
            kind: kind.into(),
            ok,
            failed,
            messages,
            p50_ms: p99_ms / 2.0,
            p99_ms,
        };
        let p = Progress {
            steps: vec![
                step("echo", "request", 120, 0, 0, 3.1),
                step("news", "listen", 2, 0, 950, 12.346),
                step("login", "expect", 118, 2, 0, 40.0),
                step("publish", "send", 10, 0, 0, 0.0),
            ],
            ..progress()
        };
        let without = line(&progress());
        assert_eq!(
            line(&p),
            format!(
                "{without} | echo 120/s p99 3.10ms | news 950 msg/s p99 12.35ms | login 118/s 2 failed p99 40.00ms \
                 | publish 10/s"
            )
        );
    }

    #[test]
    fn bar_and_line_render() {
        assert_eq!(bar(5, 10), "[##########----------]  50%");
        assert_eq!(bar(0, 0), "[####################] 100%");
        assert_eq!(
            line(&progress()),
            "[##########----------]  50%    3s running | active 4 | conn/s 0 | msg/s 0 | p50 0.00ms p99 0.00ms \
             | sent 0 resp 0 | errors a=1,x=2 | throttled: a1"
        );
    }

    #[test]
    fn saturated_agents_are_named_on_the_line() {
        let p = Progress {
            saturated_agents: vec!["pinned (cpu 97% of 1 core, lag p99 80ms)".into()],
            ..progress()
        };
        assert_eq!(
            line(&p),
            format!(
                "{} | SATURATED: pinned (cpu 97% of 1 core, lag p99 80ms)",
                line(&progress())
            )
        );
    }

    /// On a terminal the bar shows what the plain line shows.
    #[test]
    fn the_terminal_bar_shows_the_same_information() {
        let term = InMemoryTerm::new(4, 200);
        let view = ProgressView::bar(ProgressDrawTarget::term_like(Box::new(term.clone())));
        let p = progress();
        view.show(&p);
        let Output::Bar(b) = &view.out else { panic!("not a bar") };
        b.tick();
        let shown = term.contents();
        assert!(shown.starts_with("[##########----------]  50% "), "{shown}");
        assert!(shown.contains(&details(&p)), "{shown}");
    }
}
