//! The agent link: dial the coordinator, say hello, heartbeat, forward run reports,
//! obey assignments. One connection attempt per call of [`connect_once`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::time::{interval, timeout, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::Code;
use wsload_proto::pb::{
    agent_link_client::AgentLinkClient, agent_message, coordinator_message, AgentMessage, ClockPong,
    CoordinatorMessage, Heartbeat, Hello, ResourceSample,
};

use crate::error::AgentError;

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
    Assign(wsload_proto::pb::Assign),
    /// Barrier start, already converted to the agent's clock.
    Start(wsload_proto::pb::Start),
    /// End the run (graceful: remaining sessions close with 1000).
    Stop(String),
    /// The link is up (a Welcome arrived).
    LinkUp,
    /// The link broke.
    LinkDown,
}

/// Now as microseconds since the Unix epoch.
pub fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Adds the shared token to every request.
pub fn auth_interceptor(
    token: Option<String>,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    let value: Option<MetadataValue<_>> = token.and_then(|t| format!("Bearer {t}").parse().ok());
    move |mut req: tonic::Request<()>| {
        if let Some(v) = &value {
            req.metadata_mut().insert(wsload_proto::AUTH_HEADER, v.clone());
        }
        Ok(req)
    }
}

/// The parts of the agent the link needs.
pub struct LinkCtx<'a> {
    /// Coordinator URL.
    pub url: &'a str,
    /// Token for the interceptor.
    pub token: Option<String>,
    /// TLS settings for https:// coordinators.
    pub tls: Option<crate::tls::ClientTls>,
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
}

fn refused(status: &tonic::Status, agent_version: u32) -> Option<AgentError> {
    let msg = status.message().to_string();
    match status.code() {
        Code::FailedPrecondition if msg.contains("protocol version") => Some(AgentError::VersionMismatch {
            agent: agent_version,
            detail: msg,
        }),
        Code::Unauthenticated => Some(AgentError::Unauthenticated(msg)),
        Code::PermissionDenied | Code::FailedPrecondition | Code::InvalidArgument => Some(AgentError::Refused(msg)),
        _ => None,
    }
}

/// One connection: returns how it ended, or a permanent refusal.
pub async fn connect_once(ctx: &mut LinkCtx<'_>, cancel: &CancellationToken) -> Result<LinkEnd, AgentError> {
    let endpoint = crate::tls::endpoint(ctx.url, ctx.tls.as_ref())
        .map_err(|reason| AgentError::InvalidOption {
            field: "coordinator",
            reason,
        })?
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(4));
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return Ok(LinkEnd::Broken(format!("cannot reach coordinator {}: {e}", ctx.url))),
    };
    let mut client = AgentLinkClient::with_interceptor(channel, auth_interceptor(ctx.token.clone()));
    let (tx, rx) = mpsc::channel::<AgentMessage>(256);
    let send = |body| AgentMessage { body: Some(body) };
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
            let _ = ctx.commands.send(Command::LinkUp).await;
        }
        Some(coordinator_message::Body::Welcome(w)) => {
            return Err(AgentError::VersionMismatch {
                agent: ctx.hello.protocol_version,
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
            agent_unix_micros: unix_micros(),
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
                if tx.send(m).await.is_err() {
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
                        let pong = ClockPong { coordinator_unix_micros: p.coordinator_unix_micros, agent_unix_micros: unix_micros() };
                        let _ = tx.send(heartbeat(seq, Some(pong), &ctx.resources)).await;
                    }
                    Some(Body::Assign(a)) => { let _ = ctx.commands.send(Command::Assign(a)).await; }
                    Some(Body::Start(s)) => { let _ = ctx.commands.send(Command::Start(s)).await; }
                    Some(Body::Stop(s)) => { let _ = ctx.commands.send(Command::Stop(s.reason)).await; }
                    Some(Body::Shutdown(s)) => {
                        // Let queued reports (RunFinished) go out before leaving.
                        while let Ok(Some(m)) = timeout(Duration::from_millis(200), ctx.outbox.recv()).await {
                            let _ = tx.send(m).await;
                        }
                        return Ok(LinkEnd::Shutdown(s.reason));
                    }
                    Some(Body::Welcome(_)) | None => {}
                }
            }
        }
    }
}
