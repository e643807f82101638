//! Link resume on the agent's side: run reports (windows, batch acks, RunFinished)
//! are numbered and kept until the coordinator acknowledges them, so a link that
//! breaks mid-run loses none of them: after the reconnect the unacknowledged ones go
//! out again with their numbers, and the coordinator drops the numbers it already has.

use std::collections::VecDeque;

use wsload_proto::pb::AgentMessage;

/// Run reports kept unacknowledged at most (about an hour of windows at one a second
/// plus the batch acks of a large run); past it the oldest is dropped and said so.
pub const KEEP_UNACKED: usize = 8192;

/// Numbered run reports not acknowledged yet.
#[derive(Debug)]
pub struct Unacked {
    /// The number of the next report (numbers start at 1; 0 means unnumbered).
    next: u64,
    /// Sent, not acknowledged, oldest first.
    kept: VecDeque<AgentMessage>,
    /// Most reports kept.
    cap: usize,
    /// Reports dropped unacknowledged because `kept` was full.
    dropped: u64,
    /// Whether the coordinator ever acknowledged a report: one that never does does not
    /// deduplicate, so nothing is sent to it twice.
    acks_seen: bool,
}

impl Default for Unacked {
    fn default() -> Self {
        Unacked::new(KEEP_UNACKED)
    }
}

impl Unacked {
    /// Keeps at most `cap` reports.
    pub fn new(cap: usize) -> Self {
        Unacked {
            next: 1,
            kept: VecDeque::new(),
            cap: cap.max(1),
            dropped: 0,
            acks_seen: false,
        }
    }

    /// Numbers `msg`, keeps a copy until it is acknowledged, and returns it to send.
    pub fn number(&mut self, mut msg: AgentMessage) -> AgentMessage {
        msg.seq = self.next;
        self.next += 1;
        if self.kept.len() == self.cap {
            self.kept.pop_front();
            self.dropped += 1;
            if self.acks_seen {
                tracing::warn!(
                    dropped = self.dropped,
                    "too many run reports unacknowledged: the oldest is dropped"
                );
            }
        }
        self.kept.push_back(msg.clone());
        msg
    }

    /// The coordinator has every report up to `seq`.
    pub fn ack(&mut self, seq: u64) {
        self.acks_seen = true;
        while self.kept.front().is_some_and(|m| m.seq <= seq) {
            self.kept.pop_front();
        }
    }

    /// What to send again after a reconnect that resumed the run (oldest first): the
    /// unacknowledged reports, or nothing if the coordinator never acknowledged one.
    pub fn resend(&self) -> Vec<AgentMessage> {
        if self.acks_seen {
            self.kept.iter().cloned().collect()
        } else {
            Vec::new()
        }
    }

    /// Forgets every kept report: the coordinator did not resume the run they belong to.
    pub fn clear(&mut self) {
        self.kept.clear();
    }

    /// Reports kept now.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> AgentMessage {
        AgentMessage::default()
    }

    /// Numbers rise from 1; an ack drops what it covers; the rest is sent again.
    #[test]
    fn acks_drop_what_they_cover_and_the_rest_is_resent_in_order() {
        let mut u = Unacked::new(10);
        let seqs: Vec<u64> = (0..5).map(|_| u.number(msg()).seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        // Never acknowledged: a coordinator that does not deduplicate gets nothing twice.
        assert!(u.resend().is_empty());
        u.ack(3);
        let again: Vec<u64> = u.resend().iter().map(|m| m.seq).collect();
        assert_eq!(again, [4, 5]);
        u.ack(5);
        assert!(u.is_empty());
        assert_eq!(u.number(msg()).seq, 6);
    }

    /// The buffer is bounded: past its size the oldest goes.
    #[test]
    fn the_oldest_is_dropped_past_the_bound() {
        let mut u = Unacked::new(3);
        u.ack(0);
        for _ in 0..5 {
            u.number(msg());
        }
        assert_eq!(u.len(), 3);
        let again: Vec<u64> = u.resend().iter().map(|m| m.seq).collect();
        assert_eq!(again, [3, 4, 5]);
        u.clear();
        assert!(u.resend().is_empty());
    }
}
