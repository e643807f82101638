//! The broker: session storage, message counters, the publisher lease and the
//! server-event channel. Redis in production; an in-process broker for one machine.

pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::LatencyHistogram;

/// Channel on which server events travel between instances and machines.
pub const SERVER_EVENT_CHANNEL: &str = "server-event";

/// Why a broker call failed. The `Display` text is what clients see in the error
/// event's `error` field, so it names the cause without internals.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    /// The call did not complete within the per-call timeout.
    #[error("redis timed out after {0:?}")]
    Timeout(Duration),
    /// Redis could not be reached or refused the call.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
}

impl BrokerError {
    /// Metric label for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            BrokerError::Timeout(_) => "redis_timeout",
            BrokerError::Unavailable(_) => "redis_unavailable",
        }
    }
}

/// What a session hash records about where the session lives.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// 1-based instance index.
    pub instance: u32,
    /// Host name of the machine.
    pub host: String,
    /// Port of the instance.
    pub port: u16,
    /// ISO-8601 creation time.
    pub created: String,
}

/// A broker, shared by every connection of an instance (and, for the memory broker,
/// by every instance of the process).
#[derive(Clone)]
pub enum Broker {
    /// Redis-backed.
    Redis(Arc<redis::RedisBroker>),
    /// In-process.
    Memory(Arc<memory::MemoryBroker>),
}

impl Broker {
    /// Records a new session (with its TTL).
    pub async fn create_session(&self, id: &str, info: &SessionInfo, ttl: Duration) -> Result<(), BrokerError> {
        match self {
            Broker::Redis(b) => b.create_session(id, info, ttl).await,
            Broker::Memory(b) => b.create_session(id, info),
        }
    }

    /// Adds `by` messages to the session's `messageCount` and returns the new value,
    /// in one round trip (a connection counts all the messages it has read at once).
    pub async fn incr_message_count(&self, id: &str, by: u32) -> Result<i64, BrokerError> {
        match self {
            Broker::Redis(b) => b.incr_message_count(id, by).await,
            Broker::Memory(b) => Ok(b.incr_message_count(id, by)),
        }
    }

    /// Deletes closed sessions in one round trip.
    pub async fn delete_sessions(&self, ids: &[String]) -> Result<(), BrokerError> {
        match self {
            Broker::Redis(b) => b.delete_sessions(ids).await,
            Broker::Memory(b) => {
                b.delete_sessions(ids);
                Ok(())
            }
        }
    }

    /// Pushes the TTL of open sessions forward, in one round trip.
    pub async fn refresh_sessions(&self, ids: &[String], ttl: Duration) -> Result<(), BrokerError> {
        match self {
            Broker::Redis(b) => b.refresh_sessions(ids, ttl).await,
            Broker::Memory(_) => Ok(()),
        }
    }

    /// Publishes a serialised server event; returns how many subscribers got it.
    pub async fn publish(&self, payload: Bytes) -> Result<usize, BrokerError> {
        match self {
            Broker::Redis(b) => b.publish(&payload).await,
            Broker::Memory(b) => Ok(b.publish(payload)),
        }
    }

    /// Takes or renews the periodic publisher's lease for `holder`; true while held.
    pub async fn acquire_lease(&self, holder: &str, ttl: Duration) -> Result<bool, BrokerError> {
        match self {
            Broker::Redis(b) => b.acquire_lease(holder, ttl).await,
            Broker::Memory(b) => Ok(b.acquire_lease(holder, ttl)),
        }
    }

    /// Whether the broker is usable right now (drives `/healthz`).
    pub async fn healthy(&self) -> bool {
        match self {
            Broker::Redis(b) => b.healthy().await,
            Broker::Memory(_) => true,
        }
    }

    /// Server events as they arrive, until `shutdown`. The subscription survives
    /// broker outages: it resubscribes by itself.
    pub fn subscribe(&self, shutdown: CancellationToken) -> mpsc::Receiver<Bytes> {
        match self {
            Broker::Redis(b) => b.clone().subscribe(shutdown),
            Broker::Memory(b) => b.subscribe(shutdown),
        }
    }

    /// Round-trip latencies of broker calls.
    pub fn latency(&self) -> &LatencyHistogram {
        match self {
            Broker::Redis(b) => &b.latency,
            Broker::Memory(b) => &b.latency,
        }
    }
}

/// Times `fut` against `timeout` and records the round trip. The timer is dropped
/// (cancelled) as soon as the call completes.
pub(crate) async fn timed<T, F>(latency: &LatencyHistogram, timeout: Duration, fut: F) -> Result<T, BrokerError>
where
    F: std::future::Future<Output = Result<T, ::redis::RedisError>>,
{
    let start = Instant::now();
    let out = tokio::time::timeout(timeout, fut).await;
    latency.observe(start.elapsed());
    match out {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(BrokerError::Unavailable(redis::describe(&e))),
        Err(_) => Err(BrokerError::Timeout(timeout)),
    }
}
