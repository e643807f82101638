//! Agent loss and coordinator loss, with real agent processes.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wsload_coordinator::cli::RunOpts;
use wsload_coordinator::exit::CliError;
use wsload_coordinator::hub::Finished;

/// An in-process run, not started yet, whose agents are `ws-agent` processes the test
/// starts itself: the setup both agent-loss tests share.
struct LossRun {
    /// The URL the agents dial.
    coord: String,
    listener: TcpListener,
    opts: RunOpts,
    out: OutDir,
}

impl LossRun {
    /// A test WebSocket server replying after `delay` and a run of `args` against it,
    /// plus what both loss tests plan alike: two agents, batches of 2 sessions held 1 s,
    /// no TLS and a fresh report directory named after `name`.
    async fn new(name: &str, delay: Duration, args: &[&str]) -> Self {
        let (addr, _stats) = test_ws_server(delay).await;
        let target = format!("ws://{addr}/ws");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let coord = format!("http://{}", listener.local_addr().unwrap());
        let out = out_dir(name);
        let mut all = vec![
            "--target",
            &target,
            "--batch-size",
            "2",
            "--hold-time",
            "1s",
            "--agents",
            "2",
            "--insecure",
            "--out",
            out.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let opts = run_opts(&all);
        Self {
            coord,
            listener,
            opts,
            out,
        }
    }

    /// Starts the run in the background, once the test has started its agents.
    fn start(self) -> StartedRun {
        StartedRun {
            task: tokio::spawn(wsload_coordinator::cli::run::run_on(
                self.listener,
                self.opts,
                CancellationToken::new(),
            )),
            _out: self.out,
        }
    }
}

/// A run going on in the background; it keeps its report directory until the run has ended.
struct StartedRun {
    task: JoinHandle<Result<(u8, Finished), CliError>>,
    _out: OutDir,
}

impl StartedRun {
    /// Waits for the run's end, failing the test if it errors or takes longer than `limit`
    /// from now.
    async fn finish(self, limit: Duration) -> (u8, Finished) {
        tokio::time::timeout(limit, self.task)
            .await
            .expect("no hang")
            .unwrap()
            .expect("run ok")
    }
}

/// Starts `ws-coordinator serve` on `port` (no TLS, reports in `out`); the coordinator-loss
/// test starts one, kills it, then starts another in its place.
fn serve(port: u16, out: &OutDir) -> Proc {
    Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_ws-coordinator"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--insecure",
                "--out",
                out.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Kill one of two agents mid-run: the run completes, the lost sessions and the
/// reassigned batches are reported, and the totals still add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_loss_reassigns_batches_and_totals_add_up() {
    // 40 batches of 2 sessions, one every 100 ms: ~4 s of starts; sessions hold 1 s.
    let run = LossRun::new(
        "agentloss",
        Duration::from_millis(5),
        &[
            "--sessions",
            "80",
            "--batch-interval",
            "100ms",
            "--messages-per-session",
            "3",
            "--heartbeat-timeout",
            "3s",
        ],
    )
    .await;
    let _a = agent_process(&run.coord, "survivor", &["--insecure", "--max-sessions", "1000"]);
    let mut victim = agent_process(&run.coord, "victim", &["--insecure", "--max-sessions", "1000"]);
    let run = run.start();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    victim.0.kill().unwrap();
    let (code, f) = run.finish(Duration::from_secs(60)).await;
    let r = &f.report;
    let t = &r.totals;
    assert_eq!(code, 0, "{:?}", f.summary);
    assert_eq!(f.summary.lost_agents, vec!["victim".to_string()]);
    assert!(t.reassigned_batches > 0, "{t:?}");
    assert!(t.lost_sessions > 0, "{t:?}");
    assert!(r.agents.iter().any(|a| a.lost));
    // Every planned session is accounted for exactly once.
    let failed = t.failed_connections + t.sessions_errored;
    assert_eq!(
        f.summary.sessions_completed + failed + t.lost_sessions,
        80,
        "{t:?} {:?}",
        f.summary
    );
    assert_eq!(failed, 0, "{:?}", t.errors);
}

/// Kill the coordinator mid-run: agents close their sessions within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_loss_stops_load_within_grace_period_then_agent_reregisters() {
    let (addr, stats) = test_ws_server(Duration::from_millis(1)).await;
    let port = free_port();
    let coord = format!("http://127.0.0.1:{port}");
    let out = out_dir("coordloss");
    let mut coordinator = serve(port, &out);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut agent = agent_process(&coord, "orphan", &["--insecure", "--grace", "2s"]);
    // A run whose sessions hold for a minute, started through the remote CLI path.
    let target = format!("ws://{addr}/ws");
    let start = std::process::Command::new(env!("CARGO_BIN_EXE_ws-coordinator"))
        .args([
            "run",
            "--remote",
            &coord,
            "--insecure",
            "--target",
            &target,
            "--sessions",
            "20",
            "--batch-size",
            "20",
            "--messages-per-session",
            "1",
            "--hold-time",
            "60s",
            "--agents",
            "1",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _follower = Proc(start);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.open.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "sessions never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    coordinator.0.kill().unwrap();
    let killed = Instant::now();
    while stats.open.load(Ordering::SeqCst) > 0 {
        assert!(
            killed.elapsed() < Duration::from_secs(8),
            "agent kept {} sessions open",
            stats.open.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "closed after {took:?}: before the grace period?"
    );
    // The agent itself keeps retrying (it is a daemon) and registers again with a
    // restarted coordinator.
    assert!(agent.0.try_wait().unwrap().is_none());
    let _restarted = serve(port, &out);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < deadline, "agent did not re-register");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Ok(channel) = tonic::transport::Endpoint::from_shared(coord.clone())
            .unwrap()
            .connect()
            .await
        else {
            continue;
        };
        let mut client = wsload_proto::pb::control_client::ControlClient::new(channel);
        let Ok(list) = client.list_agents(wsload_proto::pb::ListAgentsRequest {}).await else {
            continue;
        };
        if list.into_inner().agents.iter().any(|a| a.name == "orphan" && !a.busy) {
            break;
        }
    }
}

/// `--on-agent-loss abort` ends the run when an agent stops heartbeating (here it is
/// frozen with SIGSTOP, so its TCP connection stays up): exit code 4, reason given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_agent_is_lost_by_heartbeat_and_abort_policy_ends_the_run() {
    let run = LossRun::new(
        "frozen",
        Duration::from_millis(1),
        &[
            "--sessions",
            "40",
            "--batch-interval",
            "200ms",
            "--messages-per-session",
            "2",
            "--heartbeat-timeout",
            "2s",
            "--on-agent-loss",
            "abort",
        ],
    )
    .await;
    let _a = agent_process(&run.coord, "steady", &["--insecure"]);
    let frozen = agent_process(&run.coord, "frozen", &["--insecure"]);
    let pid = frozen.0.id().to_string();
    let run = run.start();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let (code, f) = run.finish(Duration::from_secs(30)).await;
    let _ = std::process::Command::new("kill").args(["-CONT", &pid]).status();
    assert_eq!(code, wsload_coordinator::exit::RUN_FAILED);
    assert!(
        f.summary.state.starts_with("aborted: agent frozen lost"),
        "{}",
        f.summary.state
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(f.summary.lost_agents, vec!["frozen".to_string()]);
}
