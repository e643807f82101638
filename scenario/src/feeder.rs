//! Feeders: rows of data (a CSV shipped with the plan) that templates read as
//! `{{feeder.column}}`. Each session takes one row of each feeder it uses when it
//! starts: `circular` (rank modulo rows), `random`, or `unique` (rank r takes row r,
//! so no two sessions of the run share a row on any agent).

use std::sync::Arc;

use wsload_proto::pb::{self, FeederMode};

/// A feeder ready to hand out rows.
#[derive(Debug, Clone)]
pub struct Feeder {
    /// Name used in templates.
    pub name: String,
    /// Column names.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    rows: Vec<Arc<[Arc<str>]>>,
    /// How rows are handed out.
    pub mode: FeederMode,
}

/// A feeder that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FeederError(pub String);

impl Feeder {
    /// Checks and converts the wire form.
    pub fn compile(f: &pb::Feeder) -> Result<Feeder, FeederError> {
        if f.name.is_empty()
            || !f
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(FeederError(format!(
                "feeder name `{}` must be letters, digits, _ or -",
                f.name
            )));
        }
        if f.columns.is_empty() {
            return Err(FeederError(format!("feeder `{}` has no columns", f.name)));
        }
        if f.rows.is_empty() {
            return Err(FeederError(format!("feeder `{}` has no rows", f.name)));
        }
        let mut rows = Vec::with_capacity(f.rows.len());
        for (i, r) in f.rows.iter().enumerate() {
            if r.values.len() != f.columns.len() {
                return Err(FeederError(format!(
                    "feeder `{}` row {} has {} values for {} columns",
                    f.name,
                    i + 1,
                    r.values.len(),
                    f.columns.len()
                )));
            }
            rows.push(r.values.iter().map(|v| Arc::<str>::from(v.as_str())).collect());
        }
        Ok(Feeder {
            name: f.name.clone(),
            columns: f.columns.clone(),
            rows,
            mode: FeederMode::try_from(f.mode).unwrap_or(FeederMode::Circular),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the feeder has no rows (never true once compiled).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row of the session with `rank` in its scenario.
    pub fn row(&self, rank: u64, rng: &mut fastrand::Rng) -> Arc<[Arc<str>]> {
        let n = self.rows.len();
        let i = match self.mode {
            FeederMode::Random => rng.usize(..n),
            // Unique: validation made sure rank < rows.
            FeederMode::Unique | FeederMode::Circular | FeederMode::Unspecified => {
                usize::try_from(rank % n as u64).unwrap_or(0)
            }
        };
        self.rows[i].clone()
    }
}
