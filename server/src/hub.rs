//! The clients of one instance and their bounded outbound queues: where broadcasts,
//! pings, idle checks and closes reach a connection from outside its own task.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::task::AtomicWaker;

use crate::metrics::Metrics;
use crate::ws::close_code;

/// How often a paced fan-out (`--fan-out-rate`) queues its next slice of clients.
pub const PACE_TICK: Duration = Duration::from_millis(10);

/// Most items a connection may have queued. Memory is bounded by bytes
/// (`--max-backpressure`); this only caps the item count (pings are tiny).
pub const QUEUE_ITEMS: usize = 4096;

/// What the connection's task writes.
#[derive(Debug)]
pub enum Outbound {
    /// A text frame (shared bytes: a broadcast is serialised once).
    Text(Bytes),
    /// A keep-alive ping.
    Ping,
    /// The answer to a client's ping, with its payload.
    Pong(Bytes),
}

/// The shared state of one connection: what reaches it from outside its task.
#[derive(Debug)]
pub struct Client {
    /// Session id.
    pub id: String,
    /// The outbound queue. A plain deque rather than a channel: an idle
    /// connection's empty queue holds no allocation (a channel keeps a block).
    outbox: Mutex<VecDeque<Outbound>>,
    /// Wakes the connection's task when something was queued or it must close.
    waker: AtomicWaker,
    /// Text bytes queued and not yet written to the socket.
    queued: AtomicUsize,
    /// Milliseconds since the hub's epoch at the last frame from the client.
    last_seen: AtomicU64,
    /// Close code chosen by whoever closed the connection; 0 while open.
    close_code: AtomicU16,
}

/// Why a message could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The queue is past its byte limit; the connection is being closed.
    Overflow,
    /// The connection is closing.
    Closed,
}

impl Client {
    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Called by the connection once text frames of `len` bytes have been written.
    pub fn sent(&self, len: usize) {
        if len > 0 {
            self.queued.fetch_sub(len, Ordering::Relaxed);
        }
    }

    /// Queues `bytes` if the queue stays within `limit`, and wakes the connection.
    pub fn try_queue(&self, bytes: Bytes, limit: usize) -> Result<(), QueueError> {
        self.queue_text(bytes, limit)?;
        self.waker.wake();
        Ok(())
    }

    /// Queues `bytes` like [`Client::try_queue`] without waking the connection: for
    /// the connection's own task, which writes its queue before it sleeps.
    pub fn queue_own(&self, bytes: Bytes, limit: usize) -> Result<(), QueueError> {
        self.queue_text(bytes, limit)
    }

    fn queue_text(&self, bytes: Bytes, limit: usize) -> Result<(), QueueError> {
        let len = bytes.len();
        if self.queued.fetch_add(len, Ordering::Relaxed) + len > limit {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(QueueError::Overflow);
        }
        if self.closing().is_some() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(QueueError::Closed);
        }
        if !self.push(Outbound::Text(bytes)) {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(QueueError::Overflow);
        }
        Ok(())
    }

    /// Appends to the queue unless it holds `QUEUE_ITEMS` already (no wake-up).
    pub fn push(&self, item: Outbound) -> bool {
        let mut q = self.outbox.lock().unwrap();
        if q.len() >= QUEUE_ITEMS {
            return false;
        }
        q.push_back(item);
        true
    }

    /// The next item to write, if any. An emptied queue gives its memory back.
    pub fn pop(&self) -> Option<Outbound> {
        let mut q = self.outbox.lock().unwrap();
        let item = q.pop_front();
        if item.is_none() && q.capacity() > 0 {
            *q = VecDeque::new();
        }
        item
    }

    /// Drops everything queued (the connection is closing and will not write it).
    pub fn discard(&self) {
        let dropped = std::mem::take(&mut *self.outbox.lock().unwrap());
        let bytes: usize = dropped
            .iter()
            .map(|o| if let Outbound::Text(b) = o { b.len() } else { 0 })
            .sum();
        self.sent(bytes);
    }

    /// Registers the connection's task to be woken by queues and closes.
    pub fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Asks the connection to close with `code` (the first request wins).
    pub fn close(&self, code: u16) {
        let _ = self
            .close_code
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        self.waker.wake();
    }

    /// The close code asked for, once the connection is asked to close.
    pub fn closing(&self) -> Option<u16> {
        match self.close_code.load(Ordering::Relaxed) {
            0 => None,
            c => Some(c),
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
    /// Clients per second a broadcast or a round of pings reaches (0: all at once).
    /// Why: 200,000 frames written in the same instant on one box starve everything
    /// else on it (Redis calls past their timeout, shed upgrades); spread over a few
    /// seconds they cost the same and delay nothing.
    pub fan_out_rate: u32,
    /// Instance counters.
    pub metrics: Arc<Metrics>,
}

impl Hub {
    /// An empty hub.
    pub fn new(max_backpressure: usize, fan_out_rate: u32, metrics: Arc<Metrics>) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(0),
            epoch: Instant::now(),
            max_backpressure,
            fan_out_rate,
            metrics,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a connection; returns its hub key and its state.
    pub fn register(&self, id: String) -> (u64, Arc<Client>) {
        let client = Arc::new(Client {
            id,
            outbox: Mutex::new(VecDeque::new()),
            waker: AtomicWaker::new(),
            queued: AtomicUsize::new(0),
            last_seen: AtomicU64::new(self.now_ms()),
            close_code: AtomicU16::new(0),
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

    /// Calls `visit` on every client registered now: all at once, or at most
    /// `fan_out_rate` per second in slices every [`PACE_TICK`]. A late tick delays
    /// the rest rather than bunching slices, so pacing holds under load.
    async fn fan_out(&self, mut visit: impl FnMut(&Client)) {
        let clients = self.snapshot();
        if self.fan_out_rate == 0 {
            clients.iter().for_each(|c| visit(c));
            return;
        }
        let ticks_per_s = (Duration::from_secs(1).as_millis() / PACE_TICK.as_millis()) as usize;
        let per_tick = (self.fan_out_rate as usize).div_ceil(ticks_per_s);
        let mut tick = tokio::time::interval(PACE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for slice in clients.chunks(per_tick) {
            tick.tick().await;
            slice.iter().for_each(|c| visit(c));
        }
    }

    /// Queues one serialised event to every client (paced by `fan_out_rate`). A
    /// client with more than half its byte limit queued loses the event (counted),
    /// so that server events are the first thing a slow consumer loses.
    pub async fn broadcast(&self, payload: &Bytes) {
        let soft_limit = self.max_backpressure / 2;
        let (mut sent, mut dropped) = (0, 0);
        self.fan_out(|client| match client.try_queue(payload.clone(), soft_limit) {
            Ok(()) => sent += 1,
            Err(QueueError::Overflow) => dropped += 1,
            Err(QueueError::Closed) => {}
        })
        .await;
        self.metrics.server_events_broadcast.fetch_add(1, Ordering::Relaxed);
        self.metrics.server_events_sent.fetch_add(sent, Ordering::Relaxed);
        self.metrics.backpressure_drops.fetch_add(dropped, Ordering::Relaxed);
    }

    /// Pings every client (paced by `fan_out_rate`) and closes those silent for
    /// longer than `idle_timeout`.
    pub async fn keepalive(&self, idle_timeout: Duration) {
        let idle_ms = u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX);
        self.fan_out(|client| {
            if client.closing().is_some() {
                return;
            }
            if self.now_ms().saturating_sub(client.last_seen.load(Ordering::Relaxed)) > idle_ms {
                self.metrics.idle_closes.fetch_add(1, Ordering::Relaxed);
                client.close(close_code::NORMAL);
            } else if client.push(Outbound::Ping) {
                client.waker.wake();
            }
        })
        .await;
    }

    /// Asks every connection to close with `code` (the server shuts down).
    pub fn close_all(&self, code: u16) {
        for client in self.snapshot() {
            client.close(code);
        }
    }
}
