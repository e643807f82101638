//! The `[[scenario]]` and `[[feeder]]` tables of a TOML plan, turned into their wire
//! form. Only the shape is checked here (unknown keys, types, durations, files);
//! what the steps mean is checked by `wsload_scenario::compile`, the same code the
//! agents run.
//!
//! ```toml
//! [[feeder]]
//! name = "users"
//! file = "users.csv"        # header row = column names; relative to the plan file
//! mode = "unique"           # circular (default), random, unique
//!
//! [[scenario]]
//! name = "chat"
//! weight = 95               # or: sessions = 10 (an exact count)
//! reconnect = { attempts = 5, backoff = "100ms", max_backoff = "5s" }
//!
//!   [[scenario.on]]         # what to do with messages no step claims
//!   match = { json = "$.type", equals = "error" }
//!   fail = "server_error"
//!
//!   [[scenario.step]]
//!   expect = { json = "$.type", equals = "session" }
//!   capture = { sid = "$.sessionId" }
//!
//!   [[scenario.step]]
//!   loop = { count = 30, pacing = "open", interval = "100ms" }
//!     [[scenario.step.steps]]
//!     name = "echo"
//!     request = { text = '{"id":"{{uuid}}"}', reply = { json = "$.id", equals = "{{uuid}}" } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use wsload_proto::pb::{self, FeederMode, Pacing};

use crate::plan::PlanError;

/// Largest feeder file accepted (the whole plan travels to every agent).
pub const MAX_FEEDER_BYTES: u64 = wsload_proto::limits::MAX_FEEDER_FILE_BYTES;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioSpec {
    name: String,
    #[serde(default)]
    weight: Option<u64>,
    #[serde(default)]
    sessions: Option<u64>,
    #[serde(default)]
    builtin: Option<String>,
    #[serde(default, alias = "fail-on-unexpected")]
    fail_on_unexpected: bool,
    #[serde(default)]
    on: Vec<HandlerSpec>,
    #[serde(default)]
    step: Vec<StepSpec>,
    #[serde(default)]
    reconnect: Option<ReconnectSpec>,
}

/// `reconnect = { attempts = 5, backoff = "100ms", max_backoff = "5s" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconnectSpec {
    attempts: u32,
    #[serde(default)]
    backoff: Option<String>,
    #[serde(default, alias = "max-backoff")]
    max_backoff: Option<String>,
}

/// The first backoff when a plan gives none.
const DEFAULT_RECONNECT_BACKOFF_MS: u64 = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandlerSpec {
    r#match: MatcherSpec,
    #[serde(default)]
    count: Option<String>,
    #[serde(default)]
    fail: Option<String>,
    #[serde(default)]
    reply: Option<String>,
    #[serde(default)]
    ignore: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherSpec {
    #[serde(default)]
    json: Option<String>,
    #[serde(default)]
    equals: Option<toml::Value>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    exists: Option<bool>,
    #[serde(default)]
    any: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CaptureSpec {
    Path(String),
    Table {
        #[serde(default)]
        json: Option<String>,
        #[serde(default)]
        regex: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    capture: BTreeMap<String, CaptureSpec>,
    #[serde(default)]
    strict: bool,
    #[serde(default)]
    connect: Option<ConnectSpec>,
    #[serde(default)]
    send: Option<PayloadSpec>,
    #[serde(default)]
    expect: Option<MatcherSpec>,
    #[serde(default)]
    request: Option<RequestSpec>,
    #[serde(default)]
    listen: Option<ListenSpec>,
    #[serde(default)]
    think: Option<ThinkSpec>,
    #[serde(default)]
    r#loop: Option<LoopSpec>,
    #[serde(default)]
    ping: Option<PingSpec>,
    #[serde(default)]
    close: Option<CloseSpec>,
    /// The loop's body (`[[scenario.step.steps]]`).
    #[serde(default)]
    steps: Vec<StepSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectSpec {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    subprotocols: Vec<String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PayloadSpec {
    Text(String),
    Table(PayloadTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadTable {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, alias = "binary-hex")]
    binary_hex: Option<String>,
    #[serde(default, alias = "binary-base64")]
    binary_base64: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestSpec {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, alias = "binary-hex")]
    binary_hex: Option<String>,
    #[serde(default, alias = "binary-base64")]
    binary_base64: Option<String>,
    #[serde(default)]
    reply: Option<MatcherSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenSpec {
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    filter: Option<MatcherSpec>,
    #[serde(default)]
    fanout: Option<FanoutSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FanoutSpec {
    #[serde(alias = "sent-at")]
    sent_at: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    expected: Option<u64>,
    #[serde(default)]
    stream: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ThinkSpec {
    Constant(String),
    Table(ThinkTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThinkTable {
    #[serde(default)]
    constant: Option<String>,
    #[serde(default)]
    uniform: Option<[String; 2]>,
    #[serde(default)]
    exponential: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoopSpec {
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    pacing: Option<String>,
    #[serde(default)]
    interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PingSpec {
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseSpec {
    #[serde(default)]
    code: Option<u32>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeederSpec {
    name: String,
    file: String,
    #[serde(default)]
    mode: Option<String>,
}

/// Where an error is: `scenario "chat" step 3`.
struct At<'a> {
    scenario: &'a str,
    step: Option<&'a str>,
}

impl At<'_> {
    fn err(&self, field: &str, reason: impl Into<String>) -> PlanError {
        let mut loc = format!("scenario \"{}\"", self.scenario);
        if let Some(s) = self.step {
            loc.push_str(&format!(" step {s}"));
        }
        if !field.is_empty() {
            loc.push(' ');
            loc.push_str(field);
        }
        PlanError {
            field: loc,
            reason: reason.into(),
        }
    }

    fn duration(&self, field: &str, v: &str) -> Result<u64, PlanError> {
        let d = if v.trim() == "0" {
            Duration::ZERO
        } else {
            humantime::parse_duration(v.trim()).map_err(|e| {
                self.err(
                    field,
                    format!("`{v}` is not a duration ({e}); use units like 500ms, 10s, 2m"),
                )
            })?
        };
        Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Parses the `[[scenario]]` tables.
pub fn scenarios(tables: &[toml::Value]) -> Result<Vec<pb::Scenario>, PlanError> {
    let mut out = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let name = t
            .get("name")
            .and_then(toml::Value::as_str)
            .map_or_else(|| format!("#{}", i + 1), str::to_string);
        let at = At {
            scenario: &name,
            step: None,
        };
        let spec: ScenarioSpec = t
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| at.err("", e.message().to_string()))?;
        out.push(scenario(&spec, &at)?);
    }
    Ok(out)
}

fn scenario(s: &ScenarioSpec, at: &At<'_>) -> Result<pb::Scenario, PlanError> {
    let builtin_seed = match s.builtin.as_deref() {
        None => false,
        Some("seed") => true,
        Some(other) => {
            return Err(at.err(
                "builtin",
                format!("`{other}` is not a built-in scenario (there is `seed`)"),
            ))
        }
    };
    if s.weight.is_some() && s.sessions.is_some() {
        return Err(at.err("weight", "give a weight or a number of sessions, not both"));
    }
    let handlers =
        s.on.iter()
            .enumerate()
            .map(|(i, h)| handler(h, &format!("on[{}]", i + 1), at))
            .collect::<Result<_, _>>()?;
    Ok(pb::Scenario {
        name: s.name.clone(),
        weight: s.weight.unwrap_or(if s.sessions.is_some() { 0 } else { 1 }),
        sessions: s.sessions.unwrap_or(0),
        builtin_seed,
        steps: steps(&s.step, "", &s.name)?,
        handlers,
        fail_on_unexpected: s.fail_on_unexpected,
        reconnect: s.reconnect.as_ref().map(|r| reconnect(r, at)).transpose()?,
    })
}

fn reconnect(r: &ReconnectSpec, at: &At<'_>) -> Result<pb::Reconnect, PlanError> {
    let ms = |field: &str, v: &Option<String>| v.as_deref().map(|d| at.duration(field, d)).transpose();
    Ok(pb::Reconnect {
        attempts: r.attempts,
        backoff_ms: ms("reconnect.backoff", &r.backoff)?.unwrap_or(DEFAULT_RECONNECT_BACKOFF_MS),
        max_backoff_ms: ms("reconnect.max_backoff", &r.max_backoff)?.unwrap_or(0),
    })
}

fn steps(list: &[StepSpec], prefix: &str, scenario: &str) -> Result<Vec<pb::Step>, PlanError> {
    list.iter()
        .enumerate()
        .map(|(i, st)| {
            let label = format!("{prefix}{}", i + 1);
            step(st, &label, scenario)
        })
        .collect()
}

fn step(st: &StepSpec, label: &str, scenario: &str) -> Result<pb::Step, PlanError> {
    use pb::step::Kind;
    let at = At {
        scenario,
        step: Some(label),
    };
    let given: Vec<&str> = [
        ("connect", st.connect.is_some()),
        ("send", st.send.is_some()),
        ("expect", st.expect.is_some()),
        ("request", st.request.is_some()),
        ("listen", st.listen.is_some()),
        ("think", st.think.is_some()),
        ("loop", st.r#loop.is_some()),
        ("ping", st.ping.is_some()),
        ("close", st.close.is_some()),
    ]
    .into_iter()
    .filter(|(_, g)| *g)
    .map(|(k, _)| k)
    .collect();
    match given.as_slice() {
        [_] => {}
        [] => {
            return Err(at.err(
                "",
                "a step needs one of connect, send, expect, request, listen, think, loop, ping, close",
            ))
        }
        many => {
            return Err(at.err(
                "",
                format!("a step does one thing, this one has {}", many.join(" and ")),
            ))
        }
    }
    if !st.steps.is_empty() && st.r#loop.is_none() {
        return Err(at.err("steps", "only a loop step has steps"));
    }
    let takes_captures = st.expect.is_some() || st.request.is_some();
    if !st.capture.is_empty() && !takes_captures {
        return Err(at.err("capture", "only expect and request steps capture values"));
    }
    if st.strict && st.expect.is_none() {
        return Err(at.err("strict", "only an expect step can be strict"));
    }
    let captures: Vec<pb::Capture> = st
        .capture
        .iter()
        .map(|(var, c)| match c {
            CaptureSpec::Path(p) => pb::Capture {
                var: var.clone(),
                json: p.clone(),
                regex: String::new(),
            },
            CaptureSpec::Table { json, regex } => pb::Capture {
                var: var.clone(),
                json: json.clone().unwrap_or_default(),
                regex: regex.clone().unwrap_or_default(),
            },
        })
        .collect();
    let kind = if let Some(c) = &st.connect {
        Kind::Connect(pb::Connect {
            url: c.url.clone().unwrap_or_default(),
            headers: c.headers.clone().into_iter().collect(),
            subprotocols: c.subprotocols.clone(),
            query: c.query.clone().into_iter().collect(),
        })
    } else if let Some(p) = &st.send {
        let payload = match p {
            PayloadSpec::Text(t) => text(t),
            PayloadSpec::Table(t) => payload(
                t.text.as_deref(),
                t.binary_hex.as_deref(),
                t.binary_base64.as_deref(),
                "send",
                &at,
            )?,
        };
        Kind::Send(pb::Send { payload: Some(payload) })
    } else if let Some(m) = &st.expect {
        Kind::Expect(pb::Expect {
            matcher: Some(matcher(m, "expect", &at)?),
            captures,
            strict: st.strict,
        })
    } else if let Some(r) = &st.request {
        Kind::Request(pb::Request {
            payload: Some(payload(
                r.text.as_deref(),
                r.binary_hex.as_deref(),
                r.binary_base64.as_deref(),
                "request",
                &at,
            )?),
            reply: r.reply.as_ref().map(|m| matcher(m, "request.reply", &at)).transpose()?,
            captures,
        })
    } else if let Some(l) = &st.listen {
        Kind::Listen(pb::Listen {
            duration_ms: l
                .duration
                .as_deref()
                .map(|d| at.duration("listen.duration", d))
                .transpose()?
                .unwrap_or(0),
            count: l.count.unwrap_or(0),
            filter: l
                .filter
                .as_ref()
                .map(|m| matcher(m, "listen.filter", &at))
                .transpose()?,
            fanout: l.fanout.as_ref().map(|f| pb::Fanout {
                sent_at: f.sent_at.clone(),
                id: f.id.clone().unwrap_or_default(),
                from: f.from.clone().unwrap_or_default(),
                expected: f.expected.unwrap_or(0),
                stream: f.stream.clone().unwrap_or_default(),
            }),
        })
    } else if let Some(t) = &st.think {
        Kind::Think(think(t, &at)?)
    } else if let Some(l) = &st.r#loop {
        let pacing = match l.pacing.as_deref() {
            None => Pacing::Unspecified,
            Some(p) => pacing(p).ok_or_else(|| at.err("loop.pacing", format!("`{p}` is not open, closed or burst")))?,
        };
        Kind::Loop(pb::Loop {
            count: l.count.unwrap_or(0),
            duration_ms: l
                .duration
                .as_deref()
                .map(|d| at.duration("loop.duration", d))
                .transpose()?
                .unwrap_or(0),
            pacing: pacing as i32,
            interval_ms: l
                .interval
                .as_deref()
                .map(|d| at.duration("loop.interval", d))
                .transpose()?
                .unwrap_or(0),
            steps: steps(&st.steps, &format!("{label}."), scenario)?,
        })
    } else if let Some(p) = &st.ping {
        Kind::Ping(pb::Ping {
            payload: p.payload.clone().unwrap_or_default().into_bytes(),
        })
    } else if let Some(c) = &st.close {
        Kind::Close(pb::Close {
            code: c.code.unwrap_or(0),
            reason: c.reason.clone().unwrap_or_default(),
        })
    } else {
        unreachable!("exactly one kind was checked above")
    };
    Ok(pb::Step {
        name: st.name.clone().unwrap_or_default(),
        timeout_ms: match st.timeout.as_deref() {
            None => 0,
            Some(t) => match at.duration("timeout", t)? {
                0 => return Err(at.err("timeout", "must be greater than 0")),
                ms => ms,
            },
        },
        kind: Some(kind),
    })
}

/// `open`, `closed` or `burst`.
pub fn pacing(s: &str) -> Option<Pacing> {
    match s {
        "open" => Some(Pacing::Open),
        "closed" => Some(Pacing::Closed),
        "burst" => Some(Pacing::Burst),
        _ => None,
    }
}

fn text(t: &str) -> pb::Payload {
    pb::Payload {
        body: Some(pb::payload::Body::Text(t.to_string())),
    }
}

fn payload(
    text_: Option<&str>,
    hex: Option<&str>,
    b64: Option<&str>,
    field: &str,
    at: &At<'_>,
) -> Result<pb::Payload, PlanError> {
    use pb::payload::Body;
    let body = match (text_, hex, b64) {
        (Some(t), None, None) => Body::Text(t.to_string()),
        (None, Some(h), None) => Body::Binary(decode_hex(h).ok_or_else(|| {
            at.err(
                &format!("{field}.binary_hex"),
                format!("`{h}` is not hexadecimal bytes"),
            )
        })?),
        (None, None, Some(b)) => Body::Binary(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| at.err(&format!("{field}.binary_base64"), format!("not base64: {e}")))?,
        ),
        (None, None, None) => return Err(at.err(field, "give text, binary_hex or binary_base64")),
        _ => return Err(at.err(field, "give one of text, binary_hex, binary_base64")),
    };
    Ok(pb::Payload { body: Some(body) })
}

fn decode_hex(h: &str) -> Option<Vec<u8>> {
    let h: String = h.chars().filter(|c| !c.is_whitespace()).collect();
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

fn matcher(m: &MatcherSpec, field: &str, at: &At<'_>) -> Result<pb::Matcher, PlanError> {
    use pb::matcher::Test;
    let mut tests = Vec::new();
    if let Some(v) = &m.equals {
        let s = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(at.err(
                    &format!("{field}.equals"),
                    format!("compare with a string, number or boolean, not {}", other.type_str()),
                ))
            }
        };
        tests.push(Test::Equals(s));
    }
    if let Some(r) = &m.regex {
        tests.push(Test::Regex(r.clone()));
    }
    if let Some(c) = &m.contains {
        tests.push(Test::Contains(c.clone()));
    }
    if let Some(e) = m.exists {
        tests.push(Test::Exists(e));
    }
    if let Some(a) = m.any {
        tests.push(Test::Any(a));
    }
    if tests.len() > 1 {
        return Err(at.err(field, "give one test: equals, regex, contains, exists or any"));
    }
    if tests.is_empty() && m.json.is_none() {
        return Err(at.err(
            field,
            "give json = PATH and/or a test: equals, regex, contains, exists or any",
        ));
    }
    Ok(pb::Matcher {
        json: m.json.clone().unwrap_or_default(),
        test: tests.pop(),
    })
}

fn handler(h: &HandlerSpec, field: &str, at: &At<'_>) -> Result<pb::Handler, PlanError> {
    use pb::handler::Action;
    let mut actions = Vec::new();
    if let Some(c) = &h.count {
        actions.push(Action::Count(c.clone()));
    }
    if let Some(f) = &h.fail {
        actions.push(Action::Fail(f.clone()));
    }
    if let Some(r) = &h.reply {
        actions.push(Action::Reply(r.clone()));
    }
    if h.ignore {
        actions.push(Action::Ignore(true));
    }
    if actions.len() != 1 {
        return Err(at.err(
            field,
            "a handler does one of count = NAME, fail = KIND, reply = TEXT, ignore = true",
        ));
    }
    Ok(pb::Handler {
        r#match: Some(matcher(&h.r#match, &format!("{field}.match"), at)?),
        action: actions.pop(),
    })
}

fn think(t: &ThinkSpec, at: &At<'_>) -> Result<pb::Think, PlanError> {
    use pb::think::Dist;
    let dist = match t {
        ThinkSpec::Constant(d) => Dist::ConstantMs(at.duration("think", d)?),
        ThinkSpec::Table(t) => match (&t.constant, &t.uniform, &t.exponential) {
            (Some(d), None, None) => Dist::ConstantMs(at.duration("think.constant", d)?),
            (None, Some([a, b]), None) => Dist::Uniform(pb::Range {
                min_ms: at.duration("think.uniform", a)?,
                max_ms: at.duration("think.uniform", b)?,
            }),
            (None, None, Some(m)) => Dist::ExponentialMeanMs(at.duration("think.exponential", m)?),
            _ => {
                return Err(at.err(
                    "think",
                    "give one of constant = D, uniform = [MIN, MAX], exponential = MEAN",
                ))
            }
        },
    };
    Ok(pb::Think { dist: Some(dist) })
}

/// Parses the `[[feeder]]` tables, reading their CSV files relative to `base`.
pub fn feeders(tables: &[toml::Value], base: &Path) -> Result<Vec<pb::Feeder>, PlanError> {
    let mut out = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let name = t
            .get("name")
            .and_then(toml::Value::as_str)
            .map_or_else(|| format!("#{}", i + 1), str::to_string);
        let err = |reason: String| PlanError {
            field: format!("feeder \"{name}\""),
            reason,
        };
        let spec: FeederSpec = t
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| err(e.message().to_string()))?;
        let mode = match spec.mode.as_deref() {
            None | Some("circular") => FeederMode::Circular,
            Some("random") => FeederMode::Random,
            Some("unique") => FeederMode::Unique,
            Some(other) => return Err(err(format!("mode `{other}` is not circular, random or unique"))),
        };
        let path = base.join(&spec.file);
        let size = std::fs::metadata(&path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?
            .len();
        if size > MAX_FEEDER_BYTES {
            return Err(err(format!(
                "{} is {size} bytes; feeders travel to every agent and are limited to {MAX_FEEDER_BYTES}",
                path.display()
            )));
        }
        let mut reader =
            csv::Reader::from_path(&path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| err(format!("{}: {e}", path.display())))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for rec in reader.records() {
            let rec = rec.map_err(|e| err(format!("{}: {e}", path.display())))?;
            rows.push(pb::Row {
                values: rec.iter().map(str::to_string).collect(),
            });
        }
        out.push(pb::Feeder {
            name: spec.name,
            columns,
            rows,
            mode: mode as i32,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::plan::{Plan, PlanArgs, PlanError};

    /// Validates a plan file with `body` after a target line (3 sessions).
    fn plan(body: &str) -> Result<Plan, PlanError> {
        plan_with(3, body)
    }

    /// Validates a plan file of `sessions` sessions with `body`.
    fn plan_with(sessions: u64, body: &str) -> Result<Plan, PlanError> {
        let dir = std::env::temp_dir().join(format!(
            "wsload-scenario-{}-{:x}",
            std::process::id(),
            fastrand_seed(body)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("users.csv"), "id,name\n1,ann\n2,bob\n3,cy\n").unwrap();
        let f = dir.join("plan.toml");
        std::fs::write(
            &f,
            format!("target = \"ws://127.0.0.1:9/ws\"\nsessions = {sessions}\n{body}"),
        )
        .unwrap();
        let r = PlanArgs {
            plan: Some(f),
            ..Default::default()
        }
        .validate();
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    fn fastrand_seed(s: &str) -> u64 {
        s.bytes().fold(1469598103934665603u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(1099511628211)
        })
    }

    fn error(body: &str) -> String {
        plan(body).unwrap_err().to_string()
    }

    const ECHO: &str = r#"
[[feeder]]
name = "users"
file = "users.csv"
mode = "unique"

[[scenario]]
name = "echo"

  [[scenario.on]]
  match = { json = "$.type", equals = "server-event" }
  count = "server_events"

  [[scenario.step]]
  expect = { json = "$.type", equals = "session" }
  capture = { sid = "$.sessionId" }

  [[scenario.step]]
  loop = { count = 3, pacing = "open", interval = "100ms" }
    [[scenario.step.steps]]
    name = "echo"
    request = { text = '{"user":"{{users.name}}","sid":"{{sid}}","seq":{{seq}}}', reply = { json = "$.messageCount", equals = "{{seq}}" } }

  [[scenario.step]]
  think = { uniform = ["10ms", "20ms"] }

  [[scenario.step]]
  close = { code = 1000 }
"#;

    /// Every worked example of docs/SCENARIOS.md is a valid plan.
    #[test]
    fn the_documented_examples_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let p = PlanArgs {
                    plan: Some(path.clone()),
                    ..Default::default()
                }
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!p.scenarios.is_empty(), "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 5, "{seen} examples");
    }

    #[test]
    fn a_scripted_plan_compiles() {
        let p = plan(ECHO).unwrap();
        assert_eq!(p.scenarios.len(), 1);
        assert_eq!(p.feeders[0].rows.len(), 3);
        let program = p.program().unwrap();
        assert_eq!(program.named.len(), 1);
        assert_eq!(&*program.named[0].name, "echo");
        assert_eq!(program.counts.len(), 1);
        // The wire form round-trips through a remote StartRun unchanged.
        assert_eq!(Plan::from_pb(&p.to_pb()).unwrap(), p);
    }

    #[test]
    fn each_mistake_is_named() {
        let cases: &[(&str, &str)] = &[
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nsendd = \"x\"\n",
                "scenario \"a\": unknown field `sendd`",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nsend = \"{{nope}}\"\n",
                "scenario \"a\" step 1 (send) payload: `{{nope}}`: unknown variable `nope`",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nexpect = { json = \"$.[\", equals = \"x\" }\n",
                "scenario \"a\" step 1 (expect) json: `$.[` is not a JSON path",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nsend = \"{{users.email}}\"\n[[feeder]]\nname = \"users\"\nfile = \"users.csv\"\n",
                "feeder `users` has no column `email` (its columns: id, name)",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nloop = { pacing = \"open\", interval = \"1s\" }\n[[scenario.step.steps]]\nsend = \"x\"\n",
                "scenario \"a\" step 1 (loop): a loop needs a count or a duration",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nloop = { count = 2, pacing = \"open\" }\n[[scenario.step.steps]]\nsend = \"x\"\n",
                "scenario \"a\" step 1 (loop) interval: open pacing needs an interval",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nclose = {}\n[[scenario.step]]\nsend = \"x\"\n",
                "scenario \"a\" step 2 (send): the session is not connected here",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nsend = \"x\"\nexpect = { any = true }\n",
                "a step does one thing, this one has send and expect",
            ),
            (
                "[[scenario]]\nname = \"a\"\nsessions = 5\n[[scenario.step]]\nsend = \"x\"\n",
                "fixed session counts add up to 5, more than the plan's 3 sessions",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nname = \"s\"\nsend = \"x\"\n[[scenario.step]]\nname = \"s\"\nsend = \"y\"\n",
                "scenario \"a\" step 2 (send) name: another step is named `s`",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nlisten = { duration = \"1s\", fanout = { sent_at = \"$.t\", from = \"pub\" } }\nname = \"l\"\n",
                "scenario \"a\" step 1 (listen) fanout.from: no step is named `pub`",
            ),
            (
                "[[scenario]]\nname = \"a\"\n[[scenario.step]]\nthink = \"soon\"\n",
                "scenario \"a\" step 1 think: `soon` is not a duration",
            ),
            (
                "[[scenario]]\nname = \"a\"\nreconnect = { attempts = 0 }\n[[scenario.step]]\nsend = \"x\"\n",
                "scenario \"a\" reconnect.attempts: give at least 1 attempt",
            ),
            (
                "[[scenario]]\nname = \"a\"\nreconnect = { attempts = 3, backoff = \"2s\", max_backoff = \"1s\" }\n[[scenario.step]]\nsend = \"x\"\n",
                "scenario \"a\" reconnect.max_backoff: 1s is below the first backoff 2s",
            ),
            (
                "[[scenario]]\nname = \"a\"\nreconnect = { attempts = 3, backoff = \"0\" }\n[[scenario.step]]\nsend = \"x\"\n",
                "scenario \"a\" reconnect.backoff: must be greater than 0",
            ),
            (
                "[[scenario]]\nname = \"a\"\nreconnect = { attempts = 3, backof = \"1s\" }\n[[scenario.step]]\nsend = \"x\"\n",
                "scenario \"a\": unknown field `backof`",
            ),
            (
                "[[scenario]]\nname = \"a\"\nreconnect = { attempts = 3, backoff = \"soon\" }\n[[scenario.step]]\nsend = \"x\"\n",
                "scenario \"a\" reconnect.backoff: `soon` is not a duration",
            ),
            (
                "[[scenario]]\nname = \"a\"\nbuiltin = \"seed\"\nreconnect = { attempts = 3 }\n",
                "scenario \"a\" reconnect: the builtin seed protocol does not reconnect",
            ),
            (
                "[[feeder]]\nname = \"users\"\nfile = \"missing.csv\"\n[[scenario]]\nname = \"a\"\n[[scenario.step]]\nsend = \"x\"\n",
                "invalid plan: feeder \"users\": cannot read",
            ),
        ];
        for (body, want) in cases {
            let got = error(body);
            assert!(got.contains(want), "{body}\n  gave: {got}\n  want: {want}");
        }
    }

    #[test]
    fn a_reconnect_policy_reaches_the_program() {
        let p = plan(
            "[[scenario]]\nname = \"a\"\nreconnect = { attempts = 4, backoff = \"50ms\", max_backoff = \"2s\" }\n[[scenario.step]]\nsend = \"x\"\n[[scenario]]\nname = \"b\"\nreconnect = { attempts = 1 }\n[[scenario.step]]\nsend = \"x\"\n",
        )
        .unwrap();
        let program = p.program().unwrap();
        let r = program.scenarios[0].reconnect.unwrap();
        assert_eq!(
            (r.attempts, r.backoff, r.max_backoff),
            (4, Duration::from_millis(50), Duration::from_secs(2))
        );
        let r = program.scenarios[1].reconnect.unwrap();
        assert_eq!(
            (r.attempts, r.backoff, r.max_backoff),
            (1, Duration::from_millis(100), Duration::from_secs(30)),
            "defaults"
        );
        assert_eq!(Plan::from_pb(&p.to_pb()).unwrap(), p);
    }

    #[test]
    fn a_unique_feeder_needs_a_row_per_session() {
        let reader = "[[feeder]]\nname = \"users\"\nfile = \"users.csv\"\nmode = \"unique\"\n[[scenario]]\nname = \"a\"\n[[scenario.step]]\nsend = \"{{users.id}}\"\n";
        assert!(plan_with(3, reader).is_ok(), "3 rows for 3 sessions");
        let e = plan_with(4, reader).unwrap_err().to_string();
        assert!(
            e.contains("feeder `users` is unique and has 3 rows, but the scenario runs 4 sessions"),
            "{e}"
        );
        // Split with another scenario, `a` runs 3 of the 6 sessions: enough rows.
        let split = format!("{reader}[[scenario]]\nname = \"b\"\n[[scenario.step]]\nsend = \"x\"\n");
        assert!(plan_with(6, &split).is_ok());
    }

    #[test]
    fn builtin_pacing_is_checked() {
        let p = |args: &[&str]| {
            use clap::Parser;
            #[derive(Parser)]
            struct T {
                #[command(flatten)]
                plan: PlanArgs,
            }
            let mut v = vec!["t", "--target", "ws://127.0.0.1:9/ws"];
            v.extend_from_slice(args);
            T::parse_from(v).plan.validate()
        };
        assert_eq!(p(&["--pacing", "open"]).unwrap_err().field, "pacing");
        assert_eq!(
            p(&["--pacing", "burst", "--message-interval", "1s"]).unwrap_err().field,
            "pacing"
        );
        assert!(p(&["--pacing", "closed"]).is_ok());
        assert!(p(&["--pacing", "open", "--message-interval", "10ms"]).is_ok());
        assert_eq!(p(&["--pacing", "fast"]).unwrap_err().field, "pacing");
    }
}
