//! The chaos scenarios as shipped, run smaller and faster (`--time-scale`, fewer users):
//! naive runtimes must lose sessions to a deploy or a kill (negative controls: the harness
//! sees the failure and exits 1), resilient ones must lose nothing.

use serde_json::Value;

use super::support::{one_fleet_at_a_time, repo_root, run_scenario};

/// Run `scenarios/<name>.toml` at time scale 0.02 (20 simulated minutes in 24 s) with
/// `users` users, plus `extra` flags.
fn run_shipped(name: &str, users: u32, extra: &[&str]) -> (Option<i32>, Value, String) {
    let _fleet = one_fleet_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = repo_root().join("scenarios").join(format!("{name}.toml"));
    let users = format!("load.stages.0.users={users}");
    let mut args = vec!["--time-scale", "0.02", "--set", users.as_str()];
    args.extend_from_slice(extra);
    run_scenario(&scenario, &dir.path().join("out"), &args)
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, found {v}"))
}

/// The single fault of the run, with its drain account.
fn only_fault<'a>(report: &'a Value, action: &str) -> &'a Value {
    let faults = report["faults"].as_array().expect("faults array");
    assert_eq!(faults.len(), 1, "faults: {faults:?}");
    assert_eq!(faults[0]["action"], action);
    assert!(
        faults[0]["ended_s"].is_number(),
        "fault finished: {}",
        faults[0]
    );
    &faults[0]
}

#[test]
fn naive_rolling_deploy_drops_sessions_and_fails() {
    let (code, report, log) = run_shipped("rolling-deploy-naive", 20, &[]);
    assert_eq!(code, Some(1), "{log}");
    let dropped = u(&report["sessions"]["dropped"]);
    assert!(dropped > 0, "sessions: {}", report["sessions"]);
    let fault = only_fault(&report, "deploy");
    // Every drop happened because the deploy stopped the replica serving it.
    assert_eq!(u(&fault["dropped"]), dropped, "fault: {fault}");
    let stops = fault["stops"].as_array().expect("stops");
    assert_eq!(
        stops.len(),
        3,
        "all three v1 replicas were replaced: {fault}"
    );
    let severed: u64 = stops.iter().map(|s| u(&s["severed"])).sum();
    assert!(
        severed > 0,
        "naive replicas exit at SIGTERM with sessions in flight: {fault}"
    );
    assert_eq!(fault["started_replicas"].as_array().map(Vec::len), Some(3));
    let versions: Vec<&str> = report["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .filter_map(|r| r["version"].as_str())
        .collect();
    assert_eq!(versions, ["v1", "v1", "v1", "v2", "v2", "v2"]);
}

#[test]
fn naive_kill_drops_the_killed_replicas_sessions_and_fails() {
    let (code, report, log) = run_shipped("task-kill-naive", 20, &[]);
    assert_eq!(code, Some(1), "{log}");
    let dropped = u(&report["sessions"]["dropped"]);
    assert!(dropped > 0, "sessions: {}", report["sessions"]);
    let fault = only_fault(&report, "kill");
    assert_eq!(u(&fault["dropped"]), dropped, "fault: {fault}");
    let stop = &fault["stops"][0];
    assert_eq!(stop["exit"], "signal 9 (SIGKILL)", "{fault}");
    assert!(u(&stop["severed"]) > 0, "{fault}");
    // The service scheduler's replacement.
    assert_eq!(fault["started_replicas"].as_array().map(Vec::len), Some(1));
}
