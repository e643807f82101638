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

/// Histogram encoding shared by agents and coordinator.
pub mod hist;

/// Version of the agent link protocol. Bump on any incompatible change; agent and
/// coordinator refuse each other when theirs differ.
pub const PROTOCOL_VERSION: u32 = 1;

/// Encoded `FileDescriptorSet` of the contract (for reflection or tooling).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("wsload_descriptor");

/// Metadata key carrying the shared token (`authorization: Bearer <token>`).
pub const AUTH_HEADER: &str = "authorization";
