//! Session outcomes travel as [`Event`]s to one aggregator that owns the current
//! one-second window (counters by kind and HDR histograms in microseconds).

use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use wsload_proto::hist;
use wsload_proto::pb::{Counters, Histograms, MetricWindow, ResourceSample};

/// Something that happened to a session (or to the batch scheduler).
#[derive(Debug, Clone, Copy)]
pub enum Event {
    /// A session task began connecting.
    Started,
    /// TCP connect + upgrade succeeded after this long.
    Connected(Duration),
    /// The connection could not be established.
    ConnectFailed(&'static str),
    /// The `session` event arrived this long after the upgrade.
    SessionEvent(Duration),
    /// This many messages were written.
    Sent(u64),
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
    Failed(&'static str),
    /// The session ended; `ok` when it did all its work and closed with 1000.
    Closed {
        /// Completed normally.
        ok: bool,
        /// It had connected (so it counted as active).
        connected: bool,
    },
    /// Batch starts were held back this long by the memory throttle.
    Throttled(Duration),
}

/// The current window's counters and histograms.
pub struct Window {
    counters: Counters,
    errors: HashMap<&'static str, u64>,
    connect: Histogram<u64>,
    session_event: Histogram<u64>,
    rtt_intended: Histogram<u64>,
    rtt_actual: Histogram<u64>,
    throttled: Duration,
    /// Sessions open now (carried across windows).
    active: u64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            counters: Counters::default(),
            errors: HashMap::new(),
            connect: hist::new_histogram(),
            session_event: hist::new_histogram(),
            rtt_intended: hist::new_histogram(),
            rtt_actual: hist::new_histogram(),
            throttled: Duration::ZERO,
            active: 0,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
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
                self.connect.saturating_record(micros(d));
            }
            Event::ConnectFailed(kind) => {
                c.connect_failures += 1;
                c.sessions_failed += 1;
                *self.errors.entry(kind).or_default() += 1;
            }
            Event::SessionEvent(d) => {
                c.session_events += 1;
                self.session_event.saturating_record(micros(d));
            }
            Event::Sent(n) => c.messages_sent += n,
            Event::Response { intended, actual } => {
                c.responses += 1;
                self.rtt_intended.saturating_record(micros(intended));
                self.rtt_actual.saturating_record(micros(actual));
            }
            Event::ServerEvent => c.server_events += 1,
            Event::Failed(kind) => *self.errors.entry(kind).or_default() += 1,
            Event::Closed { ok, connected } => {
                if connected {
                    self.active = self.active.saturating_sub(1);
                    if ok {
                        c.sessions_completed += 1;
                    } else {
                        c.sessions_failed += 1;
                    }
                }
            }
            Event::Throttled(d) => self.throttled += d,
        }
    }

    /// Closes the window as second `second` of run `run_id` and starts a fresh one.
    pub fn take(&mut self, run_id: &str, second: i64, resources: Option<ResourceSample>) -> MetricWindow {
        let active = self.active;
        let old = std::mem::take(self);
        self.active = active;
        let mut counters = old.counters;
        counters.errors = old.errors.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let enc = |h: &Histogram<u64>| hist::encode(h).unwrap_or_default();
        MetricWindow {
            run_id: run_id.to_string(),
            second,
            counters: Some(counters),
            histograms: Some(Histograms {
                connect: enc(&old.connect),
                session_event: enc(&old.session_event),
                rtt_intended: enc(&old.rtt_intended),
                rtt_actual: enc(&old.rtt_actual),
            }),
            resources,
            active_sessions: active,
            throttled_ms: u64::try_from(old.throttled.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_and_carries_active_sessions() {
        let mut w = Window::default();
        w.record(Event::Started);
        w.record(Event::Connected(Duration::from_millis(2)));
        w.record(Event::Sent(3));
        w.record(Event::Response {
            intended: Duration::from_millis(5),
            actual: Duration::from_millis(4),
        });
        w.record(Event::ConnectFailed("connect_refused"));
        let m = w.take("r", 0, None);
        let c = m.counters.unwrap();
        assert_eq!(
            (c.sessions_started, c.connects_ok, c.messages_sent, c.responses),
            (1, 1, 3, 1)
        );
        assert_eq!(c.errors.get("connect_refused"), Some(&1));
        assert_eq!(m.active_sessions, 1);
        let rtt = hist::decode(&m.histograms.unwrap().rtt_intended).unwrap();
        assert_eq!(rtt.len(), 1);
        w.record(Event::Closed {
            ok: true,
            connected: true,
        });
        let m2 = w.take("r", 1, None);
        assert_eq!(m2.active_sessions, 0);
        assert_eq!(m2.counters.unwrap().sessions_completed, 1);
    }
}
