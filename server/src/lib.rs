//! `ws-server`: the scalable WebSocket server the load generator was built to test.
//!
//! A supervisor keeps N instances alive on consecutive ports; each instance speaks
//! the seed's JSON protocol over WebSocket (`ws`), counts messages in the broker (Redis or
//! in-memory), relays server events, and cleans up closed sessions in batches.

pub mod admission;
pub mod backoff;
pub mod broker;
pub mod cleanup;
pub mod config;
pub mod connection;
pub mod events;
pub mod fuzzing;
pub mod http;
pub mod hub;
pub mod instance;
pub mod listeners;
pub mod logging;
pub mod metrics;
pub mod protocol;
pub mod publish;
pub mod supervisor;
pub mod worker;
pub mod ws;

use std::ffi::OsString;
use std::net::TcpListener as StdListener;

pub use config::{Cli, Command, ServerOpts};
use tokio_util::sync::CancellationToken;

/// A failure of the server as a whole; the binary maps it to the exit code.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Bad configuration or environment (busy port, bad URL): exit code 2.
    #[error("{0}")]
    Usage(String),
    /// Options that do not fit together: exit code 2.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The Redis broker cannot be set up from its URL: exit code 2.
    #[error(transparent)]
    Redis(#[from] broker::redis::RedisSetupError),
    /// Anything else: exit code 1.
    #[error("{0}")]
    Failed(String),
}

impl ServerError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ServerError::Usage(_) | ServerError::Config(_) | ServerError::Redis(_) => 2,
            ServerError::Failed(_) => 1,
        }
    }
}

/// Runs what the command line asks for until `shutdown`. `worker_args` is the
/// supervisor's own command line, passed on to the workers it starts; `inherited`
/// are the listening sockets the parent process passed ([`listeners::inherited`]).
pub async fn run(
    cli: Cli,
    worker_args: Vec<OsString>,
    inherited: Vec<StdListener>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    cli.server.validate()?;
    raise_open_file_limit();
    match cli.command {
        None => supervisor::run(cli.server, worker_args, inherited, shutdown).await,
        Some(Command::Worker(w)) => worker::run(cli.server, w, inherited, shutdown).await,
        Some(Command::Publish(p)) => {
            let receivers = publish::run(&cli.server, &p).await?;
            println!("published to {receivers} subscribed instance(s)");
            Ok(())
        }
    }
}

/// Raises the soft open-file limit to the hard limit: every connection is a file.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            tracing::debug!(from = soft, to = hard, "raised the open-file limit");
        }
    }
}
