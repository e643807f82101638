//! The in-process broker: one machine, no Redis. All instances that share it must
//! live in one process, which is why the supervisor hosts them in-process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::SessionInfo;
use crate::metrics::LatencyHistogram;

/// Sessions and the event bus of one process.
pub struct MemoryBroker {
    /// Session id -> message count. The location fields are not kept: nothing reads them.
    sessions: Mutex<HashMap<String, i64>>,
    /// Server events to every subscribed instance; a lagging instance loses the oldest.
    events: broadcast::Sender<Bytes>,
    /// Current lease holder and its expiry.
    lease: Mutex<Option<(String, Instant)>>,
    /// Always empty: the memory broker has no round trips. Kept so `/metrics` has one shape.
    pub latency: LatencyHistogram,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// An empty broker.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(64);
        Self {
            sessions: Mutex::new(HashMap::new()),
            events,
            lease: Mutex::new(None),
            latency: LatencyHistogram::default(),
        }
    }

    pub(super) fn create_session(&self, id: &str, _info: &SessionInfo) -> Result<(), super::BrokerError> {
        self.sessions.lock().unwrap().insert(id.to_owned(), 0);
        Ok(())
    }

    pub(super) fn incr_message_count(&self, id: &str, by: u32) -> i64 {
        let mut sessions = self.sessions.lock().unwrap();
        let count = sessions.entry(id.to_owned()).or_insert(0);
        *count += i64::from(by);
        *count
    }

    pub(super) fn delete_sessions(&self, ids: &[String]) {
        let mut sessions = self.sessions.lock().unwrap();
        for id in ids {
            sessions.remove(id);
        }
    }

    /// Number of stored sessions (for tests and metrics).
    pub fn session_count(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }

    pub(super) fn publish(&self, payload: Bytes) -> usize {
        self.events.send(payload).unwrap_or(0)
    }

    pub(super) fn acquire_lease(&self, holder: &str, ttl: Duration) -> bool {
        let mut lease = self.lease.lock().unwrap();
        let now = Instant::now();
        match &*lease {
            Some((h, until)) if h != holder && *until > now => false,
            _ => {
                *lease = Some((holder.to_owned(), now + ttl));
                true
            }
        }
    }

    pub(super) fn subscribe(&self, shutdown: CancellationToken) -> mpsc::Receiver<Bytes> {
        let mut rx = self.events.subscribe();
        let (tx, out) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    msg = rx.recv() => msg,
                };
                match msg {
                    Ok(m) => {
                        if tx.send(m).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "server events lost by a lagging instance");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        out
    }
}
