//! The `dropzero capacity` chart: TTFT and ITL p99 against concurrency, the SLO as lines,
//! the knee marked.

use super::frame::{Line, Series, TimeChart, time_chart};
use crate::capacity::CapacityReport;
use crate::error::ReportError;

/// `None` when the sweep has no level.
pub fn capacity(r: &CapacityReport) -> Result<Option<String>, ReportError> {
    let curve = |y: fn(&crate::capacity::LevelResult) -> f64| -> Vec<(f64, f64)> {
        r.levels.iter().map(|l| (l.level as f64, y(l))).collect()
    };
    let mut limits = Vec::new();
    if let Some(v) = r.slo.ttft_p99_ms {
        limits.push(Line {
            label: format!("TTFT p99 SLO {v} ms"),
            value: v,
        });
    }
    if let Some(v) = r.slo.itl_p99_ms {
        limits.push(Line {
            label: format!("ITL p99 SLO {v} ms"),
            value: v,
        });
    }
    let chart = TimeChart {
        title: "Latency p99 against concurrency (one replica)".into(),
        x_desc: "concurrent sessions per replica".into(),
        y_desc: "ms (log)".into(),
        series: vec![
            Series::new("TTFT p99", curve(|l| l.ttft_p99_ms)),
            Series::new("ITL p99", curve(|l| l.itl_p99_ms)),
        ],
        faults: &[],
        limits,
        markers: r
            .knee
            .map(|k| Line {
                label: format!("knee {k}"),
                value: k as f64,
            })
            .into_iter()
            .collect(),
        log_y: true,
    };
    time_chart(&chart)
}
