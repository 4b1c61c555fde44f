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

    // The run directory people open, and the files standard tools read.
    let index = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    for link in [
        "report.json",
        "latency.hlog",
        "ttft.hgrm",
        "dropzero.log.jsonl",
    ] {
        assert!(
            index.contains(&format!("href=\"./{link}\"")),
            "index.html links {link}"
        );
    }
    assert!(index.contains("<svg"), "index.html has inline charts");
    // The terminal shows progress and the summary; the harness's log is in the run dir.
    let log = std::fs::read_to_string(out.join("dropzero.log.jsonl")).expect("log file");
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    assert!(log.contains("run starting"), "{log}");
    assert!(
        !stderr.contains(" INFO ") && !stderr.contains(" WARN "),
        "no log lines on the terminal without -v:\n{stderr}"
    );

    compare_against(&out, &report, dir.path());
}

/// `dropzero compare` on a real run: itself (no regression), a copy with drops and a failed
/// gate (a regression, exit 1 with `--fail-on-regression`), another seed (refused, exit 2).
fn compare_against(out: &std::path::Path, report: &serde_json::Value, dir: &std::path::Path) {
    let compare = |base: &std::path::Path, candidate: &std::path::Path, extra: &[&str]| {
        Command::new(dropzero_bin())
            .arg("compare")
            .arg(base)
            .arg(candidate)
            .args(extra)
            .output()
            .expect("dropzero compare runs")
    };
    let same = compare(
        out,
        out,
        &[
            "--fail-on-regression",
            "--out",
            &dir.join("c0").display().to_string(),
        ],
    );
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    for file in ["compare.md", "compare.json", "compare.html"] {
        assert!(dir.join("c0").join(file).exists(), "{file} written");
    }

    let mut worse = report.clone();
    worse["sessions"]["dropped"] = 3.into();
    for g in worse["gates"].as_array_mut().expect("gates") {
        if g["name"] == "dropped_sessions" {
            g["observed"] = 3.into();
            g["passed"] = false.into();
        }
    }
    let worse_path = dir.join("worse.json");
    std::fs::write(&worse_path, worse.to_string()).expect("write");
    let c1 = dir.join("c1").display().to_string();
    let regressed = compare(
        &out.join("report.json"),
        &worse_path,
        &["--fail-on-regression", "--out", &c1],
    );
    let printed = String::from_utf8_lossy(&regressed.stdout);
    assert_eq!(regressed.status.code(), Some(1), "{printed}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("c1").join("compare.json")).expect("compare.json"),
    )
    .expect("compare.json is JSON");
    assert!(json.to_string().contains("regression"), "{json}");

    let mut other = report.clone();
    other["scenario"]["seed"] = (report["scenario"]["seed"].as_u64().unwrap_or(0) + 1).into();
    let other_path = dir.join("other-seed.json");
    std::fs::write(&other_path, other.to_string()).expect("write");
    let refused = compare(&out.join("report.json"), &other_path, &["--out", &c1]);
    let why = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{why}");
    assert!(why.contains("seed"), "says what differs: {why}");
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

/// A plan that starts no session measured nothing about the target: a harness failure
/// (exit 2) that says so, not a gate failure.
#[test]
fn a_load_plan_that_starts_no_session_exits_2_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("idle.toml");
    // 0.001 sessions a second for 30 s: Λ = 0.03, so no arrival is due.
    std::fs::write(
        &path,
        "name = \"idle\"\nduration = \"1m\"\ntime_scale = 0.05\n[target]\nkind = \"local\"\nreplicas = 1\n[load]\nmodel = \"open\"\nstages = [ { rate = 0.001, ramp = \"0s\", hold = \"30s\" } ]\n",
    )
    .expect("write");
    let out = dir.path().join("out");
    let output = run(&path, &out, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("the load plan started no session: open arrivals"),
        "{stderr}"
    );
    assert!(
        out.join("report.json").exists(),
        "the report is still written"
    );
}

/// Long sessions in flight when the duration ends: goose stops starting sessions, the ones in
/// flight get the end grace (the session deadline), and the run ends by duration + grace.
#[test]
fn a_run_with_long_sessions_in_flight_ends_within_duration_and_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("long-sessions.toml");
    // 1.8 s of load; each session asks for ~25–50 tokens from an LLM that gives one a
    // second (LLM speed is never scaled): none can finish before its deadline of
    // 3 × p99 (1.2 s) + 4 × TTFT p99 + 10 s ≈ 14 s, which is also the end grace.
    std::fs::write(
        &scenario,
        r#"
name = "long-sessions"
description = "sessions far longer than the run"
seed = 5
time_scale = 0.01
duration = "3m"

[target]
kind = "local"
replicas = 1
mode = "resilient"
journal = "memory"

[load]
model = "closed"
stages = [ { users = 4, ramp = "0s", hold = "3m" } ]

[sessions]
length = { median = "1m", p99 = "2m" }
tokens_per_second = 40

[llm]
ttft = { median = "20ms", p99 = "20ms" }
itl = { median = "1s", p99 = "1s" }

[gates]
lost_events = 0
"#,
    )
    .expect("write scenario");
    let out = dir.path().join("out");
    let started = std::time::Instant::now();
    let output = run(&scenario, &out, &[]);
    let wall = started.elapsed();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report written"),
    )
    .expect("report parses");
    let s = &report["sessions"];
    // Each of the 4 users ran one session, which outlived the load: no user started another.
    assert_eq!(s["started"].as_u64(), Some(4), "sessions: {s}\n{log}");
    assert_eq!(s["completed"].as_u64(), Some(0), "sessions: {s}");
    // The timeline has a point a second until the run ended: 1.8 s + ~14 s grace.
    let last = report["timeline"]
        .as_array()
        .and_then(|t| t.last())
        .and_then(|p| p["t_s"].as_f64())
        .expect("a timeline");
    assert!(
        (10.0..=1.8 + 14.4 + 2.0).contains(&last),
        "the run's load ended at {last:.1} s (duration 1.8 s + grace ≈ 14.3 s)"
    );
    assert!(
        wall < std::time::Duration::from_secs(60),
        "the command took {wall:?}"
    );
    assert_eq!(report["load"]["goose"]["maximum_users"].as_u64(), Some(4));
}
