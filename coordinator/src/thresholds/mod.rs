//! Pass/fail thresholds such as `rtt_p99<250ms`, evaluated on the merged run data.
//!
//! Grammar: `METRIC OP VALUE` (spaces allowed), with `OP` one of `<`, `<=`, `>`,
//! `>=`, `==`, `!=`. Metrics:
//!
//! | metric | meaning | value |
//! |---|---|---|
//! | `rtt_STAT` | RTT from the intended send (whole run, merged) | time: `250ms`, `1s`, `800us` |
//! | `rtt_actual_STAT` | RTT from the actual send | time |
//! | `connect_STAT` | TCP connect + WebSocket upgrade | time |
//! | `session_STAT` | time from upgrade to the `session` event | time |
//! | `connect_error_rate` | failed connections / connection attempts | `1%` or a fraction `0.01` |
//! | `response_error_rate` | failed responses / messages sent | rate |
//! | `error_rate` | (failed connections + failed responses) / (attempts + messages sent) | rate |
//! | `messages_per_second` | responses received / run duration | number, optional `/s` |
//! | `sent_per_second` | messages sent / run duration | number |
//! | `connections_per_second` | sessions opened / run duration | number |
//! | `sessions_failed` | failed connections + errored + lost sessions | count |
//! | `sessions_opened`, `failed_connections`, `failed_responses`, `errors`, `lost_sessions`, `messages_sent`, `responses_received`, `server_events`, `reassigned_batches` | the totals | count |
//! | `step.NAME.STAT` | the latency of the named scenario step `NAME` (what its kind times: connect time, request RTT from the intended send, expect wait, pong RTT, close handshake, fan-out latency) | time |
//! | `step.NAME.ok`, `.failed`, `.messages`, `.duplicates`, `.out_of_order` | the named step's counters | count |
//! | `step.NAME.error_rate` | failed / (ok + failed) of the named step | rate |
//! | `step.NAME.reach` | fan-out listen step: distinct deliveries / expected deliveries | rate, e.g. `step.news.reach>=99.9%` |
//! | `count.NAME` | a scenario handler's `count = "NAME"` tally | count |
//! | `unexpected_messages` | scenario messages no step, pending request or handler claimed | count |
//! | `close.CODE` | connections the server closed with `CODE` (`close.1006`: dropped) | count |
//! | `send_lag_STAT` | how late paced messages went out (actual minus intended send time) | time |
//! | `agent_lag_STAT` | how late the agents' ~100 ms probe timers fired (all agents, whole run) | time, e.g. `agent_lag_p99<50ms` |
//! | `agent_cpu_max` | the largest CPU use of any agent in any second, share of the cores it may use | rate, e.g. `agent_cpu_max<90%` |
//! | `saturated_seconds` | seconds in which an agent was saturated (CPU >= 90 % of its cores or lag p99 > 50 ms) | count |
//!
//! `STAT` is `min`, `max`, `mean` (or `avg`) or a percentile `pN` with `0 < N <= 100`
//! (`p50`, `p95`, `p99.9`; `p99_9` is accepted too). A metric without data (no RTT
//! sample, no connection attempt, a step that never ran, a fan-out nobody expected)
//! has no observed value and fails its threshold; counts are 0 without data.
//!
//! `NAME` must be a named step (or a handler count) of the plan: [`parse_for_plan`]
//! refuses any other name before the run starts, listing the names the plan has.
//!
//! Percentiles come from the merged whole-run HDR histogram (3 significant figures),
//! so an observed percentile is exact to within 0.1 %.
//!
//! The module is split by concern: [`grammar`] turns text into a [`Threshold`],
//! [`metrics`] says what each metric observes on a report, [`evaluate`](mod@evaluate) compares, and
//! [`plan_check`] holds names up against the plan.

mod error;
pub mod evaluate;
pub mod grammar;
pub mod metrics;
pub mod plan_check;

pub use error::{ThresholdError, ValueError};
pub use evaluate::evaluate;
pub use grammar::{parse, parse_all, Op, Threshold};
pub use metrics::{display, Count, Kind, LatencySource, Metric, Stat, StepStat};
pub use plan_check::{check_plan, parse_for_plan};
