//! `dropzero compare` on two report.json files: the sample run as the base and a worse
//! candidate, both written with `render_json` and read back with `parse_json` as the
//! command does; the three renderings of the comparison.

use dropzero_reports::*;

use crate::sample;

/// A report as it comes back from a report.json file.
fn through_json(r: &Report) -> Report {
    let mut out = Vec::new();
    render_json(r, &mut out).expect("renders");
    parse_json(std::str::from_utf8(&out).expect("utf-8")).expect("reads back")
}

fn with_latency_timeline(mut r: Report, ttft: f64) -> Report {
    for p in &mut r.timeline {
        p.ttft_p99_ms = Some(ttft + p.t_s);
        p.itl_p99_ms = Some(40.0);
    }
    r
}

/// The base with 3 more drops, TTFT p99 doubled and its gate now failing.
fn worse(base: &Report) -> Report {
    let mut c = base.clone();
    c.run_id = "20250201T120000Z-7".into();
    c.sessions.dropped += 3;
    c.latency.ttft_ms.p99 *= 2.0;
    let gate = c
        .gates
        .iter_mut()
        .find(|g| g.name == "ttft_p99")
        .expect("gate");
    gate.passed = false;
    with_latency_timeline(c, 3000.0)
}

#[test]
fn a_worse_candidate_has_regressions_and_an_identical_one_none() {
    let base = through_json(&with_latency_timeline(sample::report(), 1500.0));
    let same = compare(&base, &through_json(&base), None);
    assert_eq!(same.regressions, 0, "{:#?}", same.metrics);
    assert!(same.metrics.iter().all(|m| m.verdict == Verdict::Same));

    let cand = through_json(&worse(&base));
    let c = compare(&base, &cand, None);
    let verdict = |name: &str| {
        c.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.verdict)
            .expect("metric")
    };
    assert_eq!(verdict("dropped_sessions"), Verdict::Regression);
    assert_eq!(verdict("ttft_p99"), Verdict::Worse);
    assert_eq!(verdict("itl_p99"), Verdict::Same);
    let gate = c.gates.iter().find(|g| g.name == "ttft_p99").expect("gate");
    assert_eq!(
        (gate.base_passed, gate.candidate_passed, gate.verdict),
        (Some(true), Some(false), Verdict::Regression)
    );
    assert_eq!(c.regressions, 2);
    assert!(mismatches(&base, &cand).is_empty());
}

#[test]
fn the_comparison_renders_as_markdown_json_and_html() {
    let mut base = with_latency_timeline(sample::report(), 1500.0);
    base.scenario.name = "<script>alert(1)</script>".into();
    let cand = worse(&base);
    let c = compare(&base, &cand, Some(15.0));

    let mut md = Vec::new();
    render_compare_markdown(&c, &mut md).expect("renders");
    let md = String::from_utf8(md).expect("utf-8");
    assert!(md.contains("❌ 2 regressions"), "{md}");
    assert!(
        md.contains("| dropped_sessions | ↓ | 1 | 4 | +3 | +300.0% | ±0 | regression |"),
        "{md}"
    );
    assert!(!md.contains("<script>"));

    let mut json = Vec::new();
    render_compare_json(&c, &mut json).expect("renders");
    let value: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(value["regressions"], 2);
    assert_eq!(value["noise_pct"], 15.0);
    let schema: serde_json::Value = serde_json::from_str(COMPARE_SCHEMA).expect("schema is JSON");
    jsonschema::draft202012::meta::validate(&schema).expect("schema is valid draft 2020-12");
    let validator = jsonschema::draft202012::new(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "compare.json breaks its schema: {errors:#?}"
    );
    // A field the schema does not know is refused (the schema is closed, like report.json's).
    let mut extra = value.clone();
    extra["surprise"] = serde_json::json!(1);
    assert!(!validator.is_valid(&extra));
    let back: Comparison = serde_json::from_value(value).expect("reads back");
    assert_eq!(back, c);

    let mut html = Vec::new();
    render_compare_html(&c, &base, &cand, &mut html).expect("renders");
    let html = String::from_utf8(html).expect("utf-8");
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, opts).expect("well-formed");
    assert!(doc.descendants().all(|n| !n.has_tag_name("script")));
    let figures: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("figure"))
        .filter_map(|n| n.attribute("id"))
        .collect();
    assert_eq!(figures, ["chart-load", "chart-latency"]);
    // Overlaid: base and candidate series in the latency chart (TTFT and ITL each).
    let legend: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| t.starts_with("base ") || t.starts_with("candidate "))
        .collect();
    for want in [
        "base TTFT p99",
        "candidate TTFT p99",
        "base active sessions",
    ] {
        assert!(
            legend.iter().any(|t| t == want),
            "no {want:?} in {legend:?}"
        );
    }
    let bad_rows = doc
        .descendants()
        .filter(|n| n.has_tag_name("tr") && n.attribute("class") == Some("bad"))
        .count();
    assert!(bad_rows >= 3, "dropped, ttft p99 and the gate are marked");
}
