//! The time charts of one run, each a pure function of the [`Report`]: load, latency p99
//! per second, interruptions and drops per second, replicas, autoscaling. Each returns
//! `None` when the timeline holds nothing for it.
//!
//! What the timeline does not hold is not invented: a report written before the timeline
//! had per-second resume latency gets the run's resume p99 as a reference line instead, and
//! the replicas chart shows versions only when the run had more than one (a deploy).

use super::frame::{Line, Series, TimeChart, time_chart};
use crate::error::ReportError;
use crate::model::{Report, TimelinePoint};

fn points(r: &Report, y: impl Fn(&TimelinePoint) -> Option<f64>) -> Vec<(f64, f64)> {
    r.timeline
        .iter()
        .filter_map(|p| y(p).map(|v| (p.t_s, v)))
        .collect()
}

/// Series that are all zero (or absent) carry no information; dropping them lets a chart
/// whose every series is flat at zero be omitted.
fn nonzero(series: Vec<Series>) -> Vec<Series> {
    series
        .into_iter()
        .filter(|s| s.points.iter().any(|p| p.1 != 0.0))
        .collect()
}

fn frame<'a>(r: &'a Report, title: &str, y_desc: &str, series: Vec<Series>) -> TimeChart<'a> {
    TimeChart {
        title: title.into(),
        x_desc: "run time (s)".into(),
        y_desc: y_desc.into(),
        series,
        faults: &r.faults,
        ..TimeChart::default()
    }
}

/// Active sessions and tokens per second over the run.
pub fn load(r: &Report) -> Result<Option<String>, ReportError> {
    time_chart(&frame(
        r,
        "Load",
        "sessions · tokens/s ÷ 10",
        load_series(r, ""),
    ))
}

/// The load series, with a label prefix (`base ` / `candidate ` in a comparison). Tokens
/// per second are divided by 10 so both fit one linear axis; the legend says so.
pub fn load_series(r: &Report, prefix: &str) -> Vec<Series> {
    nonzero(vec![
        Series::new(
            format!("{prefix}active sessions"),
            points(r, |p| Some(p.active_sessions as f64)),
        ),
        Series::new(
            format!("{prefix}tokens/s ÷ 10"),
            points(r, |p| Some(p.tokens_per_s / 10.0)),
        ),
    ])
}

/// TTFT and ITL p99 per second on a log axis, with the latency gates as lines.
pub fn latency(r: &Report) -> Result<Option<String>, ReportError> {
    let mut chart = frame(
        r,
        "Latency p99 per second",
        "ms (log)",
        latency_series(r, ""),
    );
    chart.log_y = true;
    chart.limits = latency_limits(r);
    let per_second = r.timeline.iter().any(|p| p.resume_p99_ms.is_some());
    if !per_second && r.latency.resume_ms.count > 0 && !chart.series.is_empty() {
        chart.limits.push(Line {
            label: format!("resume p99 over the run {:.0} ms", r.latency.resume_ms.p99),
            value: r.latency.resume_ms.p99,
        });
    }
    time_chart(&chart)
}

/// TTFT, ITL and resume p99 per second. Resumes happen in bursts, so their series is
/// dotted: a line alone would invent values for the seconds between the bursts.
pub fn latency_series(r: &Report, prefix: &str) -> Vec<Series> {
    vec![
        Series::new(format!("{prefix}TTFT p99"), points(r, |p| p.ttft_p99_ms)),
        Series::new(format!("{prefix}ITL p99"), points(r, |p| p.itl_p99_ms)),
        Series::new(
            format!("{prefix}resume p99"),
            points(r, |p| p.resume_p99_ms),
        )
        .dotted(),
    ]
    .into_iter()
    .filter(|s| !s.points.is_empty())
    .collect()
}

/// The latency gates of the report (`ttft_p99`, `itl_p99`, `resume_p99`) as limit lines.
pub fn latency_limits(r: &Report) -> Vec<Line> {
    r.gates
        .iter()
        .filter(|g| g.unit == "ms" && g.name.ends_with("_p99"))
        .map(|g| Line {
            label: format!("{} gate {} ms", g.name, g.threshold),
            value: g.threshold,
        })
        .collect()
}

/// Streams interrupted and resumed, sessions dropped and completed, per second.
pub fn activity(r: &Report) -> Result<Option<String>, ReportError> {
    let series = nonzero(vec![
        Series::new(
            "interruptions/s",
            points(r, |p| Some(p.interruptions as f64)),
        ),
        Series::new("resumes/s", points(r, |p| Some(p.resumes as f64))),
        Series::new("drops/s", points(r, |p| Some(p.drops as f64))),
        Series::new("completed/s", points(r, |p| Some(p.completed as f64))),
    ]);
    time_chart(&frame(
        r,
        "Interruptions, resumes, drops, completions",
        "per second",
        series,
    ))
}

/// Replicas ready and draining, the desired / running task counts where known, and during
/// a deploy the replicas of each version.
pub fn replicas(r: &Report) -> Result<Option<String>, ReportError> {
    let mut series = vec![
        Series::new("ready", points(r, |p| Some(f64::from(p.replicas_ready)))),
        Series::new(
            "draining",
            points(r, |p| Some(f64::from(p.replicas_draining))),
        ),
        Series::new("desired", points(r, |p| p.desired_tasks.map(f64::from))),
        Series::new("running", points(r, |p| p.running_tasks.map(f64::from))),
    ];
    let versions: std::collections::BTreeSet<&String> =
        r.timeline.iter().flat_map(|p| p.versions.keys()).collect();
    if versions.len() > 1 {
        series.extend(versions.into_iter().map(|v| {
            Series::new(
                format!("{v} replicas"),
                points(r, |p| {
                    Some(f64::from(p.versions.get(v).copied().unwrap_or(0)))
                }),
            )
        }));
    }
    time_chart(&frame(r, "Replicas", "replicas", nonzero(series)))
}

/// The autoscaling metric against its target, desired vs running, each decision marked.
/// Only when the report has an autoscaling section.
pub fn autoscaling(r: &Report) -> Result<Option<String>, ReportError> {
    let Some(a) = &r.autoscaling else {
        return Ok(None);
    };
    let series = vec![
        Series::new(
            format!("{} per task", a.metric),
            points(r, |p| p.scaling_metric),
        ),
        Series::new("desired", points(r, |p| p.desired_tasks.map(f64::from))),
        Series::new("running", points(r, |p| p.running_tasks.map(f64::from))),
    ];
    let mut chart = frame(r, "Autoscaling", "metric · tasks", series);
    chart.limits = vec![Line {
        label: format!("target {}", a.target_value),
        value: a.target_value,
    }];
    chart.markers = a
        .decisions
        .iter()
        .map(|d| Line {
            label: format!("{} {}→{}", d.action, d.from, d.to),
            value: d.t_s,
        })
        .collect();
    chart.series.retain(|s| !s.points.is_empty());
    time_chart(&chart)
}
