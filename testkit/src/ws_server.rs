//! `ws-server` as a child process, listening on sockets the test bound and passed
//! down (the systemd socket-activation protocol: fds 3.., `LISTEN_FDS`), so no port
//! is ever free between a check and a bind.

use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use nix::sys::signal::Signal;

use crate::plain_http::healthz;
use crate::ports;
use crate::process::{workspace_bin, Proc};
use crate::wait::{wait_until, Deadline};

/// How long every instance gets to become healthy.
const STARTUP: Duration = Duration::from_secs(15);
/// First file descriptor of inherited listeners (after stdin, stdout, stderr).
const FIRST_FD: i32 = 3;

/// A running `ws-server`, stopped with SIGTERM (SIGKILL after 10 s) when dropped.
#[derive(Debug)]
pub struct WsServer {
    ports: Vec<u16>,
    proc: Proc,
}

/// A `ws-server` command (no Redis URL from the environment, warnings logged) that
/// inherits `sockets` as its fds 3.., with `LISTEN_FDS` saying how many: the
/// systemd socket-activation protocol. The command owns this process's handles of
/// them until it is dropped.
pub fn ws_server_command<S: Into<OwnedFd>>(sockets: Vec<S>) -> Command {
    let mappings = (FIRST_FD..)
        .zip(sockets)
        .map(|(child_fd, s)| FdMapping {
            parent_fd: s.into(),
            child_fd,
        })
        .collect::<Vec<_>>();
    // BENCH_SERVER_BIN: a benchmark comparing another build of the server.
    let bin = std::env::var_os("BENCH_SERVER_BIN").map_or_else(|| workspace_bin("ws-server"), Into::into);
    let mut cmd = Command::new(bin);
    cmd.env("LISTEN_FDS", mappings.len().to_string())
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS_FIRST_FD")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn")
        .fd_mappings(mappings)
        .expect("distinct child fds");
    cmd
}

impl WsServer {
    /// Starts the supervisor with `instances` instances and `extra` options, and
    /// waits until every instance is healthy.
    pub fn start(instances: u16, extra: &[&str]) -> Self {
        let mut args = vec!["--instances".to_owned(), instances.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(usize::from(instances), &args, |_| Vec::new())
    }

    /// One instance with the embedded memory broker and no periodic server events
    /// (every frame a client gets is one it asked for), plus `extra` flags.
    pub fn memory(extra: &[&str]) -> Self {
        let mut args = vec!["--broker", "memory", "--server-event-interval", "0"];
        args.extend_from_slice(extra);
        Self::start(1, &args)
    }

    /// Starts one `ws-server [extra] worker` process (no supervisor) and waits until
    /// it is healthy.
    pub fn start_worker(extra: &[&str]) -> Self {
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::spawn(1, &args, |ports| {
            vec!["worker".into(), "--port".into(), ports[0].to_string()]
        })
    }

    fn spawn(listeners: usize, args: &[String], tail: impl FnOnce(&[u16]) -> Vec<String>) -> Self {
        let listeners: Vec<TcpListener> = (0..listeners).map(|_| ports::listener()).collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("a bound listener").port())
            .collect();
        let mut cmd = ws_server_command(listeners);
        cmd.args(args).args(tail(&ports));
        let proc = Proc::spawn(&mut cmd, "ws-server").with_grace(Duration::from_secs(10));
        // The command owns this process's copies of the listeners: only the server
        // holds them from now on.
        drop(cmd);
        let mut server = WsServer { ports, proc };
        server.wait_healthy(STARTUP);
        server
    }

    /// Waits until every instance answers `/healthz` with 200, failing at once if
    /// the server exits.
    fn wait_healthy(&mut self, deadline: impl Into<Deadline>) {
        let deadline = deadline.into();
        for port in self.ports.clone() {
            let proc = &mut self.proc;
            wait_until(deadline, &format!("the instance on {port} to be healthy"), || {
                proc.exited().is_some() || healthz(port)
            })
            .unwrap();
            if let Some(status) = self.proc.exited() {
                panic!("ws-server exited ({status}) before its instance on {port} was healthy");
            }
        }
    }

    /// The instances' ports, in instance order.
    pub fn ports(&self) -> Vec<u16> {
        self.ports.clone()
    }

    /// The port of instance `i` (0-based).
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// The WebSocket URL of the instance on `port`.
    pub fn url(&self, port: u16) -> String {
        format!("ws://127.0.0.1:{port}/ws")
    }

    /// The process id of the supervisor (or of the worker, with [`WsServer::start_worker`]).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The process id of the supervisor's worker serving `port`, if one runs now: the
    /// child whose command line says `worker --port <port>` (a killed worker's
    /// replacement has another id).
    pub fn worker_pid(&self, port: u16) -> Option<u32> {
        let sup = self.proc.pid();
        // A child is listed under the thread that spawned it: look at every thread.
        let children: String = std::fs::read_dir(format!("/proc/{sup}/task"))
            .ok()?
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .collect::<Vec<_>>()
            .join(" ");
        let needle = format!("worker\0--port\0{port}\0");
        children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(&needle))
            })
    }

    /// Kills (SIGKILL) the worker serving `port`; returns its process id. The
    /// supervisor starts a new one on the same port.
    pub fn kill_worker(&self, port: u16) -> u32 {
        let pid = self
            .worker_pid(port)
            .unwrap_or_else(|| panic!("no worker serves port {port}"));
        let raw = i32::try_from(pid).expect("a process id");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), Signal::SIGKILL)
            .unwrap_or_else(|e| panic!("cannot kill the worker on port {port}: {e}"));
        pid
    }

    /// Sends `sig` to the supervisor.
    pub fn signal(&self, sig: Signal) {
        self.proc.signal(sig);
    }

    /// Waits up to `deadline` for the server to exit.
    pub fn wait(&mut self, deadline: impl Into<Deadline>) -> Option<ExitStatus> {
        self.proc.wait_timeout(deadline)
    }
}

/// Runs `ws-server ARGS` to completion (bad input, `publish`).
pub fn run_ws_server(args: &[&str]) -> Output {
    Command::new(workspace_bin("ws-server"))
        .args(args)
        .env_remove("REDIS_URL")
        .output()
        .expect("run ws-server")
}
