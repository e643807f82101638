//! Least privilege, one test per refusal: role tokens (an agent token cannot start
//! runs, a viewer cannot stop them, a control token cannot register as an agent),
//! size limits on gRPC messages and on plans, `--allow-target` on every URL a
//! scenario reaches, and tokens that never show in argv, logs or reports.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use common::*;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use wsload_coordinator::cli::{execute, serve::serve_on, Cli, Command};
use wsload_proto::pb::{
    control_client::ControlClient, GetSummaryRequest, ListAgentsRequest, ListRunsRequest, RunState, StartRunRequest,
    StopRunRequest, WatchRunRequest,
};
use wsload_testkit::scenario_servers::{echo_server, Counts};
use wsload_testkit::*;

type Client = ControlClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, wsload_common::BearerAuth>,
>;

const AGENT: &str = "agent-token-0123456789";
const CONTROL: &str = "control-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";

async fn client(url: &str, token: &str) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    ControlClient::with_interceptor(channel, wsload_common::auth_interceptor(Some(token.into())))
}

/// `serve` in-process with `args`; returns its URL.
async fn serve(args: &[&str], out: &std::path::Path, cancel: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut v = vec!["ws-coordinator", "serve", "--out", out.to_str().unwrap()];
    v.extend_from_slice(args);
    let Command::Serve(opts) = Cli::parse_from(v).command else {
        unreachable!()
    };
    let auth = opts.roles.auth(&opts.auth).unwrap();
    tokio::spawn(serve_on(listener, opts, auth, cancel.clone()));
    url
}

fn small_plan(target: String) -> wsload_proto::pb::Plan {
    wsload_proto::pb::Plan {
        target,
        sessions: 2,
        batch_size: 2,
        messages_per_session: Some(1),
        ..Default::default()
    }
}

/// StartRun of `plan` with `c`'s token, waiting for `min_agents` agents: the run id.
async fn start(c: &mut Client, plan: wsload_proto::pb::Plan, min_agents: u32) -> Result<String, tonic::Status> {
    let req = StartRunRequest {
        plan: Some(plan),
        min_agents,
        ..Default::default()
    };
    c.start_run(req).await.map(|r| r.into_inner().run_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_token_is_refused_what_its_role_does_not_grant() {
    let (addr, _stats) = test_ws_server(Duration::from_millis(1)).await;
    let out = out_dir("roles");
    let cancel = CancellationToken::new();
    let url = serve(
        &[
            "--agent-token",
            AGENT,
            "--control-token",
            CONTROL,
            "--viewer-token",
            VIEWER,
        ],
        &out,
        &cancel,
    )
    .await;
    // A control token cannot register as an agent: refused for good, not retried.
    let as_agent = wsload_agent::AgentOpts::local(url.clone(), "impostor".into(), Some(CONTROL.into()));
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        wsload_agent::run(as_agent, cancel.child_token()),
    )
    .await
    .expect("refused at once");
    let e = refused.unwrap_err().to_string();
    assert!(e.contains("may not register as an agent"), "{e}");
    let agent = tokio::spawn(wsload_agent::run(
        wsload_agent::AgentOpts::local(url.clone(), "real".into(), Some(AGENT.into())),
        cancel.clone(),
    ));

    // An agent token cannot start, stop or read runs.
    let mut a = client(&url, AGENT).await;
    let e = start(&mut a, small_plan(format!("ws://{addr}/ws")), 0)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(
        e.message(),
        "this token may not start or stop runs (use the control token)"
    );
    let e = a.stop_run(StopRunRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = a.list_runs(ListRunsRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // An unknown token is not authenticated at all.
    let e = client(&url, "nobody")
        .await
        .list_runs(ListRunsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // The control token starts a run; the viewer watches it, reads it, cannot stop it.
    let mut c = client(&url, CONTROL).await;
    let mut v = client(&url, VIEWER).await;
    wait_until_async(Duration::from_secs(20), "the agent to register", || {
        let mut v = v.clone();
        async move {
            v.list_agents(ListAgentsRequest {})
                .await
                .is_ok_and(|r| r.into_inner().agents.iter().any(|a| a.name == "real"))
        }
    })
    .await
    .unwrap();
    let e = start(&mut v, small_plan(format!("ws://{addr}/ws")), 0)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let run_id = start(&mut c, small_plan(format!("ws://{addr}/ws")), 1).await.unwrap();
    let e = v.stop_run(StopRunRequest { run_id: run_id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut watch = v
        .watch_run(WatchRunRequest { run_id: run_id.clone() })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(p) = watch.message().await.unwrap() {
            if p.done {
                break;
            }
        }
    })
    .await
    .expect("the run ends");
    let s = v
        .get_summary(GetSummaryRequest { run_id: run_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.run_state(), s.sessions_completed), (RunState::Completed, 2));
    let runs = v.list_runs(ListRunsRequest {}).await.unwrap().into_inner().runs;
    assert_eq!(runs.len(), 1);
    cancel.cancel();
    let _ = agent.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_and_plans_are_refused_naming_the_limit() {
    let (addr, _stats) = test_ws_server(Duration::from_millis(1)).await;
    let out = out_dir("oversize");
    let cancel = CancellationToken::new();
    let url = serve(&["--token", CONTROL], &out, &cancel).await;
    let agent = tokio::spawn(wsload_agent::run(
        wsload_agent::AgentOpts::local(url.clone(), "big".into(), Some(CONTROL.into())),
        cancel.clone(),
    ));
    let mut c = client(&url, CONTROL).await;
    // A message above the gRPC limit: refused by the transport, the limit in the message.
    let huge = small_plan(format!(
        "ws://{addr}/ws?{}",
        "x".repeat(wsload_proto::limits::MAX_MESSAGE_BYTES)
    ));
    let e = start(&mut c, huge, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e}");
    assert!(
        e.message().contains(&format!(
            "the limit is: {} bytes",
            wsload_proto::limits::MAX_MESSAGE_BYTES
        )),
        "{}",
        e.message()
    );
    // A plan above a plan limit: INVALID_ARGUMENT naming it.
    let mut many = small_plan(format!("ws://{addr}/ws"));
    many.scenarios = vec![Default::default(); wsload_coordinator::plan_limits::MAX_SCENARIOS + 1];
    let e = start(&mut c, many, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "invalid plan: scenario: 257 scenarios, above the limit of 256"
    );

    // The largest legitimate message: a plan with a ~30 MiB feeder reaches the
    // coordinator and the agent (tonic's default limit is 4 MiB) and runs.
    std::fs::create_dir_all(&*out).unwrap();
    let csv = out.join("users.csv");
    let mut data = String::from("id\n");
    let row = "u".repeat(99);
    while data.len() < 30 * 1024 * 1024 {
        data.push_str(&row);
        data.push('\n');
    }
    std::fs::write(&csv, &data).unwrap();
    let toml = out.join("plan.toml");
    std::fs::write(
        &toml,
        format!(
            "target = \"ws://{addr}/ws\"\nsessions = 2\nbatch-size = 2\nmessages-per-session = 1\n\
             [[feeder]]\nname = \"users\"\nfile = \"users.csv\"\n\
             [[scenario]]\nname = \"seeded\"\nbuiltin = \"seed\"\n"
        ),
    )
    .unwrap();
    let plan = wsload_coordinator::plan::PlanArgs {
        plan: Some(toml.clone()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    assert!(prost::Message::encoded_len(&plan.to_pb()) > 30 * 1024 * 1024);
    let run_id = start(&mut c, plan.to_pb(), 1).await.unwrap();
    let s = wait_finished(&mut c, &run_id).await;
    assert_eq!(
        (s.run_state(), s.sessions_completed, s.responses),
        (RunState::Completed, 2, 2),
        "{s:?}"
    );
    cancel.cancel();
    let _ = agent.await;
}

async fn wait_finished(c: &mut Client, run_id: &str) -> wsload_proto::pb::Summary {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let s = c
                .get_summary(GetSummaryRequest { run_id: run_id.into() })
                .await
                .unwrap()
                .into_inner();
            if s.finished {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the run finishes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_over_a_limit_exits_2_naming_it() {
    let cli = |args: &[&str]| {
        let mut v = vec!["ws-coordinator", "run", "--quiet"];
        v.extend_from_slice(args);
        Cli::parse_from(v)
    };
    let e = execute(
        cli(&["--target", "ws://127.0.0.1:1/", "--sessions", "100000001"]),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, 2);
    assert_eq!(
        e.to_string(),
        "invalid plan: sessions: 100000001 is above the limit of 100000000"
    );
    let out = out_dir("plan-limit");
    std::fs::create_dir_all(&*out).unwrap();
    let toml = out.join("plan.toml");
    let mut body = String::from("target = \"ws://127.0.0.1:1/\"\n");
    for i in 0..=wsload_coordinator::plan_limits::MAX_SCENARIOS {
        body.push_str(&format!("[[scenario]]\nname = \"s{i}\"\nbuiltin = \"seed\"\n"));
    }
    std::fs::write(&toml, body).unwrap();
    let e = execute(cli(&["--plan", toml.to_str().unwrap()]), CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.code, 2);
    assert_eq!(
        e.to_string(),
        "invalid plan: scenario: 257 scenarios, above the limit of 256"
    );
}

/// Scripted connect URLs (static, and templated from a feeder) to hosts outside
/// `--allow-target 127.0.0.1`: each session is refused before it connects and counted
/// as `target_not_allowed` (an allowed one would fail to connect instead: nothing
/// listens there); the server on the same port of 127.0.0.1 sees no connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_urls_outside_allow_target_are_refused_before_connecting() {
    let (allowed, _a) = echo_server().await;
    let (other, other_counts) = echo_server().await;
    let out = out_dir("allow-connect");
    std::fs::create_dir_all(&*out).unwrap();
    std::fs::write(out.join("hosts.csv"), "host\n127.0.0.2\n127.0.0.3\n").unwrap();
    let port = other.port();
    let toml = out.join("plan.toml");
    std::fs::write(
        &toml,
        format!(
            "target = \"ws://{allowed}/\"\nsessions = 4\nbatch-size = 4\n\
             [[feeder]]\nname = \"hosts\"\nfile = \"hosts.csv\"\n\
             [[scenario]]\nname = \"static\"\nweight = 1\n\
               [[scenario.step]]\n  connect = {{ url = \"ws://127.0.0.4:{port}/\" }}\n\
             [[scenario]]\nname = \"templated\"\nweight = 1\n\
               [[scenario.step]]\n  connect = {{ url = \"ws://{{{{hosts.host}}}}:{port}/\" }}\n"
        ),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let report = out.join("report");
    let mut opts = run_opts(&[
        "--plan",
        toml.to_str().unwrap(),
        "--agents",
        "1",
        "--local-agents",
        "0",
        "--insecure",
        "--out",
        report.to_str().unwrap(),
    ]);
    opts.agent_wait = Duration::from_secs(20);
    let cancel = CancellationToken::new();
    let agent = wsload_agent::AgentOpts::parse_from(["ws-agent", "--insecure", "--allow-target", "127.0.0.1"]);
    let agent = tokio::spawn(wsload_agent::run(
        wsload_agent::AgentOpts {
            coordinator: url,
            ..agent
        },
        cancel.clone(),
    ));
    let (_code, f) = run_within(Duration::from_secs(60), listener, opts, cancel.clone()).await;
    cancel.cancel();
    let _ = agent.await;
    assert_eq!(
        f.report.totals.errors.get("target_not_allowed"),
        Some(&4),
        "{:?}",
        f.report.totals.errors
    );
    assert_eq!(f.report.totals.errors.len(), 1, "{:?}", f.report.totals.errors);
    assert_eq!(Counts::get(&other_counts.accepted), 0);
    let json = std::fs::read_to_string(report.join("results.json")).unwrap();
    assert!(json.contains("\"target_not_allowed\": 4"), "{json}");
}

/// Tokens from the environment and a file, and a target URL carrying a credential:
/// none of them appears in argv, the logs (at debug level) or the report directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_env_or_file_never_reach_argv_logs_or_reports() {
    let (addr, stats) = test_ws_server(Duration::from_millis(1)).await;
    let out = out_dir("secrets");
    std::fs::create_dir_all(&*out).unwrap();
    let shared = "file-token-5f1e9c0a7b3d";
    let agent_tok = "env-agent-token-8c2d4e6f";
    let target_secret = "target-secret-3a9b7c1d";
    let token_file = out.join("token");
    std::fs::write(&token_file, format!("{shared}\n")).unwrap();
    let port = Port::reserve();
    let url = format!("http://{}", port.addr());
    let log = |name: &str| std::fs::File::create(out.join(name)).unwrap();
    let mut serve = Proc::spawn(
        std::process::Command::new(workspace_bin("ws-coordinator"))
            .args(["serve", "--listen", &port.addr().to_string(), "--out"])
            .arg(out.join("runs"))
            .arg("--token-file")
            .arg(&token_file)
            .env("WSLOAD_AGENT_TOKEN", agent_tok)
            .env("RUST_LOG", "debug")
            .stdout(log("serve.out"))
            .stderr(log("serve.err")),
        "ws-coordinator serve",
    );
    serve.wait_listening(port.number(), Duration::from_secs(20)).unwrap();
    let agent = Proc::spawn(
        std::process::Command::new(workspace_bin("ws-agent"))
            .args(["--coordinator", &url, "--name", "quiet"])
            .env("WSLOAD_TOKEN", agent_tok)
            .env("RUST_LOG", "debug")
            .stdout(log("agent.out"))
            .stderr(log("agent.err")),
        "ws-agent",
    );
    let target = format!("ws://user:{target_secret}@{addr}/ws?access_token={target_secret}");
    let code = execute(
        Cli::parse_from([
            "ws-coordinator",
            "run",
            "--quiet",
            "--remote",
            &url,
            "--token-file",
            token_file.to_str().unwrap(),
            "--agents",
            "1",
            "--target",
            &target,
            "--sessions",
            "2",
            "--batch-size",
            "2",
            "--messages-per-session",
            "1",
        ]),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(stats.accepted.load(Ordering::SeqCst), 2);
    for pid in [serve.pid(), agent.pid()] {
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let argv = String::from_utf8_lossy(&argv);
        assert!(!argv.contains(shared) && !argv.contains(agent_tok), "{argv}");
    }
    drop(agent);
    drop(serve);
    let mut files = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p != token_file {
                files.push(p);
            }
        }
    }
    let results = files.iter().find(|p| p.ends_with("results.json")).expect("a report");
    let json = std::fs::read_to_string(results).unwrap();
    assert!(
        json.contains("user:REDACTED@") && json.contains("access_token=REDACTED"),
        "{json}"
    );
    let serve_log = std::fs::read_to_string(out.join("serve.err")).unwrap();
    assert!(serve_log.contains("DEBUG"), "debug logging was on: {serve_log}");
    for p in &files {
        let bytes = std::fs::read(p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [shared, agent_tok, target_secret] {
            assert!(!text.contains(secret), "{secret} found in {}", p.display());
        }
    }
}
