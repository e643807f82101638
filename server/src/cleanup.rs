//! The batch cleaner: closed sessions are queued and deleted in one pipelined round
//! trip per batch; open sessions get their TTL pushed forward.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Most ids kept while the broker is down; older ones are left to their TTL.
const MAX_QUEUE: usize = 200_000;

/// Session ids waiting to be deleted.
pub struct Cleanup {
    queue: Mutex<VecDeque<String>>,
    metrics: Arc<Metrics>,
    batch_size: usize,
}

impl Cleanup {
    /// An empty queue.
    pub fn new(batch_size: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            metrics,
            batch_size: batch_size.max(1),
        }
    }

    /// Queues a closed session.
    pub fn enqueue(&self, id: String) {
        let mut q = self.queue.lock().unwrap();
        if q.len() >= MAX_QUEUE {
            q.pop_front();
        }
        q.push_back(id);
        self.metrics.cleanup_queue.store(q.len() as u64, Ordering::Relaxed);
    }

    /// Deletes everything queued, one round trip per batch. A failed batch goes back
    /// to the queue for the next run.
    pub async fn flush(&self, broker: &Broker) {
        loop {
            let batch: Vec<String> = {
                let mut q = self.queue.lock().unwrap();
                let n = q.len().min(self.batch_size);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            match broker.delete_sessions(&batch).await {
                Ok(()) => {
                    self.metrics
                        .sessions_cleaned
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, sessions = batch.len(), "session cleanup failed; will retry");
                    let mut q = self.queue.lock().unwrap();
                    for id in batch.into_iter().rev() {
                        q.push_front(id);
                    }
                    q.truncate(MAX_QUEUE);
                    self.metrics.cleanup_queue.store(q.len() as u64, Ordering::Relaxed);
                    return;
                }
            }
            let len = self.queue.lock().unwrap().len();
            self.metrics.cleanup_queue.store(len as u64, Ordering::Relaxed);
        }
    }

    /// Flushes every `interval` until `shutdown`, then once more.
    pub async fn run(self: Arc<Self>, broker: Broker, interval: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.flush(&broker).await,
            }
        }
    }
}

/// Pushes the TTL of this instance's open sessions forward every third of the TTL,
/// so that only the sessions of a dead instance expire.
pub async fn refresh_ttls(hub: Arc<Hub>, broker: Broker, ttl: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for chunk in hub.session_ids().chunks(1000) {
            if let Err(e) = broker.refresh_sessions(chunk, ttl).await {
                tracing::warn!(error = %e, "session TTL refresh failed");
                break;
            }
        }
    }
}
