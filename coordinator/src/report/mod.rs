//! Run report: the [`model`] contract and the writers for `results.txt`,
//! `results.json`, `timeseries.csv`, `report.html` and the PNG charts.
//!
//! The coordinator builds a [`RunReport`] and calls [`write_all`]; the individual
//! renderers are public too so the CLI can print the text summary or serve the JSON.

pub mod charts;
pub mod csv;
mod font;
pub mod format;
pub mod histogram_chart;
pub mod html;
pub mod json;
pub mod memory_chart;
pub mod model;
pub mod saturation;
pub mod step_charts;
pub mod svg;
pub mod text;

use std::path::{Path, PathBuf};

pub use model::*;

/// File name of the text summary.
pub const RESULTS_TXT: &str = "results.txt";
/// File name of the JSON report (schema: `docs/results-schema.json`).
pub const RESULTS_JSON: &str = "results.json";
/// File name of the self-contained HTML report.
pub const REPORT_HTML: &str = "report.html";
/// File name of the per-second CSV.
pub const TIMESERIES_CSV: &str = "timeseries.csv";

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output directory or a file in it could not be created or written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// `results.json` could not be serialised.
    #[error("cannot serialise results.json: {0}")]
    Json(#[from] serde_json::Error),
    /// The embedded chart font was rejected by the font renderer.
    #[error("the embedded chart font could not be loaded")]
    Font,
    /// A chart could not be drawn or encoded.
    #[error("cannot draw {file}: {message}")]
    Chart {
        /// Chart file name, e.g. `percentiles-chart.png`.
        file: String,
        /// The plotting library's message.
        message: String,
    },
}

/// Writes every artefact into `out_dir` (created if missing) and returns their paths:
/// `results.txt`, `results.json`, `timeseries.csv`, `report.html`, then the charts in
/// [`charts::chart_files`] order.
pub fn write_all(report: &RunReport, out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut written = vec![
        write_file(out_dir, RESULTS_TXT, &text::render(report))?,
        write_file(out_dir, RESULTS_JSON, &json::render(report)?)?,
        write_file(out_dir, TIMESERIES_CSV, &csv::render(report))?,
        write_file(out_dir, REPORT_HTML, &html::render(report))?,
    ];
    written.extend(charts::write_charts(report, out_dir)?);
    Ok(written)
}

/// Writes `dir/name` through a temporary file and a rename, so a reader that polls for
/// the file (a script waiting for `results.json`) never sees it half written.
fn write_file(dir: &Path, name: &str, content: &str) -> Result<PathBuf, ReportError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |source| ReportError::Io {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, content).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}
