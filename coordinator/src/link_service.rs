//! The `AgentLink` gRPC service: checks the hello (protocol version) and forwards
//! the agent's stream to the hub (which welcomes it, resuming its run if it had one).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status, Streaming};
use wsload_proto::pb::{agent_link_server::AgentLink, agent_message, AgentMessage, CoordinatorMessage};
use wsload_proto::{PROTOCOL_VERSION, PROTOCOL_VERSION_HEADER};

/// The Welcome's heartbeat interval.
pub const HEARTBEAT_INTERVAL_MS: u32 = 1000;

use crate::hub::Hub;

/// Queue towards one agent (assignments, pings: small and rare).
const TO_AGENT: usize = 256;

/// The agent link service.
#[derive(Debug, Clone)]
pub struct LinkService {
    /// Where agent traffic goes.
    pub hub: Hub,
}

/// The refusal for a protocol mismatch (also logged here, so both sides say it):
/// `FAILED_PRECONDITION` with our version in the [`PROTOCOL_VERSION_HEADER`] metadata
/// entry, which is how agents recognise it; the message is for people (and for agents
/// older than the metadata entry, which looked for "protocol version" in it).
pub fn version_mismatch(agent: u32, name: &str) -> Status {
    let msg = format!(
        "protocol version mismatch: coordinator speaks wsload protocol {PROTOCOL_VERSION}, agent {name} speaks {agent}; upgrade the older side"
    );
    tracing::warn!("refusing agent: {msg}");
    let mut metadata = MetadataMap::new();
    metadata.insert(PROTOCOL_VERSION_HEADER, MetadataValue::from(PROTOCOL_VERSION));
    Status::with_metadata(Code::FailedPrecondition, msg, metadata)
}

#[tonic::async_trait]
impl AgentLink for LinkService {
    type LinkStream = ReceiverStream<Result<CoordinatorMessage, Status>>;

    async fn link(&self, req: Request<Streaming<AgentMessage>>) -> Result<Response<Self::LinkStream>, Status> {
        let peer = req.remote_addr().map_or_else(|| "?".into(), |a| a.to_string());
        let mut inbound = req.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within 10 s"))??;
        let Some(AgentMessage {
            body: Some(agent_message::Body::Hello(hello)),
            ..
        }) = first
        else {
            return Err(Status::invalid_argument(
                "the first message on the agent link must be a Hello",
            ));
        };
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(version_mismatch(hello.protocol_version, &hello.name));
        }
        let (tx, rx) = mpsc::channel(TO_AGENT);
        // The hub queues the Welcome first: it says whether the agent resumes a run.
        let (conn, link) = self.hub.agent_joined(hello, peer, tx).await?;
        let hub = self.hub.clone();
        tokio::spawn(async move {
            let reason = loop {
                match inbound.message().await {
                    Ok(Some(msg)) => {
                        if hub.from_agent(conn, msg).await.is_err() {
                            break "coordinator shutting down".to_string();
                        }
                    }
                    Ok(None) => break "agent closed the link".to_string(),
                    Err(s) => break format!("link error: {}", s.message()),
                }
            };
            hub.agent_left(conn, link, reason).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
