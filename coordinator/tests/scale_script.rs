//! `scripts/scale.sh` at a small size, so it cannot rot: 3,000 sessions from 3
//! `ws-agent` processes with their own source addresses, through nginx to the 12
//! Redis-backed workers, with paced messages and server events; its table must
//! say that every session was opened and held at once, with no error, and carry
//! a per-session bill.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use wsload_testkit::*;

/// The rows `| name | value |` of the script's tables.
fn rows(table: &str) -> BTreeMap<String, Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
        .map(|l| {
            let cells: Vec<String> = l.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect();
            (cells[0].clone(), cells[1..].to_vec())
        })
        .collect()
}

#[test]
fn scale_script_holds_3000_sessions_over_3_agents_and_bills_them() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin_dir = workspace_bin("ws-agent").parent().unwrap().to_owned();
    workspace_bin("ws-server");
    let out = out_dir("scale-script");
    let stdout = std::env::temp_dir().join(format!("wsload-scale-script-{}.txt", std::process::id()));
    let mut run = Proc::spawn(
        Command::new("bash")
            .arg(repo.join("scripts/scale.sh"))
            .env("SESSIONS", "3000")
            .env("AGENTS", "3")
            .env("RATE", "2500")
            .env("MESSAGES", "2")
            .env("MESSAGE_INTERVAL", "1s")
            // Held 30 s: every session is still open when the last one opens, down to
            // ~100 opens/s (a loaded debug stack measured 250/s).
            .env("HOLD", "30s")
            .env("SERVER_EVENT_INTERVAL", "1s")
            .env("FIRST_SOURCE", "60")
            .env("BIN_DIR", &bin_dir)
            .env("OUT", &*out)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(Stdio::inherit()),
        "scripts/scale.sh",
    )
    .with_grace(Duration::from_secs(15));
    let status = run.wait_timeout(Duration::from_secs(150));
    let text = std::fs::read_to_string(&stdout).unwrap_or_default();
    let _ = std::fs::remove_file(&stdout);
    let status = status.unwrap_or_else(|| panic!("scale.sh did not finish in 150 s:\n{text}"));
    assert!(status.success(), "scale.sh failed ({status}):\n{text}");

    // The kernel settings it needs are reported, each with what was done.
    for key in [
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.ip_local_port_range",
    ] {
        assert!(text.contains(key), "{key} not reported:\n{text}");
    }
    assert!(
        text.contains("3 agents x 1 source addresses (127.0.0.60-127.0.0.62)"),
        "{text}"
    );

    let r = rows(&text);
    let value = |k: &str| -> String {
        r.get(k)
            .unwrap_or_else(|| panic!("no row {k:?}:\n{text}"))
            .last()
            .unwrap()
            .clone()
    };
    let number = |k: &str| -> u64 {
        let v = value(k);
        v.trim_matches('*')
            .parse()
            .unwrap_or_else(|_| panic!("{k}: {v:?} is not a number"))
    };
    assert_eq!(number("sessions planned"), 3000);
    assert_eq!(number("sessions opened"), 3000);
    assert_eq!(number("sessions held at once (peak)"), 3000);
    assert_eq!(number("sessions open on the workers at the sample"), 3000);
    assert_eq!(number("failed connections"), 0);
    assert_eq!(number("sessions failed"), 0);
    assert_eq!(number("sessions lost (agent lost)"), 0);
    assert_eq!(value("errors by kind"), "none");
    assert_eq!(number("messages sent"), 6_000);
    assert_eq!(number("responses received"), 6_000);
    assert!(number("server events received") > 0, "{text}");
    assert_eq!(number("open rate asked (/s)"), 2500);
    let achieved = number("open rate achieved (/s)");
    assert!((1..=3000).contains(&achieved), "achieved {achieved}/s");
    assert_eq!(value("outcome"), "completed");
    // The bill: every process group holds more with 3,000 sessions than before.
    for row in [
        "agents RSS (3 processes)",
        "nginx RSS (master + 2 workers)",
        "ws-server RSS (supervisor + 12 workers)",
    ] {
        let per_session = number(row);
        assert!(
            (100..100_000).contains(&per_session),
            "{row}: {per_session} bytes per session"
        );
    }
    assert!(number("**total (RSS + socket buffers + slab)**") > 1000, "{text}");
    assert!(
        text.contains("result: every session opened and held, no error"),
        "{text}"
    );

    // The 3 agents took part, each from its own addresses.
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report/results.json")).unwrap()).unwrap();
    let agents = results["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3);
    assert!(agents.iter().all(|a| a["sessions"].as_u64().unwrap() > 0), "{agents:?}");
    assert!(out.join("bill.md").exists());
}
