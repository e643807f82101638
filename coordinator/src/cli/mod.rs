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
    after_help = "Exit codes: 0 ok, 1 operational error, 2 bad input (or agents over capacity), 3 threshold failed, 4 run failed/aborted/stopped, 5 sessions failed in a run without thresholds (--allow-failures: 0)."
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
    /// List the runs a remote coordinator knows (they survive its restarts).
    Runs(RemoteOpts),
}

/// Token options shared by every command.
#[derive(Debug, Clone, Args)]
pub struct TokenOpts {
    /// Shared token: `serve` and `run` accept it for every role (agents, control,
    /// viewers); remote commands present it. Prefer WSLOAD_TOKEN or --token-file: a
    /// flag's value is visible to every local user in `ps`.
    #[arg(long, env = "WSLOAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File whose first line is the token (instead of --token).
    #[arg(long, env = "WSLOAD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Explicitly run without a token.
    #[arg(long)]
    pub insecure: bool,
}

impl TokenOpts {
    /// The token from --token, WSLOAD_TOKEN or --token-file.
    pub fn token(&self) -> Result<Option<String>, CliError> {
        let s = wsload_common::read_secret("token", self.token.as_deref(), self.token_file.as_deref())
            .map_err(CliError::bad_input)?;
        Ok(s.map(|s| s.expose().to_string()))
    }
}

/// Least-privilege tokens of `serve`, each also from a file (first line) or the
/// environment. `--token` still grants every role.
#[derive(Debug, Clone, Default, Args)]
pub struct RoleTokenOpts {
    /// Token agents register with; it cannot start, stop or read runs.
    #[arg(long, env = "WSLOAD_AGENT_TOKEN", hide_env_values = true)]
    pub agent_token: Option<String>,
    /// File whose first line is the agent token.
    #[arg(long, env = "WSLOAD_AGENT_TOKEN_FILE")]
    pub agent_token_file: Option<PathBuf>,
    /// Token of control clients: start and stop runs, and read them; it cannot
    /// register as an agent.
    #[arg(long, env = "WSLOAD_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
    /// File whose first line is the control token.
    #[arg(long, env = "WSLOAD_CONTROL_TOKEN_FILE")]
    pub control_token_file: Option<PathBuf>,
    /// Read-only token (dashboards): watch runs, summaries, list runs and agents.
    #[arg(long, env = "WSLOAD_VIEWER_TOKEN", hide_env_values = true)]
    pub viewer_token: Option<String>,
    /// File whose first line is the viewer token.
    #[arg(long, env = "WSLOAD_VIEWER_TOKEN_FILE")]
    pub viewer_token_file: Option<PathBuf>,
}

impl RoleTokenOpts {
    /// The token policy of these role tokens plus the shared `--token`.
    pub fn auth(&self, shared: &TokenOpts) -> Result<crate::auth::Auth, CliError> {
        use wsload_common::read_secret;
        let read = |flag, v: &Option<String>, f: &Option<PathBuf>| {
            read_secret(flag, v.as_deref(), f.as_deref()).map_err(CliError::bad_input)
        };
        let tokens = crate::auth::Tokens {
            all: read("token", &shared.token, &shared.token_file)?,
            agent: read("agent-token", &self.agent_token, &self.agent_token_file)?,
            control: read("control-token", &self.control_token, &self.control_token_file)?,
            viewer: read("viewer-token", &self.viewer_token, &self.viewer_token_file)?,
        };
        crate::auth::Auth::with_roles(tokens, shared.insecure).map_err(CliError::bad_input)
    }
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
    /// Exit 0 from a completed run without thresholds even if sessions failed
    /// (by default any failed connection, errored or lost session exits 5).
    #[arg(long, env = "WSLOAD_ALLOW_FAILURES")]
    pub allow_failures: bool,
    /// Start even if the agents cannot hold the sessions the plan holds at once (their
    /// --max-sessions, open files and source ports); by default such a run is refused
    /// before anything connects (exit 2).
    #[arg(long, env = "WSLOAD_ALLOW_OVER_CAPACITY")]
    pub allow_over_capacity: bool,
    /// Serve the live dashboard (and /metrics) on this address, e.g. 127.0.0.1:7780;
    /// any non-loopback address needs the control token.
    #[arg(long, env = "WSLOAD_DASHBOARD")]
    pub dashboard: Option<SocketAddr>,
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
    /// Where finished runs are recorded, so they are listed after a restart (and a
    /// run in progress when the coordinator died shows as interrupted)
    /// [default: OUT/.wsload-state].
    #[arg(long, env = "WSLOAD_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// How long a run waits for its agents.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub agent_wait: Duration,
    /// An agent silent this long is lost.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub heartbeat_timeout: Duration,
    /// The live dashboard's address (and /metrics) [default: 127.0.0.1:7780, skipped
    /// with a warning when taken]; any non-loopback address needs the control token.
    #[arg(long, env = "WSLOAD_DASHBOARD")]
    pub dashboard: Option<SocketAddr>,
    /// Token options.
    #[command(flatten)]
    pub auth: TokenOpts,
    /// Role tokens (least privilege); boxed to keep `Command` small.
    #[command(flatten)]
    pub roles: Box<RoleTokenOpts>,
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
        Command::Runs(o) => remote::runs(o).await,
    }
}
