//! Child processes of a test: found on disk, waited for by condition, and stopped
//! when dropped, so a failing test leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

pub use nix::sys::signal::Signal;

use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::wait::{wait_until, Deadline};

/// A binary of this workspace, built by `cargo build --workspace` into the same
/// `target/<profile>/` directory as the running test or bench (whose executable sits
/// in `target/<profile>/deps/`), so debug, release and a custom target dir all work.
///
/// `BENCH_BIN_DIR`: take them from another build's directory instead (a benchmark
/// comparing builds; `BENCH_SERVER_BIN` still picks the server alone).
pub fn workspace_bin(name: &str) -> PathBuf {
    let p = match std::env::var_os("BENCH_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => std::env::current_exe()
            .expect("the test's own path")
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/")
            .join(name),
    };
    assert!(
        p.exists(),
        "{} not found: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// An installed system binary (redis-server, nginx), wherever Debian puts it.
pub fn system_binary(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed (scripts/setup.sh installs it)");
}

/// Resident set size of a process in KiB (`VmRSS`), 0 if it is gone.
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Fresh ports a child that binds a reserved port itself gets, when another
/// process binds it first (which a reservation cannot prevent for a binder that
/// also sets `SO_REUSEADDR`): the child then exits at once.
const START_ATTEMPTS: usize = 5;

/// Runs `attempt` (reserve ports, start the child, wait for it) until it succeeds,
/// a few times at most, then fails the test with every attempt's error.
pub fn start_with_retries<T>(what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match attempt() {
            Ok(started) => return started,
            Err(e) => failures.push(e),
        }
    }
    panic!("{what} did not start: {failures:?}");
}

/// A child process, stopped when dropped: SIGKILL at once, or SIGTERM first when it
/// has a grace period (a supervisor that must stop its workers, nginx its own).
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// What it is, for failure messages.
    name: String,
    /// Time between SIGTERM and SIGKILL when dropped; none: SIGKILL at once.
    grace: Option<Duration>,
}

impl Proc {
    /// Spawns `cmd`; `name` says what it is in failure messages.
    pub fn spawn(cmd: &mut Command, name: &str) -> Self {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.to_owned(),
            grace: None,
        }
    }

    /// When dropped, SIGTERM and up to `grace` to exit before SIGKILL.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child itself (its pipes, for instance).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `sig`.
    pub fn signal(&self, sig: Signal) {
        self.send(sig)
            .unwrap_or_else(|e| panic!("cannot send {sig} to {}: {e}", self.name));
    }

    fn send(&self, sig: Signal) -> nix::Result<()> {
        kill(Pid::from_raw(i32::try_from(self.pid()).unwrap_or(i32::MAX)), sig)
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its exit status if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `deadline` for it to exit.
    pub fn wait_timeout(&mut self, deadline: impl Into<Deadline>) -> Option<ExitStatus> {
        let mut status = None;
        let _ = wait_until(deadline, "the process to exit", || {
            status = self.exited();
            status.is_some()
        });
        status
    }

    /// Waits until something accepts TCP connections on 127.0.0.1:`port`; fails
    /// early, saying so, if the process exits first.
    pub fn wait_listening(&mut self, port: u16, deadline: impl Into<Deadline>) -> Result<Duration, String> {
        let mut exited = None;
        let waited = wait_until(deadline, &format!("{} to listen on port {port}", self.name), || {
            exited = self.exited();
            exited.is_some() || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .map_err(|e| e.to_string())?;
        match exited {
            Some(status) => Err(format!(
                "{} exited ({status}) before listening on port {port}",
                self.name
            )),
            None => Ok(waited),
        }
    }

    /// Stops it as when dropped.
    fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        if let Some(grace) = self.grace {
            if self.send(Signal::SIGTERM).is_ok() && self.wait_timeout(grace).is_some() {
                return;
            }
        }
        self.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
