//! Remote control: start a run on `serve` from a separate client, watch it, stop it;
//! plus the `agents`, `status` and `stop` commands.

use std::time::Duration;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use wsload_coordinator::auth::Auth;
use wsload_coordinator::cli::{execute, serve::serve_on, Cli, Command};
use wsload_proto::pb::{
    control_client::ControlClient, AgentLossPolicy, GetSummaryRequest, RunState, StartRunRequest, StopRunRequest,
    WatchRunRequest,
};
use wsload_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_watch_stop_a_run_on_serve() {
    let (addr, _stats) = test_ws_server(Duration::from_millis(1)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let out = out_dir("remote");
    let cancel = CancellationToken::new();
    let Command::Serve(opts) = Cli::parse_from(["c", "serve", "--out", out.to_str().unwrap()]).command else {
        unreachable!()
    };
    let server = tokio::spawn(serve_on(
        listener,
        opts,
        Auth::new(Some("tok".into()), false).unwrap(),
        cancel.clone(),
    ));
    let agent_opts = wsload_agent::AgentOpts::local(url.clone(), "remote-agent".into(), Some("tok".into()));
    let agent = tokio::spawn(wsload_agent::run(agent_opts, cancel.clone()));

    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The standard health service answers without a token.
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "wsload.v1.Control".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // Reflection lists the services, so grpcurl needs no proto files.
    {
        use tonic_reflection::pb::v1::{
            server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
            server_reflection_response::MessageResponse, ServerReflectionRequest,
        };
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel.clone())
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            stream.message().await.unwrap().unwrap().message_response
        else {
            panic!("no service list")
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.contains(&"wsload.v1.Control".to_string()), "{names:?}");
        assert!(names.contains(&"wsload.v1.AgentLink".to_string()), "{names:?}");
    }
    let mut client = ControlClient::with_interceptor(channel, wsload_common::auth_interceptor(Some("tok".into())));
    // A long run: 10 batches of 5, one per second, sessions held 30 s.
    let plan = wsload_coordinator::plan::Plan::from_pb(&wsload_proto::pb::Plan {
        target: format!("ws://{addr}/ws"),
        sessions: 50,
        batch_size: 5,
        batch_interval_ms: Some(1000),
        messages_per_session: Some(2),
        hold_ms: 30_000,
        ..Default::default()
    })
    .unwrap();
    // The typed agent-loss policy and the deprecated string must agree.
    #[allow(deprecated)]
    let conflicting = StartRunRequest {
        plan: Some(plan.to_pb()),
        agent_loss: AgentLossPolicy::Abort as i32,
        on_agent_loss: "continue".into(),
        ..Default::default()
    };
    let refused = client.start_run(conflicting).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("agent_loss"), "{}", refused.message());
    // A threshold on a step the plan does not have is refused before the run.
    let unknown_step = StartRunRequest {
        plan: Some(plan.to_pb()),
        thresholds: vec!["step.echo.p99<1s".into()],
        ..Default::default()
    };
    let refused = client.start_run(unknown_step).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("the plan has no step named `echo`"),
        "{}",
        refused.message()
    );
    let run_id = client
        .start_run(StartRunRequest {
            plan: Some(plan.to_pb()),
            min_agents: 1,
            agent_loss: AgentLossPolicy::Continue as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .run_id;
    let mut watch = client
        .watch_run(WatchRunRequest { run_id: run_id.clone() })
        .await
        .unwrap()
        .into_inner();
    // Watch until some sessions are open.
    let mut seen = 0;
    while seen == 0 {
        let p = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(!p.done);
        seen = p.active_sessions;
    }
    // The CLI commands against the same daemon.
    let cli = |args: &[&str]| {
        let mut v = vec!["ws-coordinator"];
        v.extend_from_slice(args);
        Cli::parse_from(v)
    };
    assert_eq!(
        execute(
            cli(&["agents", "--remote", &url, "--token", "tok"]),
            CancellationToken::new()
        )
        .await
        .unwrap(),
        0
    );
    assert_eq!(
        execute(
            cli(&["status", "--remote", &url, "--token", "tok"]),
            CancellationToken::new()
        )
        .await
        .unwrap(),
        0
    );
    let stopped = client
        .stop_run(StopRunRequest { run_id: run_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(stopped.stopped);
    // The watch stream ends with a final `done` update.
    let last = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match watch.message().await.unwrap() {
                Some(p) if p.done => break p,
                Some(_) => {}
                None => panic!("watch ended without a final update"),
            }
        }
    })
    .await
    .expect("run stops promptly");
    assert_eq!(last.run_state(), RunState::Stopped);
    assert_eq!(last.state, "stopped", "the human text stays for old clients");
    let s = client
        .get_summary(GetSummaryRequest { run_id: run_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(s.finished);
    assert_eq!(s.run_state(), RunState::Stopped);
    assert!(s.sessions_completed < 50);
    assert!(out.join(&run_id).join("results.json").exists());
    // Stopping again says it had already ended; unknown runs are NotFound.
    let again = client.stop_run(StopRunRequest { run_id }).await.unwrap().into_inner();
    assert!(!again.stopped);
    let err = client
        .get_summary(GetSummaryRequest { run_id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), async {
        let _ = agent.await;
        let _ = server.await;
    })
    .await
    .expect("serve and agent shut down on cancel");
}
