//! Reconnecting a scenario session whose connection the server closed (or that
//! dropped), when the scenario has a reconnect policy.
//!
//! - **What triggers it**: the server's close frame (any code) or a broken connection
//!   (read or write error) while the steps run. A close step of our own, a failed
//!   first connect, a timeout or a mismatch do not: they are the scenario's verdict,
//!   not a lost connection.
//! - **Where the session resumes**: at the connect step that opened the lost
//!   connection, with the loop counters it had then, so the steps after it (a
//!   handshake such as expecting a `session` event, subscriptions) run again on the
//!   new connection. A new connection is a new conversation for most servers;
//!   resuming in the middle would send to a server that no longer knows the session.
//!   Steps before that connect do not run again, and captured variables keep their
//!   values until overwritten.
//! - **What is lost**: requests still awaiting their reply count as failed by the kind
//!   `dropped` (and on their named step), so messages sent = responses + failures,
//!   exactly.
//! - **Timing**: try k after a drop waits a uniformly random time in
//!   `[0, min(max_backoff, backoff x 2^(k-1))]` (capped exponential backoff with full
//!   jitter); a successful reconnect starts the next drop at `backoff` again. Tries
//!   are bounded over the session's life (`attempts`), so a server that closes every
//!   connection cannot keep a session looping. A failed try is counted by its kind
//!   (`connect_refused`...); when none are left, the last one's kind fails the session.
//! - **Reported**: each success counts in `reconnects`, with the time from the drop to
//!   the new connection open in the `reconnect` histogram (backoff included).

use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

use super::{LoopFrame, Script};
use crate::metrics::{Event, StepEvent};
use crate::session_error::{Failure, SessionError};

/// A session's reconnect bookkeeping.
#[derive(Debug, Default)]
pub(super) struct State {
    /// The connect step that opened the connection in use, and the loops around it.
    pub resume: Option<(usize, Vec<LoopFrame>)>,
    /// When the connection was lost (Some while reconnecting).
    pub dropped_at: Option<Instant>,
    /// Tries since the drop (the backoff doubles with each).
    pub tries: u32,
    /// Tries over the session's life (bounded by the policy's attempts).
    pub used: u32,
}

impl Script<'_> {
    /// Whether the session lost its connection to `f` and may connect again.
    pub(super) fn may_reconnect(&self, f: Failure) -> bool {
        let lost = matches!(
            f,
            Failure::Session(SessionError::PrematureClose | SessionError::SendError)
        );
        lost && self.reconnect.resume.is_some() && self.attempts_left()
    }

    fn attempts_left(&self) -> bool {
        self.sc.reconnect.is_some_and(|r| self.reconnect.used < r.attempts)
    }

    /// After a failed reconnect try: whether another one is allowed.
    pub(super) fn retry_reconnect(&self, f: Failure) -> bool {
        f != Failure::Session(SessionError::Aborted) && self.attempts_left()
    }

    /// Accounts the lost connection and its pending requests; returns where the steps
    /// resume (the connect step, which then reconnects).
    pub(super) async fn connection_lost(&mut self) -> usize {
        self.reconnect.dropped_at = Some(Instant::now());
        self.reconnect.tries = 0;
        if self.ws.take().is_some() {
            // A write failed on a connection the reader had not seen end yet.
            self.emit(Event::Disconnected).await;
        }
        for p in self.pending.take_all() {
            self.emit(Event::Failed(SessionError::Dropped.into())).await;
            self.step_event(&self.sc.ops[p.op], StepEvent::Failed).await;
        }
        let (pc, loops) = self.reconnect.resume.take().expect("checked by may_reconnect");
        self.loops = loops;
        self.due = Instant::now();
        pc
    }

    /// Before a connect while reconnecting: spends an attempt and waits its backoff.
    pub(super) async fn before_reconnect_try(&mut self, cancel: &CancellationToken) -> Result<(), Failure> {
        let (Some(_), Some(policy)) = (self.reconnect.dropped_at, self.sc.reconnect) else {
            return Ok(());
        };
        self.reconnect.tries += 1;
        self.reconnect.used += 1;
        let wait = policy.delay(self.reconnect.tries, &mut self.rng);
        tokio::select! {
            _ = cancel.cancelled() => Err(SessionError::Aborted.into()),
            _ = sleep(wait) => Ok(()),
        }
    }
}
