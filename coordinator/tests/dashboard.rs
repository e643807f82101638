//! The live dashboard, `/metrics` and `report.html`, seen the way a user sees them:
//! headless Chromium (over its DevTools protocol) on the page of a real run against
//! the real stack (redis, ws-server, nginx), the stop button ending it with exit 4;
//! `/metrics` of a finished run against its `results.json`; `report.html` rendered
//! with the network cut off; and the token in front of a non-loopback dashboard.

mod common;

use std::time::Duration;

use clap::Parser;
use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use wsload_coordinator::auth::Auth;
use wsload_coordinator::cli::{serve::serve_on, Cli, Command};
use wsload_proto::pb::{control_client::ControlClient, GetSummaryRequest, StartRunRequest};
use wsload_testkit::*;

/// Every chart of the live page.
const CHARTS: [&str; 7] = [
    "chart-sessions",
    "chart-opens",
    "chart-messages",
    "chart-rtt",
    "chart-connect",
    "chart-errors",
    "chart-steps",
];

/// `METHOD path` with `headers` and `body` on 127.0.0.1:`port`: (status, raw head, body).
async fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut raw))
        .await
        .expect("answer in time")
        .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// Waits until something listens on `port`.
async fn listening(port: u16) {
    wait_until_async(
        Duration::from_secs(20),
        &format!("port {port} to listen"),
        || async move { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Keeps a screenshot where a human can look at it when WSLOAD_SCREENSHOTS is set.
fn keep(path: &std::path::Path) {
    if let Some(dir) = std::env::var_os("WSLOAD_SCREENSHOTS") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(path, std::path::Path::new(&dir).join(path.file_name().unwrap()));
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_dashboard_in_chromium_follows_a_run_and_its_stop_button_ends_it() {
    let redis = Redis::start();
    let server = WsServer::start(12, &["--redis-url", &redis.url(), "--server-event-interval", "1s"]);
    let nginx = Nginx::start(&server.ports());
    let dash = Port::reserve();
    let out = out_dir("dashboard-live");
    // Long enough that only the stop button can end it: 300 sessions held, a message
    // every 200 ms each, ~2 minutes of messages.
    let opts = run_opts(&[
        "--target",
        &nginx.url(),
        "--sessions",
        "300",
        "--batch-size",
        "30",
        "--batch-interval",
        "300ms",
        "--messages-per-session",
        "600",
        "--message-interval",
        "200ms",
        "--out",
        out.to_str().unwrap(),
        "--dashboard",
        &dash.addr().to_string(),
        "--threshold",
        "rtt_p99<5s",
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = tokio::spawn(run_within(
        Duration::from_secs(120),
        listener,
        opts,
        CancellationToken::new(),
    ));
    listening(dash.number()).await;
    let mut b = Browser::open(&format!("http://{}/", dash.addr()), false).await;
    b.wait_for(
        "document.getElementById('conn').textContent === 'live'",
        Duration::from_secs(20),
    )
    .await;
    // The counters rise second by second.
    for _ in 0..200 {
        if num(&b
            .eval("Number(document.getElementById('c-sent').dataset.value || 0)")
            .await)
            > 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = b.eval("document.body.innerText.slice(0, 3000)").await;
    assert!(
        num(&b
            .eval("Number(document.getElementById('c-sent').dataset.value || 0)")
            .await)
            > 0.0,
        "nothing sent after 20 s: {}",
        text.as_str().unwrap_or_default()
    );
    let mut sent = Vec::new();
    for _ in 0..4 {
        let before = sent.last().copied().unwrap_or(0.0);
        let mut now = before;
        for _ in 0..300 {
            now = num(&b
                .eval("Number(document.getElementById('c-sent').dataset.value || 0)")
                .await);
            if now > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if now <= before {
            std::fs::create_dir_all(&*out).unwrap();
            let shot = out.join("dashboard-stalled.png");
            b.screenshot(&shot).await;
            keep(&shot);
            let text = b.eval("document.body.innerText.slice(0, 3000)").await;
            panic!(
                "messages sent stalled at {before}: {}",
                text.as_str().unwrap_or_default()
            );
        }
        sent.push(now);
    }
    assert!(sent.windows(2).all(|w| w[1] > w[0]), "{sent:?}");
    b.wait_for(
        "Number(document.getElementById('c-active').dataset.value) > 0 && document.querySelectorAll('#chart-sessions polyline.series').length > 0",
        Duration::from_secs(20),
    )
    .await;
    // Every chart drawn, with a visible line; the built-in protocol has no named
    // steps, so that chart is the one hidden.
    for id in CHARTS {
        let info = b
            .eval(&format!(
                "(() => {{ const s = document.getElementById('{id}'); if (!s) return null;
                   const lines = [...s.querySelectorAll('polyline.series')];
                   return {{ hidden: s.closest('figure').hidden, lines: lines.length,
                            points: lines.reduce((n, l) => n + l.getAttribute('points').split(' ').length, 0),
                            width: s.getBoundingClientRect().width, labels: s.querySelectorAll('text').length }}; }})()"
            ))
            .await;
        assert!(!info.is_null(), "{id} missing");
        if id == "chart-steps" {
            assert_eq!(info["hidden"], Value::Bool(true), "{id}: {info}");
            continue;
        }
        assert_eq!(info["hidden"], Value::Bool(false), "{id}: {info}");
        assert!(
            num(&info["lines"]) >= 1.0 && num(&info["points"]) >= 2.0,
            "{id}: {info}"
        );
        assert!(
            num(&info["width"]) > 100.0 && num(&info["labels"]) >= 10.0,
            "{id}: {info}"
        );
    }
    // Tables: the agent, the threshold's live verdict, the state.
    b.wait_for(
        "document.querySelector('#t-agents tbody').textContent.includes('local-0') && document.querySelector('#t-thresholds tbody').textContent.includes('rtt_p99<5s')",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        b.eval("document.getElementById('c-state').className").await,
        "state running"
    );
    let shot = out.join("dashboard-live.png");
    std::fs::create_dir_all(&*out).unwrap();
    b.screenshot(&shot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    keep(&shot);
    // The stop button: armed by the first click, sent by the second.
    b.eval("document.getElementById('stop').click()").await;
    assert_eq!(
        b.eval("document.getElementById('stop').textContent").await,
        "Click again to stop"
    );
    b.eval("document.getElementById('stop').click()").await;
    let (code, finished) = run.await.unwrap();
    assert_eq!(code, 4, "a stopped run exits 4: {:?}", finished.summary);
    assert_eq!(finished.report.outcome, wsload_coordinator::report::RunOutcome::Stopped);
    assert!(finished.report.totals.messages_sent as f64 >= sent[3]);
    assert!(out.join("report.html").exists());
}

/// A `serve` daemon in-process with an in-process agent; returns the control URL.
async fn serve_with_agent(
    dashboard: &str,
    out: &std::path::Path,
    cancel: &CancellationToken,
) -> (
    String,
    tokio::task::JoinHandle<Result<u8, wsload_coordinator::exit::CliError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let Command::Serve(opts) =
        Cli::parse_from(["c", "serve", "--out", out.to_str().unwrap(), "--dashboard", dashboard]).command
    else {
        unreachable!()
    };
    let server = tokio::spawn(serve_on(
        listener,
        opts,
        Auth::new(Some("tok".into()), false).unwrap(),
        cancel.clone(),
    ));
    let agent_opts = wsload_agent::AgentOpts::local(url.clone(), "agent-x".into(), Some("tok".into()));
    tokio::spawn(wsload_agent::run(agent_opts, cancel.clone()));
    (url, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_a_finished_run_equal_results_json_and_report_html_renders_offline() {
    let (addr, _stats) = test_ws_server(Duration::from_millis(1)).await;
    let dash = Port::reserve();
    let out = out_dir("dashboard-metrics");
    let cancel = CancellationToken::new();
    let (url, server) = serve_with_agent(&dash.addr().to_string(), &out, &cancel).await;
    listening(dash.number()).await;
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ControlClient::with_interceptor(channel, wsload_common::auth_interceptor(Some("tok".into())));
    let plan = wsload_coordinator::plan::Plan::from_pb(&wsload_proto::pb::Plan {
        target: format!("ws://{addr}/ws"),
        sessions: 40,
        batch_size: 10,
        batch_interval_ms: Some(200),
        messages_per_session: Some(5),
        ..Default::default()
    })
    .unwrap();
    let run_id = client
        .start_run(StartRunRequest {
            plan: Some(plan.to_pb()),
            min_agents: 1,
            thresholds: vec!["rtt_p99<10s".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .run_id;
    let finished = |text: String| {
        let e = wsload_testkit::metrics::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        e.get("wsload_run_finished", &[("run", run_id.as_str())]) == Some(1.0)
    };
    let mut text = String::new();
    for _ in 0..300 {
        let (status, body) = http_get(dash.number(), "/metrics").await;
        assert_eq!(status, 200);
        text = body;
        if finished(text.clone()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(finished(text.clone()), "the run did not finish:\n{text}");
    // The agent's gauges come from its heartbeats: the one after the run's end says
    // 0 sessions (on a loaded machine it may come a second or two after the end).
    let idle = |text: &str| {
        wsload_testkit::metrics::parse(text)
            .ok()
            .and_then(|m| m.get("wsload_agent_sessions", &[("agent", "agent-x")]))
            == Some(0.0)
    };
    for _ in 0..100 {
        if idle(&text) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = http_get(dash.number(), "/metrics").await.1;
    }
    let summary = client
        .get_summary(GetSummaryRequest { run_id: run_id.clone() })
        .await
        .unwrap()
        .into_inner();
    let dir = std::path::PathBuf::from(&summary.report_dir);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let m = wsload_testkit::metrics::parse(&text).unwrap();
    let run = [("run", run_id.as_str())];
    let t = &json["totals"];
    for (metric, field) in [
        ("wsload_sessions_opened_total", "sessions_opened"),
        ("wsload_connect_failures_total", "failed_connections"),
        ("wsload_messages_sent_total", "messages_sent"),
        ("wsload_responses_total", "responses_received"),
        ("wsload_server_events_total", "server_events"),
        ("wsload_failed_responses_total", "failed_responses"),
        ("wsload_lost_sessions_total", "lost_sessions"),
        ("wsload_unexpected_messages_total", "unexpected_messages"),
    ] {
        assert_eq!(m.get(metric, &run), Some(num(&t[field])), "{metric} vs totals.{field}");
    }
    assert_eq!(m.get("wsload_messages_sent_total", &run), Some(200.0));
    assert_eq!(m.sum("wsload_errors_total"), num(&t["errors_total"]));
    assert_eq!(
        m.get("wsload_rtt_seconds_count", &run),
        Some(num(&json["latency_us"]["rtt"]["count"]))
    );
    assert_eq!(
        m.get("wsload_rtt_seconds_bucket", &[("run", run_id.as_str()), ("le", "+Inf")]),
        Some(200.0)
    );
    assert_eq!(
        m.get("wsload_connect_seconds_count", &run),
        Some(num(&json["latency_us"]["connect"]["count"]))
    );
    assert_eq!(
        m.get(
            "wsload_threshold_passed",
            &[("run", run_id.as_str()), ("threshold", "rtt_p99<10s")]
        ),
        Some(1.0)
    );
    assert_eq!(m.types.get("wsload_rtt_seconds").map(String::as_str), Some("histogram"));
    assert_eq!(m.get("wsload_agent_sessions", &[("agent", "agent-x")]), Some(0.0));
    // The run list links the report, served by the dashboard.
    let (status, runs) = http_get(dash.number(), "/api/runs").await;
    assert_eq!(status, 200);
    assert!(runs.contains(&run_id) && runs.contains("completed"), "{runs}");
    let (status, html) = http_get(dash.number(), &format!("/runs/{run_id}/report.html")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<svg id=\"chart-rtt\""));
    // report.html straight from the directory, the network cut off: every chart drawn.
    let file = dir.join("report.html");
    let mut b = Browser::open(&format!("file://{}", file.display()), true).await;
    b.wait_for("document.readyState === 'complete'", Duration::from_secs(20))
        .await;
    let charts = b
        .eval(
            "[...document.querySelectorAll('svg.chart')].map(s => ({ id: s.id,
               lines: s.querySelectorAll('polyline.series').length,
               w: s.getBoundingClientRect().width, h: s.getBoundingClientRect().height }))",
        )
        .await;
    let charts = charts.as_array().unwrap();
    let ids: Vec<&str> = charts.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "chart-sessions",
            "chart-connections",
            "chart-messages",
            "chart-rtt",
            "chart-errors",
            "chart-distribution",
            "chart-memory"
        ]
    );
    for c in charts {
        assert!(
            num(&c["lines"]) >= 1.0 && num(&c["w"]) > 200.0 && num(&c["h"]) > 50.0,
            "{c}"
        );
    }
    assert_eq!(
        b.eval("performance.getEntriesByType('resource').length").await,
        Value::from(0),
        "report.html loads nothing"
    );
    let shot = out.join("report-html.png");
    b.screenshot(&shot).await;
    keep(&shot);
    cancel.cancel();
    assert_eq!(server.await.unwrap().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_dashboard_needs_the_token() {
    let dash = Port::reserve();
    let out = out_dir("dashboard-token");
    let cancel = CancellationToken::new();
    let (_url, server) = serve_with_agent(&format!("0.0.0.0:{}", dash.number()), &out, &cancel).await;
    listening(dash.number()).await;
    let p = dash.number();
    // No token, a wrong one, a forged cookie: 401 and nothing of the coordinator.
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "Bearer to")],
        vec![("Cookie", "wsload_session=tok")],
    ] {
        for path in [
            "/",
            "/api/snapshot",
            "/api/runs",
            "/api/events",
            "/metrics",
            "/assets/app.js",
        ] {
            let (status, head, body) = http(p, "GET", path, &headers, "").await;
            assert_eq!(status, 401, "{path} {headers:?}: {head}");
            assert!(
                !body.contains("agent-x") && !body.contains("wsload_") && !body.contains("EventSource"),
                "{path}: {body}"
            );
        }
        let (status, _, _) = http(p, "POST", "/api/runs/x/stop", &headers, "").await;
        assert_eq!(status, 401);
    }
    // The header opens it.
    let (status, _, body) = http(p, "GET", "/metrics", &[("Authorization", "Bearer tok")], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("wsload_agents_connected"));
    // The login form: wrong token refused, right token gives an HttpOnly cookie.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, _) = http(p, "POST", "/login", &form, "token=nope").await;
    assert_eq!(status, 401);
    assert!(!head.to_ascii_lowercase().contains("set-cookie"));
    let (status, head, _) = http(p, "POST", "/login", &form, "token=tok").await;
    assert_eq!(status, 303, "{head}");
    let cookie_line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a cookie");
    assert!(
        cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"),
        "{cookie_line}"
    );
    assert!(
        !cookie_line.contains("tok;"),
        "the cookie is not the token: {cookie_line}"
    );
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let (status, _, body) = http(p, "GET", "/api/snapshot", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("agent-x") || body.contains("\"agents\""), "{body}");
    // Stop needs the X-Wsload header even when signed in (no cross-site form posts).
    let (status, _, _) = http(p, "POST", "/api/runs/x/stop", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 403);
    cancel.cancel();
    assert_eq!(server.await.unwrap().unwrap(), 0);
    // An insecure coordinator cannot expose its dashboard.
    let insecure = Cli::parse_from([
        "c",
        "serve",
        "--insecure",
        "--listen",
        "127.0.0.1:0",
        "--dashboard",
        "0.0.0.0:0",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = wsload_coordinator::cli::execute(insecure, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, 2);
    assert!(err.message.contains("needs the control token"), "{}", err.message);
}
