//! SVG charts of a report, drawn with plotters' SVG backend: pure functions of the report
//! model that return an SVG document as a `String` (no file, no font, no I/O).
//!
//! # Layout
//! - `frame.rs` — the shared time chart: series, fault windows shaded and labelled, limit
//!   lines (gates) and markers (decisions).
//! - `time.rs` — load, latency p99 per second, activity, replicas, autoscaling.
//! - `bars.rs` — per-fault cost, the latency percentile spectrum.
//! - `capacity.rs` — the capacity sweep's curve with the SLO and the knee.
//!
//! Every chart function returns `Ok(None)` when it has no data: an empty chart is left out.

mod bars;
mod capacity;
mod frame;
mod time;

pub use capacity::capacity;
pub use frame::{Line, Series, TimeChart, fault_label, time_chart};

use crate::error::ReportError;
use crate::model::Report;

/// One drawn chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// A stable identifier, usable as an HTML id or a file stem (`load`, `latency`, ...).
    pub id: &'static str,
    pub title: &'static str,
    /// A complete `<svg>` document.
    pub svg: String,
}

type ChartFn = fn(&Report) -> Result<Option<String>, ReportError>;

/// Every chart of a run, in reading order.
const CHARTS: [(&str, &str, ChartFn); 7] = [
    ("load", "Load", time::load),
    ("latency", "Latency p99 per second", time::latency),
    (
        "activity",
        "Interruptions, drops, completions",
        time::activity,
    ),
    ("replicas", "Replicas", time::replicas),
    ("autoscaling", "Autoscaling", time::autoscaling),
    ("faults", "Cost of each fault", bars::faults),
    ("percentiles", "Latency percentiles", bars::spectrum),
];

/// Draws every chart that has data, in reading order.
pub fn report_charts(report: &Report) -> Result<Vec<Chart>, ReportError> {
    let mut out = Vec::new();
    for (id, title, draw) in CHARTS {
        if let Some(svg) = draw(report)? {
            out.push(Chart { id, title, svg });
        }
    }
    Ok(out)
}

/// The load and latency charts of two runs overlaid (base faint, candidate solid), for
/// `compare.html`. Fault windows are the candidate's.
pub fn overlay_charts(base: &Report, candidate: &Report) -> Result<Vec<Chart>, ReportError> {
    let mut out = Vec::new();
    let faint = |mut s: Vec<Series>| {
        s.iter_mut().for_each(|s| s.faint = true);
        s
    };
    let mut load = time::load_series(base, "base ");
    load = faint(load);
    load.extend(time::load_series(candidate, "candidate "));
    let chart = TimeChart {
        title: "Load: base vs candidate".into(),
        x_desc: "run time (s)".into(),
        y_desc: "sessions · tokens/s ÷ 10".into(),
        series: load,
        faults: &candidate.faults,
        ..TimeChart::default()
    };
    if let Some(svg) = time_chart(&chart)? {
        out.push(Chart {
            id: "load",
            title: "Load",
            svg,
        });
    }
    let mut latency = faint(time::latency_series(base, "base "));
    latency.extend(time::latency_series(candidate, "candidate "));
    let chart = TimeChart {
        title: "Latency p99 per second: base vs candidate".into(),
        x_desc: "run time (s)".into(),
        y_desc: "ms (log)".into(),
        series: latency,
        faults: &candidate.faults,
        limits: time::latency_limits(candidate),
        log_y: true,
        ..TimeChart::default()
    };
    if let Some(svg) = time_chart(&chart)? {
        out.push(Chart {
            id: "latency",
            title: "Latency p99 per second",
            svg,
        });
    }
    Ok(out)
}
