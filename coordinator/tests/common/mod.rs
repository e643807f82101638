//! What the coordinator's tests share beyond the test kit: a run's options from a
//! command line, and an in-process run bounded in time.
#![allow(dead_code)]

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `ws-coordinator run --quiet ARGS...` parsed into options.
pub fn run_opts(args: &[&str]) -> wsload_coordinator::cli::RunOpts {
    use clap::Parser;
    let mut v = vec!["ws-coordinator", "run", "--quiet"];
    v.extend_from_slice(args);
    match wsload_coordinator::cli::Cli::parse_from(v).command {
        wsload_coordinator::cli::Command::Run(o) => *o,
        _ => unreachable!(),
    }
}

/// `run` options for one external (`--insecure`) agent and no in-process one, against
/// `target`, writing to `out`, plus `extra` flags.
pub fn one_external_agent_opts(
    target: &str,
    out: &std::path::Path,
    extra: &[&str],
) -> wsload_coordinator::cli::RunOpts {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "--target",
        target,
        "--agents",
        "1",
        "--local-agents",
        "0",
        "--insecure",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    run_opts(&args)
}

/// Runs `opts` in-process on `listener` and returns its exit code and result, failing
/// the test if the run errors or takes longer than `limit`: the same check ends every
/// in-process run, so a hang shows up as a failure instead of a stuck test.
pub async fn run_within(
    limit: Duration,
    listener: TcpListener,
    opts: wsload_coordinator::cli::RunOpts,
    cancel: CancellationToken,
) -> (u8, wsload_coordinator::hub::Finished) {
    tokio::time::timeout(limit, wsload_coordinator::cli::run::run_on(listener, opts, cancel))
        .await
        .expect("no hang")
        .expect("run ok")
}
