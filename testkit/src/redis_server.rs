//! A private redis-server on a reserved loopback port, without persistence, that a
//! test can stop (an outage) and start again on the same port.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ports::Port;
use crate::process::{start_with_retries, system_binary, Proc, Signal};

/// How long redis-server gets to listen.
const STARTUP: Duration = Duration::from_secs(10);

/// A private redis-server, killed when dropped.
#[derive(Debug)]
pub struct Redis {
    /// Held for the whole test, so a restart finds the port free.
    port: Port,
    proc: Option<Proc>,
}

impl Redis {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Self {
        start_with_retries("redis-server", || {
            let mut redis = Redis {
                port: Port::reserve(),
                proc: None,
            };
            redis.spawn().map(|()| redis)
        })
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut proc = Proc::spawn(
            Command::new(system_binary("redis-server"))
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "redis-server",
        );
        proc.wait_listening(self.port.number(), STARTUP)?;
        self.proc = Some(proc);
        Ok(())
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port.number()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.port.addr())
    }

    /// Starts it again on the same port after [`Redis::stop`].
    pub fn restart(&mut self) {
        assert!(self.proc.is_none(), "redis-server is still running");
        self.spawn()
            .unwrap_or_else(|e| panic!("redis-server did not restart: {e}"));
    }

    /// Kills it: an outage, until [`Redis::restart`].
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Freezes it (SIGSTOP): its connections stay up but nothing is answered, as a
    /// broker that stalls, until [`Redis::thaw`].
    pub fn freeze(&self) {
        self.proc
            .as_ref()
            .expect("redis-server is running")
            .signal(Signal::SIGSTOP);
    }

    /// Lets a [`Redis::freeze`]d server answer again (SIGCONT).
    pub fn thaw(&self) {
        self.proc
            .as_ref()
            .expect("redis-server is running")
            .signal(Signal::SIGCONT);
    }

    /// The keys matching `pattern` (`KEYS`: fine for a test's few keys).
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut self.conn().await)
            .await
            .expect("KEYS")
    }

    /// A connection for checking what the server stored.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a valid URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test's redis-server")
    }
}
