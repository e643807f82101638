//! Admission of new WebSocket upgrades under overload: shed with HTTP 503 at once
//! rather than queue work the broker cannot finish before its calls time out.
//!
//! Two signals, both per instance:
//! - **pending setups**: upgrades admitted whose session is not yet recorded in the
//!   broker. Past `--max-pending-upgrades` new upgrades are shed, so a slow broker
//!   sees a bounded queue from each instance.
//! - **slow setups**: a setup that took longer than `--shed-latency` (by default half
//!   the Redis timeout) sheds new upgrades for as long again as it took, long enough
//!   for the broker's queue to drain; then upgrades are admitted again and the next
//!   setups measure the broker afresh.
//!
//! A shed upgrade costs one short HTTP response: clients (and nginx, which passes the
//! 503 through) see an honest refusal they can count and retry, instead of a session
//! that opened and then got "session not recorded".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why an upgrade was shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// `--max-pending-upgrades` setups were already waiting for the broker.
    Pending,
    /// A recent setup was slower than `--shed-latency`.
    SlowBroker,
}

impl Shed {
    /// Metric label and the text of the 503's body.
    pub const fn as_str(self) -> &'static str {
        match self {
            Shed::Pending => "pending",
            Shed::SlowBroker => "slow_broker",
        }
    }
}

/// The admission state of one instance.
#[derive(Debug)]
pub struct Admission {
    /// Most setups in flight at once.
    max_pending: u64,
    /// Setups slower than this shed new upgrades; zero disables.
    slow: Duration,
    /// Setups in flight now.
    pending: AtomicU64,
    /// Until when (ms since `epoch`) new upgrades are shed because a setup was slow.
    shed_until_ms: AtomicU64,
    /// Origin of `shed_until_ms`.
    epoch: Instant,
}

/// One admitted setup; dropping it ends it (without a latency, e.g. a failed upgrade).
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
}

impl Admission {
    /// At most `max_pending` setups in flight; setups slower than `slow` shed (zero: never).
    pub fn new(max_pending: u64, slow: Duration) -> Self {
        Admission {
            max_pending: max_pending.max(1),
            slow,
            pending: AtomicU64::new(0),
            shed_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Admits one upgrade, or says why it is shed.
    pub fn admit(self: &Arc<Self>) -> Result<Ticket, Shed> {
        if !self.slow.is_zero() && self.now_ms() < self.shed_until_ms.load(Ordering::Relaxed) {
            return Err(Shed::SlowBroker);
        }
        let before = self.pending.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_pending {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Shed::Pending);
        }
        Ok(Ticket {
            admission: self.clone(),
        })
    }

    /// Setups in flight now.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }
}

impl Ticket {
    /// The setup finished after `took`: a slow one sheds new upgrades for as long.
    pub fn finish(self, took: Duration) {
        let a = &self.admission;
        if !a.slow.is_zero() && took > a.slow {
            let until = a
                .now_ms()
                .saturating_add(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
            a.shed_until_ms.fetch_max(until, Ordering::Relaxed);
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                bound_ms = a.slow.as_millis() as u64,
                "slow session setup: shedding new upgrades with 503"
            );
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_setups_are_bounded() {
        let a = Arc::new(Admission::new(2, Duration::from_secs(1)));
        let t1 = a.admit().unwrap();
        let t2 = a.admit().unwrap();
        assert_eq!(a.admit().unwrap_err(), Shed::Pending);
        assert_eq!(a.pending(), 2);
        drop(t1);
        let t3 = a.admit().unwrap();
        t2.finish(Duration::from_millis(5));
        t3.finish(Duration::from_millis(5));
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn a_slow_setup_sheds_for_as_long_as_it_took() {
        let a = Arc::new(Admission::new(100, Duration::from_millis(50)));
        a.admit().unwrap().finish(Duration::from_millis(40));
        let t = a.admit().unwrap();
        t.finish(Duration::from_millis(300));
        assert_eq!(a.admit().unwrap_err(), Shed::SlowBroker);
        std::thread::sleep(Duration::from_millis(350));
        assert!(a.admit().is_ok(), "admits again once the slow setup's time has passed");
    }

    #[test]
    fn zero_latency_bound_never_sheds_for_slowness() {
        let a = Arc::new(Admission::new(100, Duration::ZERO));
        a.admit().unwrap().finish(Duration::from_secs(10));
        assert!(a.admit().is_ok());
    }
}
