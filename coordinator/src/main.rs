//! `ws-coordinator` entry point: parse, log, run the command, map to an exit code.

use clap::Parser;
use tokio_util::sync::CancellationToken;
use wsload_coordinator::cli::{execute, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        wsload_common::shutdown_signal().await;
        c.cancel();
    });
    match execute(cli, cancel).await {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("ws-coordinator: {e}");
            std::process::ExitCode::from(e.code)
        }
    }
}
