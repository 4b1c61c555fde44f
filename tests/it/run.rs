//! `dropzero run` end to end against a local fleet: exit codes and the report files.

use std::process::Command;

use super::support::{dropzero_bin, repo_root, small_scenario};

fn run(scenario: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let _fleet = super::support::one_fleet_at_a_time();
    Command::new(dropzero_bin())
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(extra)
        .current_dir(repo_root())
        .output()
        .expect("dropzero runs")
}

#[test]
fn steady_resilient_run_passes_with_a_schema_valid_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = small_scenario(
        dir.path(),
        "resilient",
        "sqlite",
        "dropped_sessions = 0\nttft_p99 = \"30s\"",
    );
    let out = dir.path().join("out");
    let output = run(&scenario, &out, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_str(&text).expect("report.json is JSON");
    let schema: serde_json::Value =
        serde_json::from_str(dropzero_reports::REPORT_SCHEMA).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:?}");

    let s = &report["sessions"];
    assert!(s["completed"].as_u64().unwrap_or(0) > 0, "sessions: {s}");
    assert_eq!(s["dropped"], 0, "sessions: {s}");
    assert_eq!(report["events"]["lost"], 0);
    assert_eq!(report["events"]["duplicated"], 0);
    assert_eq!(report["events"]["content_mismatches"], 0);
    assert!(
        report["tokens"]["billed_output"].as_u64().unwrap_or(0) > 0,
        "tokens: {}",
        report["tokens"]
    );
    assert!(report["latency"]["ttft_ms"]["count"].as_u64().unwrap_or(0) > 0);
    for file in ["report.md", "junit.xml", "sessions.jsonl"] {
        assert!(out.join(file).exists(), "{file} written");
    }
    let lines = std::fs::read_to_string(out.join("sessions.jsonl")).expect("sessions.jsonl");
    assert!(lines.lines().count() as u64 >= s["completed"].as_u64().unwrap_or(0));
}

#[test]
fn an_impossible_gate_fails_the_run_with_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No real stack produces a first token within a microsecond.
    let scenario = small_scenario(dir.path(), "resilient", "memory", "ttft_p99 = \"1us\"");
    let out = dir.path().join("out");
    let output = run(
        &scenario,
        &out,
        &[
            "--set",
            "duration=\"3m\"",
            "--set",
            "load.stages.0.hold=\"2m\"",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
    assert!(junit.contains("<failure"), "junit has a failure: {junit}");
}

#[test]
fn a_broken_scenario_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "name = \"broken\"\nseed = 1\nduration = \"1m\"\n\n[target]\nkind = \"local\"\nmode = \"resillient\"\n",
    )
    .expect("write");
    let output = run(&path, &dir.path().join("out"), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("broken.toml:7"),
        "names file and line: {stderr}"
    );
    assert!(stderr.contains("mode"), "names the field: {stderr}");
    assert!(
        stderr.contains("resilient"),
        "says what is allowed: {stderr}"
    );
}
