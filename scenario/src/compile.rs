//! Validation and compilation of a plan's scenarios (wire form) into a [`Program`].
//! The coordinator runs it before anything connects; agents run the same code on
//! the plan they are given, so what passed validation is what runs. Every error
//! names the scenario, the step (`3`, or `3.2` inside a loop) and the field.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wsload_proto::pb::{self, step::Kind, FeederMode, Pacing};

use crate::cohort::Cohorts;
use crate::feeder::Feeder;
use crate::matcher::{parse_path, Capture, MatchError, Matcher};
use crate::program::{
    Action, Connect, Fanout, Handler, Loop, NamedStep, Op, Payload, Program, Reach, Scenario, StepOp, Think,
};
use crate::template::{Scope, Template};

/// Most nested loops.
const MAX_DEPTH: usize = 8;
/// Most steps in one scenario (after flattening).
const MAX_OPS: usize = 10_000;
/// Largest loop count.
const MAX_COUNT: u64 = 1_000_000_000;

/// A scenario that cannot run, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", self.location())]
pub struct ScenarioError {
    /// The scenario's name (None: plan-wide, e.g. feeders).
    pub scenario: Option<String>,
    /// The step's label, `3` or `3.2`.
    pub step: Option<String>,
    /// The step's kind, `request`...
    pub kind: Option<&'static str>,
    /// The field, e.g. `reply.json`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl ScenarioError {
    /// `scenario "chat" step 3 (request) reply.json`.
    pub fn location(&self) -> String {
        let mut s = String::new();
        if let Some(sc) = &self.scenario {
            s.push_str(&format!("scenario \"{sc}\""));
        }
        if let Some(st) = &self.step {
            s.push_str(&format!(" step {st}"));
            if let Some(k) = self.kind {
                s.push_str(&format!(" ({k})"));
            }
        }
        if !self.field.is_empty() {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(&self.field);
        }
        s
    }
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Connect(_) => "connect",
        Kind::Send(_) => "send",
        Kind::Expect(_) => "expect",
        Kind::Request(_) => "request",
        Kind::Listen(_) => "listen",
        Kind::Think(_) => "think",
        Kind::Loop(_) => "loop",
        Kind::Ping(_) => "ping",
        Kind::Close(_) => "close",
    }
}

fn ident_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn var_ok(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const RESERVED_VARS: &[&str] = &[
    "session",
    "agent",
    "scenario",
    "seq",
    "iteration",
    "uuid",
    "now_us",
    "now_ms",
];

/// Compiles the plan's scenarios (a plan without any runs the built-in seed protocol
/// in every session).
pub fn compile(plan: &pb::Plan) -> Result<Program, ScenarioError> {
    let default_timeout = match plan.response_timeout_ms {
        0 => wsload_proto::defaults::RESPONSE_TIMEOUT,
        ms => Duration::from_millis(ms),
    };
    let plan_err = |field: &str, reason: String| ScenarioError {
        scenario: None,
        step: None,
        kind: None,
        field: field.to_string(),
        reason,
    };
    let mut feeders = Vec::new();
    for f in &plan.feeders {
        if feeders.iter().any(|g: &Feeder| g.name == f.name) {
            return Err(plan_err("feeder", format!("two feeders are named `{}`", f.name)));
        }
        feeders.push(Feeder::compile(f).map_err(|e| plan_err("feeder", e.0))?);
    }
    let sessions = plan.sessions.max(1);
    if plan.scenarios.is_empty() {
        if !feeders.is_empty() {
            return Err(plan_err(
                "feeder",
                "feeders are read by scenarios, and the plan has none".into(),
            ));
        }
        return Ok(Program::seed_only(sessions));
    }
    let mut c = Compiler {
        feeders: &feeders,
        named: Vec::new(),
        counts: Vec::new(),
        fail_kinds: Vec::new(),
        default_timeout,
        fanout_from: Vec::new(),
    };
    let mut scenarios = Vec::new();
    for s in &plan.scenarios {
        if !ident_ok(&s.name) {
            return Err(plan_err(
                "scenario",
                format!("scenario name `{}` must be 1-64 letters, digits, _ - or .", s.name),
            ));
        }
        if scenarios.iter().any(|o: &Scenario| *o.name == s.name) {
            return Err(plan_err("scenario", format!("two scenarios are named `{}`", s.name)));
        }
        scenarios.push(c.scenario(s)?);
    }
    // Fan-out `from` names a send step, which may be in any scenario.
    for (listen, from, scenario, label) in std::mem::take(&mut c.fanout_from) {
        let err = |reason: String| ScenarioError {
            scenario: Some(scenario.clone()),
            step: Some(label.clone()),
            kind: Some("listen"),
            field: "fanout.from".into(),
            reason,
        };
        let id = c
            .named
            .iter()
            .position(|n| *n.name == from)
            .ok_or_else(|| err(format!("no step is named `{from}`")))?;
        if c.named[id].kind != "send" {
            return Err(err(format!(
                "`{from}` is a {} step; name the send step that publishes",
                c.named[id].kind
            )));
        }
        c.named[listen].reach = Some(Reach::From(u16::try_from(id).unwrap_or(u16::MAX)));
    }
    let shares: Vec<(u64, u64)> = plan.scenarios.iter().map(|s| (s.sessions, s.weight)).collect();
    let cohorts = Cohorts::new(sessions, &shares).map_err(|e| plan_err("scenario", e.to_string()))?;
    // A unique feeder must have a row for every session of every scenario reading it.
    for (k, s) in scenarios.iter().enumerate() {
        for f in &s.feeders {
            let feeder = &feeders[usize::from(*f)];
            if feeder.mode == FeederMode::Unique && (feeder.len() as u64) < cohorts.counts()[k] {
                return Err(ScenarioError {
                    scenario: Some(s.name.to_string()),
                    step: None,
                    kind: None,
                    field: "feeder".into(),
                    reason: format!(
                        "feeder `{}` is unique and has {} rows, but the scenario runs {} sessions",
                        feeder.name,
                        feeder.len(),
                        cohorts.counts()[k]
                    ),
                });
            }
        }
    }
    let Compiler {
        named,
        counts,
        fail_kinds,
        ..
    } = c;
    Ok(Program {
        scenarios,
        feeders,
        named,
        counts,
        fail_kinds,
        cohorts,
    })
}

/// The index of `name` in `table`, added if missing.
fn intern(table: &mut Vec<Arc<str>>, name: &str) -> u16 {
    let i = match table.iter().position(|c| **c == *name) {
        Some(i) => i,
        None => {
            table.push(name.into());
            table.len() - 1
        }
    };
    u16::try_from(i).unwrap_or(u16::MAX)
}

struct Compiler<'a> {
    feeders: &'a [Feeder],
    named: Vec<NamedStep>,
    counts: Vec<Arc<str>>,
    fail_kinds: Vec<Arc<str>>,
    default_timeout: Duration,
    /// (listen step id, send step name, scenario, label) resolved at the end.
    fanout_from: Vec<(usize, String, String, String)>,
}

/// Per-scenario compilation state.
struct Ctx {
    scenario: String,
    ops: Vec<StepOp>,
    scope: Scope,
    connected: bool,
    depth: usize,
}

impl Compiler<'_> {
    fn scenario(&mut self, s: &pb::Scenario) -> Result<Scenario, ScenarioError> {
        let err = |field: &str, reason: String| ScenarioError {
            scenario: Some(s.name.clone()),
            step: None,
            kind: None,
            field: field.into(),
            reason,
        };
        let reconnect = s.reconnect.as_ref().map(|r| reconnect(r, &err)).transpose()?;
        if s.builtin_seed {
            if reconnect.is_some() {
                return Err(err(
                    "reconnect",
                    "the builtin seed protocol does not reconnect; write the conversation as steps".into(),
                ));
            }
            if !s.steps.is_empty() || !s.handlers.is_empty() {
                return Err(err(
                    "steps",
                    "a builtin seed scenario takes the plan's message settings, not steps or handlers".into(),
                ));
            }
            return Ok(Scenario {
                name: s.name.as_str().into(),
                seed: true,
                ops: Vec::new(),
                handlers: Vec::new(),
                fail_on_unexpected: false,
                captures: Vec::new(),
                feeders: Vec::new(),
                reconnect: None,
            });
        }
        if s.steps.is_empty() {
            return Err(err("steps", "a scenario needs steps (or `builtin = \"seed\"`)".into()));
        }
        let mut ctx = Ctx {
            scenario: s.name.clone(),
            ops: Vec::new(),
            scope: Scope {
                feeders: self
                    .feeders
                    .iter()
                    .map(|f| (f.name.clone(), f.columns.clone()))
                    .collect(),
                captures: Vec::new(),
            },
            connected: false,
            depth: 0,
        };
        // A scenario that starts talking without a connect step connects first.
        if talks_before_connecting(&s.steps) == Some(true) {
            ctx.ops.push(StepOp {
                op: Op::Connect(Connect {
                    url: None,
                    headers: Vec::new(),
                    subprotocols: Vec::new(),
                    query: Vec::new(),
                }),
                name: None,
                timeout: self.default_timeout,
                label: "0 (implicit connect)".into(),
            });
            ctx.connected = true;
        }
        self.steps(&mut ctx, &s.steps, "")?;
        let mut handlers = Vec::new();
        for (i, h) in s.handlers.iter().enumerate() {
            let field = |f: &str| format!("on[{}].{f}", i + 1);
            let m = h
                .r#match
                .as_ref()
                .ok_or_else(|| err(&field("match"), "a handler needs a match".into()))?;
            let matcher = Matcher::compile(m, &ctx.scope).map_err(|e| err(&field(e.field), e.reason))?;
            use pb::handler::Action as A;
            let action = match &h.action {
                None => return Err(err(&field("action"), "give count, fail, reply or ignore".into())),
                Some(A::Count(name)) => {
                    if !ident_ok(name) {
                        return Err(err(
                            &field("count"),
                            format!("count name `{name}` must be letters, digits, _ - or ."),
                        ));
                    }
                    Action::Count(intern(&mut self.counts, name))
                }
                Some(A::Fail(kind)) => {
                    if !ident_ok(kind) {
                        return Err(err(
                            &field("fail"),
                            format!("error kind `{kind}` must be letters, digits, _ - or ."),
                        ));
                    }
                    Action::Fail(intern(&mut self.fail_kinds, kind))
                }
                Some(A::Reply(t)) => {
                    Action::Reply(Template::parse(t, &ctx.scope).map_err(|e| err(&field("reply"), e.0))?)
                }
                Some(A::Ignore(_)) => Action::Ignore,
            };
            handlers.push(Handler { matcher, action });
        }
        if ctx.ops.len() > MAX_OPS {
            return Err(err("steps", format!("more than {MAX_OPS} steps")));
        }
        let mut feeders: Vec<u16> = Vec::new();
        let mut note = |t: &Template| {
            for f in t.feeders() {
                if !feeders.contains(&f) {
                    feeders.push(f);
                }
            }
        };
        for op in &ctx.ops {
            match &op.op {
                Op::Connect(c) => {
                    c.url.iter().for_each(&mut note);
                    c.headers.iter().for_each(|(_, t)| note(t));
                    c.query.iter().for_each(|(_, t)| note(t));
                }
                Op::Send(Payload::Text(t))
                | Op::Request {
                    payload: Payload::Text(t),
                    ..
                } => note(t),
                _ => {}
            }
        }
        for h in &handlers {
            if let Action::Reply(t) = &h.action {
                note(t);
            }
        }
        Ok(Scenario {
            name: s.name.as_str().into(),
            seed: false,
            ops: ctx.ops,
            handlers,
            fail_on_unexpected: s.fail_on_unexpected,
            captures: ctx.scope.captures,
            feeders,
            reconnect,
        })
    }

    fn steps(&mut self, ctx: &mut Ctx, steps: &[pb::Step], prefix: &str) -> Result<(), ScenarioError> {
        for (i, st) in steps.iter().enumerate() {
            let label = format!("{prefix}{}", i + 1);
            self.step(ctx, st, label)?;
        }
        Ok(())
    }

    fn step(&mut self, ctx: &mut Ctx, st: &pb::Step, label: String) -> Result<(), ScenarioError> {
        let kind = st.kind.as_ref().map(kind_name);
        let err = |field: &str, reason: String| ScenarioError {
            scenario: Some(ctx.scenario.clone()),
            step: Some(label.clone()),
            kind,
            field: field.into(),
            reason,
        };
        let m_err = |e: MatchError| ScenarioError {
            scenario: Some(ctx.scenario.clone()),
            step: Some(label.clone()),
            kind,
            field: e.field.into(),
            reason: e.reason,
        };
        let Some(k) = &st.kind else {
            return Err(err(
                "",
                "a step needs one of connect, send, expect, request, listen, think, loop, ping, close".into(),
            ));
        };
        let kind = kind_name(k);
        let name = if st.name.is_empty() {
            None
        } else {
            if !ident_ok(&st.name) {
                return Err(err(
                    "name",
                    format!("step name `{}` must be 1-64 letters, digits, _ - or .", st.name),
                ));
            }
            if self.named.iter().any(|n| *n.name == st.name) {
                return Err(err(
                    "name",
                    format!("another step is named `{}` (names are plan-wide)", st.name),
                ));
            }
            if matches!(k, Kind::Loop(_) | Kind::Think(_)) {
                return Err(err("name", format!("a {kind} step has no metrics to name")));
            }
            self.named.push(NamedStep {
                name: st.name.as_str().into(),
                kind,
                reach: None,
            });
            Some(u16::try_from(self.named.len() - 1).unwrap_or(u16::MAX))
        };
        let timeout = if st.timeout_ms == 0 {
            self.default_timeout
        } else {
            Duration::from_millis(st.timeout_ms)
        };
        if needs_socket(k) && !ctx.connected {
            return Err(err(
                "",
                "the session is not connected here (add a connect step first, or remove the close before it)".into(),
            ));
        }
        let label: Arc<str> = label.as_str().into();
        let op = match k {
            Kind::Connect(c) => {
                if ctx.connected {
                    return Err(err("", "the session is already connected (close it first)".into()));
                }
                ctx.connected = true;
                let tpl = |field: &str, t: &str| Template::parse(t, &ctx.scope).map_err(|e| err(field, e.0));
                let url = if c.url.is_empty() {
                    None
                } else {
                    url_check(&c.url).map_err(|r| err("url", r))?;
                    Some(tpl("url", &c.url)?)
                };
                let mut headers = Vec::new();
                let mut names: Vec<&String> = c.headers.keys().collect();
                names.sort();
                for h in names {
                    if http_token_bad(h) {
                        return Err(err("headers", format!("`{h}` is not a header name")));
                    }
                    headers.push((h.clone(), tpl(&format!("headers.{h}"), &c.headers[h])?));
                }
                let mut query = Vec::new();
                let mut keys: Vec<&String> = c.query.keys().collect();
                keys.sort();
                for q in keys {
                    query.push((q.clone(), tpl(&format!("query.{q}"), &c.query[q])?));
                }
                for p in &c.subprotocols {
                    if http_token_bad(p) {
                        return Err(err("subprotocols", format!("`{p}` is not a subprotocol token")));
                    }
                }
                Op::Connect(Connect {
                    url,
                    headers,
                    subprotocols: c.subprotocols.clone(),
                    query,
                })
            }
            Kind::Send(s) => Op::Send(payload(s.payload.as_ref(), &ctx.scope).map_err(|r| err("payload", r))?),
            Kind::Expect(e) => {
                let m = e
                    .matcher
                    .as_ref()
                    .ok_or_else(|| err("match", "expect needs a match".into()))?;
                let matcher = Matcher::compile(m, &ctx.scope).map_err(m_err)?;
                let captures = captures(&e.captures, &mut ctx.scope).map_err(|e| err(e.field, e.reason))?;
                Op::Expect {
                    matcher,
                    captures,
                    strict: e.strict,
                }
            }
            Kind::Request(r) => {
                let payload = payload(r.payload.as_ref(), &ctx.scope).map_err(|r| err("payload", r))?;
                let reply = r
                    .reply
                    .as_ref()
                    .map(|m| Matcher::compile(m, &ctx.scope))
                    .transpose()
                    .map_err(|e| err(&format!("reply.{}", e.field), e.reason))?;
                let captures = captures(&r.captures, &mut ctx.scope).map_err(|e| err(e.field, e.reason))?;
                Op::Request {
                    payload,
                    reply,
                    captures,
                }
            }
            Kind::Listen(l) => {
                if l.duration_ms == 0 && l.count == 0 {
                    return Err(err(
                        "",
                        "listen needs a duration or a count (every load loop is bounded)".into(),
                    ));
                }
                let filter = l
                    .filter
                    .as_ref()
                    .map(|m| Matcher::compile(m, &ctx.scope))
                    .transpose()
                    .map_err(|e| err(&format!("filter.{}", e.field), e.reason))?;
                let fanout = match &l.fanout {
                    None => None,
                    Some(f) => {
                        if f.sent_at.is_empty() {
                            return Err(err("fanout.sent_at", "give the JSON path of the send time".into()));
                        }
                        let sent_at = parse_path("fanout.sent_at", &f.sent_at).map_err(m_err)?;
                        let id = if f.id.is_empty() {
                            None
                        } else {
                            Some(parse_path("fanout.id", &f.id).map_err(m_err)?)
                        };
                        let Some(id_named) = name else {
                            return Err(err(
                                "name",
                                "a fan-out listen step needs a name (its figures are reported under it)".into(),
                            ));
                        };
                        match (f.from.is_empty(), f.expected) {
                            (false, 0) => self.fanout_from.push((
                                usize::from(id_named),
                                f.from.clone(),
                                ctx.scenario.clone(),
                                label.to_string(),
                            )),
                            (true, 0) => {}
                            (true, n) => self.named[usize::from(id_named)].reach = Some(Reach::Expected(n)),
                            (false, _) => return Err(err("fanout", "give `from` or `expected`, not both".into())),
                        }
                        let stream = if f.stream.is_empty() {
                            None
                        } else {
                            Some(parse_path("fanout.stream", &f.stream).map_err(m_err)?)
                        };
                        Some(Fanout { sent_at, id, stream })
                    }
                };
                Op::Listen {
                    duration: (l.duration_ms > 0).then(|| Duration::from_millis(l.duration_ms)),
                    count: (l.count > 0).then_some(l.count),
                    filter,
                    fanout,
                }
            }
            Kind::Think(t) => Op::Think(think(t).map_err(|r| err("think", r))?),
            Kind::Ping(p) => {
                if p.payload.len() > 125 {
                    return Err(err("payload", "a ping carries at most 125 bytes".into()));
                }
                Op::Ping(Bytes::copy_from_slice(&p.payload))
            }
            Kind::Close(c) => {
                let code = if c.code == 0 { 1000 } else { c.code };
                if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                    return Err(err(
                        "code",
                        format!("{code} is not a close code an endpoint may send (1000-1003, 1007-1014, 3000-4999)"),
                    ));
                }
                if c.reason.len() > 123 {
                    return Err(err("reason", "a close reason is at most 123 bytes".into()));
                }
                ctx.connected = false;
                Op::Close {
                    code: u16::try_from(code).unwrap_or(1000),
                    reason: c.reason.clone(),
                }
            }
            Kind::Loop(l) => {
                if l.count == 0 && l.duration_ms == 0 {
                    return Err(err(
                        "",
                        "a loop needs a count or a duration (every load loop is bounded)".into(),
                    ));
                }
                if l.count > MAX_COUNT {
                    return Err(err("count", format!("more than {MAX_COUNT}")));
                }
                if l.steps.is_empty() {
                    return Err(err("steps", "an empty loop".into()));
                }
                if ctx.depth >= MAX_DEPTH {
                    return Err(err("", format!("loops nest at most {MAX_DEPTH} deep")));
                }
                let pacing = match Pacing::try_from(l.pacing).unwrap_or(Pacing::Unspecified) {
                    Pacing::Unspecified => Pacing::Closed,
                    p => p,
                };
                let interval = Duration::from_millis(l.interval_ms);
                match pacing {
                    Pacing::Open if interval.is_zero() => {
                        return Err(err(
                            "interval",
                            "open pacing needs an interval (iteration k is due at start + k x interval)".into(),
                        ))
                    }
                    Pacing::Burst if !interval.is_zero() => {
                        return Err(err(
                            "interval",
                            "burst pacing sends everything at once: drop the interval, or use open pacing".into(),
                        ))
                    }
                    _ => {}
                }
                let start = ctx.ops.len();
                ctx.ops.push(StepOp {
                    op: Op::LoopStart(Loop {
                        count: (l.count > 0).then_some(l.count),
                        duration: (l.duration_ms > 0).then(|| Duration::from_millis(l.duration_ms)),
                        pacing,
                        interval,
                        end: 0,
                    }),
                    name,
                    timeout,
                    label: label.clone(),
                });
                let was_connected = ctx.connected;
                ctx.depth += 1;
                self.steps(ctx, &l.steps, &format!("{label}."))?;
                ctx.depth -= 1;
                if ctx.connected != was_connected {
                    return Err(ScenarioError {
                        scenario: Some(ctx.scenario.clone()),
                        step: Some(label.to_string()),
                        kind: Some("loop"),
                        field: "steps".into(),
                        reason: if was_connected {
                            "the loop's steps close the session without connecting again: each iteration must end as it began".into()
                        } else {
                            "the loop's steps connect without closing again: each iteration must end as it began".into()
                        },
                    });
                }
                let end = ctx.ops.len();
                if let Op::LoopStart(lp) = &mut ctx.ops[start].op {
                    lp.end = end;
                }
                Op::LoopEnd { start }
            }
        };
        ctx.ops.push(StepOp {
            op,
            name: if matches!(k, Kind::Loop(_)) { None } else { name },
            timeout,
            label,
        });
        Ok(())
    }
}

/// Most reconnect attempts in a session's life.
const MAX_RECONNECT_ATTEMPTS: u32 = 1_000;
/// Longest backoff (before jitter).
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Checks a scenario's reconnect policy.
fn reconnect(
    r: &pb::Reconnect,
    err: &impl Fn(&str, String) -> ScenarioError,
) -> Result<crate::program::Reconnect, ScenarioError> {
    if r.attempts == 0 {
        return Err(err(
            "reconnect.attempts",
            "give at least 1 attempt (or leave reconnect out: the session then fails)".into(),
        ));
    }
    if r.attempts > MAX_RECONNECT_ATTEMPTS {
        return Err(err(
            "reconnect.attempts",
            format!("at most {MAX_RECONNECT_ATTEMPTS} attempts in a session's life"),
        ));
    }
    if r.backoff_ms == 0 {
        return Err(err(
            "reconnect.backoff",
            "must be greater than 0 (sessions dropped together would all come back at once)".into(),
        ));
    }
    let backoff = Duration::from_millis(r.backoff_ms);
    let max_backoff = match r.max_backoff_ms {
        0 => backoff.max(Duration::from_secs(30)).min(MAX_BACKOFF),
        ms => Duration::from_millis(ms),
    };
    if max_backoff < backoff {
        return Err(err(
            "reconnect.max_backoff",
            format!("{max_backoff:?} is below the first backoff {backoff:?}"),
        ));
    }
    if max_backoff > MAX_BACKOFF {
        return Err(err("reconnect.max_backoff", format!("at most {MAX_BACKOFF:?}")));
    }
    Ok(crate::program::Reconnect {
        attempts: r.attempts,
        backoff,
        max_backoff,
    })
}

/// Some(true) when a step that needs the socket comes before any connect (looking
/// into loops in order), Some(false) when a connect comes first, None otherwise.
fn talks_before_connecting(steps: &[pb::Step]) -> Option<bool> {
    for st in steps {
        match &st.kind {
            Some(Kind::Connect(_)) => return Some(false),
            Some(Kind::Loop(l)) => {
                if let Some(v) = talks_before_connecting(&l.steps) {
                    return Some(v);
                }
            }
            Some(k) if needs_socket(k) => return Some(true),
            _ => {}
        }
    }
    None
}

fn needs_socket(k: &Kind) -> bool {
    matches!(
        k,
        Kind::Send(_) | Kind::Expect(_) | Kind::Request(_) | Kind::Listen(_) | Kind::Ping(_) | Kind::Close(_)
    )
}

fn http_token_bad(s: &str) -> bool {
    s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn url_check(u: &str) -> Result<(), String> {
    let scheme = u.split_once("://").map(|(s, _)| s);
    match scheme {
        Some("ws") | Some("wss") => Ok(()),
        _ => Err(format!("`{u}` is not a ws:// or wss:// URL")),
    }
}

fn payload(p: Option<&pb::Payload>, scope: &Scope) -> Result<Payload, String> {
    use pb::payload::Body;
    match p.and_then(|p| p.body.as_ref()) {
        None => Err("give text or binary".into()),
        Some(Body::Text(t)) => Template::parse(t, scope).map(Payload::Text).map_err(|e| e.0),
        Some(Body::Binary(b)) => Ok(Payload::Binary(Bytes::copy_from_slice(b))),
    }
}

fn captures(list: &[pb::Capture], scope: &mut Scope) -> Result<Vec<Capture>, MatchError> {
    let mut out = Vec::new();
    for c in list {
        if !var_ok(&c.var) || RESERVED_VARS.contains(&c.var.as_str()) {
            return Err(MatchError {
                field: "capture",
                reason: format!(
                    "`{}` cannot be a variable name (letters, digits and _, not a built-in variable)",
                    c.var
                ),
            });
        }
        let slot = match scope.captures.iter().position(|v| *v == c.var) {
            Some(i) => i,
            None => {
                scope.captures.push(c.var.clone());
                scope.captures.len() - 1
            }
        };
        out.push(Capture::compile(c, u16::try_from(slot).unwrap_or(u16::MAX))?);
    }
    Ok(out)
}

fn think(t: &pb::Think) -> Result<Think, String> {
    use pb::think::Dist;
    let ms = Duration::from_millis;
    match &t.dist {
        None => Err("give constant, uniform or exponential".into()),
        Some(Dist::ConstantMs(v)) => Ok(Think::Constant(ms(*v))),
        Some(Dist::Uniform(r)) if r.min_ms > r.max_ms => {
            Err(format!("uniform range {}ms..{}ms is reversed", r.min_ms, r.max_ms))
        }
        Some(Dist::Uniform(r)) => Ok(Think::Uniform(ms(r.min_ms), ms(r.max_ms))),
        Some(Dist::ExponentialMeanMs(0)) => Err("an exponential mean must be above 0".into()),
        Some(Dist::ExponentialMeanMs(m)) => Ok(Think::Exponential(ms(*m))),
    }
}
