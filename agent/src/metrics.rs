//! Session outcomes travel as [`Event`]s to one aggregator that owns the current
//! one-second window (counters by kind and HDR histograms in microseconds).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use wsload_proto::hist;
use wsload_proto::pb::{Counters, Histograms, MetricWindow, ResourceSample, StepWindow};

use crate::session_error::Failure;

/// What happened in a named scenario step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEvent {
    /// It completed; the latency is its figure (connect time, request RTT from the
    /// intended send, expect wait, pong RTT, close handshake), if it has one.
    Done(Option<Duration>),
    /// It failed (timeout, mismatch, connect failure).
    Failed,
    /// A message a listen step received, with fan-out accounting.
    Message {
        /// Fan-out latency (receive minus send time, coordinator clock).
        latency: Option<Duration>,
        /// Seen before by this session.
        duplicate: bool,
        /// Sent before a message this session already received.
        out_of_order: bool,
    },
}

/// The names a window's indices stand for: named steps, handler counts and handler
/// failure kinds of the run's program.
#[derive(Debug, Default, Clone)]
pub struct MetricNames {
    /// Named steps, by id.
    pub steps: Vec<Arc<str>>,
    /// Handler count names, by id.
    pub counts: Vec<Arc<str>>,
    /// Handler failure kinds, by id.
    pub fail_kinds: Vec<Arc<str>>,
}

impl MetricNames {
    /// The names of `program`.
    pub fn of(program: &wsload_scenario::Program) -> MetricNames {
        MetricNames {
            steps: program.named.iter().map(|n| n.name.clone()).collect(),
            counts: program.counts.clone(),
            fail_kinds: program.fail_kinds.clone(),
        }
    }
}

/// Something that happened to a session (or to the batch scheduler).
#[derive(Debug, Clone, Copy)]
pub enum Event {
    /// A session task began connecting.
    Started,
    /// TCP connect + upgrade succeeded after this long.
    Connected(Duration),
    /// The connection could not be established (the session ends, failed).
    ConnectFailed(Failure),
    /// The `session` event arrived this long after the upgrade.
    SessionEvent(Duration),
    /// This many messages were written, the first this long after it was due (None
    /// where a send has no schedule: scripted sends and replies).
    Sent(u64, Option<Duration>),
    /// A response matched; RTT from the intended and from the actual send time.
    Response {
        /// From the time the message was due (coordinated-omission safe).
        intended: Duration,
        /// From the time the frame was written.
        actual: Duration,
    },
    /// A `server-event` broadcast was received.
    ServerEvent,
    /// The session failed with this error kind after connecting.
    Failed(Failure),
    /// An open connection ended (the session may connect again).
    Disconnected,
    /// A scenario session connected again this long after its connection was lost
    /// (backoff and failed tries included).
    Reconnected(Duration),
    /// The session ended after connecting; `ok` when it did all its work.
    Ended {
        /// Completed normally.
        ok: bool,
    },
    /// Batch starts were held back this long by the memory throttle.
    Throttled(Duration),
    /// A named scenario step (by id).
    Step {
        /// Index into [`MetricNames::steps`].
        id: u16,
        /// What happened.
        ev: StepEvent,
    },
    /// A scenario handler counted a message (by count id).
    Count(u16),
    /// A message nothing claimed.
    Unexpected,
    /// The server closed the connection with this code (1006: it dropped).
    CloseCode(u16),
    /// This many messages sent got no response before the session failed with this kind.
    Unanswered(Failure, u64),
}

/// One named step's second.
#[derive(Debug, Default)]
struct StepAcc {
    ok: u64,
    failed: u64,
    messages: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Created on the first sample.
    latency: Option<Histogram<u64>>,
}

/// The current window's counters and histograms.
pub struct Window {
    names: Arc<MetricNames>,
    counters: Counters,
    errors: HashMap<Failure, u64>,
    /// Messages that got no response, by the failure that ended their session.
    unanswered: HashMap<Failure, u64>,
    steps: Vec<StepAcc>,
    counts: Vec<u64>,
    close_codes: HashMap<u16, u64>,
    connect: Histogram<u64>,
    session_event: Histogram<u64>,
    rtt_intended: Histogram<u64>,
    rtt_actual: Histogram<u64>,
    /// How late sends went out (actual minus intended send time).
    send_lag: Histogram<u64>,
    /// Drop to new connection open; created on the first reconnect.
    reconnect: Option<Histogram<u64>>,
    throttled: Duration,
    /// Sessions open now (carried across windows).
    active: u64,
}

impl Default for Window {
    fn default() -> Self {
        Window::new(Arc::default())
    }
}

impl Window {
    /// An empty window for a run whose steps and counts are `names`.
    pub fn new(names: Arc<MetricNames>) -> Self {
        Window {
            steps: Vec::new(),
            counts: Vec::new(),
            close_codes: HashMap::new(),
            names,
            counters: Counters::default(),
            errors: HashMap::new(),
            unanswered: HashMap::new(),
            connect: hist::new_histogram(),
            session_event: hist::new_histogram(),
            rtt_intended: hist::new_histogram(),
            rtt_actual: hist::new_histogram(),
            send_lag: hist::new_histogram(),
            reconnect: None,
            throttled: Duration::ZERO,
            active: 0,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Window {
    /// Sessions open right now.
    pub fn active(&self) -> u64 {
        self.active
    }

    /// Accounts one event.
    pub fn record(&mut self, ev: Event) {
        let c = &mut self.counters;
        match ev {
            Event::Started => c.sessions_started += 1,
            Event::Connected(d) => {
                c.connects_ok += 1;
                self.active += 1;
                hist::record(&mut self.connect, micros(d));
            }
            Event::ConnectFailed(kind) => {
                c.connect_failures += 1;
                c.sessions_failed += 1;
                *self.errors.entry(kind).or_default() += 1;
            }
            Event::SessionEvent(d) => {
                c.session_events += 1;
                hist::record(&mut self.session_event, micros(d));
            }
            Event::Sent(n, lag) => {
                c.messages_sent += n;
                if let Some(lag) = lag {
                    hist::record(&mut self.send_lag, micros(lag));
                }
            }
            Event::Response { intended, actual } => {
                c.responses += 1;
                hist::record(&mut self.rtt_intended, micros(intended));
                hist::record(&mut self.rtt_actual, micros(actual));
            }
            Event::ServerEvent => c.server_events += 1,
            Event::Failed(kind) => *self.errors.entry(kind).or_default() += 1,
            Event::Disconnected => self.active = self.active.saturating_sub(1),
            Event::Reconnected(d) => {
                c.reconnects += 1;
                self.active += 1;
                hist::record(self.reconnect.get_or_insert_with(hist::new_histogram), micros(d));
            }
            Event::Ended { ok: true } => c.sessions_completed += 1,
            Event::Ended { ok: false } => c.sessions_failed += 1,
            Event::Throttled(d) => self.throttled += d,
            Event::Step { id, ev } => self.step(id, ev),
            Event::Count(id) => {
                let i = usize::from(id);
                if self.counts.len() <= i {
                    self.counts.resize(i + 1, 0);
                }
                self.counts[i] += 1;
            }
            Event::Unexpected => c.unexpected_messages += 1,
            Event::CloseCode(code) => *self.close_codes.entry(code).or_default() += 1,
            Event::Unanswered(kind, n) => *self.unanswered.entry(kind).or_default() += n,
        }
    }

    fn step(&mut self, id: u16, ev: StepEvent) {
        let i = usize::from(id);
        if self.steps.len() <= i {
            self.steps.resize_with(i + 1, StepAcc::default);
        }
        let s = &mut self.steps[i];
        let mut sample = |d: Duration| hist::record(s.latency.get_or_insert_with(hist::new_histogram), micros(d));
        match ev {
            StepEvent::Done(latency) => {
                latency.into_iter().for_each(&mut sample);
                s.ok += 1;
            }
            StepEvent::Failed => s.failed += 1,
            StepEvent::Message {
                latency,
                duplicate,
                out_of_order,
            } => {
                latency.into_iter().for_each(&mut sample);
                s.messages += 1;
                s.duplicates += u64::from(duplicate);
                s.out_of_order += u64::from(out_of_order);
            }
        }
    }

    /// Closes the window as second `second` of run `run_id` and starts a fresh one.
    pub fn take(&mut self, run_id: &str, second: i64, resources: Option<ResourceSample>) -> MetricWindow {
        let active = self.active;
        let old = std::mem::replace(self, Window::new(self.names.clone()));
        self.active = active;
        let names = &old.names;
        let mut counters = old.counters;
        counters.errors = old
            .errors
            .into_iter()
            .map(|(k, v)| (k.name(&names.fail_kinds), v))
            .collect();
        counters.unanswered = old
            .unanswered
            .into_iter()
            .map(|(k, v)| (k.name(&names.fail_kinds), v))
            .collect();
        counters.counts = old
            .counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(i, n)| Some((names.counts.get(i)?.to_string(), *n)))
            .collect();
        counters.close_codes = old.close_codes.iter().map(|(c, n)| (u32::from(*c), *n)).collect();
        let enc = |h: &Histogram<u64>| hist::encode(h).unwrap_or_default();
        let steps = old
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let w = StepWindow {
                    ok: s.ok,
                    failed: s.failed,
                    messages: s.messages,
                    duplicates: s.duplicates,
                    out_of_order: s.out_of_order,
                    latency: s.latency.as_ref().map(enc).unwrap_or_default(),
                };
                Some((names.steps.get(i)?.to_string(), w))
            })
            .collect();
        MetricWindow {
            run_id: run_id.to_string(),
            second,
            counters: Some(counters),
            histograms: Some(Histograms {
                connect: enc(&old.connect),
                session_event: enc(&old.session_event),
                rtt_intended: enc(&old.rtt_intended),
                rtt_actual: enc(&old.rtt_actual),
                send_lag: enc(&old.send_lag),
                reconnect: old.reconnect.as_ref().map(enc).unwrap_or_default(),
            }),
            resources,
            active_sessions: active,
            throttled_ms: u64::try_from(old.throttled.as_millis()).unwrap_or(u64::MAX),
            steps,
            load: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_error::SessionError;

    #[test]
    fn window_counts_and_carries_active_sessions() {
        let mut w = Window::default();
        w.record(Event::Started);
        w.record(Event::Connected(Duration::from_millis(2)));
        w.record(Event::Sent(3, Some(Duration::from_millis(7))));
        w.record(Event::Response {
            intended: Duration::from_millis(5),
            actual: Duration::from_millis(4),
        });
        w.record(Event::ConnectFailed(SessionError::ConnectRefused.into()));
        w.record(Event::Failed(SessionError::ResponseTimeout.into()));
        w.record(Event::Response {
            intended: Duration::from_secs(5 * 3600),
            actual: Duration::ZERO,
        });
        let m = w.take("r", 0, None);
        let c = m.counters.unwrap();
        assert_eq!(
            (c.sessions_started, c.connects_ok, c.messages_sent, c.responses),
            (1, 1, 3, 2)
        );
        assert_eq!(c.errors.get(SessionError::ConnectRefused.as_str()), Some(&1));
        assert_eq!(c.errors.get(SessionError::ResponseTimeout.as_str()), Some(&1));
        assert_eq!(c.errors.len(), 2);
        assert_eq!(m.active_sessions, 1);
        let h = m.histograms.unwrap();
        let rtt = hist::decode(&h.rtt_intended).unwrap();
        assert_eq!(rtt.len(), 2);
        // A five-hour stall is recorded as the wire's one-hour ceiling; zero as 1 µs.
        assert!(rtt.equivalent(rtt.max(), hist::MAX_MICROS), "{}", rtt.max());
        assert_eq!(hist::decode(&h.rtt_actual).unwrap().min(), 1);
        let lag = hist::decode(&h.send_lag).unwrap();
        assert_eq!(lag.len(), 1);
        assert!(lag.equivalent(lag.max(), 7_000), "{}", lag.max());
        w.record(Event::Disconnected);
        w.record(Event::Ended { ok: true });
        let m2 = w.take("r", 1, None);
        assert_eq!(m2.active_sessions, 0);
        assert_eq!(m2.counters.unwrap().sessions_completed, 1);
    }

    #[test]
    fn scenario_steps_counts_close_codes_and_reconnects_are_named() {
        let names = MetricNames {
            steps: vec!["echo".into(), "news".into()],
            counts: vec!["pushes".into()],
            fail_kinds: vec!["server_error".into()],
        };
        let mut w = Window::new(Arc::new(names));
        w.record(Event::Step {
            id: 0,
            ev: StepEvent::Done(Some(Duration::from_millis(3))),
        });
        w.record(Event::Step {
            id: 0,
            ev: StepEvent::Failed,
        });
        for dup in [false, true] {
            w.record(Event::Step {
                id: 1,
                ev: StepEvent::Message {
                    latency: Some(Duration::from_millis(7)),
                    duplicate: dup,
                    out_of_order: false,
                },
            });
        }
        w.record(Event::Count(0));
        w.record(Event::Count(0));
        w.record(Event::Unexpected);
        w.record(Event::CloseCode(1011));
        w.record(Event::Failed(Failure::Handler(0)));
        w.record(Event::ConnectFailed(Failure::Http(503)));
        w.record(Event::Connected(Duration::from_millis(1)));
        w.record(Event::Disconnected);
        w.record(Event::Reconnected(Duration::from_millis(120)));
        w.record(Event::Failed(SessionError::Dropped.into()));
        let m = w.take("r", 0, None);
        assert_eq!((m.counters.as_ref().unwrap().reconnects, m.active_sessions), (1, 1));
        let rec = hist::decode(&m.histograms.as_ref().unwrap().reconnect).unwrap();
        assert_eq!(rec.len(), 1);
        assert!(rec.equivalent(rec.max(), 120_000), "{}", rec.max());
        assert_eq!(m.counters.as_ref().unwrap().errors.get("dropped"), Some(&1));
        let c = m.counters.unwrap();
        assert_eq!(c.counts.get("pushes"), Some(&2));
        assert_eq!(c.unexpected_messages, 1);
        assert_eq!(c.close_codes.get(&1011), Some(&1));
        assert_eq!(c.errors.get("server_error"), Some(&1));
        assert_eq!(c.errors.get("http_503"), Some(&1));
        let echo = &m.steps["echo"];
        assert_eq!((echo.ok, echo.failed), (1, 1));
        assert_eq!(hist::decode(&echo.latency).unwrap().len(), 1);
        let news = &m.steps["news"];
        assert_eq!((news.messages, news.duplicates, news.out_of_order), (2, 1, 0));
        // The next window starts empty but knows the names.
        w.record(Event::Count(0));
        assert_eq!(w.take("r", 1, None).counters.unwrap().counts.get("pushes"), Some(&1));
    }
}
