//! `dropzero capacity` end to end: a tiny sweep against a mock LLM that slows down past
//! `max_concurrent` finds the knee the mock's model predicts.

use std::process::Command;

use super::support::{dropzero_bin, repo_root, whole_machine};

/// Why the knee is 4: the mock stretches every TTFT and token gap by
/// `1 + load_factor × (open − max_concurrent) / max_concurrent` once more than
/// `max_concurrent` (4) LLM streams are open (`runtime/src/mock/latency.rs`). Latencies are
/// constant here (median = p99), so an unstretched session's TTFT (planner call + first
/// worker's TTFT, ≈ 2.9 s at a 50 ms gap) is the same for every session. A session mostly
/// holds one stream (planner, then workers), so up to 4 concurrent sessions the stretch is
/// rare and small (measured p99 ≈ 4.6 s, 1.6 × base at level 4), while at 8 sessions ≈ 8
/// streams are open: × (1 + 2 × 4/4) = 3 → p99 ≈ 9–13 s. The 7.5 s SLO sits between the two
/// (2.6 × base), so level 4 passes and level 8 breaks: knee = 4 = max_concurrent.
/// Little's law is calibrated by the measured session length after the first step (the
/// planner call makes sessions ≈ 3.5 s, not the planned 2 s), so achieved ≈ level.
const SCENARIO: &str = r#"
name = "cap-test"
description = "capacity e2e: a mock LLM that slows down past 4 concurrent streams"
seed = 5
time_scale = 1.0
duration = "1m"

[target]
kind = "local"
replicas = 1
mode = "resilient"
journal = "memory"
router = { health_check_interval = "200ms", healthy_threshold = 1 }

[load]
model = "open"
arrival = "constant"
stages = [ { rate = 1.0, ramp = "0s", hold = "1m" } ]

[sessions]
length = { median = "2s", p99 = "2s" }
tokens_per_second = 20

[llm]
ttft = { median = "100ms", p99 = "100ms" }
max_concurrent = 4
load_factor = 2.0

[gates]
ttft_p99 = "7500ms"
"#;

#[test]
fn capacity_sweep_finds_the_knee_the_mock_queue_predicts() {
    let _fleet = whole_machine();
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("cap-test.toml");
    std::fs::write(&scenario, SCENARIO).expect("write scenario");
    let out = dir.path().join("out");
    let output = Command::new(dropzero_bin())
        .arg("capacity")
        .arg(&scenario)
        .args([
            "--levels",
            "2,4,8,16",
            "--step-duration",
            "8s",
            "--peak-rate",
            "1",
        ])
        .arg("--out")
        .arg(&out)
        .current_dir(repo_root())
        .output()
        .expect("dropzero runs");
    let log = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{log}");

    let text = std::fs::read_to_string(out.join("capacity.json")).expect("capacity.json");
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let schema: serde_json::Value =
        serde_json::from_str(dropzero_reports::CAPACITY_SCHEMA).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:?}");

    assert_eq!(report["knee"], 4, "{log}");
    let levels: Vec<u64> = report["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| l["level"].as_u64().expect("level"))
        .collect();
    assert_eq!(
        levels,
        [2, 4, 8],
        "the sweep stops at the first level outside the SLO"
    );
    assert_eq!(report["levels"][2]["within_slo"], false);
    // floor(4 × 0.7) = 2.
    assert_eq!(report["recommendation"]["target_value"], 2);
    let md = std::fs::read_to_string(out.join("capacity.md")).expect("capacity.md");
    assert!(md.contains("target_value = 2"), "{md}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
    assert_eq!(junit.matches("<testcase ").count(), 3, "{junit}");
}
