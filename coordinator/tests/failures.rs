//! Agent loss and coordinator loss, with real agent processes.
//!
//! Each test acts (kills, freezes) once what it needs is observable, not after a
//! fixed time: the agent it kills connects from its own loopback address, so the
//! test server can tell when that agent holds open sessions. (A fixed 2.5 s sleep
//! failed on a busy machine: the agents took long to start, and the victim was
//! killed before its first session opened, so no session could be lost.)

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wsload_coordinator::cli::RunOpts;
use wsload_coordinator::exit::CliError;
use wsload_coordinator::hub::Finished;
use wsload_proto::pb::RunState;
use wsload_testkit::*;

/// The source address of the agent a test kills or freezes.
const TARGETED_AGENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// An in-process run, not started yet, whose agents are `ws-agent` processes the test
/// starts itself: the setup both agent-loss tests share.
struct LossRun {
    /// The URL the agents dial.
    coord: String,
    listener: TcpListener,
    opts: RunOpts,
    out: OutDir,
    /// The test server's counters.
    stats: Arc<Stats>,
}

impl LossRun {
    /// A test WebSocket server replying after `delay` and a run of `args` against it,
    /// plus what both loss tests plan alike: two agents, batches of 2 sessions held 1 s,
    /// no TLS and a fresh report directory named after `name`.
    async fn new(name: &str, delay: Duration, args: &[&str]) -> Self {
        let (addr, stats) = test_ws_server(delay).await;
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
            stats,
        }
    }

    /// Starts the agent the test will kill or freeze: it connects from
    /// [`TARGETED_AGENT_IP`].
    fn targeted_agent(&self, name: &str, extra: &[&str]) -> Proc {
        let ip = TARGETED_AGENT_IP.to_string();
        let mut args = vec!["--insecure", "--source-ips", &ip];
        args.extend_from_slice(extra);
        agent_process(&self.coord, name, &args)
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

/// Waits until the targeted agent holds open sessions at the test server.
async fn targeted_agent_has_sessions(stats: &Stats) {
    wait_until_async(
        Duration::from_secs(30),
        "the targeted agent to open sessions",
        || async { stats.open_from(TARGETED_AGENT_IP) > 0 },
    )
    .await
    .unwrap();
}

/// Whether the coordinator at `coord` lists an idle agent called `name`.
async fn agent_idle(coord: &str, name: &str) -> bool {
    let Ok(channel) = tonic::transport::Endpoint::from_shared(coord.to_owned())
        .unwrap()
        .connect()
        .await
    else {
        return false;
    };
    let mut client = wsload_proto::pb::control_client::ControlClient::new(channel);
    let Ok(list) = client.list_agents(wsload_proto::pb::ListAgentsRequest {}).await else {
        return false;
    };
    list.into_inner().agents.iter().any(|a| a.name == name && !a.busy)
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
    // Its place in the run is kept for its --grace after its link breaks (a reconnect
    // would resume it): a short one, so the loss is declared soon.
    let mut victim = run.targeted_agent("victim", &["--max-sessions", "1000", "--grace", "1s"]);
    let stats = run.stats.clone();
    let run = run.start();
    // Killed while it holds open sessions (lost) and has batches still to start
    // (reassigned): its first sessions open ~0.1 s into the ~4 s of starts.
    targeted_agent_has_sessions(&stats).await;
    victim.kill();
    let (code, f) = run.finish(Duration::from_secs(60)).await;
    let r = &f.report;
    let t = &r.totals;
    // Completed, but its lost sessions failed: exit 5 without thresholds.
    assert_eq!(code, wsload_coordinator::exit::SESSIONS_FAILED, "{:?}", f.summary);
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
    // Reserved for the whole test: the restarted coordinator listens on it again.
    let port = Port::reserve();
    let coord = format!("http://{}", port.addr());
    let out = out_dir("coordloss");
    let mut coordinator = coordinator_serve(&port, &out, &["--insecure"]);
    let mut agent = agent_process(&coord, "orphan", &["--insecure", "--grace", "2s"]);
    wait_until_async(Duration::from_secs(20), "agent orphan to register", || {
        agent_idle(&coord, "orphan")
    })
    .await
    .unwrap();
    // A run whose sessions hold for a minute, started through the remote CLI path.
    let target = format!("ws://{addr}/ws");
    let mut follower = Proc::spawn(
        std::process::Command::new(workspace_bin("ws-coordinator"))
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
            .stderr(std::process::Stdio::null()),
        "ws-coordinator run --remote",
    );
    wait_until_async(Duration::from_secs(20), "the 20 sessions to open", || {
        std::future::ready(follower.exited().is_some() || stats.open.load(Ordering::SeqCst) >= 20)
    })
    .await
    .unwrap();
    assert_eq!(follower.exited(), None, "the remote run ended early");
    coordinator.kill();
    let killed = Instant::now();
    wait_until_async(
        killed + Duration::from_secs(8),
        "the agent to close its sessions",
        || async { stats.open.load(Ordering::SeqCst) == 0 },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: agent kept {} sessions open", stats.open.load(Ordering::SeqCst)));
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "closed after {took:?}: before the grace period?"
    );
    // The agent itself keeps retrying (it is a daemon) and registers again with a
    // restarted coordinator.
    assert_eq!(agent.exited(), None);
    let _restarted = coordinator_serve(&port, &out, &["--insecure"]);
    wait_until_async(Duration::from_secs(15), "agent orphan to re-register", || {
        agent_idle(&coord, "orphan")
    })
    .await
    .unwrap();
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
    // Lost once silent for the heartbeat timeout and its (shorter) --grace.
    let frozen = run.targeted_agent("frozen", &["--grace", "1s"]);
    let stats = run.stats.clone();
    let run = run.start();
    // Frozen mid-run: once it holds open sessions.
    targeted_agent_has_sessions(&stats).await;
    frozen.signal(Signal::SIGSTOP);
    let started = Instant::now();
    let (code, f) = run.finish(Duration::from_secs(30)).await;
    frozen.signal(Signal::SIGCONT);
    assert_eq!(code, wsload_coordinator::exit::RUN_FAILED);
    assert_eq!(f.summary.run_state(), RunState::Aborted);
    assert_eq!(f.summary.state_reason, "agent frozen lost (--on-agent-loss abort)");
    // Lost after ~2-3 s (heartbeat timeout, grace), then up to 5 s of drain and the
    // debug build's report: a run that waited on the frozen agent fails here.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(f.summary.lost_agents, vec!["frozen".to_string()]);
}
