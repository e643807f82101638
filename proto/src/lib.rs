//! The gRPC contract between coordinator, agents and remote controllers.
//!
//! Two services live on the coordinator: `AgentLink` (agents dial in and hold one
//! bidirectional stream) and `Control` (start, watch, stop runs; list agents; fetch a
//! summary). The coordinator also serves the standard `grpc.health.v1` service.

/// Generated protobuf messages and tonic clients/servers for `wsload.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("wsload.v1");
}

/// Histogram construction and encoding shared by agents and coordinator.
pub mod hist;

/// The values unset plan fields take.
pub mod defaults;

/// Size limits of messages and plans.
pub mod limits;

/// Version of the agent link protocol. Bump on any incompatible change; agent and
/// coordinator refuse each other when theirs differ.
pub const PROTOCOL_VERSION: u32 = 2;

/// Encoded `FileDescriptorSet` of the contract (for reflection or tooling).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("wsload_descriptor");

/// Metadata key carrying the shared token (`authorization: Bearer <token>`).
pub const AUTH_HEADER: &str = "authorization";

/// Metadata key of the coordinator's [`PROTOCOL_VERSION`] on the `FAILED_PRECONDITION`
/// status that refuses an agent speaking another version: agents recognise a version
/// mismatch by this key, never by the status message.
pub const PROTOCOL_VERSION_HEADER: &str = "wsload-protocol-version";
