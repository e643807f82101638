//! Where the instances' listening sockets come from, and how they are handed on.
//!
//! By default the supervisor binds `--bind`:`--base-port`.. itself. It may instead
//! inherit them, bound and listening, from the process that started it, by the
//! systemd socket-activation protocol: `LISTEN_FDS=N` and the sockets as fds 3 to
//! 3+N-1 (`LISTEN_PID`, when set, must be this process's id). A systemd socket unit
//! does this, and so do the tests, which thus never have a port that is free between
//! a check and a bind.
//!
//! Either way the supervisor keeps every socket for its whole life and hands each
//! worker process its instance's socket by the same protocol: a restarted worker
//! listens on the very socket its predecessor did, so connections that arrive while
//! it restarts wait in the backlog instead of being refused.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{AsFd, OwnedFd};

use command_fds::{CommandFdExt, FdMapping};
use tokio::net::TcpListener;

use crate::ServerError;

/// The fd of the first inherited socket (after stdin, stdout and stderr).
const FIRST_FD: i32 = 3;

/// The listening sockets passed by the parent process, in order; none when
/// `LISTEN_FDS` is not set. Reads and clears `LISTEN_FDS`/`LISTEN_PID`, so call it
/// once, first thing in `main`, before any thread exists.
pub fn inherited() -> Result<Vec<StdListener>, ServerError> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::with_capacity(fds.len());
    for i in 0..fds.len() {
        let fd = FIRST_FD + i32::try_from(i).unwrap_or(i32::MAX);
        let inherited = |e: String| ServerError::Usage(format!("inherited fd {fd} (LISTEN_FDS): {e}"));
        let listener = fds
            .take_tcp_listener(i)
            .map_err(|e| inherited(e.to_string()))?
            .ok_or_else(|| inherited("already taken".into()))?;
        let listening = nix::sys::socket::getsockopt(&listener.as_fd(), nix::sys::socket::sockopt::AcceptConn)
            .map_err(|e| inherited(e.to_string()))?;
        if !listening {
            return Err(inherited("a TCP socket that is not listening".into()));
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Binds `addr` (backlog 1024, `SO_REUSEADDR`), with an error that names it.
pub async fn bind(addr: SocketAddr) -> Result<StdListener, ServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Usage(format!("cannot listen on {addr}: {e}")))?;
    listener
        .into_std()
        .map_err(|e| ServerError::Failed(format!("listener on {addr}: {e}")))
}

/// The port `listener` is bound to (0 if it cannot be read).
pub fn port(listener: &StdListener) -> u16 {
    listener.local_addr().map_or(0, |a| a.port())
}

/// The tokio listener of `listener` (a handle from `try_clone` keeps the socket
/// open beyond it), listening with `backlog`: `listen(2)` on a socket that already
/// listens sets its backlog anew, so this also applies to inherited sockets, and to
/// the ones bound above (tokio's 1024).
pub fn to_tokio(listener: StdListener, backlog: u32) -> std::io::Result<TcpListener> {
    socket2::SockRef::from(&listener).listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// The kernel's cap on listen backlogs (`net.core.somaxconn`), if readable.
pub fn somaxconn() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Logs the backlog in force when the kernel caps `backlog`, so a burst that
/// overflows the queue is not a mystery.
pub fn log_backlog(backlog: u32) {
    match somaxconn() {
        Some(cap) if cap < backlog => tracing::info!(
            asked = backlog,
            in_force = cap,
            "listen backlog capped by net.core.somaxconn; raise it for connect bursts"
        ),
        _ => tracing::debug!(backlog, "listen backlog"),
    }
}

/// Passes `listener` to the process `cmd` starts as its only inherited socket.
pub fn pass_to(cmd: &mut tokio::process::Command, listener: &StdListener) -> std::io::Result<()> {
    let handle = OwnedFd::from(listener.try_clone()?);
    cmd.env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS_FIRST_FD")
        .fd_mappings(vec![FdMapping {
            parent_fd: handle,
            child_fd: FIRST_FD,
        }])
        .map_err(std::io::Error::other)?;
    Ok(())
}
