//! Waiting for an observable condition instead of sleeping a fixed time.
//!
//! A fixed sleep is either too short on a busy 2-core machine (the test acts before
//! the thing it waits for happened, and fails) or too long everywhere else. These
//! poll a condition until a deadline and say what was awaited when it passes.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// When to give up: a point in time, or a duration from now.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

impl From<Instant> for Deadline {
    fn from(at: Instant) -> Self {
        Deadline(at)
    }
}

impl From<Duration> for Deadline {
    fn from(timeout: Duration) -> Self {
        Deadline(Instant::now() + timeout)
    }
}

/// A condition that did not become true in time.
pub struct TimedOut {
    /// What was awaited, as the caller described it.
    pub what: String,
    /// How long it was awaited.
    pub waited: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:.1?} waiting for {}", self.waited, self.what)
    }
}

// Debug prints the sentence too: `.unwrap()` on a wait then fails with it.
impl fmt::Debug for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TimedOut {}

/// Polls `cond` (blocking the thread) until it is true or `deadline` passes; returns
/// how long it took. The condition is checked once more at the deadline.
pub fn wait_until(
    deadline: impl Into<Deadline>,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Result<Duration, TimedOut> {
    let (start, Deadline(end)) = (Instant::now(), deadline.into());
    loop {
        if cond() {
            return Ok(start.elapsed());
        }
        if Instant::now() >= end {
            return Err(TimedOut {
                what: what.to_owned(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
    }
}

/// Like [`wait_until`] for a condition that must be awaited (a scrape, a query); the
/// runtime keeps running other tasks in between.
pub async fn wait_until_async<F, Fut>(
    deadline: impl Into<Deadline>,
    what: &str,
    mut cond: F,
) -> Result<Duration, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let (start, Deadline(end)) = (Instant::now(), deadline.into());
    loop {
        if cond().await {
            return Ok(start.elapsed());
        }
        if Instant::now() >= end {
            return Err(TimedOut {
                what: what.to_owned(),
                waited: start.elapsed(),
            });
        }
        tokio::time::sleep(POLL.min(end.saturating_duration_since(Instant::now()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_when_the_condition_holds() {
        let mut n = 0;
        let took = wait_until(Duration::from_secs(5), "three polls", || {
            n += 1;
            n == 3
        })
        .unwrap();
        assert_eq!(n, 3);
        assert!(took < Duration::from_secs(5));
    }

    #[test]
    fn says_what_it_waited_for() {
        let err = wait_until(Duration::from_millis(50), "the impossible", || false).unwrap_err();
        assert!(err.waited >= Duration::from_millis(50));
        assert!(err.to_string().contains("waiting for the impossible"), "{err}");
        assert_eq!(format!("{err:?}"), err.to_string());
    }

    #[tokio::test]
    async fn async_conditions_are_awaited() {
        let start = Instant::now();
        wait_until_async(Duration::from_secs(5), "100 ms to pass", || async move {
            start.elapsed() >= Duration::from_millis(100)
        })
        .await
        .unwrap();
        let err = wait_until_async(Instant::now(), "nothing", || async { false })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nothing"));
    }
}
