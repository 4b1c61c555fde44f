//! The ECS target end to end through the ECS emulator the harness starts: the shipped ECS
//! scenarios (UpdateService rolling deploy, StopTask) lose nothing on resilient tasks and
//! drop sessions on naive ones — each drop attributed to a task and the fault — as their
//! local twins do (`chaos.rs`); a deployment of a revision whose tasks never start ends
//! FAILED; a halt condition stops the run early; the guard rail refuses a service the
//! scenario did not name.

use serde_json::Value;

use super::shipped::run_as_shipped;
use super::support::{one_fleet_at_a_time, repo_root, run_scenario};

/// 20 users at time scale 0.02 (20 simulated minutes in 24 s), as the chaos tests.
const SMALL: [&str; 2] = ["--set", "load.stages.0.users=20"];

fn count(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, found {v}"))
}

/// A shipped ECS scenario with extra flags, not held to its `[expect]` (for variants).
fn run_variant(name: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let _fleet = one_fleet_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = repo_root().join("scenarios").join(format!("{name}.toml"));
    let mut args = vec!["--time-scale", "0.02"];
    args.extend_from_slice(&SMALL);
    args.extend_from_slice(extra);
    run_scenario(&scenario, &dir.path().join("out"), &args)
}

fn lossless(report: &Value, log: &str) {
    let s = &report["sessions"];
    assert_eq!(count(&s["dropped"]), 0, "sessions: {s}\n{log}");
    assert!(count(&s["completed"]) > 0, "sessions: {s}");
    let e = &report["events"];
    for key in ["lost", "duplicated", "content_mismatches"] {
        assert_eq!(count(&e[key]), 0, "events: {e}");
    }
}

fn only_fault<'a>(report: &'a Value, action: &str) -> &'a Value {
    let faults = report["faults"].as_array().expect("faults");
    assert_eq!(
        faults.len(),
        1,
        "faults: {faults:?}; halted: {}",
        report["halted"]
    );
    assert_eq!(faults[0]["action"], action);
    &faults[0]
}

/// report.json of an ECS run matches the committed schema (ECS section, ECS stop kinds).
fn schema_valid(report: &Value) {
    let schema: Value =
        serde_json::from_str(dropzero_reports::REPORT_SCHEMA).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report.json violates the schema: {errors:?}"
    );
}

fn ecs(report: &Value) -> &Value {
    schema_valid(report);
    let ecs = &report["ecs"];
    assert_eq!(ecs["endpoint"], "emulator", "{ecs}");
    assert_eq!(
        ecs["service_arn"],
        "arn:aws:ecs:us-east-1:123456789012:service/dropzero/agent-runtime"
    );
    ecs
}

#[test]
fn a_rolling_deploy_through_update_service_loses_nothing() {
    let run = run_as_shipped("ecs-rolling-deploy", "0.02", &SMALL);
    lossless(&run.report, &run.log);
    assert!(
        run.log
            .contains("ECS target: account 123456789012, region us-east-1"),
        "the run names what it acts on\n{}",
        run.log
    );
    let fault = only_fault(&run.report, "deploy");
    let notes = fault["notes"].to_string();
    assert!(
        notes.contains("COMPLETED"),
        "deployment outcome in the notes: {notes}"
    );
    let stops = fault["stops"].as_array().expect("stops");
    assert_eq!(stops.len(), 3, "every old task stopped: {fault}");
    for stop in stops {
        assert_eq!(stop["how"], "ecs:UpdateService", "{stop}");
        assert!(
            stop["exit"]
                .as_str()
                .is_some_and(|e| e.starts_with("ServiceSchedulerInitiated")),
            "ECS's stop code for a deployment: {stop}"
        );
    }
    assert_eq!(fault["started_replicas"].as_array().map(Vec::len), Some(3));
    let ecs = ecs(&run.report);
    let deployments = ecs["deployments"].as_array().expect("deployments");
    let done: Vec<&Value> = deployments
        .iter()
        .filter(|d| {
            d["rollout_state"] == "COMPLETED" && d["created_s"].as_f64().unwrap_or(-1.0) > 0.0
        })
        .collect();
    assert_eq!(
        done.len(),
        1,
        "the deploy's deployment completed: {deployments:?}"
    );
    let took =
        done[0]["updated_s"].as_f64().unwrap_or(0.0) - done[0]["created_s"].as_f64().unwrap_or(0.0);
    assert!(took > 0.0, "a deployment duration: {}", done[0]);
    // The timeline carries the service's desired count, and maximum_percent = 200 let the
    // new tasks run before the old ones stopped (from the tasks' own start and stop times).
    let points = run.report["timeline"].as_array().expect("timeline");
    assert!(
        points.iter().all(|p| p["desired_tasks"] == 3),
        "desired 3 throughout"
    );
    let tasks = ecs["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 6, "3 old and 3 new tasks: {tasks:?}");
    let first_stop = tasks
        .iter()
        .filter_map(|t| t["stopped_s"].as_f64())
        .fold(f64::MAX, f64::min);
    let started_before = tasks
        .iter()
        .filter(|t| {
            t["started_s"]
                .as_f64()
                .is_some_and(|s| s > 0.0 && s < first_stop)
        })
        .count();
    assert_eq!(
        started_before, 3,
        "all new tasks ran before the first old one stopped: {tasks:?}"
    );
}

#[test]
fn stop_task_on_resilient_tasks_drops_nothing() {
    let run = run_as_shipped("ecs-task-kill", "0.02", &SMALL);
    lossless(&run.report, &run.log);
    let fault = only_fault(&run.report, "kill");
    let stops = fault["stops"].as_array().expect("stops");
    assert_eq!(stops.len(), 1, "{fault}");
    let exit = stops[0]["exit"].as_str().unwrap_or_default();
    assert!(
        exit.starts_with("UserInitiated: dropzero: scenario ecs-task-kill, fault 0 (kill)"),
        "StopTask's code and our reason: {exit}"
    );
    let tasks = ecs(&run.report)["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 4, "3 tasks and the replacement: {tasks:?}");
}

#[test]
fn naive_tasks_drop_sessions_each_attributed_to_a_task_and_the_deploy() {
    let (code, report, log) = run_variant(
        "ecs-rolling-deploy",
        &[
            "--set",
            "target.emulator.mode=naive",
            // In-memory sessions need ALB stickiness, as in rolling-deploy-naive.toml.
            "--set",
            "target.emulator.router.stickiness=true",
            // Let the deploy run to the end: no halt.
            "--set",
            "halt.dropped_sessions=100000",
            "--set",
            "halt.min_sessions=100000",
        ],
    );
    assert_eq!(code, Some(1), "{log}");
    let dropped = count(&report["sessions"]["dropped"]);
    assert!(dropped > 0, "{}", report["sessions"]);
    let fault = only_fault(&report, "deploy");
    assert_eq!(
        count(&fault["dropped"]),
        dropped,
        "every drop is the deploy's: {fault}"
    );
    let task_ids: Vec<&str> = ecs(&report)["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["task_id"].as_str())
        .collect();
    let stops = fault["stops"].as_array().expect("stops");
    let cut: u64 = stops.iter().map(|s| count(&s["severed"])).sum();
    assert!(
        cut > 0,
        "clients saw streams cut on the stopped tasks: {fault}"
    );
    for stop in stops {
        let task = stop["replica"].as_str().expect("task id");
        assert!(task_ids.contains(&task) && task.len() == 32, "{task}");
    }
}

#[test]
fn a_revision_whose_tasks_never_start_fails_the_deployment_and_rolls_back() {
    let (code, report, log) = run_variant(
        "ecs-rolling-deploy",
        &[
            "--set",
            "faults.0.task_definition=agent-runtime:2",
            "--set",
            "target.emulator.broken_revisions=[2]",
            "--set",
            "target.emulator.circuit_breaker={ rollback = true }",
            "--set",
            "gates.failed_deployments=0",
        ],
    );
    let fault = only_fault(&report, "deploy");
    let notes = fault["notes"].to_string();
    assert!(
        notes.contains("FAILED"),
        "the fault says the deployment failed: {notes}\n{log}"
    );
    let deployments = ecs(&report)["deployments"].as_array().expect("deployments");
    assert!(
        deployments
            .iter()
            .any(|d| d["rollout_state"] == "FAILED" && d["task_definition"] == "agent-runtime:2"),
        "{deployments:?}"
    );
    // The old tasks kept serving: nothing lost, and the circuit breaker rolled back.
    lossless(&report, &log);
    assert!(
        deployments
            .iter()
            .any(|d| d["task_definition"] == "agent-runtime:1"
                && d["created_s"].as_f64().unwrap_or(-1.0) > 0.0),
        "a rollback deployment to revision 1: {deployments:?}"
    );
    // The sessions survived, but a deployment that never rolled out is what
    // `failed_deployments` is there to catch: the run fails on that gate alone.
    let failed: Vec<&Value> = report["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .filter(|g| g["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["name"], "failed_deployments");
    assert_eq!(failed[0]["observed"], 1.0, "{}", failed[0]);
    assert_eq!(code, Some(1), "{log}");
}

#[test]
fn a_halt_condition_stops_faults_and_load_early() {
    let (code, report, log) = run_variant(
        "ecs-rolling-deploy",
        &[
            "--set",
            "target.emulator.mode=naive",
            "--set",
            "target.emulator.router.stickiness=true",
            "--set",
            "halt.dropped_sessions=0",
        ],
    );
    assert_eq!(code, Some(1), "{log}");
    let halted = report["halted"].as_str().unwrap_or_default();
    assert!(halted.contains("sessions dropped"), "{halted}\n{log}");
    assert!(log.contains("HALTED:"), "the summary says so\n{log}");
    // It was the deploy's drops that broke the budget; the fault was cut short.
    let fault = only_fault(&report, "deploy");
    assert!(count(&fault["dropped"]) > 0, "{fault}");
    // Stopped early: well before the scenario's 24 s (+ grace) of wall time.
    let last = report["timeline"]
        .as_array()
        .and_then(|t| t.last())
        .and_then(|p| p["t_s"].as_f64())
        .unwrap_or(f64::MAX);
    assert!(last < 22.0, "last timeline point at {last} s");
}

#[test]
fn the_guard_rail_refuses_a_service_the_scenario_did_not_name() {
    let (code, _report, log) = run_variant(
        "ecs-rolling-deploy",
        &[
            "--set",
            "target.service_arn=arn:aws:ecs:us-east-1:999999999999:service/dropzero/agent-runtime",
        ],
    );
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("refusing to run faults")
            && log.contains("arn:aws:ecs:us-east-1:123456789012:service/dropzero/agent-runtime"),
        "{log}"
    );
}
