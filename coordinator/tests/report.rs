//! Report writer tests: every artefact is written, PNGs decode at their size,
//! `results.json` validates against `docs/results-schema.json`, the CSV has one row
//! per window, `results.txt` carries correctly computed reference fields, and merged
//! histograms give the same percentiles as one histogram of all samples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use wsload_coordinator::report::{
    self, charts, merged, new_histogram, AgentReport, LatencyStats, MemorySample, PlanEcho, RunHistograms, RunOutcome,
    RunReport, Totals, Window,
};
use wsload_coordinator::thresholds;

/// Deterministic pseudo-random numbers (no global state, no extra crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A 20-second run of two agents, 2,000 sessions x 30 messages, with a few errors.
fn sample_report() -> RunReport {
    let mut rng = Lcg(42);
    let seconds = 20u64;
    let mut windows = Vec::new();
    let mut hist = RunHistograms::default();
    let mut totals = Totals {
        sessions_planned: 2000,
        ..Totals::default()
    };
    for t in 0..seconds {
        // Two agents' windows for the same second, merged like the coordinator does.
        let mut w = Window::empty(t);
        for agent in 0..2u64 {
            let mut part = Window::empty(t);
            let opened = if t < 2 { 500 } else { 0 };
            part.connections_opened = opened;
            part.active_sessions = if t < 18 { 1000 } else { 0 };
            part.messages_sent = if (1..16).contains(&t) { 2000 } else { 0 };
            part.responses = part.messages_sent;
            if t == 5 && agent == 1 {
                part.errors.insert("premature_close".to_owned(), 2);
                part.connections_failed = 1;
            }
            for _ in 0..part.responses.min(400) {
                // 2..12 ms with a slow tail every ~100 samples.
                let mut v = 2_000 + rng.next() % 10_000 + t * 100;
                if rng.next() % 100 == 0 {
                    v += 80_000;
                }
                part.rtt.record(v).unwrap();
                hist.rtt_actual.record(v.saturating_sub(300)).unwrap();
            }
            for _ in 0..opened {
                hist.connect.record(500 + rng.next() % 3_000).unwrap();
                hist.session_event.record(100 + rng.next() % 400).unwrap();
            }
            totals.sessions_opened += opened;
            totals.messages_sent += part.messages_sent;
            totals.responses_received += part.responses;
            totals.failed_connections += part.connections_failed;
            w.merge(&part).unwrap();
        }
        hist.rtt_intended.add(&w.rtt).unwrap();
        for (k, n) in &w.errors {
            *totals.errors.entry(k.clone()).or_insert(0) += n;
        }
        windows.push(w);
    }
    totals.sessions_opened -= 1;
    totals.sessions_errored = 2;
    totals.failed_responses = 0;
    totals.server_events = 40;
    let agents = (0..2)
        .map(|i| AgentReport {
            name: format!("agent-{}", i + 1),
            sessions: 1000 - i,
            batches: 1,
            memory: (0..seconds)
                .map(|t| MemorySample {
                    t: t as f64 + 0.25 * i as f64,
                    system_percent: 30.0 + t as f64 + 5.0 * i as f64,
                    rss_bytes: (20 + t) * 1024 * 1024,
                })
                .collect(),
            throttled: Duration::from_millis(1500 * i),
            lost: false,
        })
        .collect();
    let started_at = Utc.with_ymd_and_hms(2026, 11, 27, 19, 0, 0).unwrap();
    let mut r = RunReport {
        run_id: "run-test-1".to_owned(),
        target: "ws://127.0.0.1:8080/ws".to_owned(),
        plan: PlanEcho {
            sessions: 2000,
            batch_size: 1000,
            batch_interval: Duration::from_secs(1),
            max_active_batches: 50,
            connect_timeout: Duration::from_secs(10),
            messages_per_session: 30,
            message_interval: Duration::ZERO,
            payload_size: 64,
            hold_time: Duration::ZERO,
            compression: false,
            extra: serde_json::Value::Null,
        },
        started_at,
        ended_at: started_at + chrono::Duration::seconds(20),
        duration: Duration::from_secs(20),
        outcome: RunOutcome::Completed,
        totals,
        histograms: hist,
        windows,
        agents,
        thresholds: Vec::new(),
    };
    let ths = thresholds::parse_all(&["rtt_p99<250ms", "connect_error_rate<1%", "sessions_failed==0"]).unwrap();
    r.thresholds = thresholds::evaluate(&ths, &r);
    r
}

/// A run that produced nothing at all: every writer must still cope.
fn empty_report() -> RunReport {
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 19, 0, 0).unwrap();
    RunReport {
        run_id: "empty".to_owned(),
        target: "ws://127.0.0.1:1/ws".to_owned(),
        plan: PlanEcho::default(),
        started_at: now,
        ended_at: now,
        duration: Duration::ZERO,
        outcome: RunOutcome::Failed("every agent was lost".to_owned()),
        totals: Totals::default(),
        histograms: RunHistograms::default(),
        windows: Vec::new(),
        agents: Vec::new(),
        thresholds: Vec::new(),
    }
}

fn png_size(path: &Path) -> (u32, u32) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    (info.width, info.height)
}

fn schema_validator() -> jsonschema::Validator {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results-schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).expect("schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, doc: &serde_json::Value) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "results.json does not match schema: {errors:#?}");
}

fn check_artefacts(report: &RunReport, dir: &Path) {
    let written = report::write_all(report, dir).unwrap();
    let expected: Vec<&str> = [report::RESULTS_TXT, report::RESULTS_JSON, report::TIMESERIES_CSV]
        .into_iter()
        .chain(charts::CHART_FILES)
        .collect();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, expected);
    for chart in charts::CHART_FILES {
        assert_eq!(png_size(&dir.join(chart)), charts::CHART_SIZE, "{chart}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(report::RESULTS_JSON)).unwrap()).unwrap();
    assert_valid(&schema_validator(), &doc);
    let csv = std::fs::read_to_string(dir.join(report::TIMESERIES_CSV)).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], report::csv::HEADER);
    assert_eq!(lines.len(), report.windows.len() + 1, "one row per window");
    let columns = lines[0].split(',').count();
    for line in &lines[1..] {
        assert_eq!(line.split(',').count(), columns, "{line}");
    }
}

#[test]
fn writes_every_artefact_for_a_full_run() {
    check_artefacts(&sample_report(), &out_dir("full"));
}

#[test]
fn writes_every_artefact_for_an_empty_run() {
    check_artefacts(&empty_report(), &out_dir("empty"));
}

#[test]
fn results_txt_has_reference_fields_computed_correctly() {
    let r = sample_report();
    let txt = report::text::render(&r);
    for line in [
        "Total sessions:       1999",
        "Failed connections:   1",
        "Failed responses:     0",
        "Messages sent:        60000",
        "Responses received:   60000",
        "Server events:        40",
        "Duration:             20.000 s",
        // 60,000 responses over 20 s, not over milliseconds since process start.
        "Throughput:           3000.0 messages/s",
        // Samples 30..49 % (agent 1) and 35..54 % (agent 2): mean 42, max 54, min 30.
        "Memory average:       42.0 %",
        "Memory max:           54.0 %",
        "Memory min:           30.0 %",
        "premature_close: 2",
        "PASS rtt_p99<250ms",
        "PASS connect_error_rate<1%",
        "FAIL sessions_failed==0 (observed 3)",
        "1 of 3 thresholds FAILED",
    ] {
        assert!(txt.contains(line), "missing {line:?} in\n{txt}");
    }
    assert!(txt.contains("agent-2: 999 sessions, 1 batches"), "{txt}");
    assert!(txt.contains("throttled 1.500 s"), "{txt}");
}

#[test]
fn results_json_carries_totals_and_timeseries() {
    let r = sample_report();
    let doc = report::json::to_value(&r).unwrap();
    assert_valid(&schema_validator(), &doc);
    assert_eq!(doc["totals"]["messages_sent"], 60000);
    assert_eq!(doc["totals"]["sessions_failed"], 3);
    assert_eq!(doc["throughput_msgs_per_s"], 3000.0);
    assert_eq!(doc["timeseries"].as_array().unwrap().len(), 20);
    assert_eq!(doc["timeseries"][5]["errors"]["premature_close"], 2);
    assert!(doc["timeseries"][0]["rtt_us"].is_null(), "no response in second 0");
    let p99 = LatencyStats::from_histogram(&r.histograms.rtt_intended).unwrap().p99;
    assert_eq!(doc["latency_us"]["rtt"]["p99"], p99);
    assert_eq!(doc["thresholds_passed"], false);
}

#[test]
fn schema_rejects_a_document_missing_a_field() {
    let mut doc = report::json::to_value(&sample_report()).unwrap();
    doc["totals"].as_object_mut().unwrap().remove("messages_sent");
    assert!(!schema_validator().is_valid(&doc));
    let mut doc = report::json::to_value(&sample_report()).unwrap();
    doc["timeseries"][0]["t"] = serde_json::json!(-1);
    assert!(!schema_validator().is_valid(&doc));
}

#[test]
fn merged_percentiles_equal_those_of_one_histogram_of_all_samples() {
    let mut rng = Lcg(7);
    let mut a = new_histogram();
    let mut b = new_histogram();
    let mut all = new_histogram();
    for i in 0..50_000u64 {
        // Two agents with very different latency profiles.
        let v = if i % 2 == 0 {
            1_000 + rng.next() % 2_000
        } else {
            5_000 + rng.next() % 200_000
        };
        if i % 2 == 0 { a.record(v) } else { b.record(v) }.unwrap();
        all.record(v).unwrap();
    }
    let m = merged([&a, &b]).unwrap();
    for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(m.value_at_quantile(q), all.value_at_quantile(q), "q={q}");
    }
    assert_eq!(LatencyStats::from_histogram(&m), LatencyStats::from_histogram(&all));
    // Averaging the two agents' p50 would be far off the true median.
    let averaged = (a.value_at_quantile(0.5) + b.value_at_quantile(0.5)) / 2;
    assert!(averaged.abs_diff(all.value_at_quantile(0.5)) > 10_000);
}

#[test]
fn window_merge_sums_counts_and_errors() {
    let mut a = Window::empty(3);
    a.messages_sent = 10;
    a.errors = BTreeMap::from([("timeout".to_owned(), 1)]);
    a.rtt.record(100).unwrap();
    let mut b = Window::empty(3);
    b.messages_sent = 5;
    b.errors = BTreeMap::from([("timeout".to_owned(), 2), ("error_event".to_owned(), 1)]);
    b.rtt.record(300).unwrap();
    a.merge(&b).unwrap();
    assert_eq!(a.messages_sent, 15);
    assert_eq!(a.errors_total(), 4);
    assert_eq!(a.errors["timeout"], 3);
    assert_eq!(a.rtt.len(), 2);
    assert_eq!(a.rtt.max(), 300);
}
