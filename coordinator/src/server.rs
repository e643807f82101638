//! The coordinator's gRPC server on a bound listener: agent link, control, health
//! and reflection (so `grpcurl` needs no proto files).

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use wsload_proto::pb::{agent_link_server::AgentLinkServer, control_server::ControlServer};

use tonic::service::interceptor::InterceptedService;

use crate::auth::{Auth, Role};
use crate::control_service::ControlService;
use crate::hub::Hub;
use crate::link_service::LinkService;

/// How long shutdown waits for open gRPC connections to end.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// How long an HTTP/2 ping to a client may go unanswered.
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Serves until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    auth: Auth,
    tls: Option<tonic::transport::Identity>,
    cancel: CancellationToken,
) -> Result<(), ServeError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<AgentLinkServer<LinkService>>().await;
    health_reporter.set_serving::<ControlServer<ControlService>>().await;
    // Both reflection versions: grpcurl speaks v1; Postman, Evans, older grpcurl and
    // Python's grpcio-reflection speak only v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(wsload_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;
    let max = wsload_proto::limits::MAX_MESSAGE_BYTES;
    // Agents need the agent role for the link; control methods check their role each.
    let link = InterceptedService::new(
        AgentLinkServer::new(LinkService { hub: hub.clone() })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        auth.interceptor(Some(Role::Agent)),
    );
    let control = InterceptedService::new(
        ControlServer::new(ControlService { hub })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        auth.interceptor(None),
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(identity) = tls {
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    let server = builder
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(5)))
        // Lenient: agents on a saturated load machine answer pings tens of seconds
        // late (a 100,000-session run on 2 cores lost every link to the 20 s default).
        // Liveness is the heartbeats' (`--heartbeat-timeout`) and `--grace`'s call; a
        // connection that is really cut ends at once anyway.
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(link)
        .add_service(control)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), cancel.clone().cancelled_owned());
    // Graceful shutdown waits for open connections; a frozen agent would hold it forever.
    tokio::select! {
        r = server => r?,
        _ = async { cancel.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("gRPC connections still open {SHUTDOWN_GRACE:?} after shutdown; dropping them");
        }
    }
    Ok(())
}
