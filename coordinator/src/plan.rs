//! The load plan: flags or a TOML file with the same names, validated before
//! anything connects. Every invalid value is an error naming its field.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use wsload_proto::{defaults, pb};

/// Largest message payload accepted (the server's max payload is 1 MiB).
const MAX_PAYLOAD: u64 = 1024 * 1024;
/// Longest the arrival-rate stages may last together: the schedule is simulated in
/// 10 ms steps, so their length bounds the work of validating and scheduling.
const MAX_STAGES_TOTAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most batches a run may have (the schedule holds them all).
const MAX_BATCHES: u64 = 1_000_000;
/// Most messages one session of the built-in protocol may send (as a loop's count).
const MAX_MESSAGES: u64 = 1_000_000_000;

/// Plan flags (all optional: TOML values are overridden by flags, then the defaults of
/// [`wsload_proto::defaults`] apply; the `[default: ...]` texts below restate them).
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PlanArgs {
    /// TOML plan file; flags given as well override its values.
    #[arg(long)]
    #[serde(skip)]
    pub plan: Option<PathBuf>,
    /// WebSocket URL to attack, e.g. ws://127.0.0.1:9001/ws.
    #[arg(long)]
    pub target: Option<String>,
    /// Total sessions (default 1000; with --stage, the arrivals the stages produce).
    #[arg(long)]
    pub sessions: Option<u64>,
    /// Sessions per batch [default: 1000].
    #[arg(long)]
    pub batch_size: Option<u64>,
    /// Time between batch starts, e.g. 1s, 500ms [default: 1s].
    #[arg(long)]
    pub batch_interval: Option<String>,
    /// Most batches in progress at once, across all agents [default: 50].
    #[arg(long)]
    pub max_active_batches: Option<u64>,
    /// Bound on TCP connect + upgrade and on the wait for the session event [default: 10s].
    #[arg(long)]
    pub connect_timeout: Option<String>,
    /// Bound on the silence while a session awaits responses [default: 10s].
    #[arg(long)]
    pub response_timeout: Option<String>,
    /// Messages each session sends [default: 30].
    #[arg(long)]
    pub messages_per_session: Option<u64>,
    /// Pause between a session's messages; 0 = back-to-back [default: 0].
    #[arg(long)]
    pub message_interval: Option<String>,
    /// Approximate size of each message in bytes [default: 0 = minimal].
    #[arg(long)]
    pub payload_size: Option<u64>,
    /// How long a session stays open after its last response [default: 0].
    #[arg(long)]
    pub hold_time: Option<String>,
    /// Arrival-rate stage `DURATION:RATE` (ramp linearly to RATE sessions/s over
    /// DURATION), repeatable: e.g. --stage 10s:100 --stage 30s:100 --stage 5s:0.
    #[arg(long = "stage")]
    #[serde(default)]
    pub stages: Vec<String>,
    /// Stop the run after this long, whatever remains.
    #[arg(long)]
    pub max_duration: Option<String>,
    /// Offer permessage-deflate like a browser.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub compression: Option<bool>,
    /// Pacing of the built-in protocol's messages: `open` (paced by the clock every
    /// --message-interval), `closed` (each message waits for its reply; the interval
    /// is a pause after it) or `burst` (all at once, then the replies) [default: open
    /// with an interval, burst without].
    #[arg(long)]
    pub pacing: Option<String>,
    /// Scripted scenarios: the plan file's `[[scenario]]` tables (docs/SCENARIOS.md).
    #[arg(skip)]
    #[serde(default)]
    pub scenario: Vec<toml::Value>,
    /// Data for the scenarios: the plan file's `[[feeder]]` tables.
    #[arg(skip)]
    #[serde(default)]
    pub feeder: Vec<toml::Value>,
}

/// A plan value that cannot be used; `field` is the flag / TOML key.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid plan: {field}: {reason}")]
pub struct PlanError {
    /// The offending field, e.g. `batch-size`.
    pub field: String,
    /// Why it is invalid.
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// One arrival-rate stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// Length of the ramp.
    pub duration: Duration,
    /// Sessions per second at its end.
    pub target_rate: f64,
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// ws:// or wss:// URL.
    pub target: String,
    /// Sessions in total.
    pub sessions: u64,
    /// Sessions per batch.
    pub batch_size: u64,
    /// Time between batch starts (without stages).
    pub batch_interval: Duration,
    /// Batches in progress at once, across agents.
    pub max_active_batches: u64,
    /// Connect (+ session event) timeout.
    pub connect_timeout: Duration,
    /// Response silence timeout.
    pub response_timeout: Duration,
    /// Messages per session.
    pub messages_per_session: u64,
    /// Pacing; zero is back-to-back.
    pub message_interval: Duration,
    /// Message size.
    pub payload_size: u64,
    /// Hold after the last response.
    pub hold_time: Duration,
    /// Arrival stages (empty: fixed batch interval).
    pub stages: Vec<Stage>,
    /// Hard stop.
    pub max_duration: Option<Duration>,
    /// Offer permessage-deflate.
    pub compression: bool,
    /// Pacing of the built-in protocol.
    pub pacing: pb::Pacing,
    /// Scripted scenarios (empty: the built-in protocol in every session).
    pub scenarios: Vec<pb::Scenario>,
    /// Their data.
    pub feeders: Vec<pb::Feeder>,
}

/// Longest duration a plan may give (the wire carries milliseconds, and what it
/// carries must read back).
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Checks that a parsed duration survives the wire: zero or at least a millisecond
/// (its resolution), and at most a year.
fn on_the_wire(field: &str, s: &str, d: Duration) -> Result<Duration, PlanError> {
    if !d.is_zero() && d < Duration::from_millis(1) {
        return Err(err(field, format!("`{s}` is below 1ms, the plan's resolution")));
    }
    if d > MAX_DURATION {
        return Err(err(field, format!("`{s}` is longer than a year")));
    }
    Ok(d)
}

fn duration(field: &str, v: &Option<String>, default: Duration) -> Result<Duration, PlanError> {
    match v {
        None => Ok(default),
        Some(s) if s.trim() == "0" => Ok(Duration::ZERO),
        Some(s) => humantime::parse_duration(s.trim())
            .map_err(|e| {
                err(
                    field,
                    format!("`{s}` is not a duration ({e}); use units like 500ms, 10s, 2m"),
                )
            })
            .and_then(|d| on_the_wire(field, s, d)),
    }
}

impl PlanArgs {
    /// Reads the TOML file if any (keys as the flags, `_` or `-`), then overlays flags.
    pub fn merged(&self) -> Result<PlanArgs, PlanError> {
        let Some(path) = &self.plan else {
            return Ok(self.clone());
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| err("plan", format!("cannot read {}: {e}", path.display())))?;
        let file = PlanArgs::from_toml(&text).map_err(|e| err("plan", format!("{}: {}", path.display(), e.reason)))?;
        macro_rules! pick { ($($f:ident),*) => { PlanArgs { plan: self.plan.clone(), $($f: self.$f.clone().or(file.$f),)* stages: if self.stages.is_empty() { file.stages } else { self.stages.clone() }, scenario: file.scenario, feeder: file.feeder } } }
        Ok(pick!(
            target,
            sessions,
            batch_size,
            batch_interval,
            max_active_batches,
            connect_timeout,
            response_timeout,
            messages_per_session,
            message_interval,
            payload_size,
            hold_time,
            max_duration,
            compression,
            pacing
        ))
    }

    /// The values of a TOML plan file's text (keys as the flags, `_` or `-`); the
    /// file's own path is not set, so feeders are relative to the working directory.
    pub fn from_toml(text: &str) -> Result<PlanArgs, PlanError> {
        let table: toml::Table = text.parse().map_err(|e| err("plan", format!("{e}")))?;
        let table: toml::Table = table.into_iter().map(|(k, v)| (k.replace('_', "-"), v)).collect();
        table
            .try_into()
            .map_err(|e: toml::de::Error| err("plan", e.message().to_string()))
    }

    /// Validates into a [`Plan`] (defaults applied).
    pub fn validate(&self) -> Result<Plan, PlanError> {
        let a = self.merged()?;
        let target = a
            .target
            .clone()
            .ok_or_else(|| err("target", "required (e.g. --target ws://127.0.0.1:9001/ws)"))?;
        let url = url::Url::parse(&target).map_err(|e| err("target", format!("`{target}` is not a URL: {e}")))?;
        match url.scheme() {
            "ws" | "wss" => {}
            s => return Err(err("target", format!("scheme must be ws:// or wss://, not {s}://"))),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err("target", "has no host"));
        }
        let mut stages = Vec::new();
        for s in &a.stages {
            let (d, r) = s
                .split_once(':')
                .ok_or_else(|| err("stage", format!("`{s}` is not DURATION:RATE")))?;
            let duration = humantime::parse_duration(d.trim()).map_err(|e| err("stage", format!("`{d}`: {e}")))?;
            let duration = on_the_wire("stage", d, duration)?;
            let target_rate: f64 = r
                .trim()
                .parse()
                .map_err(|_| err("stage", format!("`{r}` is not a rate")))?;
            if !target_rate.is_finite() || target_rate < 0.0 {
                return Err(err("stage", format!("rate `{r}` must be >= 0")));
            }
            if duration.is_zero() {
                return Err(err("stage", format!("`{s}` has a zero duration")));
            }
            stages.push(Stage { duration, target_rate });
        }
        let stages_total: Duration = stages.iter().map(|s| s.duration).sum();
        if stages_total > MAX_STAGES_TOTAL {
            return Err(err(
                "stage",
                format!(
                    "the stages last {} in all; at most 7 days",
                    humantime::format_duration(stages_total)
                ),
            ));
        }
        let positive = |field: &str, v: Option<u64>, default: u64| -> Result<u64, PlanError> {
            match v.unwrap_or(default) {
                0 => Err(err(field, "must be at least 1")),
                n => Ok(n),
            }
        };
        let sessions = match (a.sessions, stages.is_empty()) {
            (Some(0), _) => return Err(err("sessions", "must be at least 1")),
            (Some(n), _) => n,
            (None, true) => defaults::SESSIONS,
            (None, false) => crate::schedule::stage_arrivals(&stages),
        };
        if sessions == 0 {
            return Err(err("stage", "the stages produce no session"));
        }
        if sessions > crate::plan_limits::MAX_SESSIONS {
            return Err(err(
                "sessions",
                format!("{sessions} is above the limit of {}", crate::plan_limits::MAX_SESSIONS),
            ));
        }
        let connect_timeout = duration("connect-timeout", &a.connect_timeout, defaults::CONNECT_TIMEOUT)?;
        if connect_timeout.is_zero() {
            return Err(err("connect-timeout", "must be greater than 0"));
        }
        let response_timeout = duration("response-timeout", &a.response_timeout, defaults::RESPONSE_TIMEOUT)?;
        if response_timeout.is_zero() {
            return Err(err("response-timeout", "must be greater than 0"));
        }
        let payload_size = a.payload_size.unwrap_or(defaults::PAYLOAD_SIZE);
        if payload_size > MAX_PAYLOAD {
            return Err(err("payload-size", format!("{payload_size} is above the 1 MiB limit")));
        }
        let message_interval = duration("message-interval", &a.message_interval, defaults::MESSAGE_INTERVAL)?;
        let pacing = match a.pacing.as_deref() {
            None => pb::Pacing::Unspecified,
            Some(p) => crate::scenario_file::pacing(p)
                .ok_or_else(|| err("pacing", format!("`{p}` is not open, closed or burst")))?,
        };
        match pacing {
            pb::Pacing::Open if message_interval.is_zero() => {
                return Err(err(
                    "pacing",
                    "open pacing needs --message-interval (message k is due at start + k x interval)",
                ))
            }
            pb::Pacing::Burst if !message_interval.is_zero() => {
                return Err(err(
                    "pacing",
                    "burst sends every message at once: drop --message-interval, or use open pacing",
                ))
            }
            _ => {}
        }
        let base = a
            .plan
            .as_deref()
            .and_then(std::path::Path::parent)
            .unwrap_or(std::path::Path::new("."));
        let feeders = crate::scenario_file::feeders(&a.feeder, base)?;
        let scenarios = crate::scenario_file::scenarios(&a.scenario)?;
        let max_duration = match &a.max_duration {
            None => None,
            Some(_) => match duration("max-duration", &a.max_duration, Duration::ZERO)? {
                d if d.is_zero() => return Err(err("max-duration", "must be greater than 0")),
                d => Some(d),
            },
        };
        let batch_size = positive("batch-size", a.batch_size, defaults::BATCH_SIZE)?;
        let batches = sessions.div_ceil(batch_size);
        if batches > MAX_BATCHES {
            return Err(err(
                "batch-size",
                format!("{sessions} sessions in batches of {batch_size} make {batches} batches; at most {MAX_BATCHES}"),
            ));
        }
        let messages_per_session = a.messages_per_session.unwrap_or(defaults::MESSAGES_PER_SESSION);
        if messages_per_session > MAX_MESSAGES {
            return Err(err("messages-per-session", format!("more than {MAX_MESSAGES}")));
        }
        Plan {
            target,
            sessions,
            batch_size,
            batch_interval: duration("batch-interval", &a.batch_interval, defaults::BATCH_INTERVAL)?,
            max_active_batches: positive("max-active-batches", a.max_active_batches, defaults::MAX_ACTIVE_BATCHES)?,
            connect_timeout,
            response_timeout,
            messages_per_session,
            message_interval,
            payload_size,
            hold_time: duration("hold-time", &a.hold_time, defaults::HOLD_TIME)?,
            stages,
            max_duration,
            compression: a.compression.unwrap_or(defaults::COMPRESSION),
            pacing,
            scenarios,
            feeders,
        }
        .checked()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Plan {
    /// Compiles the scenarios as the agents will, so what they would refuse is refused
    /// here, before anything connects.
    fn checked(self) -> Result<Plan, PlanError> {
        crate::plan_limits::check(&self.to_pb())?;
        self.program()?;
        Ok(self)
    }

    /// The compiled scenarios (the built-in protocol when the plan has none).
    pub fn program(&self) -> Result<wsload_scenario::Program, PlanError> {
        wsload_scenario::compile(&self.to_pb()).map_err(|e| PlanError {
            field: e.location(),
            reason: e.reason,
        })
    }

    /// The wire form.
    pub fn to_pb(&self) -> pb::Plan {
        pb::Plan {
            target: self.target.clone(),
            sessions: self.sessions,
            batch_size: self.batch_size,
            batch_interval_ms: Some(ms(self.batch_interval)),
            max_active_batches: self.max_active_batches,
            connect_timeout_ms: ms(self.connect_timeout),
            messages_per_session: Some(self.messages_per_session),
            message_interval_ms: ms(self.message_interval),
            payload_size: self.payload_size,
            hold_ms: ms(self.hold_time),
            stages: self
                .stages
                .iter()
                .map(|s| pb::Stage {
                    target_rate: s.target_rate,
                    duration_ms: ms(s.duration),
                })
                .collect(),
            max_duration_ms: self.max_duration.map_or(0, ms),
            compression: self.compression,
            response_timeout_ms: ms(self.response_timeout),
            scenarios: self.scenarios.clone(),
            feeders: self.feeders.clone(),
            pacing: self.pacing as i32,
        }
    }

    /// From the wire (a remote StartRun), validated like flags.
    pub fn from_pb(p: &pb::Plan) -> Result<Plan, PlanError> {
        let d = |v: u64| Some(format!("{v}ms"));
        let args = PlanArgs {
            plan: None,
            target: Some(p.target.clone()),
            sessions: (p.sessions > 0).then_some(p.sessions),
            batch_size: Some(p.batch_size).filter(|v| *v > 0),
            batch_interval: p.batch_interval_ms.map(|v| format!("{v}ms")),
            max_active_batches: Some(p.max_active_batches).filter(|v| *v > 0),
            connect_timeout: (p.connect_timeout_ms > 0).then(|| format!("{}ms", p.connect_timeout_ms)),
            response_timeout: (p.response_timeout_ms > 0).then(|| format!("{}ms", p.response_timeout_ms)),
            messages_per_session: p.messages_per_session,
            message_interval: d(p.message_interval_ms),
            payload_size: Some(p.payload_size),
            hold_time: d(p.hold_ms),
            stages: p
                .stages
                .iter()
                .map(|s| format!("{}ms:{}", s.duration_ms, s.target_rate))
                .collect(),
            max_duration: (p.max_duration_ms > 0).then(|| format!("{}ms", p.max_duration_ms)),
            compression: Some(p.compression),
            pacing: match pb::Pacing::try_from(p.pacing) {
                Ok(pb::Pacing::Open) => Some("open".into()),
                Ok(pb::Pacing::Closed) => Some("closed".into()),
                Ok(pb::Pacing::Burst) => Some("burst".into()),
                Ok(pb::Pacing::Unspecified) => None,
                Err(_) => return Err(err("pacing", format!("unknown pacing {}", p.pacing))),
            },
            scenario: Vec::new(),
            feeder: Vec::new(),
        };
        let mut plan = args.validate()?;
        // Scenarios and feeders arrive compiled to their wire form: check them as is.
        plan.scenarios = p.scenarios.clone();
        plan.feeders = p.feeders.clone();
        plan.checked()
    }
}

/// A plan from command-line flags (without the program name), validated as the CLI
/// does: for the unit tests of the modules that take a [`Plan`].
#[cfg(test)]
pub(crate) fn parse_for_tests(args: &[&str]) -> Result<Plan, PlanError> {
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        plan: PlanArgs,
    }

    let mut v = vec!["t"];
    v.extend_from_slice(args);
    T::parse_from(v).plan.validate()
}

/// [`parse_for_tests`] of a valid plan against a loopback target, plus `args`.
#[cfg(test)]
pub(crate) fn loopback_plan_for_tests(args: &[&str]) -> Plan {
    let mut v = vec!["--target", "ws://127.0.0.1:1/"];
    v.extend_from_slice(args);
    parse_for_tests(&v).unwrap()
}

#[cfg(test)]
mod tests {
    use super::parse_for_tests as parse;
    use super::*;

    #[test]
    fn defaults_follow_the_reference() {
        let p = parse(&["--target", "ws://127.0.0.1:1/ws"]).unwrap();
        assert_eq!(
            (p.sessions, p.batch_size, p.max_active_batches, p.messages_per_session),
            (1000, 1000, 50, 30)
        );
        assert_eq!(p.batch_interval, Duration::from_secs(1));
        assert_eq!(p.connect_timeout, Duration::from_secs(10));
        assert_eq!(Plan::from_pb(&p.to_pb()).unwrap(), p);
    }

    #[test]
    fn the_documented_example_plan_is_valid() {
        let f = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/plan.toml");
        let p = parse(&["--plan", f]).unwrap();
        assert_eq!((p.sessions, p.batch_size, p.messages_per_session), (2000, 250, 30));
        assert_eq!(p.batch_interval, Duration::from_millis(500));
    }

    #[test]
    fn a_minimal_wire_plan_gets_the_defaults() {
        let p = Plan::from_pb(&pb::Plan {
            target: "ws://127.0.0.1:1/".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p, parse(&["--target", "ws://127.0.0.1:1/"]).unwrap());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(&["--target", "ws://h/", "--batch-size", "0"]).unwrap_err();
        assert_eq!(e.field, "batch-size");
        let e = parse(&["--target", "ws://h/", "--batch-interval", "soon"]).unwrap_err();
        assert_eq!(e.field, "batch-interval");
        assert!(e.to_string().contains("invalid plan: batch-interval"));
        assert_eq!(parse(&[]).unwrap_err().field, "target");
        assert_eq!(parse(&["--target", "http://h/"]).unwrap_err().field, "target");
        assert_eq!(
            parse(&["--target", "ws://h/", "--stage", "10s"]).unwrap_err().field,
            "stage"
        );
    }

    /// Found writing the `plan_fields` fuzz target (which now guards it): the
    /// schedule walks the stages in 10 ms steps, so `--stage 8000h:0` kept
    /// validation busy for hours.
    #[test]
    fn stages_longer_than_a_week_are_refused() {
        let e = parse(&["--target", "ws://h/", "--stage", "8000h:0"]).unwrap_err();
        assert_eq!(e.field, "stage");
        assert!(e.reason.contains("at most 7 days"), "{}", e.reason);
        let e = parse(&["--target", "ws://h/", "--stage", "100h:1", "--stage", "69h:1"]).unwrap_err();
        assert!(e.reason.contains("last 7days 1h in all"), "{}", e.reason);
        let p = parse(&[
            "--target",
            "ws://h/",
            "--sessions",
            "9",
            "--stage",
            "100h:1",
            "--stage",
            "68h:0",
        ])
        .unwrap();
        assert_eq!(p.stages.len(), 2);
    }

    /// Found writing the `plan_fields` fuzz target (which now guards it):
    /// 100,000,000 sessions in batches of 1 made a schedule of 3 GB.
    #[test]
    fn batches_are_bounded() {
        let e = parse(&["--target", "ws://h/", "--sessions", "100000000", "--batch-size", "1"]).unwrap_err();
        assert_eq!(e.field, "batch-size");
        assert!(
            e.reason.contains("make 100000000 batches; at most 1000000"),
            "{}",
            e.reason
        );
        let p = parse(&["--target", "ws://h/", "--sessions", "1000000", "--batch-size", "1"]).unwrap();
        assert_eq!(crate::schedule::batches(&p).len(), 1_000_000);
    }

    /// A session of the built-in protocol keeps a slot per message sent: the count
    /// is bounded like a scenario loop's.
    #[test]
    fn messages_per_session_are_bounded() {
        let e = parse(&["--target", "ws://h/", "--messages-per-session", "1000000001"]).unwrap_err();
        assert_eq!(e.field, "messages-per-session");
        assert!(parse(&["--target", "ws://h/", "--messages-per-session", "1000000000"]).is_ok());
    }

    /// Found by fuzzing (plan_fields, plan_toml): plans valid from flags or a file
    /// that a remote StartRun refused, because the wire carries milliseconds: a
    /// batch interval of 5,400 years (`170430290136000ms` does not parse back) and
    /// a 30 µs stage (0 ms on the wire: "zero duration").
    #[test]
    fn valid_plans_stay_valid_over_the_wire() {
        let e = parse(&["--target", "ws://h/", "--batch-interval", "5400y"]).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            ("batch-interval", "`5400y` is longer than a year")
        );
        let e = parse(&["--target", "ws://h/", "--stage", "10s:100", "--stage", "30us:1"]).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            ("stage", "`30us` is below 1ms, the plan's resolution")
        );
        let e = parse(&["--target", "ws://h/", "--connect-timeout", "500us"]).unwrap_err();
        assert_eq!(e.field, "connect-timeout");
        let p = parse(&[
            "--target",
            "ws://h/",
            "--batch-interval",
            "365days",
            "--stage",
            "1ms:5",
            "--sessions",
            "3",
        ])
        .unwrap();
        assert_eq!(Plan::from_pb(&p.to_pb()).unwrap(), p);
    }

    #[test]
    fn toml_plan_is_overridden_by_flags() {
        let dir = std::env::temp_dir().join(format!("wsload-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("plan.toml");
        std::fs::write(
            &f,
            "target = \"ws://127.0.0.1:9/ws\"\nsessions = 20\nbatch_size = 5\nmessage-interval = \"50ms\"\n",
        )
        .unwrap();
        let p = parse(&["--plan", f.to_str().unwrap(), "--sessions", "40"]).unwrap();
        assert_eq!((p.sessions, p.batch_size), (40, 5));
        assert_eq!(p.message_interval, Duration::from_millis(50));
        std::fs::write(&f, "target = \"ws://h/\"\nbogus = 1\n").unwrap();
        assert_eq!(parse(&["--plan", f.to_str().unwrap()]).unwrap_err().field, "plan");
    }
}
