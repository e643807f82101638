//! The compiled form of a plan's scenarios: what an agent executes. Steps are
//! flattened into a list of operations (loops become start/end markers with jump
//! targets), templates and matchers are parsed, names are resolved to small ids.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json_path::JsonPath;
use wsload_proto::pb::Pacing;

use crate::cohort::Cohorts;
use crate::feeder::Feeder;
use crate::matcher::{Capture, Matcher};
use crate::template::Template;

/// Every scenario of a plan, ready to run.
#[derive(Debug, Clone)]
pub struct Program {
    /// Scenarios in plan order.
    pub scenarios: Vec<Scenario>,
    /// Feeders in plan order.
    pub feeders: Vec<Feeder>,
    /// Named steps across the plan; a step's `name` is an index here.
    pub named: Vec<NamedStep>,
    /// Handler count names; a `count` action is an index here.
    pub counts: Vec<Arc<str>>,
    /// Error kinds that handlers fail sessions with; a `fail` action is an index here.
    pub fail_kinds: Vec<Arc<str>>,
    /// Which scenario each session plays.
    pub cohorts: Cohorts,
}

/// A named step: its metrics are reported under its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedStep {
    /// The name (unique in the plan).
    pub name: Arc<str>,
    /// `connect`, `send`, `request`...
    pub kind: &'static str,
    /// For a listen step with fan-out accounting: where the expected count comes from.
    pub reach: Option<Reach>,
}

/// Expected deliveries of a fan-out listen step, per listening session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// As many as the named send step (by id) sent in the whole run.
    From(u16),
    /// A fixed number (an outside publisher, e.g. `ws-server publish` N times).
    Expected(u64),
}

/// One cohort's conversation.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name.
    pub name: Arc<str>,
    /// Runs the built-in seed protocol instead of steps.
    pub seed: bool,
    /// The flattened steps.
    pub ops: Vec<StepOp>,
    /// Rules for unclaimed messages, in order.
    pub handlers: Vec<Handler>,
    /// An unclaimed message with no handler fails the session.
    pub fail_on_unexpected: bool,
    /// Session variable slots the scenario captures into.
    pub captures: Vec<String>,
    /// Feeders its templates read.
    pub feeders: Vec<u16>,
    /// What a session does when the server closes its connection (None: it fails).
    pub reconnect: Option<Reconnect>,
}

/// Reconnecting after the server closed the connection (or it dropped): capped
/// exponential backoff with full jitter, at most `attempts` tries in a session's life
/// (a server that closes every connection cannot keep a session looping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// Most reconnect attempts in the session's life, successful or not (at least 1).
    pub attempts: u32,
    /// Backoff of the first try after a drop (before jitter).
    pub backoff: Duration,
    /// Cap on the backoff before jitter.
    pub max_backoff: Duration,
}

impl Reconnect {
    /// The wait before try `k` (1-based) after a drop: uniform in
    /// `[0, min(max_backoff, backoff x 2^(k-1))]` ("full jitter"), so sessions that
    /// lost their connection at the same moment come back spread out instead of all
    /// at once.
    pub fn delay(&self, k: u32, rng: &mut fastrand::Rng) -> Duration {
        self.ceiling(k).mul_f64(rng.f64())
    }

    /// The backoff of try `k` before jitter: `min(max_backoff, backoff x 2^(k-1))`.
    pub fn ceiling(&self, k: u32) -> Duration {
        let doublings = k.saturating_sub(1).min(31);
        self.backoff.saturating_mul(1u32 << doublings).min(self.max_backoff)
    }
}

/// One operation with what all steps share.
#[derive(Debug, Clone)]
pub struct StepOp {
    /// What it does.
    pub op: Op,
    /// Index into [`Program::named`] when the step is named.
    pub name: Option<u16>,
    /// Bound on its wait (expect, request, listen for a count, ping, close).
    pub timeout: Duration,
    /// Where it is in the plan, e.g. `3` or `3.2` (for logs and errors).
    pub label: Arc<str>,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Op {
    /// Open the WebSocket.
    Connect(Connect),
    /// Send a message.
    Send(Payload),
    /// Wait for a matching message.
    Expect {
        /// The test.
        matcher: Matcher,
        /// Values to keep.
        captures: Vec<Capture>,
        /// The first unclaimed message must match.
        strict: bool,
    },
    /// Send and wait for the reply.
    Request {
        /// What to send.
        payload: Payload,
        /// How to recognise the reply; None: the next unclaimed message.
        reply: Option<Matcher>,
        /// Values to keep from the reply.
        captures: Vec<Capture>,
    },
    /// Receive for a while and/or a count.
    Listen {
        /// Listen this long.
        duration: Option<Duration>,
        /// Or until this many arrived.
        count: Option<u64>,
        /// Only these count as received.
        filter: Option<Matcher>,
        /// Broadcast latency and delivery accounting.
        fanout: Option<Fanout>,
    },
    /// Pause (still reading).
    Think(Think),
    /// Send a ping and wait for the pong.
    Ping(Bytes),
    /// Close with a code and wait for the server's close.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The start of a loop; `end` is the index of its [`Op::LoopEnd`].
    LoopStart(Loop),
    /// The end of a loop; `start` is the index of its [`Op::LoopStart`].
    LoopEnd {
        /// Index of the start marker.
        start: usize,
    },
}

/// Opening the WebSocket.
#[derive(Debug, Clone)]
pub struct Connect {
    /// URL; None: the plan's target.
    pub url: Option<Template>,
    /// Extra request headers.
    pub headers: Vec<(String, Template)>,
    /// Offered subprotocols.
    pub subprotocols: Vec<String>,
    /// Extra query parameters.
    pub query: Vec<(String, Template)>,
}

/// A loop's bounds and pacing.
#[derive(Debug, Clone)]
pub struct Loop {
    /// Iterations (None: until the duration ends).
    pub count: Option<u64>,
    /// Run time (None: until the count is done).
    pub duration: Option<Duration>,
    /// Open, closed or burst.
    pub pacing: Pacing,
    /// Open: iteration spacing; closed: pause after each iteration.
    pub interval: Duration,
    /// Index of the matching [`Op::LoopEnd`].
    pub end: usize,
}

/// A message body.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Text from a template.
    Text(Template),
    /// Binary, as given.
    Binary(Bytes),
}

impl Payload {
    /// Whether rendering needs the step's UUID.
    pub fn uses_uuid(&self) -> bool {
        matches!(self, Payload::Text(t) if t.uses_uuid())
    }
}

/// Where a broadcast carries its send time and identity.
#[derive(Debug, Clone)]
pub struct Fanout {
    /// Send time: microseconds since the epoch, or an RFC 3339 string.
    pub sent_at: JsonPath,
    /// Identity for duplicates; None: the send time.
    pub id: Option<JsonPath>,
    /// The publisher's identity: order is judged within each stream; None: one stream.
    pub stream: Option<JsonPath>,
}

/// A think time distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Think {
    /// Always this long.
    Constant(Duration),
    /// Uniform between the two.
    Uniform(Duration, Duration),
    /// Exponential with this mean.
    Exponential(Duration),
}

impl Think {
    /// Draws one pause.
    pub fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        match *self {
            Think::Constant(d) => d,
            Think::Uniform(a, b) => a + (b - a).mul_f64(rng.f64()),
            Think::Exponential(mean) => {
                // 1 - f64() is in (0, 1]: ln never sees 0. Capped at 20 means.
                let x = -(1.0 - rng.f64()).ln();
                mean.mul_f64(x.min(20.0))
            }
        }
    }
}

/// A rule for unclaimed messages.
#[derive(Debug, Clone)]
pub struct Handler {
    /// Which messages.
    pub matcher: Matcher,
    /// What to do with them.
    pub action: Action,
}

/// What a handler does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Count under [`Program::counts`]`[id]`.
    Count(u16),
    /// Fail the session with [`Program::fail_kinds`]`[id]`.
    Fail(u16),
    /// Answer with this template.
    Reply(Template),
    /// Drop silently.
    Ignore,
}

impl Program {
    /// A program of one built-in seed scenario and nothing named (the fallback).
    pub fn empty() -> Program {
        Program::seed_only(1)
    }

    /// Every one of `sessions` sessions runs the built-in seed protocol.
    pub fn seed_only(sessions: u64) -> Program {
        Program {
            scenarios: vec![Scenario {
                name: "seed".into(),
                seed: true,
                ops: Vec::new(),
                handlers: Vec::new(),
                fail_on_unexpected: false,
                captures: Vec::new(),
                feeders: Vec::new(),
                reconnect: None,
            }],
            feeders: Vec::new(),
            named: Vec::new(),
            counts: Vec::new(),
            fail_kinds: Vec::new(),
            cohorts: Cohorts::new(sessions.max(1), &[(0, 1)]).expect("one weighted scenario takes any count"),
        }
    }

    /// The scenario session `index` plays, with its rank within that scenario.
    pub fn scenario_of(&self, index: u64) -> (&Scenario, u64) {
        let (k, rank) = self.cohorts.locate(index);
        (&self.scenarios[k], rank)
    }

    /// Whether every scenario is the built-in seed protocol (the fast path).
    pub fn all_seed(&self) -> bool {
        self.scenarios.iter().all(|s| s.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_backoff_doubles_up_to_its_cap_and_jitters_below_it() {
        let r = Reconnect {
            attempts: 10,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        };
        let ms = |k| r.ceiling(k).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(4), ms(5), ms(40)],
            [100, 200, 400, 800, 1000, 1000]
        );
        let mut rng = fastrand::Rng::with_seed(7);
        let draws: Vec<Duration> = (0..1000).map(|_| r.delay(3, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(400)));
        let (lo, hi) = (draws.iter().min().unwrap(), draws.iter().max().unwrap());
        assert!(
            *lo < Duration::from_millis(40) && *hi > Duration::from_millis(360),
            "{lo:?} {hi:?}"
        );
    }
}
