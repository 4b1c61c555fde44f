//! `report.json`: the machine-readable report, and reading it back for re-rendering.
//!
//! The format is the serde form of [`Report`], pretty-printed with a trailing newline so it
//! diffs well. The committed JSON Schema describes exactly this output.

use std::io::Write;

use crate::error::ReportError;
use crate::model::Report;

/// Writes `report` as pretty JSON. Fails on a non-finite number in the model (a harness bug)
/// or on a write error.
pub fn render_json(report: &Report, out: &mut impl Write) -> Result<(), ReportError> {
    write_pretty(report, &report.run_id, out)
}

/// Pretty JSON with a trailing newline, serialized in memory first so a model error (a
/// non-finite number: a harness bug) never leaves half a file behind. Shared by every JSON
/// output (`report.json`, `capacity.json`); `run_id` names the run in errors.
pub(crate) fn write_pretty<T: serde::Serialize>(
    value: &T,
    run_id: &str,
    out: &mut impl Write,
) -> Result<(), ReportError> {
    let text = serde_json::to_string_pretty(value).map_err(|source| ReportError::Serialize {
        run_id: run_id.to_string(),
        source,
    })?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|source| ReportError::Write {
            format: "json",
            source,
        })
}

/// Reads a `report.json` written by this or a newer dropzero of the same schema version.
/// Unknown fields are ignored (see the `model` docs); missing ones and other schema versions
/// are errors.
pub fn parse_json(text: &str) -> Result<Report, ReportError> {
    serde_json::from_str(text).map_err(ReportError::Parse)
}
