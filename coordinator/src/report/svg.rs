//! Inline SVG line charts for `report.html`: no script, no external reference, and
//! readable for long runs (more than [`MAX_POINTS`] seconds are bucketed keeping each
//! bucket's maximum, so a peak is never lost).

use std::fmt::Write as _;

/// Points drawn per series at most.
pub const MAX_POINTS: usize = 600;
const COLORS: [&str; 7] = [
    "#1f6feb", "#d9480f", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#e03131",
];
const W: f64 = 640.0;
const H: f64 = 220.0;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend.
    pub name: String,
    /// One value per x.
    pub values: Vec<f64>,
}

/// `xs` and `series` bucketed to at most [`MAX_POINTS`], each bucket keeping its max.
pub fn downsample(xs: &[f64], series: &[Series]) -> (Vec<f64>, Vec<Series>) {
    let per = xs.len().div_ceil(MAX_POINTS).max(1);
    let ox = xs.iter().step_by(per).copied().collect();
    let os = series
        .iter()
        .map(|s| Series {
            name: s.name.clone(),
            values: s
                .values
                .chunks(per)
                .map(|c| c.iter().copied().fold(0.0, f64::max))
                .collect(),
        })
        .collect();
    (ox, os)
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    let r = v / p;
    let n = if r <= 1.0 {
        1.0
    } else if r <= 2.0 {
        2.0
    } else if r <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * p
}

fn label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An `<svg>` line chart with `id`, axis labels formatted by `x_label`.
pub fn line_chart(id: &str, xs: &[f64], series: &[Series], x_label: impl Fn(f64) -> String) -> String {
    let (xs, series) = downsample(xs, series);
    let (l, r, t, b) = (52.0, 10.0, 20.0, 22.0);
    let (w, h) = (W - l - r, H - t - b);
    let min_x = xs.first().copied().unwrap_or(0.0);
    let span = (xs.last().copied().unwrap_or(1.0) - min_x).max(1.0);
    let max_y = nice_max(series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0, f64::max));
    let x = |v: f64| l + w * (v - min_x) / span;
    let y = |v: f64| t + h - h * v / max_y;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\">"
    );
    for i in 0..=4 {
        let v = max_y * f64::from(i) / 4.0;
        let _ = write!(
            o,
            "<line x1=\"{l}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e6e9ed\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - r,
            y(v),
            y(v),
            l - 4.0,
            y(v) + 4.0,
            label(v)
        );
        let xv = min_x + span * f64::from(i) / 4.0;
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(xv),
            H - 5.0,
            esc(&x_label(xv))
        );
    }
    for (k, s) in series.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        let pts: Vec<String> = xs
            .iter()
            .zip(&s.values)
            .map(|(a, v)| format!("{:.1},{:.1}", x(*a), y(*v)))
            .collect();
        if !pts.is_empty() {
            let _ = write!(
                o,
                "<polyline class=\"series\" fill=\"none\" stroke=\"{c}\" stroke-width=\"1.6\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
        let lx = l + 6.0 + 100.0 * k as f64;
        let _ = write!(
            o,
            "<rect x=\"{lx}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{c}\"/><text x=\"{}\" y=\"13\">{}</text>",
            lx + 14.0,
            esc(&s.name)
        );
    }
    if xs.is_empty() {
        let _ = write!(
            o,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">no data</text>",
            l + w / 2.0,
            t + h / 2.0
        );
    }
    o.push_str("</svg>");
    o
}

/// `m:ss` of a second count.
pub fn clock(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_every_peak() {
        let xs: Vec<f64> = (0..1800).map(f64::from).collect();
        let mut values = vec![1.0; 1800];
        values[1234] = 99.0;
        let (ox, os) = downsample(
            &xs,
            &[Series {
                name: "a".into(),
                values,
            }],
        );
        assert_eq!(ox.len(), 600);
        assert_eq!(os[0].values.len(), 600);
        assert_eq!(os[0].values.iter().copied().fold(0.0, f64::max), 99.0);
    }

    #[test]
    fn a_chart_has_one_polyline_per_series() {
        let s = line_chart(
            "c",
            &[0.0, 1.0, 2.0],
            &[
                Series {
                    name: "a<b".into(),
                    values: vec![1.0, 2.0, 3.0],
                },
                Series {
                    name: "b".into(),
                    values: vec![0.0, 0.0, 1.0],
                },
            ],
            clock,
        );
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("a&lt;b"));
        assert!(line_chart("e", &[], &[], clock).contains("no data"));
    }
}
