//! Thresholds that name scenario steps or handler counts, held up against the plan
//! before anything connects: a misspelt name would otherwise observe nothing (or 0)
//! and fail (or pass) for the wrong reason.

use wsload_scenario::Program;

use super::error::ThresholdError;
use super::grammar::{parse_all, Threshold};
use super::metrics::{Metric, StepStat};

/// Parses every expression and checks the names in them against `program` (the
/// plan's compiled scenarios, `Plan::program()`), stopping at the first bad one.
pub fn parse_for_plan<S: AsRef<str>>(exprs: &[S], program: &Program) -> Result<Vec<Threshold>, ThresholdError> {
    let thresholds = parse_all(exprs)?;
    check_plan(&thresholds, program)?;
    Ok(thresholds)
}

/// Fails on the first threshold that names a step the plan does not have, asks for
/// the `reach` of a step without fan-out accounting, or names a handler count no
/// handler keeps. The error lists the names the plan has.
pub fn check_plan(thresholds: &[Threshold], program: &Program) -> Result<(), ThresholdError> {
    for t in thresholds {
        match &t.metric {
            Metric::Step(name, stat) => {
                let Some(step) = program.named.iter().find(|n| *n.name == **name) else {
                    return Err(ThresholdError::UnknownStep {
                        expr: t.expr.clone(),
                        name: name.clone(),
                        known: known("named steps", program.named.iter().map(|n| &*n.name)),
                    });
                };
                if *stat == StepStat::Reach && step.reach.is_none() {
                    return Err(ThresholdError::NoFanout {
                        expr: t.expr.clone(),
                        name: name.clone(),
                        kind: step.kind.to_owned(),
                    });
                }
            }
            Metric::HandlerCount(name) if !program.counts.iter().any(|c| **c == **name) => {
                return Err(ThresholdError::UnknownCount {
                    expr: t.expr.clone(),
                    name: name.clone(),
                    known: known("handler counts", program.counts.iter().map(|c| &**c)),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// `named steps: a, b` or `the plan has no named steps`.
fn known<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        format!("the plan has no {what}")
    } else {
        format!("{what}: {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanArgs;

    /// The fixture plan (`publish`, its fan-out listen `news`, a plain listen `quiet`,
    /// a handler counting `server_errors`), compiled as the CLI does.
    fn program() -> Program {
        let args = PlanArgs {
            plan: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/named-steps.toml").into()),
            ..PlanArgs::default()
        };
        args.validate().unwrap().program().unwrap()
    }

    fn check(exprs: &[&str], p: &Program) -> Result<Vec<Threshold>, ThresholdError> {
        parse_for_plan(exprs, p)
    }

    #[test]
    fn accepts_the_names_the_plan_has() {
        let p = program();
        let ok = check(
            &[
                "step.news.reach>=99.9%",
                "step.publish.ok>0",
                "step.quiet.messages>=0",
                "count.server_errors==0",
                "close.1008==0",
                "unexpected_messages==0",
                "rtt_p99<1s",
            ],
            &p,
        )
        .unwrap();
        assert_eq!(ok.len(), 7);
    }

    #[test]
    fn refuses_unknown_names_listing_the_known_ones() {
        let p = program();
        let e = check(&["rtt_p99<1s", "step.nwes.p99<1s"], &p).unwrap_err();
        assert_eq!(
            e,
            ThresholdError::UnknownStep {
                expr: "step.nwes.p99<1s".into(),
                name: "nwes".into(),
                known: "named steps: publish, news, quiet".into(),
            }
        );
        assert_eq!(
            e.to_string(),
            "threshold `step.nwes.p99<1s`: the plan has no step named `nwes` (named steps: publish, news, quiet)"
        );
        let e = check(&["count.errors==0"], &p).unwrap_err().to_string();
        assert!(
            e.contains("no handler of the plan counts `errors` (handler counts: server_errors)"),
            "{e}"
        );
        let e = check(&["step.quiet.reach>=99%"], &p).unwrap_err();
        assert!(
            matches!(&e, ThresholdError::NoFanout { name, kind, .. } if name == "quiet" && kind == "listen"),
            "{e:?}"
        );
        let e = check(&["step.publish.reach>=99%"], &p).unwrap_err().to_string();
        assert!(
            e.contains("step `publish` is a send step without fan-out accounting"),
            "{e}"
        );
    }

    #[test]
    fn the_built_in_protocol_has_no_names() {
        let p = Program::empty();
        let e = check(&["step.echo.p99<1s"], &p).unwrap_err().to_string();
        assert!(e.ends_with("(the plan has no named steps)"), "{e}");
        let e = check(&["count.x==0"], &p).unwrap_err().to_string();
        assert!(e.ends_with("(the plan has no handler counts)"), "{e}");
        // Everything else needs no name from the plan.
        assert!(check(&["rtt_p99<1s", "close.1006==0", "unexpected_messages==0"], &p).is_ok());
    }
}
