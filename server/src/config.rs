//! Command-line options and their validation.
//!
//! The options struct lives in the library so tests and the supervisor can build it
//! with `Cli::try_parse_from(..)`. Every option a deployment sets also reads an
//! environment variable.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `ws-server`: the supervisor by default, a single worker, or a one-shot publisher.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ws-server",
    version,
    about = "Scalable WebSocket server (the system under test)"
)]
pub struct Cli {
    #[command(flatten)]
    pub server: ServerOpts,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to run. Without a subcommand the process is the supervisor.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run one WebSocket instance on one port (the supervisor starts these).
    Worker(WorkerOpts),
    /// Publish one server event to every connected client of every instance.
    Publish(PublishOpts),
}

/// Options of `ws-server worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerOpts {
    /// Port this instance listens on.
    #[arg(long)]
    pub port: u16,
    /// 1-based index of this instance, recorded in each session hash.
    #[arg(long, default_value_t = 1)]
    pub instance: u32,
}

/// Options of `ws-server publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishOpts {
    /// Text of the event's `message` field.
    pub text: String,
}

/// Which broker carries counters, sessions and server events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    /// Redis: sessions and counters shared by every instance and machine.
    Redis,
    /// In-process: one machine, no Redis; all instances live in one process.
    Memory,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Options shared by the supervisor and every worker. The supervisor passes its own
/// command line on to the workers it starts, so a worker sees exactly these values.
#[derive(Debug, Clone, Args)]
pub struct ServerOpts {
    /// Number of instances the supervisor keeps alive.
    #[arg(long, env = "INSTANCES", default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub instances: u16,
    /// Port of the first instance; instance i listens on base-port + i - 1.
    #[arg(long = "base-port", env = "PORT", default_value_t = 9001, value_parser = clap::value_parser!(u16).range(1..))]
    pub base_port: u16,
    /// Address the instances listen on (nginx runs on the same host by default).
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Broker: `redis` when REDIS_URL is set, `memory` otherwise.
    #[arg(long, env = "BROKER", value_enum)]
    pub broker: Option<BrokerKind>,
    /// Redis URL, used with the redis broker.
    #[arg(long = "redis-url", env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Timeout of every Redis call; an expired call answers with an error event.
    #[arg(long = "redis-timeout", env = "REDIS_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub redis_timeout: Duration,
    /// Largest accepted message; a larger one closes the connection with 1009.
    #[arg(long = "max-payload", env = "MAX_PAYLOAD", default_value = "1MiB", value_parser = parse_size)]
    pub max_payload: usize,
    /// Bytes a connection may have queued for sending before it is closed with 1008.
    /// Server events are dropped once half of this is queued.
    #[arg(long = "max-backpressure", env = "MAX_BACKPRESSURE", default_value = "1MiB", value_parser = parse_size)]
    pub max_backpressure: usize,
    /// Open WebSocket connections per instance; upgrades beyond it get HTTP 503.
    #[arg(long = "max-connections", env = "MAX_CONNECTIONS", default_value_t = 19_000)]
    pub max_connections: usize,
    /// Listen backlog of every instance's socket: connections the kernel completes and
    /// queues while the worker is busy. A burst beyond it costs SYN retries (1 s, 3 s..)
    /// or, behind nginx, upstream connect timeouts. The kernel caps it at
    /// `net.core.somaxconn` (the server logs the value in force).
    #[arg(long = "listen-backlog", env = "LISTEN_BACKLOG", default_value_t = 65_535, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub listen_backlog: u32,
    /// Upgrades whose session is not yet recorded in the broker, per instance; more
    /// get HTTP 503 at once (shed), so an overloaded broker sees a bounded queue
    /// instead of calls that time out.
    #[arg(long = "max-pending-upgrades", env = "MAX_PENDING_UPGRADES", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pending_upgrades: u32,
    /// A session setup (broker call) slower than this sheds new upgrades with 503 for
    /// as long as it took. Default: half of --redis-timeout, so that the stack refuses
    /// before its broker calls time out; 0 disables.
    #[arg(long = "shed-latency", env = "SHED_LATENCY", value_parser = parse_duration)]
    pub shed_latency: Option<Duration>,
    /// A connection that sent nothing (not even a pong) for this long is closed.
    #[arg(long = "idle-timeout", env = "IDLE_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Interval of server pings; keep it well inside nginx's proxy_read_timeout.
    #[arg(long = "ping-interval", env = "PING_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub ping_interval: Duration,
    /// Time a client has to complete the HTTP upgrade.
    #[arg(long = "handshake-timeout", env = "HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// Sessions deleted per pipelined Redis round trip.
    #[arg(long = "cleanup-batch-size", env = "CLEANUP_BATCH_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub cleanup_batch_size: u32,
    /// How often closed sessions are deleted.
    #[arg(long = "cleanup-interval", env = "CLEANUP_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub cleanup_interval: Duration,
    /// TTL of a session hash, refreshed while the session is open, so that the
    /// sessions of a crashed worker expire by themselves.
    #[arg(long = "session-ttl", env = "SESSION_TTL", default_value = "300s", value_parser = parse_duration)]
    pub session_ttl: Duration,
    /// Interval of the periodic server event (one publisher across all instances); 0 disables.
    #[arg(long = "server-event-interval", env = "SERVER_EVENT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub server_event_interval: Duration,
    /// Clients per second, per instance, that a server event or a round of pings
    /// reaches; 0 sends to all at once. Pace it when one box holds more sessions
    /// than it can write frames to in an instant (scripts/scale.sh: 4000, i.e.
    /// 200,000 sessions over 12 instances reached in ~4 s); an event's fan-out
    /// then takes up to clients / rate seconds.
    #[arg(long = "fan-out-rate", env = "FAN_OUT_RATE", default_value_t = 0)]
    pub fan_out_rate: u32,
    /// Offer permessage-deflate (no context takeover, one shared pool per process).
    #[arg(long, env = "COMPRESSION", default_value_t = true, action = clap::ArgAction::Set)]
    pub compression: bool,
    /// Messages shorter than this are sent uncompressed even when permessage-deflate
    /// was negotiated: without context takeover, deflating ~100-byte JSON events costs
    /// CPU and saves nothing. It also means a small broadcast is serialised once and
    /// compressed zero times (above the threshold it is compressed per connection).
    #[arg(long = "compression-threshold", env = "COMPRESSION_THRESHOLD", default_value = "256", value_parser = parse_size)]
    pub compression_threshold: usize,
    /// How long a graceful shutdown waits for clients to finish their close handshake.
    #[arg(long = "shutdown-timeout", env = "SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Runtime threads of each worker process. Default: the machine's cores divided
    /// among the instances, at least 1 (12 workers with a thread per core each would
    /// put 12x as many threads as cores in contention, which costs context switches on
    /// every connection). The supervisor and the in-process memory broker use one per core.
    #[arg(long = "worker-threads", env = "WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
    /// Log format.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// Default Redis URL when the redis broker is asked for without a URL.
pub const DEFAULT_REDIS_URL: &str = "redis://localhost:6379";

impl ServerOpts {
    /// Runtime threads for one worker process: `--worker-threads`, or the cores shared
    /// out among the instances.
    pub fn threads_per_worker(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        self.worker_threads
            .map_or_else(|| (cores / usize::from(self.instances)).max(1), usize::from)
    }

    /// The setup latency above which new upgrades are shed (zero: never).
    pub fn shed_latency(&self) -> Duration {
        self.shed_latency.unwrap_or(self.redis_timeout / 2)
    }

    /// The broker in effect: the flag, else `redis` when REDIS_URL is set, else `memory`.
    pub fn broker_kind(&self) -> BrokerKind {
        self.broker.unwrap_or(if self.redis_url.is_some() {
            BrokerKind::Redis
        } else {
            BrokerKind::Memory
        })
    }

    /// The Redis URL in effect.
    pub fn redis_url(&self) -> &str {
        self.redis_url.as_deref().unwrap_or(DEFAULT_REDIS_URL)
    }

    /// Checks relations between options that clap cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let last = u32::from(self.base_port) + u32::from(self.instances) - 1;
        if last > u32::from(u16::MAX) {
            return Err(ConfigError::PortsPastEnd {
                base_port: self.base_port,
                instances: self.instances,
            });
        }
        for (name, value) in [
            ("--redis-timeout", self.redis_timeout),
            ("--idle-timeout", self.idle_timeout),
            ("--ping-interval", self.ping_interval),
            ("--handshake-timeout", self.handshake_timeout),
            ("--cleanup-interval", self.cleanup_interval),
            ("--session-ttl", self.session_ttl),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero { flag: name });
            }
        }
        if self.ping_interval >= self.idle_timeout {
            return Err(ConfigError::PingNotBeforeIdle);
        }
        if self.session_ttl < Duration::from_secs(3) {
            return Err(ConfigError::SessionTtlTooShort);
        }
        if self.max_payload == 0 || self.max_backpressure == 0 || self.max_connections == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        if self.broker_kind() == BrokerKind::Redis {
            crate::broker::redis::parse_url(self.redis_url())?;
        }
        Ok(())
    }
}

/// Options that do not fit together (or a Redis URL that cannot be used).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The last instance's port would be above 65535.
    #[error("--base-port {base_port} with --instances {instances} runs past port 65535")]
    PortsPastEnd {
        /// `--base-port`.
        base_port: u16,
        /// `--instances`.
        instances: u16,
    },
    /// A duration that must be positive is zero.
    #[error("{flag} must be greater than 0")]
    Zero {
        /// The flag, with its dashes.
        flag: &'static str,
    },
    /// Pings would not keep a connection from its idle timeout.
    #[error("--ping-interval must be shorter than --idle-timeout")]
    PingNotBeforeIdle,
    /// A TTL too short to refresh in time.
    #[error("--session-ttl must be at least 3s")]
    SessionTtlTooShort,
    /// A size or connection limit of zero.
    #[error("--max-payload, --max-backpressure and --max-connections must be greater than 0")]
    ZeroLimit,
    /// The Redis URL (with the redis broker) cannot be used.
    #[error(transparent)]
    Redis(#[from] crate::broker::redis::RedisSetupError),
}

/// A flag value that is not a duration or a size.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// Not a duration.
    #[error("'{value}' is not a duration ({reason}); use e.g. 500ms, 2s, 1m")]
    NotADuration {
        /// The value as given.
        value: String,
        /// Why humantime refused it.
        reason: humantime::DurationError,
    },
    /// No number in front.
    #[error("'{0}' is not a size; use e.g. 65536, 64KiB, 1MiB")]
    NotASize(String),
    /// A unit that is not a byte size.
    #[error("'{0}' has an unknown size unit; use B, KiB, MiB or GiB")]
    UnknownSizeUnit(String),
    /// More bytes than this machine can count.
    #[error("'{0}' is too large")]
    SizeTooLarge(String),
}

/// Parses a human duration such as `500ms`, `2s` or `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|reason| ValueError::NotADuration {
        value: s.to_owned(),
        reason,
    })
}

/// Parses a byte size such as `1048576`, `64KiB`, `1MiB`, `1MB` or `512K`.
pub fn parse_size(s: &str) -> Result<usize, ValueError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits.parse().map_err(|_| ValueError::NotASize(s.to_owned()))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(ValueError::UnknownSizeUnit(s.to_owned())),
    };
    n.checked_mul(mult)
        .ok_or_else(|| ValueError::SizeTooLarge(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_share_the_cores() {
        let cores = std::thread::available_parallelism().unwrap().get();
        let opts = |args: &[&str]| Cli::try_parse_from([&["ws-server"], args].concat()).unwrap().server;
        assert_eq!(opts(&["--instances", "12"]).threads_per_worker(), (cores / 12).max(1));
        assert_eq!(opts(&["--instances", "1"]).threads_per_worker(), cores);
        assert_eq!(opts(&["--worker-threads", "3"]).threads_per_worker(), 3);
        assert!(Cli::try_parse_from(["ws-server", "--worker-threads", "0"]).is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1XB"), Err(ValueError::UnknownSizeUnit("1XB".into())));
        assert_eq!(parse_size("abc"), Err(ValueError::NotASize("abc".into())));
        assert_eq!(
            parse_size("99999999999999999999G"),
            Err(ValueError::NotASize("99999999999999999999G".into()))
        );
        assert_eq!(
            parse_size("99999999999G"),
            Err(ValueError::SizeTooLarge("99999999999G".into()))
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(matches!(
            parse_duration("soon"),
            Err(ValueError::NotADuration { value, .. }) if value == "soon"
        ));
    }

    #[test]
    fn overload_defaults() {
        let opts = |args: &[&str]| Cli::try_parse_from([&["ws-server"], args].concat()).unwrap().server;
        let o = opts(&[]);
        assert_eq!((o.listen_backlog, o.max_pending_upgrades), (65_535, 256));
        assert_eq!(o.shed_latency(), Duration::from_secs(1));
        assert_eq!(
            opts(&["--redis-timeout", "500ms"]).shed_latency(),
            Duration::from_millis(250)
        );
        assert_eq!(opts(&["--shed-latency", "0"]).shed_latency(), Duration::ZERO);
        assert!(Cli::try_parse_from(["ws-server", "--max-pending-upgrades", "0"]).is_err());
        assert!(Cli::try_parse_from(["ws-server", "--listen-backlog", "0"]).is_err());
    }

    #[test]
    fn broker_defaults_follow_redis_url() {
        let cli = Cli::try_parse_from(["ws-server"]).unwrap();
        assert_eq!(cli.server.broker_kind(), BrokerKind::Memory);
        let cli = Cli::try_parse_from(["ws-server", "--redis-url", "redis://127.0.0.1:1"]).unwrap();
        assert_eq!(cli.server.broker_kind(), BrokerKind::Redis);
        let cli = Cli::try_parse_from(["ws-server", "--broker", "redis"]).unwrap();
        assert_eq!(cli.server.redis_url(), DEFAULT_REDIS_URL);
    }

    #[test]
    fn bad_relations_are_rejected() {
        let cli = Cli::try_parse_from(["ws-server", "--base-port", "65530", "--instances", "12"]).unwrap();
        assert_eq!(
            cli.server.validate(),
            Err(ConfigError::PortsPastEnd {
                base_port: 65530,
                instances: 12
            })
        );
        let cli = Cli::try_parse_from(["ws-server", "--broker", "redis", "--redis-url", "http://x"]).unwrap();
        assert!(matches!(
            cli.server.validate(),
            Err(ConfigError::Redis(crate::broker::redis::RedisSetupError::InvalidUrl { url, .. })) if url == "http://x"
        ));
        let cli = Cli::try_parse_from(["ws-server", "--idle-timeout", "0"]).unwrap();
        assert_eq!(cli.server.validate(), Err(ConfigError::Zero { flag: "--idle-timeout" }));
    }
}
