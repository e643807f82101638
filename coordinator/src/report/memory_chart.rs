//! `memory-usage-chart.png`: per agent, system memory use (%, solid, left axis) and
//! the agent's RSS (MiB, dashed, right axis) against time since the start.
//!
//! System memory is what throttling compares against; RSS is what the per-session
//! memory budget is about, and it tells agents on one machine apart.

use std::path::Path;

use plotters::prelude::*;

use super::charts::{chart_err, finish_time_chart, tick, y_top, CHART_SIZE, PALETTE};
use super::font::FAMILY;
use super::model::RunReport;
use super::ReportError;

const MIB: f64 = 1024.0 * 1024.0;

/// Draws the memory chart of every agent in `report` to `path`.
pub fn draw(path: &Path, file: &str, report: &RunReport, x_max: f64) -> Result<(), ReportError> {
    let err = chart_err(file);
    let root = BitMapBackend::new(path, CHART_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let rss_max = report
        .agents
        .iter()
        .flat_map(|a| a.memory.iter().map(|m| m.rss_bytes as f64 / MIB))
        .fold(0.0, f64::max);
    let rss_top = y_top(rss_max);
    let mut chart = ChartBuilder::on(&root)
        .caption("Memory use per agent", (FAMILY, 30).into_font())
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .right_y_label_area_size(100)
        .build_cartesian_2d(0f64..x_max, 0f64..100f64)
        .map_err(|e| err(&e))?
        .set_secondary_coord(0f64..x_max, 0f64..rss_top);
    chart
        .configure_mesh()
        .x_desc("Time since start (s)")
        .y_desc("System memory used (%, solid)")
        .x_label_formatter(&tick(x_max))
        .y_label_formatter(&tick(100.0))
        .label_style((FAMILY, 18))
        .axis_desc_style((FAMILY, 20))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .configure_secondary_axes()
        .y_desc("Agent RSS (MiB, dashed)")
        .y_label_formatter(&tick(rss_top))
        .label_style((FAMILY, 18))
        .axis_desc_style((FAMILY, 20))
        .draw()
        .map_err(|e| err(&e))?;
    let mut any = false;
    for (i, agent) in report.agents.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let lost = if agent.lost { " (lost)" } else { "" };
        let percent: Vec<(f64, f64)> = agent.memory.iter().map(|m| (m.t, m.system_percent)).collect();
        let rss: Vec<(f64, f64)> = agent.memory.iter().map(|m| (m.t, m.rss_bytes as f64 / MIB)).collect();
        any |= !percent.is_empty();
        chart
            .draw_series(LineSeries::new(percent.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(format!("{}{lost}: system memory %", agent.name))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        chart
            .draw_secondary_series(DashedLineSeries::new(rss, 10, 6, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(format!("{}{lost}: RSS MiB", agent.name))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 9, y)], color.stroke_width(3)));
    }
    let legend = (!report.agents.is_empty()).then_some(SeriesLabelPosition::UpperLeft);
    finish_time_chart(&root, &mut chart, legend, any, err)
}
