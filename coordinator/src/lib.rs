//! Coordinator library: splits WebSocket connection batches across agents, merges
//! their per-second metrics (histograms merged, never percentiles averaged), shows
//! live progress and writes the report.
//!
//! The `ws-coordinator` binary is a thin wrapper around [`cli::execute`]; tests call
//! the same functions with `Cli::parse_from(..)`.

pub mod auth;
pub mod capacity;
pub mod cli;
pub mod control_service;
pub mod dashboard;
pub mod exit;
pub mod fuzzing;
pub mod hub;
pub mod link_service;
pub mod plan;
pub mod plan_limits;
pub mod progress;
pub mod report;
pub mod run_store;
pub mod scenario_file;
pub mod schedule;
pub mod server;
pub mod thresholds;
