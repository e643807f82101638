//! PNG charts drawn with plotters against time since the start, in seconds.
//!
//! Every chart has a title, axis descriptions with units and a legend, and uses the
//! embedded font (see `font.rs`), so rendering does not depend on the machine.
//!
//! The charts, in the order they are written ([`chart_files`]): [`CHART_FILES`] for
//! every run, then, when the plan has named scenario steps,
//! [`STEP_CHART_FILES`](super::step_charts::STEP_CHART_FILES):
//!
//! | file | shows |
//! |---|---|
//! | `memory-usage-chart.png` | per agent: system memory % and RSS |
//! | `avg-latency-chart.png`, `median-latency-chart.png`, `min-latency-chart.png`, `max-latency-chart.png` | one RTT statistic per second |
//! | `percentiles-chart.png` | RTT p50, p90, p99, p99.9 per second |
//! | `throughput-chart.png` | messages sent, responses and connections opened per second |
//! | `sessions-chart.png` | active sessions, failed connections and errors per second |
//! | `latency-histogram.png` | the whole run's RTT distribution |
//! | `step-latency-chart.png` | per named step: latency p50 and p99 per second |
//! | `step-throughput-chart.png` | per named step: messages/s (listen) or ok/s, and failed/s |

use std::path::{Path, PathBuf};

use plotters::chart::DualCoordChartContext;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::font::{self, FAMILY};
use super::model::{LatencyStats, RunReport};
use super::ReportError;
use super::{histogram_chart, memory_chart, step_charts};

/// Width and height of every chart, pixels.
pub const CHART_SIZE: (u32, u32) = (1200, 700);

/// The chart files [`write_charts`] produces for every run, in order.
pub const CHART_FILES: [&str; 9] = [
    "memory-usage-chart.png",
    "avg-latency-chart.png",
    "median-latency-chart.png",
    "min-latency-chart.png",
    "max-latency-chart.png",
    "percentiles-chart.png",
    "throughput-chart.png",
    "sessions-chart.png",
    "latency-histogram.png",
];

/// Distinct, colour-blind-friendly-ish line colours.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One line of a chart.
pub(crate) struct Series {
    /// Legend text.
    pub name: String,
    /// Line colour.
    pub color: RGBColor,
    /// `(seconds since start, value)` points in time order.
    pub points: Vec<(f64, f64)>,
    /// Drawn against the right-hand axis (small counts next to large ones).
    pub right: bool,
    /// Drawn dashed (a second figure of the same thing in the same colour).
    pub dashed: bool,
}

/// What a line chart shows.
pub(crate) struct LineChart<'a> {
    /// File name, used in errors.
    pub file: &'a str,
    /// Caption at the top.
    pub title: String,
    /// Y axis description including the unit.
    pub y_desc: &'a str,
    /// Right-hand axis description, for charts with `right` series.
    pub y2_desc: Option<&'a str>,
    /// The lines.
    pub series: Vec<Series>,
}

/// The chart files [`write_charts`] produces for `report`, in order: [`CHART_FILES`],
/// then the step charts when the plan has named steps.
pub fn chart_files(report: &RunReport) -> Vec<&'static str> {
    let steps: &[&'static str] = if report.steps.is_empty() {
        &[]
    } else {
        &step_charts::STEP_CHART_FILES
    };
    CHART_FILES.iter().chain(steps).copied().collect()
}

/// Draws every chart into `out_dir`; returns the written paths in [`chart_files`] order.
pub fn write_charts(report: &RunReport, out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    font::register()?;
    let x_max = x_extent(report);
    let files = chart_files(report);
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let path = out_dir.join(file);
        if file == "latency-histogram.png" {
            histogram_chart::draw(&path, file, &report.histograms.rtt_intended)?;
        } else if file == "memory-usage-chart.png" {
            memory_chart::draw(&path, file, report, x_max)?;
        } else if step_charts::STEP_CHART_FILES.contains(&file) {
            draw_line_chart(&path, &step_charts::line_chart(report, file), x_max)?;
        } else {
            draw_line_chart(&path, &line_chart(report, file), x_max)?;
        }
        written.push(path);
    }
    Ok(written)
}

/// The end of the time axis: the run duration, the last window or the last sample.
fn x_extent(report: &RunReport) -> f64 {
    let last_window = report.windows.iter().map(|w| w.t as f64 + 1.0).fold(0.0, f64::max);
    let last_sample = report
        .agents
        .iter()
        .flat_map(|a| a.memory.iter().map(|m| m.t))
        .fold(0.0, f64::max);
    report.duration.as_secs_f64().max(last_window).max(last_sample).max(1.0)
}

/// A per-second latency line: `pick` reads one statistic (µs) of a window's RTT.
fn latency_series(report: &RunReport, name: &str, color: RGBColor, pick: impl Fn(&LatencyStats) -> f64) -> Series {
    let points = report
        .windows
        .iter()
        .filter_map(|w| LatencyStats::from_histogram(&w.rtt).map(|s| (w.t as f64, pick(&s) / 1000.0)))
        .collect();
    Series {
        name: name.to_owned(),
        color,
        points,
        right: false,
        dashed: false,
    }
}

/// A per-second counter line.
fn count_series(
    report: &RunReport,
    name: &str,
    color: RGBColor,
    pick: impl Fn(&super::model::Window) -> u64,
) -> Series {
    Series {
        name: name.to_owned(),
        color,
        points: report.windows.iter().map(|w| (w.t as f64, pick(w) as f64)).collect(),
        right: false,
        dashed: false,
    }
}

fn line_chart<'a>(report: &RunReport, file: &'a str) -> LineChart<'a> {
    const RTT: &str = "RTT from intended send (ms)";
    let p = PALETTE;
    let (title, y_desc, series) = match file {
        "avg-latency-chart.png" => (
            "Mean round-trip time per second".to_owned(),
            RTT,
            vec![latency_series(report, "mean RTT", p[0], |s| s.mean)],
        ),
        "median-latency-chart.png" => (
            "Median (p50) round-trip time per second".to_owned(),
            RTT,
            vec![latency_series(report, "p50 RTT", p[2], |s| s.p50 as f64)],
        ),
        "min-latency-chart.png" => (
            "Minimum round-trip time per second".to_owned(),
            RTT,
            vec![latency_series(report, "min RTT", p[4], |s| s.min as f64)],
        ),
        "max-latency-chart.png" => (
            "Maximum round-trip time per second".to_owned(),
            RTT,
            vec![latency_series(report, "max RTT", p[1], |s| s.max as f64)],
        ),
        "percentiles-chart.png" => (
            "RTT percentiles per second (merged histograms)".to_owned(),
            RTT,
            vec![
                latency_series(report, "p50", p[2], |s| s.p50 as f64),
                latency_series(report, "p90", p[0], |s| s.p90 as f64),
                latency_series(report, "p99", p[3], |s| s.p99 as f64),
                latency_series(report, "p99.9", p[1], |s| s.p999 as f64),
            ],
        ),
        "throughput-chart.png" => (
            format!("Throughput (run average {:.0} responses/s)", report.throughput()),
            "Rate (per second)",
            vec![
                count_series(report, "messages sent/s", p[0], |w| w.messages_sent),
                count_series(report, "responses/s", p[2], |w| w.responses),
                count_series(report, "connections opened/s", p[3], |w| w.connections_opened),
            ],
        ),
        _ => (
            "Sessions and failures".to_owned(),
            "Active sessions",
            vec![
                count_series(report, "active sessions (left)", p[0], |w| w.active_sessions),
                Series {
                    right: true,
                    ..count_series(report, "failed connections/s (right)", p[1], |w| w.connections_failed)
                },
                Series {
                    right: true,
                    ..count_series(report, "errors/s (right)", p[3], |w| w.errors_total())
                },
            ],
        ),
    };
    let y2_desc = series.iter().any(|s| s.right).then_some("Failures per second");
    LineChart {
        file,
        title,
        y_desc,
        y2_desc,
        series,
    }
}

/// Turns a plotting error into a [`ReportError`] naming the chart.
pub(crate) fn chart_err(file: &str) -> impl Fn(&dyn std::fmt::Display) -> ReportError + '_ {
    move |e| ReportError::Chart {
        file: file.to_owned(),
        message: e.to_string(),
    }
}

/// Top of a y axis that leaves headroom above `max` and is never empty.
pub(crate) fn y_top(max: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.1
    } else {
        1.0
    }
}

/// Formats an axis tick: whole numbers once the axis spans 10 or more units.
pub(crate) fn tick(span: f64) -> impl Fn(&f64) -> String {
    move |v| {
        if span >= 10.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    }
}

/// Writes "no data" in the middle of a plotting area.
pub(crate) fn no_data<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FAMILY, 32).into_font())
        .color(&RGBColor(120, 120, 120))
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
    area.draw_text("no data", &style, (w as i32 / 2, h as i32 / 2))
}

fn axis_top<'s>(series: impl Iterator<Item = &'s Series>) -> f64 {
    y_top(series.flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max))
}

fn draw_line_chart(path: &Path, spec: &LineChart<'_>, x_max: f64) -> Result<(), ReportError> {
    let err = chart_err(spec.file);
    let root = BitMapBackend::new(path, CHART_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let y_max = axis_top(spec.series.iter().filter(|s| !s.right));
    let y2_max = axis_top(spec.series.iter().filter(|s| s.right));
    let mut chart = ChartBuilder::on(&root)
        .caption(&spec.title, (FAMILY, 30).into_font())
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .right_y_label_area_size(if spec.y2_desc.is_some() { 90 } else { 0 })
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(&e))?
        .set_secondary_coord(0f64..x_max, 0f64..y2_max);
    chart
        .configure_mesh()
        .x_desc("Time since start (s)")
        .y_desc(spec.y_desc)
        .x_label_formatter(&tick(x_max))
        .y_label_formatter(&tick(y_max))
        .label_style((FAMILY, 18))
        .axis_desc_style((FAMILY, 20))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| err(&e))?;
    if let Some(desc) = spec.y2_desc {
        chart
            .configure_secondary_axes()
            .y_desc(desc)
            .y_label_formatter(&tick(y2_max))
            .label_style((FAMILY, 18))
            .axis_desc_style((FAMILY, 20))
            .draw()
            .map_err(|e| err(&e))?;
    }
    let mut any = false;
    for (i, s) in spec.series.iter().enumerate() {
        // The first line is drawn wider so an identical later line cannot hide it.
        let width = if i == 0 && spec.series.len() > 1 { 5 } else { 2 };
        any |= !s.points.is_empty();
        let color = s.color;
        let points = s.points.iter().copied();
        let style = color.stroke_width(width);
        // Few points: mark them, a single point would otherwise be invisible.
        let marks = s
            .points
            .iter()
            .take(if s.points.len() <= 30 { usize::MAX } else { 0 })
            .map(|&p| Circle::new(p, 4, color.filled()));
        // A dashed line's legend is one short dash, as in the memory chart.
        let legend_len = if s.dashed { 9 } else { 24 };
        let legend = move |(x, y)| PathElement::new(vec![(x, y), (x + legend_len, y)], color.stroke_width(3));
        // One arm per (axis, dash) pair: the series types differ.
        macro_rules! draw {
            ($draw:ident, $line:expr) => {{
                chart
                    .$draw($line)
                    .map_err(|e| err(&e))?
                    .label(&s.name)
                    .legend(legend);
                chart.$draw(marks).map_err(|e| err(&e))?;
            }};
        }
        match (s.right, s.dashed) {
            (false, false) => draw!(draw_series, LineSeries::new(points, style)),
            (false, true) => draw!(draw_series, DashedLineSeries::new(points, 10, 6, style)),
            (true, false) => draw!(draw_secondary_series, LineSeries::new(points, style)),
            (true, true) => draw!(draw_secondary_series, DashedLineSeries::new(points, 10, 6, style)),
        }
    }
    let legend = (!spec.series.is_empty()).then_some(SeriesLabelPosition::UpperRight);
    finish_time_chart(&root, &mut chart, legend, any, err)
}

/// The two-axis, time-based chart of [`draw_line_chart`] and the memory chart.
pub(crate) type TimeChart<'a, 'b> = DualCoordChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<RangedCoordf64, RangedCoordf64>,
    Cartesian2d<RangedCoordf64, RangedCoordf64>,
>;

/// The common end of the time charts, so their legends and "no data" look alike: draws
/// the legend at `legend` (none when `None`), "no data" unless `any` series had a
/// point, and writes the file.
pub(crate) fn finish_time_chart<'a, 'b: 'a>(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    chart: &mut TimeChart<'a, 'b>,
    legend: Option<SeriesLabelPosition>,
    any: bool,
    err: impl Fn(&dyn std::fmt::Display) -> ReportError,
) -> Result<(), ReportError> {
    if let Some(position) = legend {
        chart
            .configure_series_labels()
            .position(position)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FAMILY, 18))
            .draw()
            .map_err(|e| err(&e))?;
    }
    if !any {
        no_data(&chart.plotting_area().strip_coord_spec()).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
