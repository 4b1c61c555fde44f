//! `dropzero calibrate` end to end: a tiny sweep against the built-in target produces its
//! report with every field a reader relies on, and every session verified to its `done`.
//! No timing is asserted: the numbers are the machine's, only their presence is checked.

use std::process::Command;

use super::support::{dropzero_bin, one_fleet_at_a_time};

#[test]
fn a_tiny_sweep_writes_its_report_with_zero_drops() {
    let _fleet = one_fleet_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let started = std::time::Instant::now();
    // Budgets wide open: a loaded CI box must not end the sweep early; this checks the
    // report, not the box.
    let output = Command::new(dropzero_bin())
        .arg("calibrate")
        .args(["--streams", "20,50", "--tokens-per-second", "20"])
        .args([
            "--session-tokens",
            "20",
            "--step-duration",
            "3s",
            "--ramp",
            "500ms",
        ])
        .args(["--max-itl-error-ms", "10000", "--max-cpu", "100"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("dropzero runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{text}");
    eprintln!("calibrate e2e took {:?}", started.elapsed());
    assert!(
        text.contains("this box drives 50 streams at 20 tokens/s within budget"),
        "{text}"
    );
    assert!(
        text.contains("step 1/2") && text.contains("step 2/2"),
        "{text}"
    );

    let json = std::fs::read_to_string(out.join("calibrate.json")).expect("calibrate.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["verdict"]["streams"], 50, "{json}");
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{json}");
    for (step, streams) in steps.iter().zip([20, 50]) {
        assert_eq!(step["streams"], streams);
        for field in [
            "events_per_s",
            "cpu_cores",
            "cpu_us_per_event",
            "kb_per_stream",
            "itl_p99_ms",
            "itl_error_p50_ms",
            "itl_error_p99_ms",
            "target_cpu_cores",
            "target_gap_error_p99_ms",
            "harness_itl_error_p99_ms",
        ] {
            assert!(step[field].is_number(), "{field} in {step}");
        }
        assert!(step["events"].as_u64().is_some_and(|e| e > 0), "{step}");
        let s = &step["sessions"];
        assert!(s["completed"].as_u64().is_some_and(|c| c >= streams), "{s}");
        for zero in [
            "dropped",
            "failed",
            "not_started",
            "lost_events",
            "duplicated_events",
            "content_mismatches",
            "interruptions",
        ] {
            assert_eq!(s[zero], 0, "{zero} in {s}");
        }
        assert_eq!(step["within_budget"], true, "{step}");
    }
    let md = std::fs::read_to_string(out.join("calibrate.md")).expect("calibrate.md");
    assert!(md.contains("| streams |") && md.contains("| 50 |"), "{md}");
}

#[test]
fn bad_input_is_refused_with_the_flag_named() {
    let output = Command::new(dropzero_bin())
        .args(["calibrate", "--streams", "0"])
        .output()
        .expect("dropzero runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--streams"), "{stderr}");
}
