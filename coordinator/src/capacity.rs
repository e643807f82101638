//! No silent caps: how many sessions a plan asks to hold at once, and what its limits
//! let it reach.
//!
//! Two kinds of limit, two answers (docs/LOAD-GENERATOR.md, "Caps"):
//! - `--max-active-batches` x `--batch-size` is a *concurrency cap* the plan sets on
//!   itself: later batches wait for earlier ones, the run still does all its work,
//!   only in waves. [`batch_cap_warning`] says so at validation and the run goes on
//!   (as k6 warns when its VUs cannot keep up with an arrival rate).
//! - The agents' capacity (each one's `--max-sessions`, open-file limit and source
//!   ports, reported in its Hello) is a *hard* limit: sessions past it fail to open.
//!   [`agent_cap_refusal`] refuses such a run before anything connects (exit 2),
//!   unless `--allow-over-capacity` asks to run it anyway.
//!
//! A session is counted as held from its batch's start for at least the time its plan
//! keeps it open: the built-in protocol's `(messages - 1) x message-interval +
//! hold-time` (a lower bound: connect and reply times come on top). Scripted scenarios
//! other than the built-in one count as held for no time, so only batches that start
//! together overlap: the estimate never over-states what a plan asks.

use std::time::Duration;

use crate::plan::Plan;
use crate::schedule;

/// The start of a run's failure reason when the agents cannot hold the plan: the CLI
/// maps it to exit 2 (bad input), like any other plan that cannot work.
pub const OVER_CAPACITY: &str = "over capacity:";

/// What a plan asks to hold at once, and what its own batch limit lets it reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// Most sessions whose planned lifetimes overlap.
    pub wanted: u64,
    /// Most batches whose planned lifetimes overlap.
    pub wanted_batches: u64,
    /// Most sessions `--max-active-batches` lets run at once (at most `wanted`).
    pub reachable: u64,
}

/// The least time a session of `plan` stays open (see the module docs).
pub fn session_lifetime(plan: &Plan) -> Duration {
    let seed_only = plan.scenarios.iter().all(|s| s.builtin_seed);
    if !seed_only {
        return Duration::ZERO;
    }
    let gaps = u32::try_from(plan.messages_per_session.saturating_sub(1)).unwrap_or(u32::MAX);
    plan.message_interval
        .saturating_mul(gaps)
        .saturating_add(plan.hold_time)
}

/// The plan's peak concurrency from its batch schedule and session lifetime.
pub fn concurrency(plan: &Plan) -> Concurrency {
    let batches = schedule::batches(plan);
    let life = u64::try_from(session_lifetime(plan).as_millis()).unwrap_or(u64::MAX);
    // Batches are in start order; a window [j, i] overlaps when batch j still lives
    // at batch i's start.
    let (mut wanted, mut wanted_batches, mut sum, mut j) = (0u64, 0u64, 0u64, 0usize);
    for (i, b) in batches.iter().enumerate() {
        sum += b.sessions;
        while batches[j].offset_ms.saturating_add(life) < b.offset_ms {
            sum -= batches[j].sessions;
            j += 1;
        }
        wanted = wanted.max(sum);
        wanted_batches = wanted_batches.max((i - j + 1) as u64);
    }
    let reachable = if wanted_batches > plan.max_active_batches {
        plan.max_active_batches.saturating_mul(plan.batch_size).min(wanted)
    } else {
        wanted
    };
    Concurrency {
        wanted,
        wanted_batches,
        reachable,
    }
}

/// The warning for a plan that its own `--max-active-batches` holds back, if it is.
pub fn batch_cap_warning(plan: &Plan) -> Option<String> {
    let c = concurrency(plan);
    (c.reachable < c.wanted).then(|| {
        format!(
            "warning: the plan asks to hold {} sessions at once ({} batches of {} overlap), \
             but --max-active-batches {} lets at most {} run at once: later batches wait \
             for earlier ones to end; set --max-active-batches {} to hold them all",
            c.wanted, c.wanted_batches, plan.batch_size, plan.max_active_batches, c.reachable, c.wanted_batches
        )
    })
}

/// An agent as the capacity check sees it: its name and most sessions.
#[derive(Debug, Clone)]
pub struct AgentCapacity {
    /// Display name.
    pub name: String,
    /// Its Hello's `max_sessions` (the least of `--max-sessions`, open files and ports).
    pub max_sessions: u64,
}

/// The refusal (starting with [`OVER_CAPACITY`]) when `agents` together cannot hold
/// what `plan` will run at once.
pub fn agent_cap_refusal(plan: &Plan, agents: &[AgentCapacity]) -> Option<String> {
    let need = concurrency(plan).reachable;
    let total: u64 = agents.iter().map(|a| a.max_sessions).sum();
    (need > total).then(|| {
        let each: Vec<String> = agents
            .iter()
            .map(|a| format!("{} {}", a.name, a.max_sessions))
            .collect();
        format!(
            "{OVER_CAPACITY} the plan holds up to {need} sessions at once, but its agents can hold \
             {total} ({}); an agent holds the least of its --max-sessions, its open-file limit \
             less 256 and the ephemeral ports of its --source-ips addresses: add agents or source \
             addresses, or pass --allow-over-capacity to run anyway",
            each.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::plan::loopback_plan_for_tests as plan;

    #[test]
    fn held_sessions_overlap_across_batches() {
        // The plan: 100 batches of 1,000 a second apart, each held 10 minutes.
        let p = plan(&[
            "--sessions",
            "100000",
            "--messages-per-session",
            "1",
            "--hold-time",
            "10m",
        ]);
        assert_eq!(
            concurrency(&p),
            Concurrency {
                wanted: 100_000,
                wanted_batches: 100,
                reachable: 50_000
            }
        );
        assert_eq!(
            batch_cap_warning(&p).unwrap(),
            "warning: the plan asks to hold 100000 sessions at once (100 batches of 1000 overlap), \
             but --max-active-batches 50 lets at most 50000 run at once: later batches wait for \
             earlier ones to end; set --max-active-batches 100 to hold them all"
        );
        let p = plan(&[
            "--sessions",
            "100000",
            "--messages-per-session",
            "1",
            "--hold-time",
            "10m",
            "--max-active-batches",
            "100",
        ]);
        assert_eq!(batch_cap_warning(&p), None);
    }

    #[test]
    fn short_sessions_do_not_overlap() {
        // 30 back-to-back messages and no hold: a batch a second is not a cap.
        let p = plan(&["--sessions", "100000", "--max-active-batches", "2"]);
        assert_eq!(concurrency(&p).wanted, 1000);
        assert_eq!(batch_cap_warning(&p), None);
        // Paced messages keep a session 2.9 s: three batches overlap.
        let p = plan(&[
            "--sessions",
            "10000",
            "--message-interval",
            "100ms",
            "--max-active-batches",
            "2",
        ]);
        assert_eq!(concurrency(&p).wanted_batches, 3);
        assert_eq!(concurrency(&p).reachable, 2000);
        // All at once: every batch overlaps.
        let p = plan(&["--sessions", "5000", "--batch-interval", "0", "--batch-size", "100"]);
        assert_eq!(concurrency(&p).wanted, 5000);
        assert_eq!(concurrency(&p).reachable, 5000);
    }

    #[test]
    fn agents_that_cannot_hold_the_plan_are_named() {
        let p = plan(&["--sessions", "3000", "--hold-time", "1m", "--batch-size", "1000"]);
        let agents = [
            AgentCapacity {
                name: "a".into(),
                max_sessions: 1000,
            },
            AgentCapacity {
                name: "b".into(),
                max_sessions: 1500,
            },
        ];
        assert_eq!(
            agent_cap_refusal(&p, &agents).unwrap(),
            "over capacity: the plan holds up to 3000 sessions at once, but its agents can hold \
             2500 (a 1000, b 1500); an agent holds the least of its --max-sessions, its open-file \
             limit less 256 and the ephemeral ports of its --source-ips addresses: add agents or \
             source addresses, or pass --allow-over-capacity to run anyway"
        );
        assert_eq!(
            agent_cap_refusal(
                &p,
                &agents[..1]
                    .iter()
                    .cloned()
                    .chain([AgentCapacity {
                        name: "c".into(),
                        max_sessions: 2000
                    }])
                    .collect::<Vec<_>>()
            ),
            None
        );
    }
}
