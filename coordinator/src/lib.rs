//! Coordinator library (placeholder until the load generator issue lands).

pub mod report;
pub mod thresholds;
