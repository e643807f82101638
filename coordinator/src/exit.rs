//! Documented exit codes of `ws-coordinator`, and the CLI error that carries one.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | run completed and every threshold passed (or command succeeded) |
//! | 1 | operational error: cannot listen, cannot reach the remote coordinator, I/O |
//! | 2 | bad input: invalid flag, plan value, threshold expression, or missing token |
//! | 3 | the run completed but at least one threshold failed |
//! | 4 | the run failed, was aborted (agent loss with `abort`, max duration) or stopped |

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

/// Exit code of a finished run from its state text and threshold results.
pub fn for_run(state: &str, thresholds_passed: bool) -> u8 {
    if state != "completed" {
        RUN_FAILED
    } else if !thresholds_passed {
        THRESHOLD_FAILED
    } else {
        OK
    }
}
