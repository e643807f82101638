//! Loopback TCP ports for tests, never from the kernel's ephemeral range.
//!
//! Binding port 0 and closing the socket hands out a port of the ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), the range the kernel also takes the
//! local port of every outgoing connection from: between that check and the child's
//! own bind, any client socket on the machine may take it (seen once: a worker could
//! not listen for 13 s). So the ports here come from outside that range, no port is
//! handed out twice in one process (the tests of one binary run in parallel), and
//! each is checked by binding it. Two ways to get one:
//!
//! - [`listener`]: a bound, listening socket for a child we wrote: `ws-server`
//!   inherits it (see [`crate::ws_server`]), so there is no window at all.
//! - [`Port::reserve`]: for a child that binds by itself (redis-server, nginx,
//!   `ws-coordinator serve`). The reservation keeps a socket bound to the port with
//!   `SO_REUSEADDR` but not listening: an outgoing connection's automatic bind skips
//!   the port and a plain bind fails, while the child, which binds with
//!   `SO_REUSEADDR` (redis, nginx and tokio all do), can still bind and listen. Keep
//!   it as long as the child may (re)bind the port; nothing ever accepts on it.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Mutex;

use socket2::{Domain, Socket, Type};

/// The lowest port handed out: clear of the well-known and popular registered ports.
const LOWEST: u16 = 10_000;
/// Listen backlog of [`listener`], as `ws-server`'s own bind (tokio's default) has.
const BACKLOG: i32 = 1024;
/// Ports this process has handed out (or found busy): never handed out again.
static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The kernel's ephemeral port range, inclusive (the default when it cannot be read).
pub fn ephemeral_range() -> (u16, u16) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = range.split_whitespace().filter_map(|p| p.parse().ok());
    match (bounds.next(), bounds.next()) {
        (Some(low), Some(high)) if low <= high => (low, high),
        _ => (32_768, 60_999),
    }
}

/// Every port outside the ephemeral range (below it first, then above), starting at
/// a point that differs between processes so that parallel test binaries rarely probe
/// the same ports.
fn candidates() -> Vec<u16> {
    let (low, high) = ephemeral_range();
    let mut ports: Vec<u16> = (LOWEST..low).chain(high.saturating_add(1)..=u16::MAX).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let seed = u64::from(std::process::id()) ^ now.map_or(0, |d| u64::from(d.subsec_nanos()));
    let spread = seed.wrapping_mul(6_364_136_223_846_793_005) >> 33;
    if !ports.is_empty() {
        let start = usize::try_from(spread).unwrap_or(0) % ports.len();
        ports.rotate_left(start);
    }
    ports
}

/// Hands out ports until `claim` succeeds on one; every port tried is marked taken.
fn allocate<T>(what: &str, mut claim: impl FnMut(u16) -> io::Result<T>) -> (u16, T) {
    let mut tried = 0;
    for port in candidates() {
        if !TAKEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            continue;
        }
        if let Ok(claimed) = claim(port) {
            return (port, claimed);
        }
        tried += 1;
        if tried == 500 {
            break;
        }
    }
    let (low, high) = ephemeral_range();
    panic!("no free loopback port for {what} outside the ephemeral range {low}-{high} ({tried} tried)");
}

/// 127.0.0.1:`port`.
fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A socket bound to 127.0.0.1:`port` without `SO_REUSEADDR`: fails if anything at
/// all is bound there, another process's reservation included.
fn bind_exclusive(port: u16) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&loopback(port).into())?;
    Ok(socket)
}

/// A listening socket on 127.0.0.1 for a child process to inherit (or a test to
/// serve on), on a port outside the ephemeral range.
pub fn listener() -> TcpListener {
    let (_, socket) = allocate("a listener", |port| {
        let socket = bind_exclusive(port)?;
        socket.listen(BACKLOG)?;
        Ok(socket)
    });
    socket.into()
}

/// A port reserved for a child that binds it itself; see the module docs. Dropping
/// it ends the reservation.
#[derive(Debug)]
pub struct Port {
    number: u16,
    /// Bound with `SO_REUSEADDR`, never listening.
    _hold: Socket,
}

impl Port {
    /// Reserves a free port outside the ephemeral range.
    pub fn reserve() -> Self {
        let (number, hold) = allocate("a reservation", |port| {
            let socket = bind_exclusive(port)?;
            // Set after the bind, so the bind itself fails on another reservation;
            // from now on a child binding with SO_REUSEADDR may share the port.
            socket.set_reuse_address(true)?;
            Ok(socket)
        });
        Port { number, _hold: hold }
    }

    /// The port number.
    pub fn number(&self) -> u16 {
        self.number
    }

    /// 127.0.0.1 and the port.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.number)
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outside_ephemeral(port: u16) -> bool {
        let (low, high) = ephemeral_range();
        port < low || port > high
    }

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_never_repeat() {
        let reserved: Vec<Port> = (0..50).map(|_| Port::reserve()).collect();
        let listeners: Vec<TcpListener> = (0..50).map(|_| listener()).collect();
        let mut numbers: Vec<u16> = reserved.iter().map(Port::number).collect();
        numbers.extend(listeners.iter().map(|l| l.local_addr().unwrap().port()));
        assert!(numbers.iter().all(|p| outside_ephemeral(*p)), "{numbers:?}");
        let unique: BTreeSet<u16> = numbers.iter().copied().collect();
        assert_eq!(unique.len(), numbers.len(), "{numbers:?}");
    }

    #[test]
    fn parallel_threads_get_distinct_ports() {
        let threads: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| (0..20).map(|_| Port::reserve()).collect::<Vec<_>>()))
            .collect();
        let all: Vec<Port> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let unique: BTreeSet<u16> = all.iter().map(Port::number).collect();
        assert_eq!(unique.len(), 160);
    }

    #[test]
    fn a_reservation_blocks_plain_binds_but_not_a_reusing_listener() {
        let port = Port::reserve();
        assert!(
            std::net::TcpStream::connect(port.addr()).is_err(),
            "nothing listens yet"
        );
        assert!(bind_exclusive(port.number()).is_err(), "a plain bind fails");
        // std and tokio listeners set SO_REUSEADDR, as redis and nginx do.
        let child = TcpListener::bind(port.addr()).expect("a reusing listener binds");
        assert!(std::net::TcpStream::connect(port.addr()).is_ok());
        drop(child);
    }

    #[test]
    fn a_listener_accepts() {
        let l = listener();
        let addr = l.local_addr().unwrap();
        assert!(outside_ephemeral(addr.port()));
        let _client = std::net::TcpStream::connect(addr).unwrap();
        l.accept().unwrap();
    }
}
