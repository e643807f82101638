//! Opening and closing a session's WebSocket: TCP from a chosen source address, TLS
//! for `wss://`, the HTTP upgrade (with a scenario's headers and subprotocols), each
//! failure counted by its kind, and an HTTP status that refuses the upgrade by its
//! number (`http_503`). Scripted connect steps may name other targets: they are
//! checked against `--allow-target` and resolved once per host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpSocket;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;
use url::Url;
use wsload_scenario::program::Connect;
use wsload_scenario::Vars;

use super::SessionCtx;
use crate::config::target_allowed;
use crate::session_error::{Failure, SessionError};
use crate::target_tls::{Stream, TargetTls};
use crate::ws::{Frame, HandshakeError, OpCode, Ws};

/// Where a session connects.
#[derive(Debug, Clone)]
pub struct Target {
    /// Resolved address.
    pub addr: SocketAddr,
    /// The `ws://` or `wss://` URL (Host header, path, query).
    pub url: Url,
    /// For `wss://`: TLS over the socket before the upgrade.
    pub tls: Option<TargetTls>,
}

impl Target {
    /// A target at `addr`.
    pub fn new(addr: SocketAddr, url: Url, tls: Option<TargetTls>) -> Self {
        Target { addr, url, tls }
    }

    /// Whether `url` reaches the same endpoint (scheme, host, port).
    fn same_endpoint(&self, url: &Url) -> bool {
        self.url.scheme() == url.scheme()
            && self.url.host_str() == url.host_str()
            && self.url.port_or_known_default() == url.port_or_known_default()
    }
}

/// The target's host as resolvers, `--allow-target` and TLS name checks take it: an
/// IPv6 address without the URL's brackets.
pub fn target_host(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        _ => url.host_str().unwrap_or_default().to_string(),
    }
}

/// Resolves `host:port` to the address a session connects to: the first address when
/// the name itself is allowed, else the first address an `--allow-target` rule allows
/// (so `localhost` is allowed by `127.0.0.0/8`, and reaches 127.0.0.1 even where it
/// resolves to `::1` first). Not allowed: the name and none of its addresses match.
pub async fn resolve_allowed(allow: &[String], host: &str, port: u16) -> Result<SocketAddr, SessionError> {
    let name_allowed = target_allowed(allow, host);
    // Without an allowed address, a name allowed by itself did not resolve.
    let refused = if name_allowed {
        SessionError::ResolveError
    } else {
        SessionError::TargetNotAllowed
    };
    let Ok(mut addrs) = tokio::net::lookup_host((host, port)).await else {
        return Err(refused);
    };
    addrs
        .find(|addr| name_allowed || target_allowed(allow, &addr.ip().to_string()))
        .ok_or(refused)
}

/// The other targets scenarios connect to: allowed hosts, resolved once each.
pub struct Targets {
    /// `--allow-target` rules (empty: any host).
    allow: Vec<String>,
    /// TLS for `wss://` targets.
    tls: tokio_rustls::TlsConnector,
    /// host:port -> address.
    resolved: Mutex<HashMap<(String, u16), SocketAddr>>,
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Targets")
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

impl Targets {
    /// Targets checked against `allow`, with `tls` for `wss://`.
    pub fn new(allow: Vec<String>, tls: tokio_rustls::TlsConnector) -> Self {
        Targets {
            allow,
            tls,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Targets with no allow list and no extra CA (unit tests).
    pub fn for_tests() -> Self {
        let tls = crate::target_tls::connector(None).expect("a connector with the system roots");
        Targets::new(Vec::new(), tls)
    }

    /// Checks and resolves `url`.
    pub async fn resolve(&self, url: &Url) -> Result<Target, Failure> {
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(SessionError::BadTarget.into());
        }
        let host = target_host(url);
        if host.is_empty() {
            return Err(SessionError::BadTarget.into());
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let key = (host.clone(), port);
        let cached = self.resolved.lock().ok().and_then(|m| m.get(&key).copied());
        let addr = match cached {
            Some(a) => a,
            None => {
                let a = resolve_allowed(&self.allow, &host, port).await?;
                if let Ok(mut m) = self.resolved.lock() {
                    m.insert(key, a);
                }
                a
            }
        };
        let tls = if url.scheme() == "wss" {
            let name = rustls_pki_types::ServerName::try_from(host).map_err(|_| SessionError::BadTarget)?;
            Some(TargetTls {
                connector: self.tls.clone(),
                name,
            })
        } else {
            None
        };
        Ok(Target::new(addr, url.clone(), tls))
    }
}

/// Connects to `target` within the connect timeout, holding a `--max-connecting`
/// permit; returns the socket and the connect time (timed from the permit: the
/// network's and the server's time, not the agent's own queue).
pub async fn open(
    ctx: &SessionCtx,
    target: &Target,
    index: u64,
    headers: &[(String, String)],
    cancel: &CancellationToken,
) -> Result<(Ws, Duration), Failure> {
    let permit = tokio::select! {
        _ = cancel.cancelled() => None,
        p = ctx.connecting.acquire() => p.ok(),
    };
    let Some(_permit) = permit else {
        return Err(SessionError::Aborted.into());
    };
    let t0 = Instant::now();
    tokio::select! {
        _ = cancel.cancelled() => Err(SessionError::Aborted.into()),
        r = timeout(ctx.connect_timeout, connect(ctx, target, index, headers)) => {
            let ws = r.unwrap_or(Err(SessionError::ConnectTimeout.into()))?;
            Ok((ws, t0.elapsed()))
        }
    }
}

/// Lets the kernel pick the source port at connect (IP_BIND_ADDRESS_NO_PORT), as a
/// plain connect does: unique per destination, not reserved by the bind. A port
/// reserved by a bind is skipped by every other program's connect on the machine:
/// agents holding ~14,000 sessions per source address left nginx no port for its
/// connections to the workers ("Cannot assign requested address" at 169,187 sessions
/// on one machine).
fn bind_port_at_connect(socket: &TcpSocket) {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt::IpBindAddressNoPort};
        let _ = setsockopt(socket, IpBindAddressNoPort, &true);
    }
}

async fn connect(ctx: &SessionCtx, target: &Target, index: u64, headers: &[(String, String)]) -> Result<Ws, Failure> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|_| SessionError::SocketError)?;
    if !ctx.source_ips.is_empty() {
        let ip = ctx.source_ips[(index % ctx.source_ips.len() as u64) as usize];
        bind_port_at_connect(&socket);
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|_| SessionError::BindError)?;
    }
    let stream = socket.connect(target.addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => SessionError::ConnectRefused,
        _ => SessionError::ConnectError,
    })?;
    let _ = stream.set_nodelay(true);
    let stream = match &target.tls {
        None => Stream::Plain(stream),
        Some(tls) => tls.connect(stream).await.map_err(|_| SessionError::TlsError)?,
    };
    Ws::handshake(stream, &target.url, ctx.deflate.as_ref(), headers)
        .await
        .map_err(|e| match e {
            HandshakeError::Status(status) => Failure::Http(status),
            HandshakeError::Invalid(_) | HandshakeError::Io => SessionError::HandshakeError.into(),
        })
}

/// Opens a scripted connect step: its URL (or the plan's target), query, headers and
/// subprotocols rendered with `vars`.
pub async fn open_scripted(
    ctx: &SessionCtx,
    c: &Connect,
    vars: &Vars<'_>,
    index: u64,
    cancel: &CancellationToken,
) -> Result<(Ws, Duration), Failure> {
    let mut rng = fastrand::Rng::with_seed(index);
    let mut url = match &c.url {
        None => ctx.target.url.clone(),
        Some(t) => Url::parse(&t.render_string(vars, &mut rng)).map_err(|_| SessionError::BadTarget)?,
    };
    if !c.query.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, t) in &c.query {
            q.append_pair(k, &t.render_string(vars, &mut rng));
        }
    }
    let target = if ctx.target.same_endpoint(&url) {
        Target::new(ctx.target.addr, url, ctx.target.tls.clone())
    } else {
        ctx.targets.resolve(&url).await?
    };
    let mut headers = Vec::with_capacity(c.headers.len() + 1);
    for (name, t) in &c.headers {
        let value = t.render_string(vars, &mut rng);
        // A rendered value with a line break or control byte would break the request.
        if http::HeaderValue::from_str(&value).is_err() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(SessionError::BadTarget.into());
        }
        headers.push((name.clone(), value));
    }
    if !c.subprotocols.is_empty() {
        headers.push(("Sec-WebSocket-Protocol".into(), c.subprotocols.join(", ")));
    }
    open(ctx, &target, index, &headers, cancel).await
}

/// Sends a close frame and reads until the peer's close (bounded by `wait`), so the
/// server sees a clean close rather than 1006.
pub async fn close(ws: &mut Ws, code: u16, reason: &[u8], wait: Duration) {
    if ws.send(Frame::close(code, reason)).await.is_err() {
        return;
    }
    let _ = timeout(wait, async {
        while let Ok(f) = ws.next_frame().await {
            if f.opcode() == OpCode::Close {
                break;
            }
        }
    })
    .await;
}

/// [`close`] of a socket given away: boxed by a caller, the socket lives in the box
/// rather than in the caller's (long-lived) state.
pub async fn close_owned(mut ws: Ws, code: u16, reason: &[u8], wait: Duration) {
    close(&mut ws, code, reason, wait).await;
}

/// [`close_reply`] of a socket given away (see [`close_owned`]).
pub async fn close_reply_owned(mut ws: Ws) {
    close_reply(&mut ws).await;
}

/// After the server's close frame (answered as it was read): waits briefly for the
/// server to end the connection, so it sees a clean close handshake.
pub async fn close_reply(ws: &mut Ws) {
    let _ = timeout(Duration::from_secs(1), ws.wait_end()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_source_address_bind_leaves_the_port_to_the_connect() {
        let socket = TcpSocket::new_v4().unwrap();
        bind_port_at_connect(&socket);
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // No port reserved by the bind (without the option the kernel picks one here).
        assert_eq!(socket.local_addr().unwrap().port(), 0);

        let plain = TcpSocket::new_v4().unwrap();
        plain.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(plain.local_addr().unwrap().port(), 0);
    }

    #[tokio::test]
    async fn a_name_is_allowed_by_the_range_its_address_is_in() {
        let v4 = vec!["127.0.0.0/8".to_string()];
        let addr = resolve_allowed(&v4, "localhost", 8080).await.unwrap();
        assert_eq!(addr, "127.0.0.1:8080".parse().unwrap());
        let other = vec!["10.0.0.0/8".to_string()];
        assert_eq!(
            resolve_allowed(&other, "localhost", 8080).await,
            Err(SessionError::TargetNotAllowed)
        );
        // A name rule still allows the name, whatever it resolves to.
        let by_name = vec!["localhost".to_string()];
        assert!(resolve_allowed(&by_name, "localhost", 80).await.is_ok());
        assert_eq!(
            resolve_allowed(&v4, "name.invalid", 80).await,
            Err(SessionError::TargetNotAllowed)
        );
        assert_eq!(
            resolve_allowed(&[], "name.invalid", 80).await,
            Err(SessionError::ResolveError)
        );
    }
}
