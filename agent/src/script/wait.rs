//! Waiting while reading: every wait of a scenario keeps the socket read, so replies
//! to open-loop requests are timed when they arrive, not when the session next looks.

use super::Script;
use crate::metrics::{Event, StepEvent};
use crate::session::transport;
use crate::session_error::Failure;
use crate::session_error::SessionError;
use crate::ws::OpCode;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

/// What a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Goal {
    /// Only the deadline (think, loop pacing).
    Sleep,
    /// Every pending request's reply (each bounded by its own timeout).
    Replies,
    /// A message matching the expect step `op`.
    Expect {
        /// The expect step.
        op: usize,
    },
    /// Messages for the listen step `op`.
    Listen {
        /// The listen step.
        op: usize,
        /// How many more end the step.
        left: u64,
        /// Reaching the deadline before `left` is 0 fails the step (a count without
        /// a duration); otherwise the deadline simply ends it.
        must_fill: bool,
    },
    /// The pong of our ping.
    Pong,
    /// Done (an expect saw its message).
    Met,
}

impl Goal {
    /// Whether nothing more is needed.
    fn met(&self, s: &Script<'_>) -> bool {
        match self {
            Goal::Replies => s.pending.is_empty(),
            Goal::Listen { left, .. } => *left == 0,
            Goal::Met => true,
            _ => false,
        }
    }

    /// The outcome when `until` passes first.
    fn expired(&self) -> Result<(), SessionError> {
        match self {
            Goal::Sleep | Goal::Replies | Goal::Met => Ok(()),
            Goal::Listen { must_fill: false, .. } => Ok(()),
            Goal::Listen { must_fill: true, .. } => Err(SessionError::ListenTimeout),
            Goal::Expect { .. } => Err(SessionError::ExpectTimeout),
            Goal::Pong => Err(SessionError::PingTimeout),
        }
    }

    /// The step that fails when the goal fails, for its metrics.
    fn step(&self) -> Option<usize> {
        match self {
            Goal::Expect { op } | Goal::Listen { op, .. } => Some(*op),
            _ => None,
        }
    }
}

impl Script<'_> {
    /// Reads frames until `goal` is met or `until` passes (a pending request past its
    /// own deadline fails the session first).
    pub(super) async fn wait(
        &mut self,
        mut goal: Goal,
        until: Option<Instant>,
        cancel: &CancellationToken,
    ) -> Result<(), Failure> {
        if let Some(ws) = self.ws.as_mut().filter(|ws| ws.unsent() > 0) {
            // A burst's frames, queued by `write`, go out before any wait.
            ws.flush()
                .await
                .map_err(|_| Failure::Session(SessionError::SendError))?;
        }
        loop {
            if goal.met(self) {
                return Ok(());
            }
            let overdue = self.pending.next_deadline();
            let wake = match (until, overdue) {
                (Some(u), Some((d, _))) => Some(u.min(d)),
                (u, d) => u.or(d.map(|d| d.0)),
            };
            let Some(ws) = self.ws.as_mut() else {
                // Not connected: only a pause makes sense.
                if goal == Goal::Sleep {
                    if let Some(u) = until {
                        tokio::select! {
                            _ = cancel.cancelled() => return Err(Failure::Session(SessionError::Aborted)),
                            _ = sleep_until(u) => {}
                        }
                    }
                    return Ok(());
                }
                return Err(Failure::Session(SessionError::PrematureClose));
            };
            let frame = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Failure::Session(SessionError::Aborted)),
                _ = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    if let Some((_, op)) = overdue.filter(|(d, _)| *d <= Instant::now()) {
                        self.step_event(&self.sc.ops[op], StepEvent::Failed).await;
                        return Err(Failure::Session(SessionError::ResponseTimeout));
                    }
                    return match goal.expired() {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            if let Some(op) = goal.step() {
                                self.step_event(&self.sc.ops[op], StepEvent::Failed).await;
                            }
                            Err(Failure::Session(e))
                        }
                    };
                }
                r = ws.next_frame() => r,
            };
            let frame = match frame {
                Ok(f) => f,
                Err(_) => {
                    // The connection dropped without a close frame.
                    self.ws = None;
                    self.emit(Event::CloseCode(1006)).await;
                    self.emit(Event::Disconnected).await;
                    return Err(Failure::Session(SessionError::PrematureClose));
                }
            };
            match frame.opcode() {
                // Boxed: a waiting session's task does not keep room for handling a message.
                OpCode::Text | OpCode::Binary => Box::pin(self.dispatch(&frame, &mut goal)).await?,
                OpCode::Pong if goal == Goal::Pong => return Ok(()),
                OpCode::Close => {
                    self.emit(Event::CloseCode(frame.close_code())).await;
                    // The close was answered as it was read; a short wait lets the
                    // server end the connection first.
                    // The socket moves into the boxed future, so a waiting session's
                    // task keeps no room for a second one.
                    let reply = self.ws.take().map(|ws| Box::pin(transport::close_reply_owned(ws)));
                    if let Some(reply) = reply {
                        reply.await;
                    }
                    self.emit(Event::Disconnected).await;
                    return Err(Failure::Session(SessionError::PrematureClose));
                }
                _ => {}
            }
        }
    }
}
