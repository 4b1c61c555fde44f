//! The emulated ECS autoscaler end to end: the shipped autoscaling scenarios at a smaller
//! time scale. It must scale out on a load step and back in when it falls, report reaction
//! times, and never stop a replica that is running sessions (scale-in protection).

use serde_json::Value;

use super::support::{one_fleet_at_a_time, repo_root, run_scenario};

fn run_shipped(name: &str, time_scale: &str) -> (Option<i32>, Value, String) {
    let _fleet = one_fleet_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = repo_root().join("scenarios").join(format!("{name}.toml"));
    run_scenario(
        &scenario,
        &dir.path().join("out"),
        &["--time-scale", time_scale],
    )
}

fn decisions<'a>(a: &'a Value, action: &str) -> Vec<&'a Value> {
    a["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter(|d| d["action"] == action)
        .collect()
}

#[test]
fn a_load_step_scales_out_then_back_in_with_measured_reactions() {
    let (code, report, log) = run_shipped("autoscale-step", "0.02");
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(report["sessions"]["dropped"], 0, "{}", report["sessions"]);
    let a = &report["autoscaling"];
    let outs = decisions(a, "scale_out");
    assert!(!outs.is_empty(), "the ×4 step must scale out: {a}");
    for d in &outs {
        assert!(d["to"].as_u64() > d["from"].as_u64(), "{d}");
        assert!(d["to"].as_u64() <= Some(8), "max holds: {d}");
    }
    let reactions = a["reactions"].as_array().expect("reactions");
    assert_eq!(reactions.len(), outs.len());
    for r in reactions {
        let (breach, decision) = (r["breach_s"].as_f64(), r["decision_s"].as_f64());
        let ready = r["ready_s"].as_f64().expect("capacity got ready");
        // Three datapoints pass between the breach and the decision.
        let datapoint = a["datapoint_s"].as_f64().expect("datapoint length");
        assert!(
            decision.unwrap_or(0.0) - breach.unwrap_or(0.0) >= 3.0 * datapoint - 0.3,
            "{r}"
        );
        assert!(ready >= decision.unwrap_or(f64::MAX), "{r}");
    }
    assert!(
        !decisions(a, "scale_in").is_empty(),
        "15 datapoints under 90% of the target after the step: {a}"
    );
    assert_eq!(a["scale_in_cut_sessions"], 0, "{a}");
    // The timeline carries the autoscaler's view every second.
    let points = report["timeline"].as_array().expect("timeline");
    assert!(points.iter().all(|p| p["desired_tasks"].is_u64()));
    assert!(points.iter().any(|p| p["running_tasks"].as_u64() > Some(2)));
}

#[test]
fn scale_in_waits_for_protected_replicas_and_cuts_no_session() {
    let (code, report, log) = run_shipped("scale-in-during-sessions", "0.02");
    assert_eq!(code, Some(0), "{log}");
    let a = &report["autoscaling"];
    assert!(!decisions(a, "scale_in").is_empty(), "{a}");
    assert!(a["scale_ins"].as_u64() > Some(0), "{a}");
    assert_eq!(a["scale_in_cut_sessions"], 0, "{a}");
    assert_eq!(report["sessions"]["dropped"], 0, "{}", report["sessions"]);
}
