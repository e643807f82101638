//! `latency-histogram.png`: the whole-run RTT distribution (merged over agents).
//!
//! Bars are linear buckets from the minimum to the p99.9 value; the slower tail is
//! folded into the last bar, whose legend says how many samples it holds.

use std::path::Path;

use plotters::prelude::*;

use super::charts::{chart_err, no_data, tick, y_top, CHART_SIZE, PALETTE};
use super::font::FAMILY;
use super::model::{LatencyHistogram, LatencyStats};
use super::ReportError;

/// Number of bars.
pub const BUCKETS: usize = 60;

/// Bucketed view of a histogram, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Lower edge of the first bar, ms.
    pub lo_ms: f64,
    /// Width of each bar, ms.
    pub width_ms: f64,
    /// Samples per bar; the last also holds everything above p99.9.
    pub counts: Vec<u64>,
    /// Samples above p99.9 folded into the last bar.
    pub tail: u64,
}

/// Buckets `h` linearly between its minimum and p99.9; `None` when empty.
pub fn buckets(h: &LatencyHistogram) -> Option<Buckets> {
    let stats = LatencyStats::from_histogram(h)?;
    let lo = stats.min as f64;
    let hi = (stats.p999 as f64).max(lo + 1.0);
    let width = (hi - lo) / BUCKETS as f64;
    let mut counts = vec![0u64; BUCKETS];
    let mut tail = 0;
    for v in h.iter_recorded() {
        let value = h.median_equivalent(v.value_iterated_to()) as f64;
        let n = v.count_at_value();
        if value > hi {
            tail += n;
        }
        let idx = (((value - lo) / width).floor().max(0.0) as usize).min(BUCKETS - 1);
        counts[idx] += n;
    }
    Some(Buckets {
        lo_ms: lo / 1000.0,
        width_ms: width / 1000.0,
        counts,
        tail,
    })
}

/// Draws the histogram chart of `h` to `path`.
pub fn draw(path: &Path, file: &str, h: &LatencyHistogram) -> Result<(), ReportError> {
    let err = chart_err(file);
    let root = BitMapBackend::new(path, CHART_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let b = buckets(h);
    let stats = LatencyStats::from_histogram(h);
    let (x0, x1, y_max) = match &b {
        Some(b) => (
            b.lo_ms,
            b.lo_ms + b.width_ms * BUCKETS as f64,
            y_top(b.counts.iter().copied().max().unwrap_or(0) as f64),
        ),
        None => (0.0, 1.0, 1.0),
    };
    let title = match &stats {
        Some(s) => format!("RTT distribution, whole run ({} responses)", s.count),
        None => "RTT distribution, whole run".to_owned(),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 30).into_font())
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(100)
        .build_cartesian_2d(x0..x1, 0f64..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("RTT from intended send (ms)")
        .y_desc("Responses")
        .x_label_formatter(&tick(x1 - x0))
        .y_label_formatter(&tick(y_max))
        .label_style((FAMILY, 18))
        .axis_desc_style((FAMILY, 20))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| err(&e))?;
    match (&b, &stats) {
        (Some(b), Some(s)) => {
            let bar = PALETTE[0];
            chart
                .draw_series(b.counts.iter().enumerate().map(|(i, &n)| {
                    let left = b.lo_ms + b.width_ms * i as f64;
                    Rectangle::new([(left, 0.0), (left + b.width_ms, n as f64)], bar.filled())
                }))
                .map_err(|e| err(&e))?
                .label(if b.tail > 0 {
                    format!("responses (last bar includes {} above p99.9)", b.tail)
                } else {
                    "responses".to_owned()
                })
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], bar.filled()));
            for (name, value, color) in [("p50", s.p50, PALETTE[2]), ("p99", s.p99, PALETTE[1])] {
                let x = value as f64 / 1000.0;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, 0.0), (x, y_max)],
                        color.stroke_width(2),
                    )))
                    .map_err(|e| err(&e))?
                    .label(format!("{name} = {x:.3} ms"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font((FAMILY, 18))
                .draw()
                .map_err(|e| err(&e))?;
        }
        _ => no_data(&chart.plotting_area().strip_coord_spec()).map_err(|e| err(&e))?,
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
