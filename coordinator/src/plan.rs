//! The load plan: flags or a TOML file with the same names, validated before
//! anything connects. Every invalid value is an error naming its field.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use wsload_proto::pb;

/// Largest message payload accepted (the server's max payload is 1 MiB).
const MAX_PAYLOAD: u64 = 1024 * 1024;

/// Plan flags (all optional: TOML values are overridden by flags, then defaults apply).
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
}

fn duration(field: &str, v: &Option<String>, default: Duration) -> Result<Duration, PlanError> {
    match v {
        None => Ok(default),
        Some(s) if s.trim() == "0" => Ok(Duration::ZERO),
        Some(s) => humantime::parse_duration(s.trim()).map_err(|e| {
            err(
                field,
                format!("`{s}` is not a duration ({e}); use units like 500ms, 10s, 2m"),
            )
        }),
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
        let table: toml::Table = text
            .parse()
            .map_err(|e| err("plan", format!("{}: {e}", path.display())))?;
        let table: toml::Table = table.into_iter().map(|(k, v)| (k.replace('_', "-"), v)).collect();
        let file: PlanArgs = table
            .try_into()
            .map_err(|e: toml::de::Error| err("plan", format!("{}: {}", path.display(), e.message())))?;
        macro_rules! pick { ($($f:ident),*) => { PlanArgs { plan: None, $($f: self.$f.clone().or(file.$f),)* stages: if self.stages.is_empty() { file.stages } else { self.stages.clone() } } } }
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
            compression
        ))
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
        let positive = |field: &str, v: Option<u64>, default: u64| -> Result<u64, PlanError> {
            match v.unwrap_or(default) {
                0 => Err(err(field, "must be at least 1")),
                n => Ok(n),
            }
        };
        let sessions = match (a.sessions, stages.is_empty()) {
            (Some(0), _) => return Err(err("sessions", "must be at least 1")),
            (Some(n), _) => n,
            (None, true) => 1000,
            (None, false) => crate::schedule::stage_arrivals(&stages),
        };
        if sessions == 0 {
            return Err(err("stage", "the stages produce no session"));
        }
        if sessions > 100_000_000 {
            return Err(err("sessions", "more than 100,000,000"));
        }
        let connect_timeout = duration("connect-timeout", &a.connect_timeout, Duration::from_secs(10))?;
        if connect_timeout.is_zero() {
            return Err(err("connect-timeout", "must be greater than 0"));
        }
        let response_timeout = duration("response-timeout", &a.response_timeout, Duration::from_secs(10))?;
        if response_timeout.is_zero() {
            return Err(err("response-timeout", "must be greater than 0"));
        }
        let payload_size = a.payload_size.unwrap_or(0);
        if payload_size > MAX_PAYLOAD {
            return Err(err("payload-size", format!("{payload_size} is above the 1 MiB limit")));
        }
        let max_duration = match &a.max_duration {
            None => None,
            Some(_) => match duration("max-duration", &a.max_duration, Duration::ZERO)? {
                d if d.is_zero() => return Err(err("max-duration", "must be greater than 0")),
                d => Some(d),
            },
        };
        Ok(Plan {
            target,
            sessions,
            batch_size: positive("batch-size", a.batch_size, 1000)?,
            batch_interval: duration("batch-interval", &a.batch_interval, Duration::from_secs(1))?,
            max_active_batches: positive("max-active-batches", a.max_active_batches, 50)?,
            connect_timeout,
            response_timeout,
            messages_per_session: a.messages_per_session.unwrap_or(30),
            message_interval: duration("message-interval", &a.message_interval, Duration::ZERO)?,
            payload_size,
            hold_time: duration("hold-time", &a.hold_time, Duration::ZERO)?,
            stages,
            max_duration,
            compression: a.compression.unwrap_or(false),
        })
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Plan {
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
        };
        args.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        plan: PlanArgs,
    }

    fn parse(args: &[&str]) -> Result<Plan, PlanError> {
        let mut v = vec!["t"];
        v.extend_from_slice(args);
        T::parse_from(v).plan.validate()
    }

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
