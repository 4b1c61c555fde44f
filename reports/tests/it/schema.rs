//! `report.json` is pinned by the committed JSON Schema, and reads back into an equal report.

use dropzero_reports::*;
use serde_json::Value;

use crate::sample;

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(REPORT_SCHEMA).expect("schema is JSON");
    jsonschema::draft202012::meta::validate(&schema).expect("schema is valid draft 2020-12");
    jsonschema::draft202012::new(&schema).expect("schema compiles")
}

fn rendered(report: &Report) -> String {
    let mut out = Vec::new();
    render_json(report, &mut out).expect("renders");
    String::from_utf8(out).expect("utf-8")
}

/// Every validation error, one per line, so a failing test says what to fix.
fn errors(validator: &jsonschema::Validator, instance: &Value) -> String {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sample_report_matches_the_committed_schema() {
    let json: Value = serde_json::from_str(&rendered(&sample::report())).expect("JSON");
    let errors = errors(&validator(), &json);
    assert!(
        errors.is_empty(),
        "report.json violates the schema:\n{errors}"
    );
}

#[test]
fn soak_report_with_a_repeated_fault_and_peak_rss_matches_the_schema() {
    let json: Value = serde_json::from_str(&rendered(&sample::soak_report())).expect("JSON");
    let errors = errors(&validator(), &json);
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(json["fault_series"][0]["ran"], 100);
    assert_eq!(json["faults"][100]["repeat"]["index"], 99);
    assert_eq!(json["survivor_peak_rss_mb"], 38);
}

#[test]
fn empty_report_matches_the_schema_too() {
    // Defaults are what a run that failed early writes: still a valid report.
    let mut report = Report {
        run_id: "r".into(),
        ..Report::default()
    };
    report.scenario.name = "s".into();
    report.scenario.time_scale = 1.0;
    report.gates = evaluate(&[], &report);
    let json: Value = serde_json::from_str(&rendered(&report)).expect("JSON");
    let errors = errors(&validator(), &json);
    assert!(errors.is_empty(), "{errors}");
}

#[test]
fn schema_rejects_a_report_missing_a_required_field() {
    let validator = validator();
    let mut json: Value = serde_json::from_str(&rendered(&sample::report())).expect("JSON");
    for pointer in [
        "/sessions/dropped",
        "/latency/ttft_ms/p99",
        "/gates/0/passed",
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
    json.as_object_mut()
        .expect("object")
        .remove("schema_version");
    assert!(!validator.is_valid(&json));
}

#[test]
fn schema_rejects_fields_the_model_does_not_have() {
    let mut json: Value = serde_json::from_str(&rendered(&sample::report())).expect("JSON");
    json["tokens"]["surprise"] = Value::from(1);
    assert!(!validator().is_valid(&json));
}

#[test]
fn json_round_trips() {
    let report = sample::report();
    let text = rendered(&report);
    assert!(text.ends_with("}\n"));
    assert_eq!(parse_json(&text).expect("parses"), report);
}

#[test]
fn parse_ignores_unknown_fields_from_newer_writers() {
    let mut json: Value = serde_json::from_str(&rendered(&sample::report())).expect("JSON");
    json["added_in_a_later_release"] = Value::from("ignored");
    json["sessions"]["new_outcome"] = Value::from(3);
    let report = parse_json(&json.to_string()).expect("parses");
    assert_eq!(report, sample::report());
}

#[test]
fn parse_rejects_other_schema_versions_and_missing_fields() {
    let mut json: Value = serde_json::from_str(&rendered(&sample::report())).expect("JSON");
    json["schema_version"] = Value::from("2");
    let err = parse_json(&json.to_string()).expect_err("version 2 is unknown");
    assert!(err.to_string().contains("schema_version"), "{err}");

    json["schema_version"] = Value::from("1");
    json["events"]
        .as_object_mut()
        .expect("object")
        .remove("lost");
    let err = parse_json(&json.to_string()).expect_err("lost is required");
    assert!(err.to_string().contains("lost"), "{err}");
}

#[test]
fn non_finite_numbers_are_an_error_not_null() {
    let mut report = sample::report();
    report.latency.itl_ms.p99 = f64::NAN;
    let mut out = Vec::new();
    let err = render_json(&report, &mut out).expect_err("NaN is not JSON");
    assert!(matches!(err, ReportError::Serialize { .. }), "{err}");
    assert!(out.is_empty(), "nothing written on error");
}
