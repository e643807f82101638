//! Per-instance counters and the Prometheus text exposition of `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the Redis round-trip histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// A Prometheus-style cumulative histogram of durations, lock-free.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let idx = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.buckets[idx].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let trimmed = labels.trim_end_matches(',');
        let _ = writeln!(out, "{name}_sum{{{trimmed}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{trimmed}}} {}", self.count());
    }
}

/// Counters of one instance.
#[derive(Debug, Default)]
pub struct Metrics {
    /// WebSocket connections open now.
    pub connections_open: AtomicU64,
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Upgrades refused with 503 because of `--max-connections`.
    pub connections_rejected: AtomicU64,
    /// Text messages received.
    pub messages_received: AtomicU64,
    /// Response events queued.
    pub responses_sent: AtomicU64,
    /// Server events queued to clients (one per client per event).
    pub server_events_sent: AtomicU64,
    /// Server events received from the broker and broadcast.
    pub server_events_broadcast: AtomicU64,
    /// Server events not queued because the client was too far behind.
    pub backpressure_drops: AtomicU64,
    /// Connections closed because their outbound queue passed `--max-backpressure`.
    pub backpressure_closes: AtomicU64,
    /// Connections closed for idleness.
    pub idle_closes: AtomicU64,
    /// Session ids waiting for the batch cleaner.
    pub cleanup_queue: AtomicU64,
    /// Sessions deleted by the cleaner.
    pub sessions_cleaned: AtomicU64,
    /// Error events sent, by kind.
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts one error event of `kind`.
    pub fn error(&self, kind: &'static str) {
        *self.errors.lock().unwrap().entry(kind).or_insert(0) += 1;
    }

    /// Error events of `kind` so far.
    pub fn errors_of(&self, kind: &str) -> u64 {
        self.errors.lock().unwrap().get(kind).copied().unwrap_or(0)
    }

    /// The Prometheus text exposition of this instance.
    pub fn render(&self, port: u16, broker_latency: &LatencyHistogram) -> String {
        let mut out = String::with_capacity(4096);
        let l = format!("port=\"{port}\"");
        let mut counter = |name: &str, kind: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{l}}} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            "ws_connections_open",
            "gauge",
            "WebSocket connections open now.",
            &self.connections_open,
        );
        counter(
            "ws_connections_total",
            "counter",
            "WebSocket connections accepted.",
            &self.connections_total,
        );
        counter(
            "ws_connections_rejected_total",
            "counter",
            "Upgrades refused with 503 (max connections).",
            &self.connections_rejected,
        );
        counter(
            "ws_messages_received_total",
            "counter",
            "Text messages received.",
            &self.messages_received,
        );
        counter(
            "ws_responses_sent_total",
            "counter",
            "Response events sent.",
            &self.responses_sent,
        );
        counter(
            "ws_server_events_broadcast_total",
            "counter",
            "Server events received from the broker and broadcast.",
            &self.server_events_broadcast,
        );
        counter(
            "ws_server_events_sent_total",
            "counter",
            "Server events queued to clients.",
            &self.server_events_sent,
        );
        counter(
            "ws_backpressure_drops_total",
            "counter",
            "Server events dropped for slow consumers.",
            &self.backpressure_drops,
        );
        counter(
            "ws_backpressure_closes_total",
            "counter",
            "Connections closed for exceeding the outbound queue limit.",
            &self.backpressure_closes,
        );
        counter(
            "ws_idle_closes_total",
            "counter",
            "Connections closed for idleness.",
            &self.idle_closes,
        );
        counter(
            "ws_cleanup_queue_length",
            "gauge",
            "Closed sessions waiting for the batch cleaner.",
            &self.cleanup_queue,
        );
        counter(
            "ws_sessions_cleaned_total",
            "counter",
            "Sessions deleted by the batch cleaner.",
            &self.sessions_cleaned,
        );
        let _ = writeln!(
            out,
            "# HELP ws_error_events_total Error events sent, by kind.\n# TYPE ws_error_events_total counter"
        );
        for (kind, n) in self.errors.lock().unwrap().iter() {
            let _ = writeln!(out, "ws_error_events_total{{{l},kind=\"{kind}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP ws_redis_roundtrip_seconds Round-trip time of broker calls.\n# TYPE ws_redis_roundtrip_seconds histogram");
        broker_latency.render(&mut out, "ws_redis_roundtrip_seconds", &format!("{l},"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut s = String::new();
        h.render(&mut s, "x", "");
        assert!(s.contains("x_bucket{le=\"0.0001\"} 1\n"));
        assert!(s.contains("x_bucket{le=\"0.005\"} 2\n"));
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"));
        assert!(s.contains("x_count{} 3\n"));
    }

    #[test]
    fn render_lists_error_kinds() {
        let m = Metrics::default();
        m.error("binary");
        m.error("binary");
        let text = m.render(9001, &LatencyHistogram::default());
        assert!(text.contains("ws_error_events_total{port=\"9001\",kind=\"binary\"} 2"));
        assert!(text.contains("ws_connections_open{port=\"9001\"} 0"));
    }
}
