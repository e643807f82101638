//! Limits on a plan's size, checked with the rest of the plan (flags, TOML or a
//! remote StartRun) before anything connects: each error names the limit. The
//! whole plan travels to every agent and every agent compiles it, so a plan without
//! bounds could exhaust the coordinator or the agents before the run even starts.

use wsload_proto::limits::{MAX_FEEDER_FILE_BYTES, MAX_PLAN_BYTES};
use wsload_proto::pb::{self, step::Kind};

use crate::plan::PlanError;

/// Most sessions in one run.
pub const MAX_SESSIONS: u64 = 100_000_000;
/// Most scenarios in a plan.
pub const MAX_SCENARIOS: usize = 256;
/// Most steps in a plan, counting loop bodies and handlers, over all scenarios.
pub const MAX_STEPS: usize = 10_000;
/// Most feeders in a plan.
pub const MAX_FEEDERS: usize = 64;
/// Most data in one feeder (its cells' bytes), as for its CSV file.
pub const MAX_FEEDER_BYTES: u64 = MAX_FEEDER_FILE_BYTES;

fn err(field: &str, reason: String) -> PlanError {
    PlanError {
        field: field.into(),
        reason,
    }
}

/// Steps of `steps`, with the bodies of loops.
fn count_steps(steps: &[pb::Step]) -> usize {
    steps
        .iter()
        .map(|s| {
            1 + match &s.kind {
                Some(Kind::Loop(l)) => count_steps(&l.steps),
                _ => 0,
            }
        })
        .sum()
}

/// Checks `p` against the limits; the first one exceeded is the error.
pub fn check(p: &pb::Plan) -> Result<(), PlanError> {
    check_with(p, MAX_PLAN_BYTES)
}

/// [`check`] with `max_plan_bytes` for the encoded plan.
fn check_with(p: &pb::Plan, max_plan_bytes: usize) -> Result<(), PlanError> {
    if p.sessions > MAX_SESSIONS {
        return Err(err(
            "sessions",
            format!("{} is above the limit of {MAX_SESSIONS}", p.sessions),
        ));
    }
    if p.scenarios.len() > MAX_SCENARIOS {
        return Err(err(
            "scenario",
            format!("{} scenarios, above the limit of {MAX_SCENARIOS}", p.scenarios.len()),
        ));
    }
    let steps: usize = p
        .scenarios
        .iter()
        .map(|s| count_steps(&s.steps) + s.handlers.len())
        .sum();
    if steps > MAX_STEPS {
        return Err(err(
            "scenario",
            format!("{steps} steps and handlers in all, above the limit of {MAX_STEPS}"),
        ));
    }
    if p.feeders.len() > MAX_FEEDERS {
        return Err(err(
            "feeder",
            format!("{} feeders, above the limit of {MAX_FEEDERS}", p.feeders.len()),
        ));
    }
    for f in &p.feeders {
        let bytes: u64 = f.rows.iter().flat_map(|r| &r.values).map(|v| v.len() as u64 + 1).sum();
        if bytes > MAX_FEEDER_BYTES {
            return Err(err(
                &format!("feeder \"{}\"", f.name),
                format!("{bytes} bytes of data, above the limit of {MAX_FEEDER_BYTES} (32 MiB)"),
            ));
        }
    }
    let encoded = prost::Message::encoded_len(p);
    if encoded > max_plan_bytes {
        return Err(err(
            "plan",
            format!(
                "encodes to {encoded} bytes, above the limit of {max_plan_bytes} ({} MiB) that every agent receives; \
                 feeders of many tiny cells grow most on the wire",
                max_plan_bytes >> 20
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feeder(name: &str, rows: usize, cell: usize) -> pb::Feeder {
        pb::Feeder {
            name: name.into(),
            columns: vec!["c".into()],
            rows: vec![
                pb::Row {
                    values: vec!["x".repeat(cell)]
                };
                rows
            ],
            mode: 0,
        }
    }

    #[test]
    fn each_limit_is_named() {
        let ok = pb::Plan {
            sessions: 10,
            ..Default::default()
        };
        assert!(check(&ok).is_ok());
        let e = check(&pb::Plan {
            sessions: MAX_SESSIONS + 1,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid plan: sessions: 100000001 is above the limit of 100000000"
        );
        let e = check(&pb::Plan {
            scenarios: vec![pb::Scenario::default(); MAX_SCENARIOS + 1],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid plan: scenario: 257 scenarios, above the limit of 256"
        );
        // A loop's body counts: 1 loop + 10,000 steps inside.
        let body = vec![pb::Step::default(); MAX_STEPS];
        let looped = pb::Step {
            kind: Some(Kind::Loop(pb::Loop {
                steps: body,
                ..Default::default()
            })),
            ..Default::default()
        };
        let e = check(&pb::Plan {
            scenarios: vec![pb::Scenario {
                steps: vec![looped],
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid plan: scenario: 10001 steps and handlers in all, above the limit of 10000"
        );
        let e = check(&pb::Plan {
            feeders: vec![pb::Feeder::default(); MAX_FEEDERS + 1],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.field, "feeder");
        // 33 rows of 1 MiB cells: just above 32 MiB of data.
        let e = check(&pb::Plan {
            feeders: vec![feeder("users", 33, 1024 * 1024 - 1)],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.field, "feeder \"users\"");
        assert!(e.reason.contains("above the limit of 33554432 (32 MiB)"), "{e}");
    }

    #[test]
    fn a_plan_that_grows_on_the_wire_is_refused_by_its_encoded_size() {
        // Rows of one 1-byte cell: 2 bytes of data each by the CSV measure, 5 on the
        // wire (row and cell are each a tag and a length). At scale (a 1 MiB limit).
        let p = pb::Plan {
            feeders: vec![feeder("a", 300 * 1024, 1)],
            ..Default::default()
        };
        let e = check_with(&p, 1024 * 1024).unwrap_err();
        assert_eq!(e.field, "plan");
        let encoded = prost::Message::encoded_len(&p);
        assert!(encoded > 300 * 1024 * 5, "{encoded}");
        assert_eq!(
            e.reason,
            format!(
                "encodes to {encoded} bytes, above the limit of 1048576 (1 MiB) that every agent receives; \
                 feeders of many tiny cells grow most on the wire"
            )
        );
        assert!(check(&p).is_ok());
    }
}
