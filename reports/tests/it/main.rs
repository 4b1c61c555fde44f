//! Integration tests of dropzero-reports through its public API, in one test binary.

/// `capacity.json` against its committed schema; capacity Markdown and JUnit.
mod capacity;
/// SVG charts of the sample report.
mod charts;
/// `compare` of two report.json files and its renderings.
mod compare;
/// `index.html` of the sample report.
mod html;
/// Markdown and JUnit output of the sample report.
mod render;
/// A realistic report of a rolling deploy, shared by the other modules.
mod sample;
/// `report.json` against the committed JSON Schema, and the JSON round trip.
mod schema;
