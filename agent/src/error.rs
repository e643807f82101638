//! Errors of the agent library (mapped to a message and exit code by the binary).

/// Why the agent stopped for good (transient link failures are retried, not returned).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A command-line value is unusable.
    #[error("invalid --{field}: {reason}")]
    InvalidOption {
        /// The option name, without dashes.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The coordinator speaks another protocol version.
    #[error(
        "protocol version mismatch: this agent speaks wsload protocol {agent}, the coordinator refused it: {detail}"
    )]
    VersionMismatch {
        /// Our version.
        agent: u32,
        /// The coordinator's version (from the refusal's metadata or its Welcome).
        coordinator: u32,
        /// The coordinator's message.
        detail: String,
    },
    /// The coordinator refused our token (or we sent none to a secured coordinator).
    #[error("the coordinator refused this agent's credentials: {0}")]
    Unauthenticated(String),
    /// Any other permanent refusal.
    #[error("the coordinator refused this agent: {0}")]
    Refused(String),
}

impl AgentError {
    /// An [`AgentError::InvalidOption`] for `--field`, saying what `reason` says.
    pub fn invalid_option(field: &'static str, reason: impl std::fmt::Display) -> Self {
        AgentError::InvalidOption {
            field,
            reason: reason.to_string(),
        }
    }
}
