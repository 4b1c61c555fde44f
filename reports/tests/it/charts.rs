//! Charts drawn from the sample report: each SVG parses, shades and labels the fault
//! window, has the expected series, and is left out when it has no data.

use dropzero_reports::charts::{self, Chart};
use dropzero_reports::*;

use crate::sample;

/// The sample with per-second p99s and an autoscaler's view in its timeline.
fn report() -> Report {
    let mut r = sample::report();
    for p in &mut r.timeline {
        p.ttft_p99_ms = Some(600.0 + p.t_s * 10.0);
        p.itl_p99_ms = (p.t_s > 5.0).then_some(40.0 + p.t_s);
        p.desired_tasks = Some(if p.t_s < 33.0 { 3 } else { 5 });
        p.running_tasks = Some(if p.t_s < 35.0 { 3 } else { 5 });
        p.scaling_metric = Some(p.active_sessions as f64 / 3.0);
    }
    r
}

fn chart<'a>(charts: &'a [Chart], id: &str) -> &'a Chart {
    charts
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id} chart among {:?}", ids(charts)))
}

fn ids(charts: &[Chart]) -> Vec<&str> {
    charts.iter().map(|c| c.id).collect()
}

/// The palette's first colours as plotters writes them (`charts::frame::PALETTE`).
const SERIES: [&str; 6] = [
    "#1F77B4", "#2CA02C", "#FF7F0E", "#9467BD", "#8C564B", "#17BECF",
];
const FAULT_FILL: &str = "#FFA500";

fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("SVG does not parse: {e}"))
}

/// Series lines: polylines stroked in a palette colour (axes and ticks are black).
fn series_strokes(doc: &roxmltree::Document<'_>) -> Vec<String> {
    let mut strokes: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter_map(|n| n.attribute("stroke"))
        .filter(|s| SERIES.contains(s))
        .map(String::from)
        .collect();
    strokes.sort();
    strokes.dedup();
    strokes
}

fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect()
}

/// Fault bands: `(x, width)` of every rect filled with the fault colour.
fn bands(doc: &roxmltree::Document<'_>) -> Vec<(f64, f64)> {
    let num = |n: roxmltree::Node<'_, '_>, a: &str| -> f64 {
        n.attribute(a)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    doc.descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(FAULT_FILL))
        .map(|n| (num(n, "x"), num(n, "width")))
        .collect()
}

#[test]
fn every_time_chart_shades_and_labels_each_fault_window() {
    let mut r = report();
    let mut second = r.faults[0].clone();
    second.action = "kill".into();
    (second.started_s, second.ended_s) = (50.0, Some(54.0));
    r.faults.push(second);
    let charts = charts::report_charts(&r).expect("draws");
    for id in ["load", "latency", "activity", "replicas", "autoscaling"] {
        let doc = parse(&chart(&charts, id).svg);
        let b = bands(&doc);
        assert_eq!(b.len(), 2, "{id}: one band per fault, got {b:?}");
        // Widths in proportion to the windows' durations (23.69 s and 4 s), and the later
        // fault further right.
        let ratio = b[0].1 / b[1].1;
        let expected = (41.7 - 18.01) / 4.0;
        assert!(
            (ratio / expected - 1.0).abs() < 0.05,
            "{id}: width ratio {ratio}"
        );
        assert!(b[1].0 > b[0].0 + b[0].1, "{id}: {b:?}");
        let t = texts(&doc);
        for label in ["#1 deploy", "#2 kill"] {
            assert!(t.iter().any(|s| s == label), "{id}: no {label:?} in {t:?}");
        }
    }
}

#[test]
fn each_chart_draws_its_series() {
    let charts = charts::report_charts(&report()).expect("draws");
    assert_eq!(
        ids(&charts),
        [
            "load",
            "latency",
            "activity",
            "replicas",
            "autoscaling",
            "faults",
            "percentiles"
        ]
    );
    // load: active sessions, tokens/s. latency: TTFT, ITL, resume. activity: interruptions,
    // resumes, drops, completions. replicas: ready, draining, desired, running, v1, v2.
    // autoscaling: metric, desired, running. percentiles: TTFT, ITL, resume, takeover.
    for (id, n) in [
        ("load", 2),
        ("latency", 3),
        ("activity", 4),
        ("replicas", 6),
        ("autoscaling", 3),
        ("percentiles", 4),
    ] {
        let doc = parse(&chart(&charts, id).svg);
        assert_eq!(series_strokes(&doc).len(), n, "{id}");
    }
}

#[test]
fn latency_chart_draws_the_latency_gates_and_autoscaling_its_decisions() {
    let charts = charts::report_charts(&report()).expect("draws");
    let t = texts(&parse(&chart(&charts, "latency").svg));
    for label in ["ttft_p99 gate 5000 ms", "itl_p99 gate 250 ms"] {
        assert!(t.iter().any(|s| s == label), "no {label:?} in {t:?}");
    }
    // Per-second resume p99 in the timeline: a dotted series, not the run's line.
    assert!(t.iter().any(|s| s == "resume p99"), "{t:?}");
    let latency = parse(&chart(&charts, "latency").svg);
    assert!(
        latency.descendants().any(|n| n.has_tag_name("circle")),
        "the resume series has a dot per second with resumes"
    );
    assert!(!t.iter().any(|s| s.starts_with("resume p99 over")), "{t:?}");
    let mut older = report();
    older
        .timeline
        .iter_mut()
        .for_each(|p| p.resume_p99_ms = None);
    let charts = charts::report_charts(&older).expect("draws");
    let t = texts(&parse(&chart(&charts, "latency").svg));
    assert!(
        t.iter().any(|s| s.starts_with("resume p99 over the run")),
        "{t:?}"
    );
    let t = texts(&parse(&chart(&charts, "autoscaling").svg));
    for label in ["scale_out 3→5", "target 20"] {
        assert!(t.iter().any(|s| s == label), "no {label:?} in {t:?}");
    }
}

#[test]
fn fault_bars_have_one_bar_per_fault_and_quantity() {
    let r = report();
    let charts = charts::report_charts(&r).expect("draws");
    let doc = parse(&chart(&charts, "faults").svg);
    // interrupted, resumed, dropped (3 palette colours) and wasted USD (the 4th), one bar
    // each for the single fault, plus one legend swatch per quantity.
    for colour in &SERIES[..4] {
        let bars = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(*colour))
            .count();
        assert_eq!(bars, 2, "{colour}: a bar and a legend swatch");
    }
    assert!(texts(&doc).iter().any(|s| s == "#1 deploy"));
}

#[test]
fn charts_without_data_are_left_out() {
    let mut r = sample::report();
    r.faults.clear();
    r.autoscaling = None;
    r.latency = Latencies::default();
    for p in &mut r.timeline {
        (p.interruptions, p.drops, p.completed, p.resumes) = (0, 0, 0, 0);
        p.resume_p99_ms = None;
    }
    let charts = charts::report_charts(&r).expect("draws");
    // No per-second p99s, no faults, no autoscaler, no latency samples, no activity.
    assert_eq!(ids(&charts), ["load", "replicas"]);
    assert!(
        charts::report_charts(&Report::default())
            .expect("draws")
            .is_empty()
    );
}

#[test]
fn strings_from_the_report_are_escaped_in_the_svg() {
    let mut r = report();
    r.faults[0].action = "<script>alert(1)</script>&".into();
    let charts = charts::report_charts(&r).expect("draws");
    let doc = parse(&chart(&charts, "load").svg);
    assert!(doc.descendants().all(|n| !n.has_tag_name("script")));
    assert!(
        texts(&doc)
            .iter()
            .any(|s| s == "#1 <script>alert(1)</script>&")
    );
}

#[test]
fn capacity_chart_has_both_curves_the_slo_and_the_knee() {
    let svg = charts::capacity(&crate::capacity::sample())
        .expect("draws")
        .expect("has levels");
    let doc = parse(&svg);
    assert_eq!(series_strokes(&doc).len(), 2);
    let t = texts(&doc);
    for label in ["TTFT p99 SLO 5000 ms", "knee 16"] {
        assert!(t.iter().any(|s| s == label), "no {label:?} in {t:?}");
    }
    let empty = CapacityReport::default();
    assert_eq!(charts::capacity(&empty).expect("draws"), None);
}

#[test]
fn a_fault_outside_the_sampled_seconds_is_still_drawn() {
    let mut r = report();
    // Started and ended after the last timeline point (60 s).
    (r.faults[0].started_s, r.faults[0].ended_s) = (65.0, Some(75.0));
    let charts = charts::report_charts(&r).expect("draws");
    let doc = parse(&chart(&charts, "load").svg);
    let b = bands(&doc);
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(
        b[0].1 > 0.0 && b[0].0 + b[0].1 <= 860.0,
        "band inside the chart: {b:?}"
    );
    assert!(texts(&doc).iter().any(|s| s == "#1 deploy"));
}

#[test]
fn the_spectrum_is_drawn_on_a_nines_axis_and_falls_back_to_summary_points() {
    let r = report();
    let charts = charts::report_charts(&r).expect("draws");
    let t = texts(&parse(&chart(&charts, "percentiles").svg));
    for label in ["90%", "99%", "99.9%", "percentile"] {
        assert!(t.iter().any(|s| s == label), "no {label:?} in {t:?}");
    }
    // A report.json from before spectra: p50 / p90 / p99 / max as categories.
    let mut older = report();
    for s in [
        &mut older.latency.ttft_ms,
        &mut older.latency.itl_ms,
        &mut older.latency.resume_ms,
        &mut older.latency.takeover_ms,
    ] {
        s.spectrum.clear();
    }
    let charts = charts::report_charts(&older).expect("draws");
    let t = texts(&parse(&chart(&charts, "percentiles").svg));
    for label in ["p50", "p99", "max"] {
        assert!(t.iter().any(|s| s == label), "no {label:?} in {t:?}");
    }
}
