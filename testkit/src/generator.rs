//! The load generator's processes: `ws-agent` and `ws-coordinator serve`, the
//! workspace's own binaries, as a deployment runs them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ports::Port;
use crate::process::{workspace_bin, Proc};

/// How long `ws-coordinator serve` gets to listen.
const STARTUP: Duration = Duration::from_secs(20);

/// Starts `ws-agent --coordinator URL --name NAME EXTRA...` (warnings on a piped
/// stderr, which a test may read once it has exited).
pub fn agent_process(coordinator: &str, name: &str, extra: &[&str]) -> Proc {
    Proc::spawn(
        Command::new(workspace_bin("ws-agent"))
            .args(["--coordinator", coordinator, "--name", name])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        &format!("ws-agent {name}"),
    )
}

/// Starts `ws-coordinator serve --listen 127.0.0.1:PORT --out OUT EXTRA...` on a
/// reserved port and waits until it listens. Keep `port` while the test may start
/// another coordinator in its place.
pub fn coordinator_serve(port: &Port, out: &Path, extra: &[&str]) -> Proc {
    let mut proc = Proc::spawn(
        Command::new(workspace_bin("ws-coordinator"))
            .args(["serve", "--listen", &port.addr().to_string()])
            .arg("--out")
            .arg(out)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "ws-coordinator serve",
    );
    proc.wait_listening(port.number(), STARTUP)
        .unwrap_or_else(|e| panic!("{e}"));
    proc
}
