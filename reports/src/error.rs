//! Errors of this crate: reading and writing reports, and building gate thresholds.
//!
//! Not for harness errors (scenario files, fleets): those live in the harness and may wrap
//! these.

use std::io;

/// Rendering or parsing a report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `report.json` is not a report this build can read: bad JSON, a missing field, a wrong
    /// type, or an unknown `schema_version`. The message carries serde's line and column.
    #[error("cannot read report.json: {0}")]
    Parse(#[source] serde_json::Error),
    /// The report could not be serialized, e.g. a NaN in a number field (a harness bug).
    #[error("cannot serialize report (run {run_id}): {source}")]
    Serialize {
        run_id: String,
        #[source]
        source: serde_json::Error,
    },
    /// Drawing a chart failed (plotters refused a coordinate or an element).
    #[error("cannot draw chart {chart:?}: {message}")]
    Chart { chart: String, message: String },
    /// Writing a rendered report to its destination failed.
    #[error("cannot write {format} report: {source}")]
    Write {
        format: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A gate threshold is not acceptable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    /// Ratios are fractions of a whole, written as 0.02 for 2 %.
    #[error("{value} is not a fraction: expected a number from 0.0 to 1.0 (e.g. 0.02 for 2%)")]
    NotAFraction { value: f64 },
}
