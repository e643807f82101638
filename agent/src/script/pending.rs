//! Requests awaiting their reply. A reply recognised by a correlation value (a JSON
//! path whose value must equal the request's rendered value) is found by key; other
//! replies are tried against the pending requests in the order they were sent.

use std::collections::{HashMap, VecDeque};

use tokio::time::Instant;

/// One request awaiting its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The request step (its index in the scenario's operations).
    pub op: usize,
    /// When it was due: RTT is timed from here (coordinated omission).
    pub intended: Instant,
    /// When it was written.
    pub actual: Instant,
    /// Fails the session if no reply came by then.
    pub deadline: Instant,
    /// `{{seq}}` at send time (a reply matcher may read it).
    pub seq: u64,
    /// `{{uuid}}` of the request step.
    pub uuid: uuid::Uuid,
}

/// The session's pending requests.
#[derive(Debug, Default)]
pub struct PendingSet {
    /// By (request step, correlation value).
    keyed: HashMap<(usize, Box<str>), VecDeque<Pending>>,
    /// Request steps with keyed requests pending, and how many each.
    keyed_ops: Vec<(usize, usize)>,
    /// Requests matched by trying them in order.
    ordered: VecDeque<Pending>,
}

impl PendingSet {
    /// Nothing pending.
    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty() && self.keyed_ops.is_empty()
    }

    /// Adds a request whose reply carries `key`.
    pub fn insert_keyed(&mut self, key: String, p: Pending) {
        self.keyed.entry((p.op, key.into_boxed_str())).or_default().push_back(p);
        match self.keyed_ops.iter_mut().find(|(op, _)| *op == p.op) {
            Some((_, n)) => *n += 1,
            None => self.keyed_ops.push((p.op, 1)),
        }
    }

    /// Adds a request whose reply is recognised by trying it.
    pub fn insert_ordered(&mut self, p: Pending) {
        self.ordered.push_back(p);
    }

    /// Request steps with keyed requests pending (the caller extracts each one's key).
    pub fn keyed_ops(&self) -> impl Iterator<Item = usize> + '_ {
        self.keyed_ops.iter().map(|(op, _)| *op)
    }

    /// Takes the oldest request of step `op` waiting for `key`.
    pub fn take_keyed(&mut self, op: usize, key: &str) -> Option<Pending> {
        let k = (op, Box::<str>::from(key));
        let q = self.keyed.get_mut(&k)?;
        let p = q.pop_front()?;
        if q.is_empty() {
            self.keyed.remove(&k);
        }
        if let Some(i) = self.keyed_ops.iter().position(|(o, _)| *o == op) {
            self.keyed_ops[i].1 -= 1;
            if self.keyed_ops[i].1 == 0 {
                self.keyed_ops.swap_remove(i);
            }
        }
        if self.is_empty() {
            // Held sessions keep no table memory.
            self.keyed = HashMap::new();
        }
        Some(p)
    }

    /// Takes the first ordered request for which `claims` is true.
    pub fn take_ordered(&mut self, claims: impl FnMut(&Pending) -> bool) -> Option<Pending> {
        let i = self.ordered.iter().position(claims)?;
        let p = self.ordered.remove(i);
        if self.ordered.is_empty() {
            self.ordered = VecDeque::new();
        }
        p
    }

    /// Takes every pending request (the connection they were sent on is gone), in
    /// no particular order.
    pub fn take_all(&mut self) -> Vec<Pending> {
        let mut all: Vec<Pending> = std::mem::take(&mut self.ordered).into();
        all.extend(std::mem::take(&mut self.keyed).into_values().flatten());
        self.keyed_ops.clear();
        all
    }

    /// The earliest deadline, and the request step it belongs to.
    pub fn next_deadline(&self) -> Option<(Instant, usize)> {
        self.ordered
            .iter()
            .chain(self.keyed.values().flatten())
            .map(|p| (p.deadline, p.op))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn p(op: usize, seq: u64, after_ms: u64) -> Pending {
        let t = Instant::now();
        Pending {
            op,
            intended: t,
            actual: t,
            deadline: t + Duration::from_millis(after_ms),
            seq,
            uuid: uuid::Uuid::nil(),
        }
    }

    #[test]
    fn keyed_replies_are_found_by_key_in_send_order() {
        let mut s = PendingSet::default();
        s.insert_keyed("a".into(), p(3, 1, 100));
        s.insert_keyed("b".into(), p(3, 2, 50));
        s.insert_keyed("a".into(), p(3, 3, 200));
        assert_eq!(s.keyed_ops().collect::<Vec<_>>(), vec![3]);
        assert_eq!(s.next_deadline().map(|d| d.1), Some(3));
        assert_eq!(s.take_keyed(3, "a").unwrap().seq, 1);
        assert_eq!(s.take_keyed(3, "a").unwrap().seq, 3);
        assert!(s.take_keyed(3, "a").is_none());
        assert!(s.take_keyed(4, "b").is_none(), "the key belongs to step 3");
        assert_eq!(s.take_keyed(3, "b").unwrap().seq, 2);
        assert!(s.is_empty());
        assert_eq!(s.keyed_ops().count(), 0);
    }

    #[test]
    fn ordered_replies_go_to_the_first_that_claims_them() {
        let mut s = PendingSet::default();
        s.insert_ordered(p(1, 1, 10));
        s.insert_ordered(p(1, 2, 10));
        assert_eq!(s.take_ordered(|x| x.seq == 2).unwrap().seq, 2);
        assert_eq!(s.take_ordered(|_| true).unwrap().seq, 1);
        assert!(s.take_ordered(|_| true).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn take_all_empties_both_tables() {
        let mut s = PendingSet::default();
        s.insert_ordered(p(1, 1, 10));
        s.insert_keyed("a".into(), p(2, 2, 10));
        s.insert_keyed("a".into(), p(2, 3, 10));
        s.insert_keyed("b".into(), p(4, 4, 10));
        let mut seqs: Vec<u64> = s.take_all().iter().map(|p| p.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert!(s.is_empty());
        assert_eq!(s.keyed_ops().count(), 0);
        assert!(s.next_deadline().is_none());
        assert!(s.take_all().is_empty());
    }
}
