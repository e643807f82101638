//! The test kit of the wsload workspace, a dev-dependency of the server's and the
//! load generator's tests and benchmarks: real parts, started the way a user would.
//!
//! - [`ports`]: loopback ports outside the kernel's ephemeral range, never handed out
//!   twice, or bound listeners that a child inherits.
//! - [`redis_server`], [`nginx`], [`ws_server`], [`generator`]: a private redis-server, nginx
//!   running the repository's config, `ws-server` on inherited listeners, and the
//!   `ws-agent` / `ws-coordinator serve` processes; [`process`] stops them all when a
//!   test ends, however it ends.
//! - [`client`], [`plain_http`], [`metrics`]: a WebSocket client (tokio-tungstenite),
//!   `/healthz`, and a parser of `/metrics` (Prometheus text or OpenMetrics).
//! - [`stack`]: Redis, 12 workers and nginx together, as deployed.
//! - [`seed`], [`seed_server`]: the seed protocol's events from the one fixture file,
//!   and a small server that speaks them with a chosen reply delay.
//! - [`browser`]: headless Chromium over its DevTools protocol (evaluate, screenshot).
//! - [`wait`]: waiting for a condition, with a deadline and a message, instead of
//!   sleeping a fixed time.

pub mod browser;
pub mod client;
pub mod fuzz_corpus;
pub mod generator;
pub mod metrics;
pub mod nginx;
pub mod out_dir;
pub mod plain_http;
pub mod ports;
pub mod process;
pub mod redis_server;
pub mod scenario_servers;
pub mod seed;
pub mod seed_server;
pub mod stack;
pub mod wait;
pub mod wire;
pub mod ws_server;

pub use browser::Browser;
pub use client::{close_code, connect, next_json, open_session, reply_to, roundtrip, Ws};
pub use generator::{agent_process, coordinator_serve};
pub use metrics::{metric, scrape};
pub use nginx::Nginx;
pub use out_dir::{out_dir, OutDir};
pub use plain_http::{healthz, http_get, wait_healthy};
pub use ports::Port;
pub use process::{rss_kb, workspace_bin, Proc, Signal};
pub use redis_server::Redis;
pub use seed::assert_seed_shape;
pub use seed_server::{test_ws_server, test_ws_server_with, Stats};
pub use stack::Stack;
pub use wait::{wait_until, wait_until_async, TimedOut};
pub use wire::wire_frame;
pub use ws_server::{run_ws_server, WsServer};
