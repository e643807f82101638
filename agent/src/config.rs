//! Command-line and environment options of the agent.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

/// Options of `ws-agent` (also built by the coordinator for in-process agents).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ws-agent",
    version,
    about = "wsload agent: opens the WebSocket sessions a coordinator assigns"
)]
pub struct AgentOpts {
    /// Coordinator gRPC URL (agents dial out, so they may sit behind NAT).
    #[arg(long, env = "WSLOAD_COORDINATOR", default_value = "http://127.0.0.1:7700")]
    pub coordinator: String,

    /// Display name in reports; defaults to the host name plus a short id.
    #[arg(long, env = "WSLOAD_AGENT_NAME")]
    pub name: Option<String>,

    /// Token presented to the coordinator (its agent token, or the shared one).
    /// Prefer WSLOAD_TOKEN or --token-file: a flag's value is visible in `ps`.
    #[arg(long, env = "WSLOAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// File whose first line is the token (instead of --token).
    #[arg(long, env = "WSLOAD_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,

    /// Explicitly run without a token (the coordinator must be --insecure too).
    #[arg(long)]
    pub insecure: bool,

    /// Source addresses to spread sockets over, e.g. `127.0.0.2-127.0.0.9` or
    /// `10.0.0.5,10.0.0.6`: each address has its own ~28,000 ephemeral ports.
    #[arg(long, env = "WSLOAD_SOURCE_IPS", value_parser = parse_source_ips)]
    pub source_ips: Option<SourceIps>,

    /// Most sessions this agent will hold open; sized below the open-file limit by default.
    #[arg(long, env = "WSLOAD_MAX_SESSIONS")]
    pub max_sessions: Option<u64>,

    /// Handshakes in flight at once. Thousands at once leave the allocator fragmented
    /// and every open session costs more RSS for the rest of the run.
    #[arg(long, env = "WSLOAD_MAX_CONNECTING", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_connecting: u32,

    /// System memory use (percent) above which no new batch starts.
    #[arg(long, env = "WSLOAD_MAX_MEMORY", default_value_t = 85.0)]
    pub max_memory: f64,

    /// Agent RSS cap in MiB above which no new batch starts.
    #[arg(long, env = "WSLOAD_MAX_RSS_MB")]
    pub max_rss_mb: Option<u64>,

    /// How long a run's load continues while the coordinator is unreachable.
    #[arg(long, env = "WSLOAD_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,

    /// Only attack these hosts or CIDR ranges (repeatable); others are refused.
    #[arg(long = "allow-target", env = "WSLOAD_ALLOW_TARGET", value_delimiter = ',')]
    pub allow_targets: Vec<String>,

    /// PEM CA certificate(s) to trust for `wss://` targets, besides the system's roots
    /// (a target with a private or self-signed CA).
    #[arg(long = "target-ca", env = "WSLOAD_TARGET_CA")]
    pub target_ca: Option<std::path::PathBuf>,

    /// PEM CA certificate of the coordinator's TLS certificate (for https:// URLs).
    #[arg(long, env = "WSLOAD_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Name to verify in the coordinator's certificate [default: the URL's host].
    #[arg(long, env = "WSLOAD_TLS_DOMAIN")]
    pub tls_domain: Option<String>,

    /// Heartbeat period.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, hide = true)]
    pub heartbeat: Duration,

    /// Protocol version announced in Hello (tests use it to provoke a mismatch).
    #[arg(long, default_value_t = wsload_proto::PROTOCOL_VERSION, hide = true)]
    pub protocol_version: u32,
}

impl AgentOpts {
    /// Options for an in-process agent dialing `coordinator`.
    pub fn local(coordinator: String, name: String, token: Option<String>) -> Self {
        let mut o = AgentOpts::parse_from(["ws-agent"]);
        o.coordinator = coordinator;
        o.name = Some(name);
        o.insecure = token.is_none();
        o.token = token;
        o
    }
}

/// A parsed list of source addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIps(pub Vec<IpAddr>);

/// Why a `--source-ips` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceIpsError {
    /// A part is not an IP address.
    #[error("{part}: {source}")]
    BadAddress {
        /// The offending part.
        part: String,
        /// Why it does not parse.
        source: std::net::AddrParseError,
    },
    /// A range ends before it starts or spans more than 65,536 addresses.
    #[error("bad range {range}")]
    BadRange {
        /// The offending range.
        range: String,
    },
    /// Nothing but separators.
    #[error("no address given")]
    Empty,
}

/// Parses `a.b.c.d-a.b.c.e` ranges and comma-separated addresses.
pub fn parse_source_ips(s: &str) -> Result<SourceIps, SourceIpsError> {
    fn ip<T: std::str::FromStr<Err = std::net::AddrParseError>>(part: &str) -> Result<T, SourceIpsError> {
        part.trim().parse().map_err(|source| SourceIpsError::BadAddress {
            part: part.to_owned(),
            source,
        })
    }
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (
                u32::from(ip::<std::net::Ipv4Addr>(a)?),
                u32::from(ip::<std::net::Ipv4Addr>(b)?),
            );
            if b < a || b - a > 65_535 {
                return Err(SourceIpsError::BadRange { range: part.to_owned() });
            }
            out.extend((a..=b).map(|v| IpAddr::V4(v.into())));
        } else {
            out.push(ip(part)?);
        }
    }
    if out.is_empty() {
        return Err(SourceIpsError::Empty);
    }
    Ok(SourceIps(out))
}

/// Whether `host` is allowed by the `--allow-target` list (empty list: all allowed).
pub fn target_allowed(allow: &[String], host: &str) -> bool {
    if allow.is_empty() {
        return true;
    }
    let host = host.trim_matches(['[', ']']);
    let ip: Option<IpAddr> = host.parse().ok();
    allow.iter().any(|rule| match (rule.split_once('/'), ip) {
        (Some((net, bits)), Some(ip)) => cidr_contains(net, bits, ip),
        _ => rule.trim_matches(['[', ']']).eq_ignore_ascii_case(host),
    })
}

/// Whether `ip` is in `net/bits` (IPv4 or IPv6; a family mismatch is no match).
fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let (net, ip, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    let bits = bits.min(width);
    bits == 0 || (net >> (width - bits)) == (ip >> (width - bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists_parse() {
        let r = parse_source_ips("127.0.0.2-127.0.0.4,10.0.0.1").unwrap();
        assert_eq!(r.0.len(), 4);
        assert_eq!(
            parse_source_ips("127.0.0.9-127.0.0.2"),
            Err(SourceIpsError::BadRange {
                range: "127.0.0.9-127.0.0.2".into()
            })
        );
        assert_eq!(parse_source_ips(" , "), Err(SourceIpsError::Empty));
        assert!(matches!(
            parse_source_ips("127.0.0.2,nope"),
            Err(SourceIpsError::BadAddress { part, .. }) if part == "nope"
        ));
        assert!(matches!(
            parse_source_ips("::1-::2"),
            Err(SourceIpsError::BadAddress { part, .. }) if part == "::1"
        ));
    }

    #[test]
    fn allow_list_matches_hosts_and_cidrs() {
        let allow = vec!["127.0.0.0/8".to_string(), "example.test".to_string()];
        assert!(target_allowed(&allow, "127.0.0.1"));
        assert!(target_allowed(&allow, "example.test"));
        assert!(!target_allowed(&allow, "10.1.1.1"));
        assert!(target_allowed(&[], "anything"));
        let v6 = vec!["::1/128".to_string(), "fd00::/8".to_string()];
        assert!(target_allowed(&v6, "::1"));
        assert!(target_allowed(&v6, "[::1]"));
        assert!(target_allowed(&v6, "fd12::5"));
        assert!(!target_allowed(&v6, "fe80::1"));
        assert!(!target_allowed(&v6, "127.0.0.1"));
        assert!(target_allowed(&["::1".to_string()], "::1"));
        assert!(target_allowed(&["0.0.0.0/0".to_string()], "10.1.1.1"));
    }
}
