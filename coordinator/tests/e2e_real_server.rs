//! End to end against the workspace's real server stack — redis, 12 `ws-server`
//! workers and nginx with the repository's config — driven by the coordinator
//! (in-process, on a bound listener) and 2 external `ws-agent` processes:
//! 2,000 sessions x 30 messages.

mod common;

use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use wsload_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agent_processes_against_real_server_add_up_exactly() {
    let Stack { redis, server, nginx } = Stack::for_accounting();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let coord = format!("http://{}", listener.local_addr().unwrap());
    let out = out_dir("e2e");
    let target = nginx.url();
    let opts = run_opts(&[
        "--target",
        &target,
        "--sessions",
        "2000",
        "--batch-size",
        "250",
        "--batch-interval",
        "100ms",
        "--messages-per-session",
        "30",
        "--agents",
        "2",
        "--token",
        "e2e-token",
        "--out",
        out.to_str().unwrap(),
        "--threshold",
        "connect_error_rate<1%",
        "--agent-wait",
        "30s",
    ]);
    let mut a1 = agent_process(&coord, "agent-a", &["--token", "e2e-token"]);
    let mut a2 = agent_process(&coord, "agent-b", &["--token", "e2e-token"]);
    let (code, finished) = tokio::time::timeout(
        Duration::from_secs(120),
        wsload_coordinator::cli::run::run_on(listener, opts, CancellationToken::new()),
    )
    .await
    .expect("run finished in time")
    .expect("run ok");
    let r = &finished.report;
    let t = &r.totals;
    assert_eq!(code, 0, "{:?}", finished.summary);
    assert_eq!(t.sessions_opened, 2000);
    assert_eq!(t.failed_connections, 0);
    assert_eq!(t.sessions_errored, 0);
    assert_eq!(t.messages_sent, 60_000);
    assert_eq!(t.responses_received, 60_000);
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert_eq!(r.histograms.rtt_intended.len(), 60_000);
    assert_eq!(r.histograms.connect.len(), 2000);
    assert_eq!(r.agents.len(), 2);
    assert!(r.agents.iter().all(|a| a.sessions > 0 && !a.lost), "{:?}", r.agents);
    assert_eq!(r.agents.iter().map(|a| a.sessions).sum::<u64>(), 2000);
    assert_eq!(finished.summary.sessions_completed, 2000);
    for f in [
        "results.txt",
        "results.json",
        "timeseries.csv",
        "latency-histogram.png",
        "memory-usage-chart.png",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // Every PNG decodes at its size and results.json matches its schema.
    let mut pngs = 0;
    for f in std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()) {
        if f.extension().is_some_and(|e| e == "png") {
            let file = std::io::BufReader::new(std::fs::File::open(&f).unwrap());
            let info = png::Decoder::new(file)
                .read_info()
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert!(info.info().width >= 400 && info.info().height >= 300, "{}", f.display());
            pngs += 1;
        }
    }
    assert!(pngs >= 9, "only {pngs} charts");
    let schema_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results-schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The server's own counters, summed over the 12 instances, agree.
    let mut per_instance = Vec::new();
    let (mut total, mut messages, mut responses) = (0, 0, 0);
    for port in server.ports() {
        let n = metric(port, "ws_connections_total").await as u64;
        per_instance.push(n);
        total += n;
        messages += metric(port, "ws_messages_received_total").await as u64;
        responses += metric(port, "ws_responses_sent_total").await as u64;
    }
    assert_eq!(total, 2000, "{per_instance:?}");
    assert!(
        per_instance.iter().all(|n| *n > 0),
        "nginx spread the sessions: {per_instance:?}"
    );
    assert_eq!(messages, 60_000);
    assert_eq!(responses, 60_000);
    // Every session was closed, and its hash deleted from Redis by the cleaner.
    let ports = server.ports();
    let left = || async {
        let mut open = 0.0;
        for port in &ports {
            open += metric(*port, "ws_connections_open").await;
        }
        (redis.keys("session:*").await.len(), open)
    };
    let left = &left;
    let closed = wait_until_async(
        Duration::from_secs(10),
        "every session to be closed and its hash deleted",
        move || async move { left().await == (0, 0.0) },
    )
    .await;
    if let Err(e) = closed {
        let (hashes, open) = left().await;
        panic!("{e}: {hashes} session hashes, {open} sessions left");
    }
    // The coordinator's Shutdown ends the agent processes cleanly.
    assert!(a1.wait_timeout(Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert!(a2.wait_timeout(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_and_source_ips_against_real_server() {
    let server = WsServer::start(1, &["--broker", "memory", "--server-event-interval", "300ms"]);
    let port = server.port(0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let coord = format!("http://{}", listener.local_addr().unwrap());
    let out = out_dir("e2e-deflate");
    let target = format!("ws://127.0.0.1:{port}/ws");
    let opts = run_opts(&[
        "--target",
        &target,
        "--sessions",
        "300",
        "--batch-size",
        "100",
        "--batch-interval",
        "100ms",
        "--messages-per-session",
        "10",
        "--payload-size",
        "512",
        "--compression",
        "--hold-time",
        "1s",
        "--agents",
        "1",
        "--insecure",
        "--out",
        out.to_str().unwrap(),
    ]);
    let _a = agent_process(&coord, "spread", &["--insecure", "--source-ips", "127.0.0.2-127.0.0.4"]);
    let (code, f) = tokio::time::timeout(
        Duration::from_secs(60),
        wsload_coordinator::cli::run::run_on(listener, opts, CancellationToken::new()),
    )
    .await
    .expect("no hang")
    .expect("run ok");
    let t = &f.report.totals;
    assert_eq!(code, 0, "{:?}", f.summary);
    assert_eq!(
        (t.sessions_opened, t.messages_sent, t.responses_received),
        (300, 3000, 3000)
    );
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    // Broadcasts every 300 ms reach sessions held for 1 s.
    let sent = metric(port, "ws_server_events_sent_total").await as u64;
    assert!(
        t.server_events >= 300 && t.server_events <= sent,
        "{} received, {sent} sent",
        t.server_events
    );
}
