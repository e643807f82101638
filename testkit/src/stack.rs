//! The whole server stack as a user deploys it: a private Redis, the `ws-server`
//! supervisor with 12 Redis-backed workers, and nginx in front of them.

use crate::{Nginx, Redis, WsServer};

/// Redis, 12 workers and nginx; dropped in reverse order of start.
#[derive(Debug)]
pub struct Stack {
    // Field order is drop order: nginx first, Redis last.
    /// nginx with the repository's config, in front of every worker.
    pub nginx: Nginx,
    /// The supervisor and its 12 workers.
    pub server: WsServer,
    /// The workers' broker.
    pub redis: Redis,
}

impl Stack {
    /// The stack for tests that count exactly: no periodic server events (every frame
    /// a session gets is a reply it asked for), and no shedding (a slow session setup
    /// on a busy machine would otherwise refuse upgrades; overload tests start their
    /// own stack for that).
    pub fn for_accounting() -> Self {
        let redis = Redis::start();
        let server = WsServer::start(
            12,
            &[
                "--redis-url",
                &redis.url(),
                "--server-event-interval",
                "0",
                "--shed-latency",
                "0",
            ],
        );
        let nginx = Nginx::start(&server.ports());
        Stack { nginx, server, redis }
    }
}
