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
//! - `render/html.rs` — [`render_html`]: `index.html`, gates, inline SVG charts, tables,
//!   links to the run's other files (`render/html_page.rs` holds the page building blocks).
//! - [`compare`] — [`Comparison`]: two reports in, per-metric deltas and verdicts out
//!   (`dropzero compare`); rendered by `render/compare.rs`.
//! - [`charts`] — SVG charts (plotters) of a report and of a capacity sweep.
//! - [`capacity`] — [`CapacityReport`] (`dropzero capacity`: the per-level curve, the knee,
//!   the recommended target value) and `capacity.json`; `render/capacity.rs` renders its
//!   Markdown and JUnit (`render/capacity_html.rs` its `index.html`); pinned by
//!   `reports/schema/capacity.schema.json`.
//! - [`ecs`] — [`EcsReport`]: deployments, tasks and service events of an ECS target.
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
pub mod charts;
pub mod compare;
pub mod ecs;
pub mod error;
pub mod gates;
pub mod model;
mod render;

pub use capacity::{
    CAPACITY_SCHEMA, CapacityReport, LevelResult, PeakPlan, Recommendation, Slo,
    parse_capacity_json, render_capacity_json,
};
pub use compare::{Comparison, Verdict, compare, mismatches};
pub use ecs::{EcsDeployment, EcsEvent, EcsReport, EcsTask};
pub use error::{GateError, ReportError};
pub use gates::{Fraction, GateSpec, all_passed, default_gates, evaluate};
pub use model::*;
pub use render::capacity::{render_capacity_junit, render_capacity_markdown};
pub use render::capacity_html::render_capacity_html;
pub use render::compare::{render_compare_html, render_compare_json, render_compare_markdown};
pub use render::html::render_html;
pub use render::json::{parse_json, render_json};
pub use render::junit::render_junit;
pub use render::markdown::render_markdown;

/// The committed JSON Schema of `report.json`, for tools that want to ship or check it.
pub const REPORT_SCHEMA: &str = include_str!("../schema/report.schema.json");

/// The committed JSON Schema of `compare.json` (what `dropzero compare` writes).
pub const COMPARE_SCHEMA: &str = include_str!("../schema/compare.schema.json");
