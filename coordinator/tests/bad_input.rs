//! Bad input gives a clear error and no hang: invalid plan values, threshold syntax,
//! a wrong token, a protocol version mismatch, a missing token.

use std::process::{Command, Output};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wsload_agent::{AgentError, AgentOpts};
use wsload_coordinator::auth::Auth;
use wsload_coordinator::cli::serve::serve_on;
use wsload_proto::PROTOCOL_VERSION;
use wsload_testkit::*;

fn coordinator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ws-coordinator"))
        .args(args)
        .output()
        .expect("run ws-coordinator")
}

fn assert_bad(args: &[&str], needle: &str) {
    let out = coordinator(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: expected `{needle}` in: {err}");
}

#[test]
fn invalid_plans_and_thresholds_exit_2_naming_the_field() {
    let t = "ws://127.0.0.1:9/ws";
    assert_bad(&["run", "--target", t, "--batch-size", "0"], "batch-size");
    assert_bad(&["run", "--target", t, "--batch-interval", "soon"], "batch-interval");
    assert_bad(&["run", "--target", t, "--connect-timeout", "0"], "connect-timeout");
    assert_bad(&["run", "--target", t, "--payload-size", "99999999"], "payload-size");
    assert_bad(&["run", "--target", "http://127.0.0.1:9/"], "target");
    assert_bad(&["run", "--sessions", "10"], "target");
    assert_bad(&["run", "--target", t, "--threshold", "rtt_p99<250"], "time unit");
    assert_bad(&["run", "--target", t, "--agents", "1"], "--insecure");
    assert_bad(&["serve", "--listen", "127.0.0.1:0"], "--insecure");
    let wss = ["run", "--listen", "127.0.0.1:0", "--target", "wss://127.0.0.1:9/ws"];
    assert_bad(
        &[&wss[..], &["--target-ca", "/nonexistent/ca.pem"]].concat(),
        "target-ca",
    );
    let dir = out_dir("badplan");
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, "target = \"ws://127.0.0.1:9/\"\nmessages-per-sesion = 3\n").unwrap();
    assert_bad(&["run", "--plan", plan.to_str().unwrap()], "messages-per-sesion");
}

/// A threshold naming a step (or handler count) the plan does not have is refused
/// before anything connects, with the names the plan has.
#[test]
fn thresholds_naming_unknown_steps_exit_2_listing_the_known_ones() {
    let t = "ws://127.0.0.1:9/ws";
    assert_bad(
        &["run", "--target", t, "--threshold", "step.echo.p99<1s"],
        "threshold `step.echo.p99<1s`: the plan has no step named `echo` (the plan has no named steps)",
    );
    let plan = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/named-steps.toml");
    for (threshold, needle) in [
        (
            "step.nwes.p99<1s",
            "the plan has no step named `nwes` (named steps: publish, news, quiet)",
        ),
        (
            "count.server_error==0",
            "no handler of the plan counts `server_error` (handler counts: server_errors)",
        ),
        (
            "step.quiet.reach>=99%",
            "step `quiet` is a listen step without fan-out accounting",
        ),
        ("step.news.median<1s", "bad statistic `median`"),
    ] {
        assert_bad(&["run", "--plan", plan, "--threshold", threshold], needle);
    }
}

/// A plan its own --max-active-batches holds back is run in waves: the coordinator
/// says so at validation, before waiting for agents, with the number it will reach
/// and the flag to change.
#[test]
fn a_batch_cap_below_the_plan_is_announced_at_validation() {
    let out = coordinator(&[
        "run",
        "--target",
        "ws://127.0.0.1:9/ws",
        "--sessions",
        "100000",
        "--messages-per-session",
        "1",
        "--hold-time",
        "10m",
        "--agents",
        "1",
        "--insecure",
        "--listen",
        "127.0.0.1:0",
        "--agent-wait",
        "100ms",
        "--quiet",
        "--out",
        out_dir("batchcap").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "ws-coordinator: warning: the plan asks to hold 100000 sessions at once (100 batches \
             of 1000 overlap), but --max-active-batches 50 lets at most 50000 run at once: later \
             batches wait for earlier ones to end; set --max-active-batches 100 to hold them all"
        ),
        "{err}"
    );
    // A warning: the run goes on (and fails here for want of an agent).
    assert_eq!(out.status.code(), Some(4), "{err}");
}

#[test]
fn agent_without_token_or_insecure_exits_2() {
    let out = Command::new(workspace_bin("ws-agent"))
        .args(["--coordinator", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure"));
    let out = Command::new(workspace_bin("ws-agent"))
        .args([
            "--coordinator",
            "http://127.0.0.1:9",
            "--insecure",
            "--target-ca",
            "/nonexistent/ca.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("target-ca"));
}

async fn serve_with_token(token: &str) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    let opts =
        match <wsload_coordinator::cli::Cli as clap::Parser>::parse_from(["c", "serve", "--out", "/tmp/wsload-unused"])
            .command
        {
            wsload_coordinator::cli::Command::Serve(o) => o,
            _ => unreachable!(),
        };
    tokio::spawn(serve_on(
        listener,
        opts,
        Auth::new(Some(token.into()), false).unwrap(),
        cancel.clone(),
    ));
    (url, cancel)
}

fn agent_error(mut p: Proc) -> (Option<i32>, String) {
    let status = p
        .wait_timeout(Duration::from_secs(20))
        .expect("agent exits instead of retrying forever");
    let mut err = String::new();
    use std::io::Read;
    p.child().stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code(), err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_refused_on_both_paths() {
    let (url, cancel) = serve_with_token("right").await;
    let (code, err) = agent_error(agent_process(&url, "intruder", &["--token", "wrong"]));
    assert_eq!(code, Some(3));
    assert!(err.contains("refused this agent's credentials"), "{err}");
    let (code, err) = agent_error(agent_process(&url, "anonymous", &["--insecure"]));
    assert_eq!(code, Some(3), "{err}");
    let out = tokio::task::spawn_blocking(move || coordinator(&["agents", "--remote", &url, "--token", "wrong"]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token"));
    cancel.cancel();
}

/// The coordinator refuses an agent of another protocol version with a typed refusal
/// (FAILED_PRECONDITION plus its version in metadata) and a message for people.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_version_mismatch_is_refused_with_a_clear_message() {
    let (url, cancel) = serve_with_token("t").await;
    let mut opts = AgentOpts::local(url, "old".into(), Some("t".into()));
    opts.protocol_version = 99;
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        wsload_agent::run(opts, CancellationToken::new()),
    )
    .await
    .expect("agent stops instead of retrying forever")
    .expect_err("refused");
    assert!(
        matches!(
            err,
            AgentError::VersionMismatch {
                agent: 99,
                coordinator: PROTOCOL_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    let shown = err.to_string();
    let coordinator = format!("coordinator speaks wsload protocol {PROTOCOL_VERSION}");
    assert!(shown.contains(&coordinator), "{shown}");
    cancel.cancel();
}
