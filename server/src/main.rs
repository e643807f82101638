//! `ws-server` entry point: parse, set up logging and signals, run.

use clap::Parser;
use tokio_util::sync::CancellationToken;
use wsload_server::{listeners, logging, Cli, Command};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line naming the problem, exit code 2.
            let rendered = e.render().to_string();
            eprintln!("{}", rendered.lines().next().unwrap_or("error: invalid arguments"));
            std::process::exit(2);
        }
        Err(e) => e.exit(),
    };
    // Before any thread exists: this reads and clears LISTEN_FDS / LISTEN_PID.
    let inherited = match listeners::inherited() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    };
    logging::init(cli.server.log_format);
    // A worker process gets its share of the cores; everything else one thread per core.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if matches!(cli.command, Some(Command::Worker(_))) {
        builder.worker_threads(cli.server.threads_per_worker());
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        let worker_args = std::env::args_os().skip(1).collect();
        match wsload_server::run(cli, worker_args, inherited, shutdown).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                e.exit_code()
            }
        }
    });
    if code != 0 {
        std::process::exit(code);
    }
}

/// SIGTERM or SIGINT cancels the one shutdown token.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
