//! Per-instance counters and their OpenMetrics exposition at `/metrics`.
//!
//! The hot path only touches plain atomics (a relaxed add per event; error kinds take
//! a short lock, once per error event). A scrape reads them into a `prometheus-client`
//! registry of constant values and encodes that, so the exposition format (names,
//! `_total` suffixes, `# UNIT`, `# EOF`, escaping) is the maintained crate's.

pub mod latency;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

pub use latency::LatencyHistogram;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counters of one instance.
#[derive(Debug, Default)]
pub struct Metrics {
    /// WebSocket connections open now.
    pub connections_open: AtomicU64,
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Upgrades refused with 503 because of `--max-connections`.
    pub connections_rejected: AtomicU64,
    /// Upgrades shed with 503 because too many setups were pending (`--max-pending-upgrades`).
    pub shed_pending: AtomicU64,
    /// Upgrades shed with 503 because a recent setup was slow (`--shed-latency`).
    pub shed_slow_broker: AtomicU64,
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

/// Error events by kind, as read at one scrape: one `ws_error_events_total` sample
/// per kind, labelled `kind`.
#[derive(Debug)]
struct ErrorKinds(Vec<(&'static str, u64)>);

impl EncodeMetric for ErrorKinds {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        for (kind, n) in &self.0 {
            encoder
                .encode_family(&[("kind", *kind)])?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// Shed upgrades by reason, as read at one scrape.
#[derive(Debug)]
struct ShedReasons([(&'static str, u64); 2]);

impl EncodeMetric for ShedReasons {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        for (reason, n) in &self.0 {
            encoder
                .encode_family(&[("reason", *reason)])?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

impl Metrics {
    /// Counts one upgrade shed for `why`.
    pub fn shed(&self, why: crate::admission::Shed) {
        match why {
            crate::admission::Shed::Pending => &self.shed_pending,
            crate::admission::Shed::SlowBroker => &self.shed_slow_broker,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one error event of `kind`.
    pub fn error(&self, kind: &'static str) {
        *self.errors.lock().unwrap().entry(kind).or_insert(0) += 1;
    }

    /// Error events of `kind` so far.
    pub fn errors_of(&self, kind: &str) -> u64 {
        self.errors.lock().unwrap().get(kind).copied().unwrap_or(0)
    }

    /// The OpenMetrics text exposition of this instance (every sample labelled with
    /// its `port`), served with [`CONTENT_TYPE`].
    pub fn render(&self, port: u16, broker_latency: &LatencyHistogram) -> String {
        let port = [(Cow::Borrowed("port"), Cow::Owned(port.to_string()))];
        let mut r = Registry::with_labels(port.into_iter());
        let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let gauge = |a: &AtomicU64| ConstGauge::new(v(a));
        let counter = |a: &AtomicU64| ConstCounter::new(v(a));
        // Counter names get their `_total` from the encoder; help texts their full stop.
        r.register(
            "ws_connections_open",
            "WebSocket connections open now",
            gauge(&self.connections_open),
        );
        r.register(
            "ws_connections",
            "WebSocket connections accepted",
            counter(&self.connections_total),
        );
        r.register(
            "ws_connections_rejected",
            "Upgrades refused with 503 (max connections)",
            counter(&self.connections_rejected),
        );
        let shed = ShedReasons([
            ("pending", v(&self.shed_pending)),
            ("slow_broker", v(&self.shed_slow_broker)),
        ]);
        r.register(
            "ws_upgrades_shed",
            "Upgrades shed with 503 under overload, by reason",
            shed,
        );
        r.register(
            "ws_messages_received",
            "Text messages received",
            counter(&self.messages_received),
        );
        r.register(
            "ws_responses_sent",
            "Response events sent",
            counter(&self.responses_sent),
        );
        r.register(
            "ws_server_events_broadcast",
            "Server events received from the broker and broadcast",
            counter(&self.server_events_broadcast),
        );
        r.register(
            "ws_server_events_sent",
            "Server events queued to clients",
            counter(&self.server_events_sent),
        );
        r.register(
            "ws_backpressure_drops",
            "Server events dropped for slow consumers",
            counter(&self.backpressure_drops),
        );
        r.register(
            "ws_backpressure_closes",
            "Connections closed for exceeding the outbound queue limit",
            counter(&self.backpressure_closes),
        );
        r.register(
            "ws_idle_closes",
            "Connections closed for idleness",
            counter(&self.idle_closes),
        );
        r.register(
            "ws_cleanup_queue_length",
            "Closed sessions waiting for the batch cleaner",
            gauge(&self.cleanup_queue),
        );
        r.register(
            "ws_sessions_cleaned",
            "Sessions deleted by the batch cleaner",
            counter(&self.sessions_cleaned),
        );
        let errors = self.errors.lock().unwrap().iter().map(|(k, n)| (*k, *n)).collect();
        r.register("ws_error_events", "Error events sent, by kind", ErrorKinds(errors));
        r.register_with_unit(
            "ws_redis_roundtrip",
            "Round-trip time of broker calls",
            Unit::Seconds,
            broker_latency.snapshot(),
        );
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Every name the tests, deploy checks and docs read, with the samples they expect.
    #[test]
    fn render_keeps_every_name_and_label() {
        let m = Metrics::default();
        m.error("binary");
        m.shed(crate::admission::Shed::Pending);
        m.error("binary");
        m.connections_total.fetch_add(3, Ordering::Relaxed);
        m.sessions_cleaned.fetch_add(7, Ordering::Relaxed);
        m.cleanup_queue.store(2, Ordering::Relaxed);
        let text = m.render(9001, &LatencyHistogram::default());
        for sample in [
            "ws_connections_open{port=\"9001\"} 0\n",
            "ws_connections_total{port=\"9001\"} 3\n",
            "ws_connections_rejected_total{port=\"9001\"} 0\n",
            "ws_upgrades_shed_total{port=\"9001\",reason=\"pending\"} 1\n",
            "ws_upgrades_shed_total{port=\"9001\",reason=\"slow_broker\"} 0\n",
            "ws_messages_received_total{port=\"9001\"} 0\n",
            "ws_responses_sent_total{port=\"9001\"} 0\n",
            "ws_server_events_broadcast_total{port=\"9001\"} 0\n",
            "ws_server_events_sent_total{port=\"9001\"} 0\n",
            "ws_backpressure_drops_total{port=\"9001\"} 0\n",
            "ws_backpressure_closes_total{port=\"9001\"} 0\n",
            "ws_idle_closes_total{port=\"9001\"} 0\n",
            "ws_cleanup_queue_length{port=\"9001\"} 2\n",
            "ws_sessions_cleaned_total{port=\"9001\"} 7\n",
            "ws_error_events_total{port=\"9001\",kind=\"binary\"} 2\n",
            "ws_redis_roundtrip_seconds_count{port=\"9001\"} 0\n",
            "# TYPE ws_connections counter\n",
            "# TYPE ws_connections_open gauge\n",
            "# TYPE ws_redis_roundtrip_seconds histogram\n",
            "# UNIT ws_redis_roundtrip_seconds seconds\n",
            "# HELP ws_error_events Error events sent, by kind.\n",
        ] {
            assert!(text.contains(sample), "missing {sample:?} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn histogram_is_cumulative() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let text = Metrics::default().render(1, &h);
        for sample in [
            "ws_redis_roundtrip_seconds_bucket{port=\"1\",le=\"0.0001\"} 1\n",
            "ws_redis_roundtrip_seconds_bucket{port=\"1\",le=\"0.005\"} 2\n",
            "ws_redis_roundtrip_seconds_bucket{port=\"1\",le=\"2.5\"} 2\n",
            "ws_redis_roundtrip_seconds_bucket{port=\"1\",le=\"+Inf\"} 3\n",
            "ws_redis_roundtrip_seconds_count{port=\"1\"} 3\n",
            "ws_redis_roundtrip_seconds_sum{port=\"1\"} 10.00305\n",
        ] {
            assert!(text.contains(sample), "missing {sample:?} in:\n{text}");
        }
    }
}
