//! The emulated ECS autoscaler end to end: the shipped autoscaling scenarios at a smaller
//! time scale. It must scale out on a load step and back in when it falls, report reaction
//! times, and never stop a replica that is running sessions (scale-in protection).

use serde_json::Value;

use super::shipped::run_as_shipped;

/// Run a shipped scenario at `time_scale`; its declared `[expect]` verdict is checked.
///
/// The LLM's TTFT is real time, never scaled (700 ms median in these files), so at 0.02 a
/// one-minute session (1.2 s of tokens) lasts 1.9 s and more on a loaded machine: the fleet
/// holds 2–4× the sessions the file plans, scales out before the step and cannot come back
/// below 90% of the target in time to scale in before the run ends (seen on a CI machine).
/// A 100 ms TTFT keeps the concurrency nearer the plan; the autoscaler's timing is what
/// is tested. `extra` adds per-test overrides.
fn run_shipped(name: &str, time_scale: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec![
        "--set",
        "llm.ttft.median=100ms",
        "--set",
        "llm.ttft.p99=400ms",
    ];
    args.extend_from_slice(extra);
    let run = run_as_shipped(name, time_scale, &args);
    (run.code, run.report, run.log)
}

/// The autoscaling section's decisions of one `action` (`scale_out`, `scale_in`, `blocked`).
pub(super) fn decisions<'a>(a: &'a Value, action: &str) -> Vec<&'a Value> {
    a["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter(|d| d["action"] == action)
        .collect()
}

#[test]
fn a_load_step_scales_out_then_back_in_with_measured_reactions() {
    // Scale-in needs 15 datapoints (18 s wall at 0.02) under 90% of the target once the
    // step's sessions have drained; 10 more real minutes at the base rate leave room for
    // it on a slow machine (seen at 40 of 48 s here, later on CI).
    let longer = ["--set", "duration=50m", "--set", "load.stages.2.hold=34m"];
    let (code, report, log) = run_shipped("autoscale-step", "0.02", &longer);
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
    let (code, report, log) = run_shipped("scale-in-during-sessions", "0.02", &[]);
    assert_eq!(code, Some(0), "{log}");
    let a = &report["autoscaling"];
    assert!(!decisions(a, "scale_in").is_empty(), "{a}");
    assert!(a["scale_ins"].as_u64() > Some(0), "{a}");
    assert_eq!(a["scale_in_cut_sessions"], 0, "{a}");
    assert_eq!(report["sessions"]["dropped"], 0, "{}", report["sessions"]);
}
