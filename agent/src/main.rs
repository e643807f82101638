//! `ws-agent` entry point: parse options, log, run until Ctrl-C or coordinator shutdown.

use clap::Parser;
use tokio_util::sync::CancellationToken;
use wsload_agent::AgentOpts;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let opts = AgentOpts::parse();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        wsload_common::shutdown_signal().await;
        c.cancel();
    });
    match wsload_agent::run(opts, cancel).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws-agent: {e}");
            std::process::ExitCode::from(match e {
                wsload_agent::AgentError::InvalidOption { .. } => 2,
                _ => 3,
            })
        }
    }
}
