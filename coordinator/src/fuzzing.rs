//! Entry points of the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`) for the plan
//! in every form it arrives in (a TOML file, a remote StartRun's protobuf, flags)
//! and for thresholds. Each takes arbitrary bytes, must not panic, hang or allocate
//! without bound, and asserts what must hold for any input; the unit tests replay
//! the committed corpora (`fuzz/corpus/<target>/`) through the same functions.

use std::path::PathBuf;
use std::sync::OnceLock;

use prost::Message as _;
use wsload_proto::pb;

use crate::plan::{Plan, PlanArgs};
use crate::schedule;
use crate::thresholds;

/// A feeder file every fuzzed `[[feeder]]` table reads instead of the file it names
/// (the fuzzer must not read the machine's files).
fn feeder_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wsload-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("users.csv");
        std::fs::write(&file, "id,name\n1,ann\n2,bob\n3,cy\n").expect("feeder file");
        file
    })
}

/// What a valid plan must allow: its schedule, and the same plan over the wire.
fn check_valid(plan: &Plan) {
    let batches = schedule::batches(plan);
    assert_eq!(batches.iter().map(|b| b.sessions).sum::<u64>(), plan.sessions);
    let wire = plan.to_pb();
    let again = Plan::from_pb(&wire).unwrap_or_else(|e| panic!("a valid plan refused over the wire: {e}"));
    assert_eq!(again.to_pb(), wire, "the wire form is stable");
    wsload_scenario::compile(&wire).expect("what the coordinator accepts, agents compile");
}

/// Target `plan_toml`: a plan file's text, validated as `--plan` does.
pub fn plan_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut args) = PlanArgs::from_toml(text) else {
        return;
    };
    for table in &mut args.feeder {
        if let Some(t) = table.as_table_mut() {
            t.insert("file".into(), feeder_file().display().to_string().into());
        }
    }
    if let Ok(plan) = args.validate() {
        check_valid(&plan);
    }
}

/// Target `plan_proto`: a remote StartRun's plan, as the coordinator validates it
/// and as an agent compiles it.
pub fn plan_proto(data: &[u8]) {
    let Ok(wire) = pb::Plan::decode(data) else {
        return;
    };
    let agent_view = wsload_scenario::compile(&wire);
    if let Ok(plan) = Plan::from_pb(&wire) {
        check_valid(&plan);
        assert!(agent_view.is_ok(), "the coordinator accepted what agents refuse");
    }
}

/// Target `plan_fields`: the plan's flags that are parsed from text (durations,
/// stages, pacing) and its counts, from NUL-separated fields of the input.
pub fn plan_fields(data: &[u8]) {
    let mut fields = data.split(|&b| b == 0).map(|f| String::from_utf8_lossy(f).into_owned());
    let mut next = || fields.next();
    let number = |s: Option<String>| s.and_then(|s| s.trim().parse::<u64>().ok());
    let mut args = PlanArgs {
        target: Some("ws://127.0.0.1:9/ws".into()),
        ..PlanArgs::default()
    };
    args.sessions = number(next());
    args.batch_size = number(next());
    args.messages_per_session = number(next());
    args.batch_interval = next();
    args.connect_timeout = next();
    args.response_timeout = next();
    args.message_interval = next();
    args.hold_time = next();
    args.max_duration = next();
    args.pacing = next().filter(|p| !p.is_empty());
    args.stages = std::iter::from_fn(next).take(64).collect();
    if let Ok(plan) = args.validate() {
        check_valid(&plan);
        assert_eq!(plan.stages.len(), args.stages.len());
    }
}

/// Target `thresholds`: one `--threshold` expression per line; a parsed threshold
/// reads back the same from its own text.
pub fn thresholds(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let exprs: Vec<&str> = text.lines().take(16).collect();
    for e in &exprs {
        if let Ok(t) = thresholds::parse(e) {
            assert!(!t.limit.is_nan(), "{e}: limit NaN");
            let again = thresholds::parse(&t.expr).expect("a threshold's own text parses");
            assert_eq!(again, t);
        }
    }
    let program = wsload_scenario::Program::seed_only(10);
    let _ = thresholds::parse_for_plan(&exprs, &program);
}

#[cfg(test)]
mod tests {
    use wsload_testkit::fuzz_corpus::replay;

    #[test]
    fn the_fuzz_corpora_replay() {
        assert!(replay("plan_toml", super::plan_toml) >= 3);
        assert!(replay("plan_proto", super::plan_proto) >= 2);
        assert!(replay("plan_fields", super::plan_fields) >= 3);
        assert!(replay("thresholds", super::thresholds) >= 3);
    }
}
