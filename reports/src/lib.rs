//! dropzero-reports: the report model of one scenario run, its pass/fail gates, and the
//! renderers that turn it into `report.json`, `report.md` and `junit.xml`.
//!
//! # Layout
//! - [`model`] — [`Report`] and its records; the only types here that derive `Serialize`.
//! - [`gates`] — [`GateSpec`] (parsed from a scenario's `[gates]` by the harness),
//!   [`evaluate`] and [`all_passed`].
//! - `render/json.rs` — [`render_json`] and [`parse_json`] (for `dropzero report`).
//! - `render/markdown.rs` — [`render_markdown`], readable as a GitHub PR comment.
//! - `render/junit.rs` — [`render_junit`], one testcase per gate.
//! - [`capacity`] — [`CapacityReport`] (`dropzero capacity`: the per-level curve, the knee,
//!   the recommended target value) and `capacity.json`; `render/capacity.rs` renders its
//!   Markdown and JUnit; pinned by `reports/schema/capacity.schema.json`.
//! - `reports/schema/report.schema.json` — the committed JSON Schema of `report.json`,
//!   checked against a rendered report by the tests.
//!
//! # Flow
//! The harness fills a [`Report`], sets `report.gates = evaluate(&specs, &report)`, renders
//! each format into a file it opened, and exits 0 if [`all_passed`], 1 otherwise.
//!
//! # Architecture invariant
//! This crate does no I/O of its own: renderers write to a caller's `impl Write` and parsing
//! reads a `&str`. It knows nothing of tokio, HTTP, the runtime, the target or AWS; it does not
//! see raw samples either — the harness summarizes its histograms before filling the model.

pub mod capacity;
pub mod error;
pub mod gates;
pub mod model;
mod render;

pub use capacity::{
    CAPACITY_SCHEMA, CapacityReport, LevelResult, PeakPlan, Recommendation, Slo,
    parse_capacity_json, render_capacity_json,
};
pub use error::{GateError, ReportError};
pub use gates::{Fraction, GateSpec, all_passed, default_gates, evaluate};
pub use model::*;
pub use render::capacity::{render_capacity_junit, render_capacity_markdown};
pub use render::json::{parse_json, render_json};
pub use render::junit::render_junit;
pub use render::markdown::render_markdown;

/// The committed JSON Schema of `report.json`, for tools that want to ship or check it.
pub const REPORT_SCHEMA: &str = include_str!("../schema/report.schema.json");
