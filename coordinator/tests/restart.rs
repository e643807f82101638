//! Runs that survive a restart: `ws-coordinator serve` is SIGKILLed in the middle of
//! a run and started again on the same state directory; the run that had finished is
//! still listed with its summary and report, the one in progress as interrupted.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tonic::transport::Channel;
use wsload_proto::pb::{
    control_client::ControlClient, GetSummaryRequest, ListRunsRequest, Plan, RunState, StartRunRequest, Summary,
    WatchRunRequest,
};
use wsload_testkit::*;

type Client = ControlClient<tonic::service::interceptor::InterceptedService<Channel, wsload_common::BearerAuth>>;

const TOKEN: &str = "restart-token-0123456789";

async fn client(url: &str) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    ControlClient::with_interceptor(channel, wsload_common::auth_interceptor(Some(TOKEN.into())))
}

async fn summary(c: &mut Client, run_id: &str) -> Summary {
    c.get_summary(GetSummaryRequest { run_id: run_id.into() })
        .await
        .unwrap()
        .into_inner()
}

async fn start(c: &mut Client, plan: Plan) -> String {
    c.start_run(StartRunRequest {
        plan: Some(plan),
        min_agents: 1,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .run_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_runs_are_listed_after_a_restart_and_a_killed_run_is_interrupted() {
    let (addr, stats) = test_ws_server(Duration::from_millis(1)).await;
    let port = Port::reserve();
    let url = format!("http://{}", port.addr());
    let out = out_dir("restart");
    let state = out.join("state");
    let serve_args = ["--token", TOKEN, "--state-dir", state.to_str().unwrap()];
    let mut serve = coordinator_serve(&port, &out, &serve_args);
    let _agent = agent_process(&url, "survivor", &["--token", TOKEN]);
    let mut c = client(&url).await;

    // Run 1: 6 sessions of 2 messages, to completion.
    let first = start(
        &mut c,
        Plan {
            target: format!("ws://{addr}/ws"),
            sessions: 6,
            batch_size: 3,
            messages_per_session: Some(2),
            ..Default::default()
        },
    )
    .await;
    let mut watch = c
        .watch_run(WatchRunRequest { run_id: first.clone() })
        .await
        .unwrap()
        .into_inner();
    while let Some(p) = tokio::time::timeout(Duration::from_secs(30), watch.message())
        .await
        .expect("run 1 ends")
        .unwrap()
    {
        if p.done {
            break;
        }
    }
    let before = summary(&mut c, &first).await;
    assert!(before.finished);
    assert_eq!(before.run_state(), RunState::Completed);
    assert_eq!(
        (before.sessions_completed, before.messages_sent, before.responses),
        (6, 12, 12)
    );
    assert!(before.started_unix_micros > 0);

    // Run 2: sessions held long; the coordinator is killed once they are open.
    let opened = stats.accepted.load(Ordering::SeqCst);
    let second = start(
        &mut c,
        Plan {
            target: format!("ws://{addr}/ws"),
            sessions: 4,
            batch_size: 4,
            messages_per_session: Some(1),
            hold_ms: 60_000,
            ..Default::default()
        },
    )
    .await;
    let waited = wait_until_async(Duration::from_secs(30), "run 2's sessions to open", || async {
        stats.accepted.load(Ordering::SeqCst) >= opened + 4
    })
    .await;
    if let Err(e) = waited {
        panic!(
            "{e}: {:?}, accepted {}",
            summary(&mut c, &second).await,
            stats.accepted.load(Ordering::SeqCst)
        );
    }
    assert_eq!(summary(&mut c, &second).await.run_state(), RunState::Running);
    serve.signal(Signal::SIGKILL);
    assert!(serve.wait_timeout(Duration::from_secs(10)).is_some(), "serve is gone");
    drop(serve);
    // A corrupt record (a disk error, a stray file) is skipped, not fatal.
    std::fs::write(state.join("run-0badc0ffee00.run.pb"), b"\xff\xff\xff garbage").unwrap();

    let _serve = coordinator_serve(&port, &out, &serve_args);
    let mut c = client(&url).await;
    let runs = c.list_runs(ListRunsRequest {}).await.unwrap().into_inner().runs;
    let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    // The finished run: the same summary as before the kill, and its report on disk.
    assert_eq!(runs[1], before);
    let report = std::path::Path::new(&before.report_dir);
    assert_eq!(report, out.join(&first));
    assert!(report.join("results.json").exists());
    // The run in progress: interrupted, with the reason, not forgotten.
    let s = summary(&mut c, &second).await;
    assert_eq!(s, runs[0]);
    assert_eq!(s.run_state(), RunState::Interrupted);
    assert!(s.finished);
    assert_eq!(s.state_reason, "the coordinator stopped while the run was in progress");
    assert_eq!(s.sessions, 4);
    // "" is the newest run; watching a stored run gives its final state at once.
    assert_eq!(summary(&mut c, "").await.run_id, second);
    let mut watch = c
        .watch_run(WatchRunRequest { run_id: first.clone() })
        .await
        .unwrap()
        .into_inner();
    let last = watch.message().await.unwrap().unwrap();
    assert!(last.done);
    assert_eq!(last.run_state(), RunState::Completed);
}
