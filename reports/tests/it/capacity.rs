//! `capacity.json` is pinned by its committed JSON Schema and reads back equal; the Markdown
//! puts the verdict and the Terraform line first; JUnit has one testcase per level.

use dropzero_reports::*;
use serde_json::Value;

fn level(level: u64, ttft_p99_ms: f64, within_slo: bool) -> LevelResult {
    LevelResult {
        level,
        arrival_rate_per_s: level as f64 / 60.0,
        achieved_concurrency: level as f64 * 0.97,
        sessions: level * 5,
        completed: level * 5,
        dropped: 0,
        failed: 0,
        ttft_p50_ms: 700.0,
        ttft_p99_ms,
        itl_p50_ms: 30.0,
        itl_p99_ms: 150.0,
        peak_rss_mb: Some(40 + level),
        within_slo,
        violations: if within_slo {
            Vec::new()
        } else {
            vec![format!("TTFT p99 {ttft_p99_ms:.0} ms > 5000 ms")]
        },
    }
}

/// A sweep whose knee is 16, with a peak plan.
pub fn sample() -> CapacityReport {
    CapacityReport {
        tool_version: "0.1.0".into(),
        run_id: "20250131T120000Z-7".into(),
        started_at: "2025-01-31T12:00:00Z".into(),
        finished_at: "2025-01-31T12:05:00Z".into(),
        scenario: "capacity".into(),
        scenario_file: "scenarios/capacity.toml".into(),
        seed: 7,
        time_scale: 0.1,
        mode: "resilient".into(),
        step_duration_s: 300.0,
        mean_session_s: 60.0,
        slo: Slo {
            ttft_p99_ms: Some(5000.0),
            itl_p99_ms: None,
            max_rss_mb: Some(512),
        },
        levels: vec![
            level(4, 2000.0, true),
            level(8, 2500.0, true),
            level(16, 4000.0, true),
            level(32, 9000.0, false),
        ],
        knee: Some(16),
        recommendation: Some(Recommendation {
            headroom: 0.7,
            target_value: 11,
            scale_out_lag_s: 240.0,
            peak: Some(PeakPlan {
                peak_rate_per_s: 2.0,
                base_rate_per_s: 0.0,
                concurrent_sessions_at_peak: 120.0,
                tasks_at_peak: 11,
                tasks_ahead_of_jump: Some(24),
            }),
        }),
        interrupted: false,
        errors: vec!["a <warning> & more".into()],
        ..CapacityReport::default()
    }
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(CAPACITY_SCHEMA).expect("schema is JSON");
    jsonschema::draft202012::meta::validate(&schema).expect("schema is valid draft 2020-12");
    jsonschema::draft202012::new(&schema).expect("schema compiles")
}

fn rendered(report: &CapacityReport) -> String {
    let mut out = Vec::new();
    render_capacity_json(report, &mut out).expect("renders");
    String::from_utf8(out).expect("utf-8")
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> String {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn capacity_json_matches_the_committed_schema_and_reads_back() {
    let text = rendered(&sample());
    let json: Value = serde_json::from_str(&text).expect("JSON");
    let errors = errors(&validator(), &json);
    assert!(
        errors.is_empty(),
        "capacity.json violates the schema:\n{errors}"
    );
    assert_eq!(parse_capacity_json(&text).expect("reads back"), sample());
}

#[test]
fn a_sweep_without_a_knee_matches_the_schema_too() {
    let mut r = sample();
    r.levels.truncate(1);
    r.levels[0] = level(4, 9000.0, false);
    r.levels[0].peak_rss_mb = None;
    r.knee = None;
    r.recommendation = None;
    r.interrupted = true;
    let json: Value = serde_json::from_str(&rendered(&r)).expect("JSON");
    let errors = errors(&validator(), &json);
    assert!(errors.is_empty(), "{errors}");
}

#[test]
fn schema_rejects_missing_fields_and_unknown_ones() {
    let validator = validator();
    let json: Value = serde_json::from_str(&rendered(&sample())).expect("JSON");
    for pointer in [
        "/knee",
        "/levels/0/ttft_p99_ms",
        "/recommendation/target_value",
    ] {
        let mut broken = json.clone();
        let (parent, field) = pointer.rsplit_once('/').expect("pointer has a parent");
        broken
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("parent is an object")
            .remove(field)
            .expect("field was present");
        assert!(
            !validator.is_valid(&broken),
            "{pointer} removed, still valid"
        );
    }
    let mut extra = json.clone();
    extra["levels"][0]["surprise"] = Value::Bool(true);
    assert!(!validator.is_valid(&extra), "unknown field accepted");
}

#[test]
fn markdown_leads_with_the_verdict_and_the_terraform_line() {
    let mut out = Vec::new();
    render_capacity_markdown(&sample(), &mut out).expect("renders");
    let md = String::from_utf8(out).expect("utf-8");
    let first = md.lines().next().expect("a first line");
    assert!(first.contains("knee at 16"), "{first}");
    let terraform = md.find("target_value = 11").expect("terraform line");
    let table = md.find("| Level |").expect("curve table");
    assert!(terraform < table, "verdict before the curve:\n{md}");
    assert!(
        md.contains("**11 tasks**") && md.contains("**24 tasks**"),
        "{md}"
    );
    assert!(md.contains("| 32 |") && md.contains("❌ TTFT p99"), "{md}");
}

#[test]
fn junit_has_one_testcase_per_level_and_fails_the_broken_one() {
    let mut out = Vec::new();
    render_capacity_junit(&sample(), &mut out).expect("renders");
    let xml = String::from_utf8(out).expect("utf-8");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4);
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|f| f.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap_or_default())
        .collect();
    assert_eq!(failed, ["level 32 sessions"]);
}
