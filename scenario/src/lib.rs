//! Scenarios: the scripted conversations of a plan, compiled once and validated the
//! same way on the coordinator (before anything connects) and on every agent.
//!
//! A plan holds named scenarios with weights (cohorts); each is a list of steps —
//! connect, send, expect, request, listen, think, loop, ping, close — whose texts
//! are templates (`{{seq}}`, `{{uuid}}`, captured values, feeder columns) and whose
//! tests are JSON paths, regexes or exact values. [`compile`] turns the wire form
//! into a [`Program`]; the agent's script engine runs it.

pub mod cohort;
pub mod compile;
pub mod feeder;
pub mod fuzzing;
pub mod matcher;
pub mod program;
pub mod template;

pub use compile::{compile, ScenarioError};
pub use matcher::{Incoming, Matcher};
pub use program::{Op, Program, Scenario};
pub use template::{Template, Vars};
