//! `scripts/demo.sh` at a small size, so it cannot rot: 300 sessions over 24 s on
//! free ports with the debug binaries, through redis, the 12 workers and nginx. The
//! dashboard URL it prints first must answer while the run goes and show sessions
//! active on its `/metrics`; the run must end with its thresholds passed, every
//! session's messages answered, and the `report.html` it names at the end.

use std::process::{Command, Stdio};
use std::time::Duration;

use wsload_testkit::*;

/// The port of the `dashboard: http://127.0.0.1:PORT/` line, once it is printed.
fn dashboard_port(text: &str) -> Option<u16> {
    let rest = text.split("dashboard: http://127.0.0.1:").nth(1)?;
    rest.split('/').next()?.parse().ok()
}

/// `GET path` on the dashboard, or status 0 while nothing listens.
async fn get(port: u16, path: &str) -> (u16, String) {
    if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        return (0, String::new());
    }
    http_get(port, path).await
}

/// The value of the first `name{labels} value` (or `name value`) line of Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let rest = match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once('}')?.1,
            None => rest,
        };
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_script_runs_a_short_demo_with_a_live_dashboard_and_a_report() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin_dir = workspace_bin("ws-agent").parent().unwrap().to_owned();
    workspace_bin("ws-server");
    workspace_bin("ws-coordinator");
    let out = out_dir("demo-script");
    let stdout = std::env::temp_dir().join(format!("wsload-demo-script-{}.txt", std::process::id()));
    let mut run = Proc::spawn(
        Command::new("bash")
            .arg(repo.join("scripts/demo.sh"))
            .env("SESSIONS", "300")
            .env("DURATION", "24")
            .env("FREE_PORTS", "1")
            .env("BIN_DIR", &bin_dir)
            .env("OUT", &*out)
            .env_remove("WSLOAD_TOKEN")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(Stdio::inherit()),
        "scripts/demo.sh",
    )
    .with_grace(Duration::from_secs(15));
    let printed = || std::fs::read_to_string(&stdout).unwrap_or_default();

    // The dashboard URL comes first; the page answers and its metrics show the run.
    wait_until(Duration::from_secs(60), "the dashboard URL to be printed", || {
        dashboard_port(&printed()).is_some()
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", printed()));
    let port = dashboard_port(&printed()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, metrics) = get(port, "/metrics").await;
        if status == 200 && sample(&metrics, "wsload_sessions_active").is_some_and(|n| n > 0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no session active on the dashboard's /metrics in 60 s:\n{metrics}\n{}",
            printed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, page) = get(port, "/").await;
    assert_eq!(status, 200, "{page}");

    let status = tokio::task::block_in_place(|| run.wait_timeout(Duration::from_secs(120)));
    let text = printed();
    let _ = std::fs::remove_file(&stdout);
    let status = status.unwrap_or_else(|| panic!("demo.sh did not finish in 120 s:\n{text}"));
    assert!(status.success(), "demo.sh failed ({status}):\n{text}");

    // The report it names at the end is there, self-contained, with its charts.
    let report = out.join("report.html");
    assert!(text.contains(&format!("report:  {}", report.display())), "{text}");
    let html = std::fs::read_to_string(&report).expect("report.html");
    assert!(html.contains("<svg"), "report.html has no chart");
    assert!(!html.contains("src=\"http"), "report.html refers to the network");

    // Arrivals follow the stages (~300); every session's 9 paced messages answered.
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let totals = &results["totals"];
    let opened = totals["sessions_opened"].as_u64().unwrap();
    assert!((200..=400).contains(&opened), "{opened} sessions opened:\n{totals}");
    assert_eq!(totals["sessions_planned"].as_u64(), Some(opened), "{totals}");
    assert_eq!(totals["messages_sent"].as_u64(), Some(opened * 9), "{totals}");
    assert_eq!(totals["responses_received"].as_u64(), Some(opened * 9), "{totals}");
    assert_eq!(totals["errors_total"].as_u64(), Some(0), "{totals}");
    assert!(totals["server_events"].as_u64().unwrap() > 0, "{totals}");
    assert_eq!(results["thresholds_passed"], serde_json::Value::Bool(true), "{results}");
    assert_eq!(results["agents"].as_array().unwrap().len(), 2);
}
