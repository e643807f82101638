//! The agent link: dial the coordinator, say hello, heartbeat, forward run reports,
//! obey assignments. One connection attempt per call of [`connect_once`].

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{interval, timeout, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use wsload_common::time::now_unix_micros;
use wsload_common::{auth_interceptor, ClientTls};
use wsload_proto::pb::{
    agent_link_client::AgentLinkClient, agent_message, coordinator_message, AgentMessage, ClockPong,
    CoordinatorMessage, Heartbeat, Hello, ResourceSample,
};
use wsload_proto::PROTOCOL_VERSION_HEADER;

use crate::error::AgentError;
use crate::resume::Unacked;

/// How a connection ended.
#[derive(Debug)]
pub enum LinkEnd {
    /// Our cancellation token fired.
    Cancelled,
    /// The coordinator asked us to exit.
    Shutdown(String),
    /// The link broke; retry after a backoff.
    Broken(String),
}

/// What the link hands to the agent's run control.
#[derive(Debug)]
pub enum Command {
    /// A new assignment (or more batches of the current run).
    Assign(Box<wsload_proto::pb::Assign>),
    /// Barrier start, already converted to the agent's clock.
    Start(wsload_proto::pb::Start),
    /// End the run (graceful: remaining sessions close with 1000).
    Stop(String),
    /// The link is up (a Welcome arrived).
    LinkUp {
        /// The run the coordinator resumed this agent in after a broken link (empty: none).
        resumed: String,
    },
    /// The link broke.
    LinkDown,
}

/// The parts of the agent the link needs.
pub struct LinkCtx<'a> {
    /// Agent clock minus coordinator clock, as the coordinator last measured it.
    pub clock_offset: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Coordinator URL.
    pub url: &'a str,
    /// Token for the interceptor.
    pub token: Option<String>,
    /// TLS settings for https:// coordinators.
    pub tls: Option<ClientTls>,
    /// The hello we send.
    pub hello: Hello,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Latest resource sample.
    pub resources: watch::Receiver<ResourceSample>,
    /// Reports from the current run, forwarded in order.
    pub outbox: &'a mut mpsc::Receiver<AgentMessage>,
    /// Commands to the run control.
    pub commands: mpsc::Sender<Command>,
    /// Run reports sent but not acknowledged, sent again after a resuming reconnect.
    pub unacked: &'a mut Unacked,
}

/// The coordinator's protocol version when `status` refuses us for speaking another
/// one: the coordinator says so in the [`PROTOCOL_VERSION_HEADER`] metadata entry.
fn mismatched_version(status: &tonic::Status) -> Option<u32> {
    if status.code() != Code::FailedPrecondition {
        return None;
    }
    status
        .metadata()
        .get(PROTOCOL_VERSION_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The permanent refusal `status` means, if it is one (anything else is retried).
fn refused(status: &tonic::Status, agent_version: u32) -> Option<AgentError> {
    let msg = status.message().to_string();
    if let Some(coordinator) = mismatched_version(status) {
        return Some(AgentError::VersionMismatch {
            agent: agent_version,
            coordinator,
            detail: msg,
        });
    }
    match status.code() {
        Code::Unauthenticated => Some(AgentError::Unauthenticated(msg)),
        Code::PermissionDenied | Code::FailedPrecondition | Code::InvalidArgument => Some(AgentError::Refused(msg)),
        _ => None,
    }
}

/// How long an HTTP/2 ping to the coordinator may go unanswered.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// One connection: returns how it ended, or a permanent refusal.
pub async fn connect_once(ctx: &mut LinkCtx<'_>, cancel: &CancellationToken) -> Result<LinkEnd, AgentError> {
    let endpoint = wsload_common::endpoint(ctx.url, ctx.tls.as_ref())
        .map_err(|e| AgentError::invalid_option("coordinator", e))?
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(Duration::from_secs(2))
        // Lenient, as the coordinator's side: on a saturated load machine the runtime's
        // timers fire seconds late (11.8 s measured at 85,000 sessions on 2 cores),
        // and a 4 s bound cut every link there. A cut TCP connection
        // still ends at once; liveness is the heartbeats' and `--grace`'s business.
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return Ok(LinkEnd::Broken(format!("cannot reach coordinator {}: {e}", ctx.url))),
    };
    let max = wsload_proto::limits::MAX_MESSAGE_BYTES;
    let mut client = AgentLinkClient::with_interceptor(channel, auth_interceptor(ctx.token.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let (tx, rx) = mpsc::channel::<AgentMessage>(256);
    let send = |body| AgentMessage {
        body: Some(body),
        ..Default::default()
    };
    let _ = tx.send(send(agent_message::Body::Hello(ctx.hello.clone()))).await;
    let mut inbound = match client.link(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            return match refused(&status, ctx.hello.protocol_version) {
                Some(e) => Err(e),
                None => Ok(LinkEnd::Broken(format!("link refused: {status}"))),
            }
        }
    };
    let first = match timeout(Duration::from_secs(10), inbound.message()).await {
        Ok(Ok(Some(m))) => m,
        Ok(Err(status)) => {
            return match refused(&status, ctx.hello.protocol_version) {
                Some(e) => Err(e),
                None => Ok(LinkEnd::Broken(format!("link failed: {status}"))),
            }
        }
        _ => return Ok(LinkEnd::Broken("no welcome from coordinator".into())),
    };
    match first.body {
        Some(coordinator_message::Body::Welcome(w)) if w.protocol_version == ctx.hello.protocol_version => {
            tracing::info!(coordinator = %ctx.url, version = %w.coordinator_version, "registered with coordinator");
            if w.resumed_run_id.is_empty() {
                ctx.unacked.clear();
            } else {
                let again = ctx.unacked.resend();
                tracing::info!(run = %w.resumed_run_id, reports = again.len(), "run resumed: sending the unacknowledged reports again");
                for m in again {
                    if tx.send(m).await.is_err() {
                        return Ok(LinkEnd::Broken("link closed".into()));
                    }
                }
            }
            let _ = ctx
                .commands
                .send(Command::LinkUp {
                    resumed: w.resumed_run_id,
                })
                .await;
        }
        Some(coordinator_message::Body::Welcome(w)) => {
            return Err(AgentError::VersionMismatch {
                agent: ctx.hello.protocol_version,
                coordinator: w.protocol_version,
                detail: format!("coordinator speaks wsload protocol {}", w.protocol_version),
            })
        }
        _ => return Ok(LinkEnd::Broken("first coordinator message was not a welcome".into())),
    }

    let mut tick = interval(ctx.heartbeat);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seq = 0u64;
    let heartbeat = |seq: u64, pong: Option<ClockPong>, res: &watch::Receiver<ResourceSample>| {
        send(agent_message::Body::Heartbeat(Heartbeat {
            seq,
            agent_unix_micros: now_unix_micros(),
            resources: Some(*res.borrow()),
            pong,
        }))
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(LinkEnd::Cancelled),
            _ = tick.tick() => {
                seq += 1;
                if tx.send(heartbeat(seq, None, &ctx.resources)).await.is_err() {
                    return Ok(LinkEnd::Broken("link closed".into()));
                }
            }
            Some(m) = ctx.outbox.recv() => {
                if tx.send(ctx.unacked.number(m)).await.is_err() {
                    return Ok(LinkEnd::Broken("link closed".into()));
                }
            }
            m = inbound.message() => {
                let msg: CoordinatorMessage = match m {
                    Ok(Some(m)) => m,
                    Ok(None) => return Ok(LinkEnd::Broken("coordinator ended the link".into())),
                    Err(s) => return Ok(LinkEnd::Broken(format!("link error: {s}"))),
                };
                use coordinator_message::Body;
                match msg.body {
                    Some(Body::ClockPing(p)) => {
                        seq += 1;
                        let pong = ClockPong { coordinator_unix_micros: p.coordinator_unix_micros, agent_unix_micros: now_unix_micros() };
                        let _ = tx.send(heartbeat(seq, Some(pong), &ctx.resources)).await;
                    }
                    Some(Body::Assign(a)) => { let _ = ctx.commands.send(Command::Assign(Box::new(a))).await; }
                    Some(Body::Start(s)) => { let _ = ctx.commands.send(Command::Start(s)).await; }
                    Some(Body::Stop(s)) => { let _ = ctx.commands.send(Command::Stop(s.reason)).await; }
                    Some(Body::Shutdown(s)) => {
                        // Let queued reports (RunFinished) go out before leaving.
                        while let Ok(Some(m)) = timeout(Duration::from_millis(200), ctx.outbox.recv()).await {
                            let _ = tx.send(ctx.unacked.number(m)).await;
                        }
                        return Ok(LinkEnd::Shutdown(s.reason));
                    }
                    Some(Body::ClockSync(c)) => ctx.clock_offset.store(c.offset_us, std::sync::atomic::Ordering::Relaxed),
                    Some(Body::ReportAck(a)) => ctx.unacked.ack(a.seq),
                    Some(Body::Welcome(_)) | None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataMap;

    use super::*;

    fn status(code: Code, version: Option<&str>) -> tonic::Status {
        let mut md = MetadataMap::new();
        if let Some(v) = version {
            md.insert(PROTOCOL_VERSION_HEADER, v.parse().unwrap());
        }
        tonic::Status::with_metadata(code, "protocol version mismatch: whatever the text", md)
    }

    /// A mismatch is recognised by the metadata entry, not by the message.
    #[test]
    fn a_version_mismatch_is_recognised_by_its_metadata() {
        assert!(matches!(
            refused(&status(Code::FailedPrecondition, Some("7")), 99),
            Some(AgentError::VersionMismatch {
                agent: 99,
                coordinator: 7,
                ..
            })
        ));
        assert!(matches!(
            refused(&status(Code::FailedPrecondition, None), 99),
            Some(AgentError::Refused(_))
        ));
        assert!(matches!(
            refused(&status(Code::FailedPrecondition, Some("seven")), 99),
            Some(AgentError::Refused(_))
        ));
        assert!(matches!(
            refused(&status(Code::Unauthenticated, None), 1),
            Some(AgentError::Unauthenticated(_))
        ));
        assert!(refused(&status(Code::Unavailable, Some("7")), 1).is_none());
    }
}
