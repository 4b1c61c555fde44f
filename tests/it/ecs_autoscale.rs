//! The ECS target observing the service's own autoscaling: `ecs-autoscale-step.toml`
//! through the ECS emulator, which enacts the scenario's target tracking policy on the
//! service's desiredCount. The harness decides nothing here; it reads Application Auto
//! Scaling's `DescribeScalingActivities` and `DescribeServices`, and the report must show
//! the same story as the local autoscaler's (`autoscale.rs`): scale-outs with their cause,
//! breach → decision → capacity running, a scale-in, nothing dropped.

use super::autoscale::decisions;
use super::shipped::run_as_shipped;

#[test]
fn the_services_own_scaling_activities_give_the_reactions() {
    // At the file's own 0.05, not autoscale.rs's 0.02: the emulator starts a scale-out's
    // tasks one after another (docs/ecs-emulator.md), about a second each on a loaded
    // machine, which at 0.02 is 50 s of scenario time per task. A second scale-out's
    // reaction — 3 more datapoints (3.6 s at 0.02) plus starting four tasks — then cannot
    // fit the 6 minute gate (7.2 s): seen at 7.8 s alone and 13.8 s on a CI machine. At 0.05
    // the same run measured 11.0 s and 9.0 s against 18 s, with its scale-in at 95 s of 120.
    // The 100 ms TTFT keeps the concurrency near the plan, as in autoscale.rs.
    let args = [
        "--set",
        "llm.ttft.median=100ms",
        "--set",
        "llm.ttft.p99=400ms",
    ];
    let run = run_as_shipped("ecs-autoscale-step", "0.05", &args);
    let report = &run.report;
    assert_eq!(report["sessions"]["dropped"], 0, "{}", report["sessions"]);
    let a = &report["autoscaling"];
    let outs = decisions(a, "scale_out");
    assert!(!outs.is_empty(), "the ×4 step must scale out: {a}");
    for d in &outs {
        let reason = d["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("TargetTracking-service/dropzero/agent-runtime-AlarmHigh"),
            "the activity's Cause: {d}"
        );
        assert!(
            d["to"].as_u64() > d["from"].as_u64() && d["to"].as_u64() <= Some(8),
            "{d}"
        );
    }
    let reactions = a["reactions"].as_array().expect("reactions");
    assert_eq!(reactions.len(), outs.len(), "{a}");
    for r in reactions {
        let (breach, decision) = (r["breach_s"].as_f64(), r["decision_s"].as_f64());
        let ready = r["ready_s"].as_f64().expect("the new tasks ran");
        assert!(
            breach <= decision && decision.is_some_and(|d| ready >= d),
            "{r}"
        );
    }
    assert!(
        !decisions(a, "scale_in").is_empty(),
        "the fall must scale in: {a}"
    );
    // DescribeServices' counts are on the timeline, and they followed the activities.
    let points = report["timeline"].as_array().expect("timeline");
    assert!(points.iter().any(|p| p["desired_tasks"].as_u64() > Some(2)));
    assert!(points.iter().any(|p| p["running_tasks"].as_u64() > Some(2)));
    assert!(points.iter().any(|p| p["scaling_metric"].is_f64()));
}
