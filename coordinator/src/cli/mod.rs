//! The `ws-coordinator` command line: options structs (parsed by the thin binary or
//! by tests with `Cli::parse_from`) and one module per command.

pub mod remote;
pub mod run;
pub mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::exit::CliError;
use crate::hub::OnAgentLoss;
use crate::plan::PlanArgs;

/// `ws-coordinator`: distributed WebSocket load tests.
#[derive(Debug, Parser)]
#[command(
    name = "ws-coordinator",
    version,
    about,
    after_help = "Exit codes: 0 ok, 1 operational error, 2 bad input, 3 threshold failed, 4 run failed/aborted/stopped."
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one load test (self-contained with local agents, or --remote).
    Run(Box<RunOpts>),
    /// Serve agents and remote control as a daemon.
    Serve(ServeOpts),
    /// List the agents connected to a remote coordinator.
    Agents(RemoteOpts),
    /// Show a run's status or summary on a remote coordinator.
    Status(RunRef),
    /// Stop a run on a remote coordinator.
    Stop(RunRef),
}

/// Token options shared by every command.
#[derive(Debug, Clone, Args)]
pub struct TokenOpts {
    /// Shared token for agents and control clients.
    #[arg(long, env = "WSLOAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Explicitly run without a token.
    #[arg(long)]
    pub insecure: bool,
}

/// TLS for the gRPC listener (rustls): both or neither.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsServerOpts {
    /// PEM certificate chain of the gRPC listener (enables TLS; agents dial https://).
    #[arg(long, env = "WSLOAD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "WSLOAD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsServerOpts {
    /// Loads the identity, if TLS is on.
    pub fn identity(&self) -> Result<Option<tonic::transport::Identity>, CliError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", p.display())))
        };
        Ok(Some(tonic::transport::Identity::from_pem(read(cert)?, read(key)?)))
    }
}

/// TLS when dialing a coordinator (remote commands, and local agents of a TLS run).
#[derive(Debug, Clone, Default, Args)]
pub struct TlsClientOpts {
    /// PEM CA certificate of the coordinator's TLS certificate.
    #[arg(long, env = "WSLOAD_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify in the coordinator's certificate [default: URL host; local agents: localhost].
    #[arg(long, env = "WSLOAD_TLS_DOMAIN")]
    pub tls_domain: Option<String>,
}

/// `run` options.
#[derive(Debug, Clone, Args)]
pub struct RunOpts {
    /// The load plan.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Report directory (results.txt, results.json, timeseries.csv, charts).
    #[arg(long, default_value = "wsload-report")]
    pub out: PathBuf,
    /// Threshold on the merged data, e.g. 'rtt_p99<250ms' (repeatable).
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// Address agents and control clients connect to.
    #[arg(long, env = "WSLOAD_LISTEN", default_value = "0.0.0.0:7700")]
    pub listen: SocketAddr,
    /// External agents to wait for before starting.
    #[arg(long, default_value_t = 0)]
    pub agents: usize,
    /// In-process agents [default: 1 without --agents, else 0].
    #[arg(long)]
    pub local_agents: Option<usize>,
    /// What to do when an agent is lost mid-run.
    #[arg(long, value_enum, default_value_t = OnAgentLoss::Continue)]
    pub on_agent_loss: OnAgentLoss,
    /// How long to wait for the agents before failing.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub agent_wait: Duration,
    /// An agent silent this long is lost.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub heartbeat_timeout: Duration,
    /// PEM CA certificate(s) the in-process agents trust for a `wss://` target, besides
    /// the system's roots (external agents take their own `--target-ca`).
    #[arg(long = "target-ca", env = "WSLOAD_TARGET_CA")]
    pub target_ca: Option<PathBuf>,
    /// Submit the run to a `serve` daemon at this URL instead and follow it.
    #[arg(long, env = "WSLOAD_REMOTE")]
    pub remote: Option<String>,
    /// No per-second progress lines.
    #[arg(long)]
    pub quiet: bool,
    /// Token options.
    #[command(flatten)]
    pub auth: TokenOpts,
    /// TLS of the listener.
    #[command(flatten)]
    pub tls: TlsServerOpts,
    /// TLS when dialing (local agents, --remote).
    #[command(flatten)]
    pub tls_client: TlsClientOpts,
}

/// `serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeOpts {
    /// Listen address.
    #[arg(long, env = "WSLOAD_LISTEN", default_value = "0.0.0.0:7700")]
    pub listen: SocketAddr,
    /// Base directory; each run's report goes to DIR/<run id>.
    #[arg(long, env = "WSLOAD_OUT", default_value = "wsload-runs")]
    pub out: PathBuf,
    /// How long a run waits for its agents.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub agent_wait: Duration,
    /// An agent silent this long is lost.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub heartbeat_timeout: Duration,
    /// Token options.
    #[command(flatten)]
    pub auth: TokenOpts,
    /// TLS of the listener.
    #[command(flatten)]
    pub tls: TlsServerOpts,
}

/// Options of commands talking to a remote coordinator.
#[derive(Debug, Clone, Args)]
pub struct RemoteOpts {
    /// Coordinator URL, e.g. http://127.0.0.1:7700.
    #[arg(long, env = "WSLOAD_REMOTE")]
    pub remote: String,
    /// Token options.
    #[command(flatten)]
    pub auth: TokenOpts,
    /// TLS when dialing.
    #[command(flatten)]
    pub tls: TlsClientOpts,
}

/// A remote run reference.
#[derive(Debug, Clone, Args)]
pub struct RunRef {
    /// Remote coordinator.
    #[command(flatten)]
    pub remote: RemoteOpts,
    /// Run id (default: the current or latest run).
    #[arg(long = "run", default_value = "")]
    pub run_id: String,
}

/// Runs a command; returns the exit code.
pub async fn execute(cli: Cli, cancel: CancellationToken) -> Result<u8, CliError> {
    match cli.command {
        Command::Run(o) => run::run(*o, cancel).await,
        Command::Serve(o) => serve::serve(o, cancel).await,
        Command::Agents(o) => remote::agents(o).await,
        Command::Status(o) => remote::status(o).await,
        Command::Stop(o) => remote::stop(o).await,
    }
}
