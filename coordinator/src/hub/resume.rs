//! Link resume on the coordinator's side: an agent in a run whose link breaks (or
//! that goes silent) is *detached*, not lost, for its announced grace period
//! (`Hello.grace_ms`, the agent's `--grace`): its place in the run is kept, messages
//! for it wait, and a reconnect with the same `agent_id` takes the place back. The
//! agent then sends its unacknowledged run reports again; [`LinkState::take`] drops
//! the numbers already taken, so no window is lost or counted twice.

use std::time::Duration;

use tokio::time::Instant;
use wsload_proto::pb::coordinator_message::Body;

/// Messages kept for a detached agent at most (Assign, Start, Stop: a handful a run).
const KEEP_PENDING: usize = 64;

/// The resume state of one agent's registration.
#[derive(Debug, Default)]
pub struct LinkState {
    /// Which link (connection) of the agent is current: a message about an older
    /// link (its end arriving after the reconnect) is ignored.
    pub link: u64,
    /// The highest report number taken (AgentMessage.seq).
    pub last_seq: u64,
    /// The highest report number acknowledged to the agent.
    pub acked: u64,
    /// Set while detached: lost if not back by then.
    pub detached_until: Option<Instant>,
    /// Messages waiting for the agent to come back, in order.
    pub pending: Vec<Body>,
}

/// Whether a message is worth keeping for a detached agent (clock probes and acks
/// are not: fresh ones follow the reconnect).
fn worth_keeping(body: &Body) -> bool {
    !matches!(body, Body::ClockPing(_) | Body::ClockSync(_) | Body::ReportAck(_))
}

/// Why a message for a detached agent cannot wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many messages wait for the agent to reconnect")]
pub struct PendingFull;

impl LinkState {
    /// Whether report number `seq` is new (and now taken); unnumbered (0) always is.
    pub fn take(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return true;
        }
        if seq <= self.last_seq {
            return false;
        }
        self.last_seq = seq;
        true
    }

    /// The acknowledgement to send now, if any report was taken since the last one.
    pub fn ack_due(&mut self) -> Option<u64> {
        (self.last_seq > self.acked).then(|| {
            self.acked = self.last_seq;
            self.last_seq
        })
    }

    /// Detaches until `now + grace`.
    pub fn detach(&mut self, now: Instant, grace: Duration) {
        self.detached_until = Some(now + grace);
        // The new link acknowledges afresh what it takes.
        self.acked = 0;
    }

    /// Whether the agent is detached.
    pub fn is_detached(&self) -> bool {
        self.detached_until.is_some()
    }

    /// Whether it is detached past its grace period at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.detached_until.is_some_and(|d| now >= d)
    }

    /// Keeps `body` for the reconnect (or drops it if it is not worth keeping).
    pub fn keep(&mut self, body: Body) -> Result<(), PendingFull> {
        if !worth_keeping(&body) {
            return Ok(());
        }
        if self.pending.len() >= KEEP_PENDING {
            return Err(PendingFull);
        }
        self.pending.push(body);
        Ok(())
    }

    /// Reattaches on link `link`; returns the messages that waited.
    pub fn reattach(&mut self, link: u64) -> Vec<Body> {
        self.link = link;
        self.detached_until = None;
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use wsload_proto::pb::{ClockPing, Stop};

    use super::*;

    /// A report number is taken once; unnumbered messages always pass.
    #[test]
    fn report_numbers_are_taken_once() {
        let mut l = LinkState::default();
        assert!(l.take(1) && l.take(2) && l.take(0) && l.take(0));
        assert!(!l.take(2) && !l.take(1));
        assert_eq!(l.ack_due(), Some(2));
        assert_eq!(l.ack_due(), None);
        assert!(l.take(3));
        assert_eq!(l.ack_due(), Some(3));
    }

    /// While detached, orders wait (probes do not) and come back on reattach; the
    /// place expires at the end of the grace period.
    #[tokio::test(start_paused = true)]
    async fn a_detached_agent_keeps_its_orders_until_its_grace_ends() {
        let mut l = LinkState::default();
        l.take(5);
        l.ack_due();
        let now = Instant::now();
        l.detach(now, Duration::from_secs(2));
        assert!(l.is_detached() && !l.expired(now));
        l.keep(Body::ClockPing(ClockPing::default())).unwrap();
        l.keep(Body::Stop(Stop::default())).unwrap();
        assert!(l.expired(now + Duration::from_secs(2)));
        let waited = l.reattach(7);
        assert_eq!(waited.len(), 1);
        assert!(matches!(waited[0], Body::Stop(_)));
        assert!(!l.is_detached());
        // The resent reports are dropped; the ack goes out again on the new link.
        assert!(!l.take(5));
        assert_eq!(l.ack_due(), Some(5));
        for _ in 0..KEEP_PENDING {
            l.keep(Body::Stop(Stop::default())).unwrap();
        }
        assert_eq!(l.keep(Body::Stop(Stop::default())), Err(PendingFull));
    }
}
