//! Documented exit codes of `ws-coordinator`, and the CLI error that carries one.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | run completed and every threshold passed (or command succeeded) |
//! | 1 | operational error: cannot listen, cannot reach the remote coordinator, I/O |
//! | 2 | bad input: invalid flag, plan value, threshold expression, or missing token; or agents that cannot hold the plan (`over capacity:`, unless `--allow-over-capacity`) |
//! | 3 | the run completed but at least one threshold failed |
//! | 4 | the run failed, was aborted (agent loss with `abort`, max duration) or stopped |
//! | 5 | the run completed without thresholds, but sessions failed (failed connections, errored or lost sessions); `--allow-failures` makes it 0 |
//!
//! With thresholds, they alone judge a completed run (a plan that expects failures
//! says how many it tolerates, e.g. `sessions_failed<10`); without, any failed session
//! fails the run, as Locust's `--exit-code-on-error` does.

use wsload_proto::pb::RunState;

/// Success.
pub const OK: u8 = 0;
/// Operational error.
pub const ERROR: u8 = 1;
/// Bad input (same code clap uses for usage errors).
pub const BAD_INPUT: u8 = 2;
/// A threshold failed.
pub const THRESHOLD_FAILED: u8 = 3;
/// The run failed, was aborted or stopped.
pub const RUN_FAILED: u8 = 4;
/// No thresholds, and sessions failed.
pub const SESSIONS_FAILED: u8 = 5;

/// An error with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// Exit code (see the module docs).
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl CliError {
    /// A bad-input error (exit 2).
    pub fn bad_input(e: impl std::fmt::Display) -> Self {
        CliError {
            code: BAD_INPUT,
            message: e.to_string(),
        }
    }

    /// An operational error (exit 1).
    pub fn op(e: impl std::fmt::Display) -> Self {
        CliError {
            code: ERROR,
            message: e.to_string(),
        }
    }
}

/// What a finished run's exit code depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunVerdict<'a> {
    /// How it ended.
    pub state: RunState,
    /// Why it failed or was aborted (empty otherwise).
    pub reason: &'a str,
    /// Thresholds were given.
    pub has_thresholds: bool,
    /// Every threshold passed (true without thresholds).
    pub thresholds_passed: bool,
    /// Failed connections + errored + lost sessions.
    pub sessions_failed: u64,
}

/// Exit code of a finished run; `allow_failures` is `--allow-failures`.
pub fn for_run(v: RunVerdict<'_>, allow_failures: bool) -> u8 {
    match v.state {
        RunState::Completed if v.has_thresholds && !v.thresholds_passed => THRESHOLD_FAILED,
        RunState::Completed if !v.has_thresholds && v.sessions_failed > 0 && !allow_failures => SESSIONS_FAILED,
        RunState::Completed => OK,
        RunState::Failed if v.reason.starts_with(crate::capacity::OVER_CAPACITY) => BAD_INPUT,
        _ => RUN_FAILED,
    }
}

/// The line explaining exit 5, if it applies.
pub fn failures_note(code: u8, sessions_failed: u64) -> Option<String> {
    (code == SESSIONS_FAILED).then(|| {
        format!(
            "ws-coordinator: {sessions_failed} session(s) failed and no --threshold judges the run: \
             exit {SESSIONS_FAILED} (--allow-failures to exit 0)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(state: RunState, has_thresholds: bool, thresholds_passed: bool, sessions_failed: u64) -> RunVerdict<'static> {
        RunVerdict {
            state,
            reason: "",
            has_thresholds,
            thresholds_passed,
            sessions_failed,
        }
    }

    #[test]
    fn only_a_completed_run_can_succeed() {
        assert_eq!(for_run(v(RunState::Completed, true, true, 0), false), OK);
        assert_eq!(for_run(v(RunState::Completed, true, false, 0), false), THRESHOLD_FAILED);
        for s in [
            RunState::Stopped,
            RunState::Aborted,
            RunState::Failed,
            RunState::Unspecified,
        ] {
            assert_eq!(for_run(v(s, true, true, 0), true), RUN_FAILED, "{s:?}");
        }
    }

    #[test]
    fn failed_sessions_fail_a_run_without_thresholds() {
        assert_eq!(for_run(v(RunState::Completed, false, true, 0), false), OK);
        assert_eq!(
            for_run(v(RunState::Completed, false, true, 100), false),
            SESSIONS_FAILED
        );
        assert_eq!(for_run(v(RunState::Completed, false, true, 100), true), OK);
        // Thresholds that pass judge the run, failures or not.
        assert_eq!(for_run(v(RunState::Completed, true, true, 100), false), OK);
        assert_eq!(
            failures_note(SESSIONS_FAILED, 100).unwrap(),
            "ws-coordinator: 100 session(s) failed and no --threshold judges the run: exit 5 \
             (--allow-failures to exit 0)"
        );
        assert_eq!(failures_note(OK, 0), None);
    }

    #[test]
    fn agents_over_capacity_are_bad_input() {
        let refused = RunVerdict {
            reason: "over capacity: the plan holds up to 3000 sessions at once",
            ..v(RunState::Failed, false, true, 0)
        };
        assert_eq!(for_run(refused, false), BAD_INPUT);
    }
}
