//! The Redis broker: sessions in `session:<id>` hashes with a TTL, counters by
//! HINCRBY, the publisher lease, and the `server-event` pub/sub channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{timed, BrokerError, SessionInfo, SERVER_EVENT_CHANNEL};
use crate::backoff::Backoff;
use crate::metrics::LatencyHistogram;

/// Key of the periodic publisher's lease.
pub const LEASE_KEY: &str = "server-event:publisher";

/// Takes the lease when free, renews it when `holder` has it: 1 if held after the call.
const LEASE_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Why the Redis broker cannot be set up from its URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL is not a Redis URL.
    #[error("invalid --redis-url '{url}': {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// The redis crate's reason, on one line.
        reason: String,
    },
    /// The connection manager could not be created.
    #[error("cannot set up redis at '{url}': {reason}")]
    Setup {
        /// The URL as given.
        url: String,
        /// The redis crate's reason, on one line.
        reason: String,
    },
}

/// Checks a Redis URL, with an error that names the flag.
pub fn parse_url(url: &str) -> Result<Client, RedisSetupError> {
    Client::open(url).map_err(|e| RedisSetupError::InvalidUrl {
        url: url.to_owned(),
        reason: describe(&e),
    })
}

/// A one-line description of a Redis error.
pub fn describe(e: &redis::RedisError) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or("unknown error").to_owned()
}

/// Redis connections of one process.
pub struct RedisBroker {
    client: Client,
    /// Commands; reconnects by itself after a failure.
    conn: ConnectionManager,
    /// Per-call timeout.
    timeout: Duration,
    /// Whether the server-event subscription is live (part of `/healthz`).
    subscribed: AtomicBool,
    lease_script: redis::Script,
    /// Round-trip latencies of calls.
    pub latency: LatencyHistogram,
}

impl RedisBroker {
    /// A broker for `url`. Connects lazily: a Redis that is down at start is survived.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RedisSetupError> {
        let client = parse_url(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2));
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(|e| RedisSetupError::Setup {
                url: url.to_owned(),
                reason: describe(&e),
            })?;
        Ok(Self {
            client,
            conn,
            timeout,
            subscribed: AtomicBool::new(false),
            lease_script: redis::Script::new(LEASE_SCRIPT),
            latency: LatencyHistogram::default(),
        })
    }

    fn key(id: &str) -> String {
        format!("session:{id}")
    }

    fn ttl_ms(ttl: Duration) -> i64 {
        i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
    }

    pub(super) async fn create_session(&self, id: &str, info: &SessionInfo, ttl: Duration) -> Result<(), BrokerError> {
        let key = Self::key(id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(
                &key,
                &[
                    ("instance", info.instance.to_string()),
                    ("host", info.host.clone()),
                    ("port", info.port.to_string()),
                    ("created", info.created.clone()),
                    ("messageCount", "0".to_owned()),
                ],
            )
            .ignore()
            .pexpire(&key, Self::ttl_ms(ttl))
            .ignore();
        let mut conn = self.conn.clone();
        timed(&self.latency, self.timeout, pipe.query_async::<()>(&mut conn)).await
    }

    pub(super) async fn incr_message_count(&self, id: &str, by: u32) -> Result<i64, BrokerError> {
        let mut conn = self.conn.clone();
        timed(
            &self.latency,
            self.timeout,
            conn.hincr(Self::key(id), "messageCount", i64::from(by)),
        )
        .await
    }

    pub(super) async fn delete_sessions(&self, ids: &[String]) -> Result<(), BrokerError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.del(Self::key(id)).ignore();
        }
        let mut conn = self.conn.clone();
        timed(&self.latency, self.timeout, pipe.query_async::<()>(&mut conn)).await
    }

    pub(super) async fn refresh_sessions(&self, ids: &[String], ttl: Duration) -> Result<(), BrokerError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.pexpire(Self::key(id), Self::ttl_ms(ttl)).ignore();
        }
        let mut conn = self.conn.clone();
        timed(&self.latency, self.timeout, pipe.query_async::<()>(&mut conn)).await
    }

    pub(super) async fn publish(&self, payload: &[u8]) -> Result<usize, BrokerError> {
        let mut conn = self.conn.clone();
        timed(&self.latency, self.timeout, conn.publish(SERVER_EVENT_CHANNEL, payload)).await
    }

    pub(super) async fn acquire_lease(&self, holder: &str, ttl: Duration) -> Result<bool, BrokerError> {
        let mut conn = self.conn.clone();
        let mut call = self.lease_script.key(LEASE_KEY);
        call.arg(holder).arg(Self::ttl_ms(ttl));
        let held: i64 = timed(&self.latency, self.timeout, call.invoke_async(&mut conn)).await?;
        Ok(held == 1)
    }

    pub(super) async fn healthy(&self) -> bool {
        let mut conn = self.conn.clone();
        let ping = timed(
            &self.latency,
            self.timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        ping.is_ok() && self.subscribed.load(Ordering::Relaxed)
    }

    pub(super) fn subscribe(self: Arc<Self>, shutdown: CancellationToken) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            while !shutdown.is_cancelled() {
                let started = Instant::now();
                match self.subscribe_once(&tx, &shutdown).await {
                    Ok(()) if tx.is_closed() || shutdown.is_cancelled() => break,
                    Ok(()) => tracing::warn!("server-event subscription lost; resubscribing"),
                    Err(e) => tracing::warn!(error = %e, "cannot subscribe to server events; retrying"),
                }
                self.subscribed.store(false, Ordering::Relaxed);
                if started.elapsed() > Duration::from_secs(10) {
                    backoff.reset();
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
            self.subscribed.store(false, Ordering::Relaxed);
        });
        rx
    }

    /// One subscription, until the connection breaks or `shutdown`.
    async fn subscribe_once(&self, tx: &mpsc::Sender<Bytes>, shutdown: &CancellationToken) -> Result<(), BrokerError> {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(SERVER_EVENT_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Err(BrokerError::Unavailable(describe(&e))),
            Err(_) => return Err(BrokerError::Timeout(self.timeout)),
        };
        self.subscribed.store(true, Ordering::Relaxed);
        tracing::info!(channel = SERVER_EVENT_CHANNEL, "subscribed to server events");
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                msg = messages.next() => msg,
            };
            let Some(msg) = msg else { return Ok(()) };
            let payload: Vec<u8> = match msg.get_payload() {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %describe(&e), "unreadable server event skipped");
                    continue;
                }
            };
            if tx.send(Bytes::from(payload)).await.is_err() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_name_the_flag() {
        let e = parse_url("http://localhost").unwrap_err();
        assert!(matches!(&e, RedisSetupError::InvalidUrl { url, .. } if url == "http://localhost"));
        assert!(
            e.to_string().starts_with("invalid --redis-url 'http://localhost': "),
            "{e}"
        );
        assert!(parse_url("redis://127.0.0.1:6379").is_ok());
    }
}
