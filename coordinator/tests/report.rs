//! Report writer tests: every artefact is written, PNGs decode at their size,
//! `results.json` validates against `docs/results-schema.json`, the CSV has one row
//! per window, `results.txt` carries correctly computed reference fields, and merged
//! histograms give the same percentiles as one histogram of all samples. A run with
//! named scenario steps adds its sections, columns and charts; one without has none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use wsload_coordinator::report::{
    self, charts, merged, new_histogram, step_charts, AgentReport, FanoutReach, LatencyStats, MemorySample, PlanEcho,
    RunHistograms, RunOutcome, RunReport, StepReport, StepStats, Totals, Window,
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
            load: (0..seconds)
                .map(|t| wsload_coordinator::report::saturation::LoadSample {
                    t,
                    cpu_percent: 20.0 + t as f64,
                    cores: 2,
                    lag_max_us: 900,
                    lag_p99_us: 800,
                })
                .collect(),
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
        steps: Vec::new(),
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
        steps: Vec::new(),
    }
}

/// [`sample_report`] played by a scenario: `connect` (2,000 connects in seconds 0-1),
/// `echo` (a request: 100 a second in seconds 1-15, 2 failures in second 5), `publish`
/// (one send a second in seconds 2-11), `news` (its fan-out listen: 2,000 deliveries a
/// second, one duplicate, three out of order, 2 listeners failing) and `bye` (a close
/// that never ran), plus handler counts, unexpected messages and close codes.
fn scenario_report() -> RunReport {
    let mut r = sample_report();
    let names = ["connect", "echo", "publish", "news", "bye"];
    let mut run: Vec<StepStats> = names.iter().map(|_| StepStats::default()).collect();
    for w in &mut r.windows {
        let t = w.t;
        let mut put = |i: usize, s: StepStats| {
            run[i].merge(&s).unwrap();
            w.steps.insert(names[i].to_owned(), s);
        };
        if t < 2 {
            let mut s = StepStats {
                ok: 1000,
                ..StepStats::default()
            };
            (500..1500).for_each(|v| s.latency.record(v).unwrap());
            put(0, s);
        }
        if (1..16).contains(&t) {
            let mut s = StepStats {
                ok: 100,
                failed: if t == 5 { 2 } else { 0 },
                ..StepStats::default()
            };
            (0..100).for_each(|i| s.latency.record(2_000 + i * 10 + t * 100).unwrap());
            put(1, s);
        }
        if (2..12).contains(&t) {
            put(
                2,
                StepStats {
                    ok: 1,
                    ..StepStats::default()
                },
            );
            let mut s = StepStats {
                messages: 2000,
                duplicates: u64::from(t == 3),
                out_of_order: if t == 4 { 3 } else { 0 },
                ..StepStats::default()
            };
            (0..2000).for_each(|i| s.latency.record(300 + i % 700).unwrap());
            put(3, s);
        }
        if t == 12 {
            put(
                3,
                StepStats {
                    ok: 1998,
                    failed: 2,
                    ..StepStats::default()
                },
            );
        }
    }
    let delivered = run[3].messages - run[3].duplicates;
    r.steps = names
        .iter()
        .zip(["connect", "request", "send", "listen", "close"])
        .zip(run)
        .map(|((name, kind), stats)| StepReport {
            name: (*name).to_owned(),
            kind: kind.to_owned(),
            fanout: (*name == "news").then_some(FanoutReach {
                expected: 10 * 2000,
                delivered,
            }),
            stats,
        })
        .collect();
    r.totals.unexpected_messages = 7;
    r.totals.close_codes = BTreeMap::from([(1006, 3), (1008, 1)]);
    r.totals.counts = BTreeMap::from([("server_errors".to_owned(), 4), ("pongs".to_owned(), 12)]);
    let ths = thresholds::parse_all(&["step.news.reach>=99.99%", "step.echo.p99<10ms", "close.1008==0"]).unwrap();
    r.thresholds = thresholds::evaluate(&ths, &r);
    r
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
    let expected: Vec<&str> = [
        report::RESULTS_TXT,
        report::RESULTS_JSON,
        report::TIMESERIES_CSV,
        report::REPORT_HTML,
    ]
    .into_iter()
    .chain(charts::chart_files(report))
    .collect();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, expected);
    for chart in charts::chart_files(report) {
        assert_eq!(png_size(&dir.join(chart)), charts::CHART_SIZE, "{chart}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(report::RESULTS_JSON)).unwrap()).unwrap();
    assert_valid(&schema_validator(), &doc);
    let html = std::fs::read_to_string(dir.join(report::REPORT_HTML)).unwrap();
    for id in report::html::chart_ids(report) {
        assert!(html.contains(&format!("<svg id=\"{id}\"")), "report.html lacks {id}");
    }
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external reference"
    );
    let csv = std::fs::read_to_string(dir.join(report::TIMESERIES_CSV)).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], report::csv::header(report));
    assert!(lines[0].starts_with(report::csv::HEADER), "today's columns come first");
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
fn writes_every_artefact_for_a_scenario_run() {
    let r = scenario_report();
    assert_eq!(
        charts::chart_files(&r)[charts::CHART_FILES.len()..],
        step_charts::STEP_CHART_FILES,
        "the step charts come after today's"
    );
    check_artefacts(&r, &out_dir("scenario"));
    // A plan with named steps that produced no data draws them too ("no data").
    let mut idle = empty_report();
    idle.steps = scenario_report()
        .steps
        .into_iter()
        .map(|s| StepReport {
            stats: StepStats::default(),
            ..s
        })
        .collect();
    check_artefacts(&idle, &out_dir("scenario-idle"));
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
    // The generator's load: agent-2 at 39 % of one core in its last second, of 2 cores.
    assert_eq!(doc["agent_cpu_max"], 0.195);
    assert_eq!(doc["saturated_seconds"], 0);
    assert_eq!(doc["agents"][1]["load"][19]["cpu_share"], 0.195);
    assert_eq!(doc["agents"][1]["load"][19]["saturated"], false);
    assert_eq!(doc["timeseries"][5]["saturated_agents"].as_array().unwrap().len(), 0);
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

#[test]
fn results_txt_shows_scenario_steps_counts_and_close_codes() {
    let txt = report::text::render(&scenario_report());
    for line in [
        "Scenario steps (merged HDR histograms; ",
        "  step                   kind            ok    failed  messages          p50          p90          p99        p99.9          max",
        // 500..1499 µs twice each: p50 is the 1,000th of 2,000 samples.
        "  connect                connect       2000         0         0     0.999 ms     1.399 ms     1.489 ms     1.498 ms     1.499 ms",
        "  echo                   request       1500         2         0 ",
        "  publish                send            10         0         0 (no latency samples)",
        "  news                   listen        1998         2     20000 ",
        "                           fan-out: expected 20000, delivered 19999 (reach 99.995 %), duplicates 1, out of order 3",
        "  bye                    close            0         0         0 (no latency samples)",
        "Handler counts:\n  pongs: 12\n  server_errors: 4\n",
        "Unexpected messages:  7 (claimed by no step, pending request or handler)",
        "Server close codes:\n  1006 (connection dropped): 3\n  1008 (policy violation): 1\n",
        "PASS step.news.reach>=99.99% (observed 99.995%)",
        "FAIL close.1008==0 (observed 1)",
    ] {
        assert!(txt.contains(line), "missing {line:?} in\n{txt}");
    }
    // Steps in plan order, after the latency table and before the errors.
    let at = |s: &str| txt.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(at("Session event") < at("Scenario steps") && at("Scenario steps") < at("Errors by kind:"));
    assert!(at("  connect ") < at("  echo ") && at("  news ") < at("  bye "));
}

#[test]
fn results_txt_of_the_built_in_protocol_has_no_scenario_sections() {
    let txt = report::text::render(&sample_report());
    for absent in [
        "Scenario steps",
        "Handler counts",
        "Unexpected messages",
        "Server close codes",
        "fan-out",
    ] {
        assert!(!txt.contains(absent), "{absent:?} in\n{txt}");
    }
    // Close codes are the server's, whatever the sessions play.
    let mut r = sample_report();
    r.totals.close_codes = BTreeMap::from([(1009, 2), (4000, 1)]);
    let txt = report::text::render(&r);
    assert!(
        txt.contains("Server close codes:\n  1009 (message too big): 2\n  4000: 1\n"),
        "{txt}"
    );
    assert!(!txt.contains("Scenario steps"), "{txt}");
}

#[test]
fn results_json_carries_steps_counts_and_close_codes() {
    let r = scenario_report();
    let doc = report::json::to_value(&r).unwrap();
    assert_valid(&schema_validator(), &doc);
    assert_eq!(doc["schema_version"], 3);
    let steps = doc["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["connect", "echo", "publish", "news", "bye"], "plan order");
    let connect = &steps[0];
    assert_eq!(connect["kind"], "connect");
    assert_eq!(
        (&connect["ok"], &connect["failed"], &connect["messages"]),
        (&serde_json::json!(2000), &serde_json::json!(0), &serde_json::json!(0))
    );
    assert_eq!(connect["latency_us"]["count"], 2000);
    assert_eq!(connect["latency_us"]["p50"], 999);
    assert_eq!(connect["latency_us"]["p99_9"], 1498);
    assert!(connect["fanout"].is_null());
    assert_eq!(steps[1]["failed"], 2);
    assert!(steps[2]["latency_us"].is_null(), "a send step has no latency");
    let news = &steps[3];
    assert_eq!(
        (&news["duplicates"], &news["out_of_order"]),
        (&serde_json::json!(1), &serde_json::json!(3))
    );
    assert_eq!(
        news["fanout"],
        serde_json::json!({"expected": 20000, "delivered": 19999, "reach": 0.99995})
    );
    assert_eq!(doc["totals"]["unexpected_messages"], 7);
    assert_eq!(doc["totals"]["close_codes"], serde_json::json!({"1006": 3, "1008": 1}));
    assert_eq!(
        doc["totals"]["counts"],
        serde_json::json!({"pongs": 12, "server_errors": 4})
    );
    // Per second: the steps that did something, by name; none, no key.
    let series = doc["timeseries"].as_array().unwrap();
    let keys = |t: usize| -> Vec<&str> {
        series[t]["steps"]
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(0), ["connect"]);
    assert_eq!(keys(5), ["echo", "news", "publish"]);
    assert_eq!(series[5]["steps"]["echo"]["failed"], 2);
    assert!(series[19].get("steps").is_none(), "{}", series[19]);
    // The built-in protocol: no steps, nothing per second, empty tallies.
    let plain = report::json::to_value(&sample_report()).unwrap();
    assert_eq!(plain["steps"], serde_json::json!([]));
    assert!(plain["timeseries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s.get("steps").is_none()));
    assert_eq!(plain["totals"]["close_codes"], serde_json::json!({}));
}

#[test]
fn schema_rejects_a_malformed_step() {
    let v = schema_validator();
    let doc = report::json::to_value(&scenario_report()).unwrap();
    let mut bad = doc.clone();
    bad["steps"][0]["extra"] = serde_json::json!(1);
    assert!(!v.is_valid(&bad), "unknown step field");
    let mut bad = doc.clone();
    bad["steps"][1]["kind"] = serde_json::json!("think");
    assert!(!v.is_valid(&bad), "think steps have no metrics");
    let mut bad = doc.clone();
    bad["steps"][3]["fanout"].as_object_mut().unwrap().remove("delivered");
    assert!(!v.is_valid(&bad), "fan-out without delivered");
    let mut bad = doc.clone();
    bad["timeseries"][0]["steps"]["connect"]["nope"] = serde_json::json!(1);
    assert!(!v.is_valid(&bad), "unknown per-second step field");
    let mut bad = doc;
    bad["totals"]["close_codes"]["normal"] = serde_json::json!(1);
    assert!(!v.is_valid(&bad), "close codes are keyed by number");
}

#[test]
fn timeseries_csv_appends_five_columns_per_step() {
    let r = scenario_report();
    let csv = report::csv::render(&r);
    let lines: Vec<&str> = csv.lines().collect();
    let step_columns = |name: &str| {
        ["ok", "failed", "messages", "p50_ms", "p99_ms"]
            .map(|c| format!("step.{name}.{c}"))
            .join(",")
    };
    let expected_header = ["connect", "echo", "publish", "news", "bye"]
        .iter()
        .fold(report::csv::HEADER.to_owned(), |h, n| {
            format!("{h},{}", step_columns(n))
        });
    assert_eq!(lines[0], expected_header);
    let today = report::csv::HEADER.split(',').count();
    let tail = |row: usize| lines[row + 1].split(',').skip(today).collect::<Vec<_>>().join(",");
    // Second 0: 1,000 connects of 500..1499 µs (p50 the 500th, p99 the 990th); the
    // other steps idle.
    assert_eq!(tail(0), "1000,0,0,0.999,1.489,0,0,0,,,0,0,0,,,0,0,0,,,0,0,0,,");
    // Second 12: 100 requests of 3,200..4,190 µs (HDR reports the top of the value's
    // bucket: 2 µs wide here, 4 µs above 4,096) and the listeners finish, 2 failing.
    assert_eq!(tail(12), "0,0,0,,,100,0,0,3.691,4.183,0,0,0,,,1998,2,0,,,0,0,0,,");
    // The built-in protocol's CSV is today's.
    assert_eq!(report::csv::header(&sample_report()), report::csv::HEADER);
}
