//! The charts of a plan's named scenario steps, one per metric family, drawn only when
//! the plan has named steps: `step-latency-chart.png` (p50 dashed and p99 solid per
//! second, one colour per step) and `step-throughput-chart.png` (per step and second:
//! messages received for a listen step, successful executions for the others; failed
//! executions on the right-hand axis for steps that had any).

use super::charts::{LineChart, Series, PALETTE};
use super::model::{RunReport, StepReport, StepStats};

/// The step chart files, in the order [`super::charts::write_charts`] writes them.
pub const STEP_CHART_FILES: [&str; 2] = ["step-latency-chart.png", "step-throughput-chart.png"];

/// The line chart behind `file`, one of [`STEP_CHART_FILES`].
pub(crate) fn line_chart<'a>(report: &RunReport, file: &'a str) -> LineChart<'a> {
    if file == STEP_CHART_FILES[0] {
        latency(report, file)
    } else {
        throughput(report, file)
    }
}

/// One line of `step`, in the colour of its place `i` in the plan: `pick` reads a value of the step's figures in each second
/// (`None`: the step did nothing that second), its `None` leaving the second out.
fn series(
    report: &RunReport,
    (i, step): (usize, &StepReport),
    name: String,
    pick: impl Fn(Option<&StepStats>) -> Option<f64>,
) -> Series {
    Series {
        name,
        color: PALETTE[i % PALETTE.len()],
        points: report
            .windows
            .iter()
            .filter_map(|w| pick(w.steps.get(&step.name)).map(|v| (w.t as f64, v)))
            .collect(),
        right: false,
        dashed: false,
    }
}

fn latency<'a>(report: &RunReport, file: &'a str) -> LineChart<'a> {
    let mut lines = Vec::new();
    // Steps without latency (send) would only crowd the legend.
    let timed = report
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.stats.latency.is_empty());
    for (i, step) in timed {
        let ms = |q: f64| {
            move |s: Option<&StepStats>| {
                s.filter(|s| !s.latency.is_empty())
                    .map(|s| s.latency.value_at_quantile(q) as f64 / 1000.0)
            }
        };
        lines.push(series(
            report,
            (i, step),
            format!("{} ({}) p99", step.name, step.kind),
            ms(0.99),
        ));
        lines.push(Series {
            dashed: true,
            ..series(report, (i, step), format!("{} p50", step.name), ms(0.5))
        });
    }
    LineChart {
        file,
        title: "Scenario step latency per second (p99 solid, p50 dashed; merged histograms)".to_owned(),
        y_desc: "Step latency (ms)",
        y2_desc: None,
        series: lines,
    }
}

fn throughput<'a>(report: &RunReport, file: &'a str) -> LineChart<'a> {
    let mut lines = Vec::new();
    for (i, step) in report.steps.iter().enumerate() {
        let what = if super::model::throughput_counts_messages(&step.kind) {
            "messages/s"
        } else {
            "ok/s"
        };
        lines.push(series(report, (i, step), format!("{} {what}", step.name), |s| {
            Some(s.map_or(0.0, |s| step.throughput(s) as f64))
        }));
        if step.stats.failed > 0 {
            lines.push(Series {
                dashed: true,
                right: true,
                ..series(report, (i, step), format!("{} failed/s (right)", step.name), |s| {
                    Some(s.map_or(0.0, |s| s.failed as f64))
                })
            });
        }
    }
    let y2_desc = lines.iter().any(|s| s.right).then_some("Failed per second");
    LineChart {
        file,
        title: "Scenario step throughput per second".to_owned(),
        y_desc: "Rate (per second)",
        y2_desc,
        series: lines,
    }
}
