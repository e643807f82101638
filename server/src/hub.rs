//! The clients of one instance and their bounded outbound queues: where broadcasts,
//! pings, idle checks and closes reach a connection from outside its own tasks.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Most items a connection may have queued. Memory is bounded by bytes
/// (`--max-backpressure`); this only caps the item count (pings are tiny).
pub const QUEUE_ITEMS: usize = 4096;

/// Close codes the server uses.
pub mod close_code {
    /// Normal closure (idle timeout).
    pub const NORMAL: u16 = 1000;
    /// Going away: the server shuts down.
    pub const GOING_AWAY: u16 = 1001;
    /// Invalid payload data (not UTF-8).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy violation: the client does not read fast enough.
    pub const POLICY: u16 = 1008;
}

/// What the writer task sends.
#[derive(Debug)]
pub enum Outbound {
    /// A text frame (shared bytes: a broadcast is serialised once).
    Text(Bytes),
    /// A keep-alive ping.
    Ping,
}

/// The shared state of one connection.
#[derive(Debug)]
pub struct Client {
    /// Session id.
    pub id: String,
    /// The outbound queue. A plain deque rather than a channel: an idle
    /// connection's empty queue holds no allocation (a channel keeps a block).
    outbox: Mutex<VecDeque<Outbound>>,
    /// Wakes the writer when something was queued.
    ready: Notify,
    /// Bytes queued and not yet written to the socket.
    queued: AtomicUsize,
    /// Milliseconds since the hub's epoch at the last frame from the client.
    last_seen: AtomicU64,
    /// Close code chosen by whoever closed the connection (0 = shutdown, 1001).
    close_code: AtomicU16,
    /// Cancelled to close the connection; a child of the instance's shutdown token.
    pub closing: CancellationToken,
}

/// Why a message could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The queue is past its byte limit; the connection is being closed.
    Overflow,
    /// The writer is gone.
    Closed,
}

impl Client {
    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Called by the writer once a text frame has been written.
    pub fn sent(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::Relaxed);
    }

    /// Queues `bytes` if the queue stays within `limit`.
    pub fn try_queue(&self, bytes: Bytes, limit: usize) -> Result<(), QueueError> {
        let len = bytes.len();
        if self.queued.fetch_add(len, Ordering::Relaxed) + len > limit {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(QueueError::Overflow);
        }
        if self.closing.is_cancelled() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(QueueError::Closed);
        }
        if !self.push(Outbound::Text(bytes)) {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(QueueError::Overflow);
        }
        Ok(())
    }

    /// Appends to the queue unless it holds `QUEUE_ITEMS` already.
    fn push(&self, item: Outbound) -> bool {
        let mut q = self.outbox.lock().unwrap();
        if q.len() >= QUEUE_ITEMS {
            return false;
        }
        q.push_back(item);
        drop(q);
        self.ready.notify_one();
        true
    }

    /// The next item to send, waiting for one; `None` once the connection closes.
    pub async fn next_outbound(&self) -> Option<Outbound> {
        loop {
            {
                let mut q = self.outbox.lock().unwrap();
                if let Some(item) = q.pop_front() {
                    return Some(item);
                }
                if q.capacity() > 0 {
                    // Idle connections keep no queue memory.
                    *q = VecDeque::new();
                }
            }
            tokio::select! {
                biased;
                _ = self.closing.cancelled() => return None,
                _ = self.ready.notified() => {}
            }
        }
    }

    /// Asks the connection to close with `code` (the first request wins).
    pub fn close(&self, code: u16) {
        let _ = self
            .close_code
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        self.closing.cancel();
    }

    /// The close code to send: the one asked for, or 1001 when the server shuts down.
    pub fn close_code(&self) -> u16 {
        match self.close_code.load(Ordering::Relaxed) {
            0 => close_code::GOING_AWAY,
            c => c,
        }
    }
}

/// The clients of one instance.
pub struct Hub {
    clients: Mutex<HashMap<u64, Arc<Client>>>,
    next_key: AtomicU64,
    epoch: Instant,
    /// Limit of queued bytes per connection.
    pub max_backpressure: usize,
    /// Instance counters.
    pub metrics: Arc<Metrics>,
}

impl Hub {
    /// An empty hub.
    pub fn new(max_backpressure: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(0),
            epoch: Instant::now(),
            max_backpressure,
            metrics,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a connection; returns its hub key and its state.
    pub fn register(&self, id: String, shutdown: &CancellationToken) -> (u64, Arc<Client>) {
        let client = Arc::new(Client {
            id,
            outbox: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            queued: AtomicUsize::new(0),
            last_seen: AtomicU64::new(self.now_ms()),
            close_code: AtomicU16::new(0),
            closing: shutdown.child_token(),
        });
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        self.clients.lock().unwrap().insert(key, client.clone());
        (key, client)
    }

    /// Removes a connection.
    pub fn unregister(&self, key: u64) {
        self.clients.lock().unwrap().remove(&key);
    }

    /// Records activity from a client.
    pub fn touch(&self, client: &Client) {
        client.last_seen.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Number of registered clients.
    pub fn len(&self) -> usize {
        self.clients.lock().unwrap().len()
    }

    /// Whether no client is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Session ids of the open connections.
    pub fn session_ids(&self) -> Vec<String> {
        self.clients.lock().unwrap().values().map(|c| c.id.clone()).collect()
    }

    fn snapshot(&self) -> Vec<Arc<Client>> {
        self.clients.lock().unwrap().values().cloned().collect()
    }

    /// Queues one serialised event to every client. A client with more than half
    /// its byte limit queued loses the event (counted), so that server events are
    /// the first thing a slow consumer loses.
    pub fn broadcast(&self, payload: &Bytes) {
        let soft_limit = self.max_backpressure / 2;
        let (mut sent, mut dropped) = (0, 0);
        for client in self.snapshot() {
            match client.try_queue(payload.clone(), soft_limit) {
                Ok(()) => sent += 1,
                Err(QueueError::Overflow) => dropped += 1,
                Err(QueueError::Closed) => {}
            }
        }
        self.metrics.server_events_broadcast.fetch_add(1, Ordering::Relaxed);
        self.metrics.server_events_sent.fetch_add(sent, Ordering::Relaxed);
        self.metrics.backpressure_drops.fetch_add(dropped, Ordering::Relaxed);
    }

    /// Pings every client and closes those silent for longer than `idle_timeout`.
    pub fn keepalive(&self, idle_timeout: Duration) {
        let now = self.now_ms();
        let idle_ms = u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX);
        for client in self.snapshot() {
            if client.closing.is_cancelled() {
                continue;
            }
            if now.saturating_sub(client.last_seen.load(Ordering::Relaxed)) > idle_ms {
                self.metrics.idle_closes.fetch_add(1, Ordering::Relaxed);
                client.close(close_code::NORMAL);
            } else {
                let _ = client.push(Outbound::Ping);
            }
        }
    }
}
