//! What the coordinator and the agents share besides the wire contract
//! (`wsload-proto`): dialing a coordinator over gRPC (TLS and the shared token),
//! the shutdown signal both binaries obey, and wall-clock helpers.
//!
//! The coordinator depends on the agent crate only to host in-process agents;
//! everything else the two have in common lives here.

pub mod auth;
pub mod client;
pub mod redact;
pub mod secret;
pub mod shutdown;
pub mod time;

pub use auth::{auth_interceptor, BearerAuth};
pub use client::{endpoint, ClientError, ClientTls};
pub use redact::redact_url;
pub use secret::{read_secret, Secret, SecretError};
pub use shutdown::shutdown_signal;
