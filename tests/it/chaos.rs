//! The chaos scenarios as shipped, run smaller and faster (`--time-scale`, fewer users):
//! naive runtimes must lose sessions to a deploy or a kill (negative controls: the harness
//! sees the failure and exits 1), resilient ones must lose nothing.

use serde_json::Value;

use super::shipped::run_as_shipped;
use super::support::{one_fleet_at_a_time, run_scenario};

/// Run `scenarios/<name>.toml` at time scale 0.02 (20 simulated minutes in 24 s) with
/// `users` users, plus `extra` flags; its declared `[expect]` verdict is checked.
fn run_shipped(name: &str, users: u32, extra: &[&str]) -> (Option<i32>, Value, String) {
    let users = format!("load.stages.0.users={users}");
    let mut args = vec!["--set", users.as_str()];
    args.extend_from_slice(extra);
    let run = run_as_shipped(name, "0.02", &args);
    (run.code, run.report, run.log)
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

/// Resilient runs must lose nothing: exit 0, no drop, no lost or duplicated event, every
/// digest matching.
fn assert_lossless(code: Option<i32>, report: &Value, log: &str) {
    assert_eq!(code, Some(0), "{log}");
    let s = &report["sessions"];
    assert_eq!(u(&s["dropped"]), 0, "sessions: {s}");
    assert!(u(&s["completed"]) > 0, "sessions: {s}");
    let e = &report["events"];
    assert_eq!(
        (
            u(&e["lost"]),
            u(&e["duplicated"]),
            u(&e["content_mismatches"])
        ),
        (0, 0, 0),
        "events: {e}"
    );
}

#[test]
fn resilient_rolling_deploy_hands_sessions_off_and_loses_nothing() {
    let (code, report, log) = run_shipped("rolling-deploy", 20, &[]);
    assert_lossless(code, &report, &log);
    let fault = only_fault(&report, "deploy");
    let stops = fault["stops"].as_array().expect("stops");
    assert_eq!(stops.len(), 3, "{fault}");
    for stop in stops {
        // Every session in flight at SIGTERM either finished or was handed off; none cut.
        assert_eq!(u(&stop["severed"]), 0, "{stop}");
        assert_eq!(
            u(&stop["finished_during_drain"]) + u(&stop["handed_off"]),
            u(&stop["in_flight_at_signal"]),
            "{stop}"
        );
        assert_eq!(stop["exit"], "exit 0", "{stop}");
        assert_eq!(stop["sigkill"], false, "{stop}");
    }
    // The timeline shows the versions trade places: v1 only, both during the deploy, v2 only.
    let versions: Vec<Vec<&str>> = report["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|p| {
            let v = p["versions"].as_object().expect("versions per second");
            v.keys().map(String::as_str).collect()
        })
        .collect();
    for want in [vec!["v1"], vec!["v1", "v2"], vec!["v2"]] {
        assert!(
            versions.contains(&want),
            "no second with {want:?}: {versions:?}"
        );
    }
    let handed_off: u64 = stops.iter().map(|s| u(&s["handed_off"])).sum();
    if handed_off > 0 {
        // Handed-off sessions were picked up by a new replica and their clients saw it.
        assert!(
            fault["takeover_ms"]["count"].as_u64().unwrap_or(0) > 0,
            "{fault}"
        );
    }
}

/// A kill -9 loses only what was generated and not yet journaled: with prefill continuation
/// that is at most a few tokens per LLM call running at the kill (the runtime's own test
/// bounds it at 11 per running step); the prompts of the interrupted calls are billed again.
fn assert_kill_survived(code: Option<i32>, report: &Value, log: &str) {
    assert_lossless(code, report, log);
    let fault = only_fault(report, "kill");
    let stop = &fault["stops"][0];
    assert_eq!(stop["exit"], "signal 9 (SIGKILL)", "{fault}");
    let in_flight = u(&stop["in_flight_at_signal"]);
    assert!(
        in_flight > 0,
        "the kill must hit sessions to prove anything: {fault}"
    );
    // The dead replica's sessions were taken over by others once their leases expired (a
    // session may have ended between the /metrics scrape and the kill, hence not equality).
    let takeovers = u(&fault["takeover_ms"]["count"]);
    assert!(
        (1..=in_flight).contains(&takeovers),
        "{takeovers} takeovers for {in_flight} in flight: {fault}"
    );
    // Steps run at most 4 in parallel per session in the mock's plans.
    let bound = in_flight * 4 * 11;
    assert!(
        u(&fault["wasted_tokens"]) <= bound,
        "wasted output {} > {bound}: {fault}",
        fault["wasted_tokens"]
    );
    assert!(
        u(&report["tokens"]["wasted_input"]) > 0,
        "interrupted calls' prompts are billed twice: {}",
        report["tokens"]
    );
}

#[test]
fn resilient_kill_9_is_taken_over_on_sqlite() {
    let (code, report, log) = run_shipped("task-kill", 20, &[]);
    assert_eq!(report["target"]["journal"], "sqlite");
    assert_kill_survived(code, &report, &log);
}

#[test]
fn resilient_kill_9_is_taken_over_on_redis() {
    let (code, report, log) = run_shipped("task-kill", 20, &["--set", "target.journal=\"redis\""]);
    assert_eq!(report["target"]["journal"], "redis", "{log}");
    assert_kill_survived(code, &report, &log);
}

#[test]
fn oom_kills_the_replica_for_real_and_its_sessions_survive() {
    let (code, report, log) = run_shipped("oom", 20, &[]);
    assert_lossless(code, &report, &log);
    let fault = only_fault(&report, "oom");
    let stop = &fault["stops"][0];
    // Aborted by the allocator under RLIMIT_AS, not killed by the harness.
    assert_eq!(stop["exit"], "signal 6 (SIGABRT)", "{fault}");
    assert_eq!(stop["sigkill"], false, "{fault}");
}

#[test]
fn an_llm_brownout_causes_retries_not_drops() {
    let (code, report, log) = run_shipped("llm-brownout", 20, &[]);
    assert_lossless(code, &report, &log);
    only_fault(&report, "llm_brownout");
    let t = &report["tokens"];
    assert!(
        u(&t["llm_errors"]) + u(&t["llm_cut_responses"]) > 0,
        "the brownout must have hit calls: {t}"
    );
}

#[test]
fn an_llm_outage_is_waited_out_not_dropped() {
    let (code, report, log) = run_shipped("llm-outage", 20, &[]);
    assert_lossless(code, &report, &log);
    // The mock took the outage and came back (a refused POST or a failed rebind would be a
    // note, and a window still open has no end); the sessions caught in it finished anyway
    // (lossless above). That their calls were refused and retried without using up
    // `--max-retries` is what `runtime_agent`'s outage tests check.
    let fault = only_fault(&report, "llm_outage");
    assert_eq!(fault["notes"], serde_json::json!([]), "{fault}");
    assert!(fault["ended_s"].is_number(), "{fault}");
}

#[test]
fn runaway_agents_end_at_their_budget() {
    let (code, report, log) = run_shipped("runaway-agent", 20, &[]);
    assert_lossless(code, &report, &log);
    assert!(
        u(&report["sessions"]["budget_exceeded"]) > 0,
        "{}",
        report["sessions"]
    );
    // The last call of a runaway near $0.05 re-sends a conversation of a few thousand
    // tokens: about a cent, 20% of the budget. More means the budget was not checked per call.
    let over = report["tokens"]["budget_overshoot_max_usd"]
        .as_f64()
        .expect("overshoot measured");
    assert!(over <= 0.01, "overshoot ${over}: {}", report["tokens"]);
}

#[test]
fn a_command_hook_runs_with_the_target_url_and_its_outcome_is_reported() {
    let _fleet = one_fleet_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = super::support::small_scenario(dir.path(), "resilient", "sqlite", "");
    let mut text = std::fs::read_to_string(&scenario).expect("read");
    // The [[faults]] table must come after [gates]'s keys: append at the end.
    text.push_str(
        "\n[[faults]]\nat = \"1m\"\naction = \"command\"\nrun = \"curl -s $DROPZERO_TARGET_URL/healthz >/dev/null 2>&1; echo hook saw $DROPZERO_TARGET_URL; exit 3\"\ntimeout = \"5m\"\n",
    );
    std::fs::write(&scenario, text).expect("write");
    let (code, report, log) = run_scenario(&scenario, &dir.path().join("out"), &[]);
    assert_eq!(
        code,
        Some(0),
        "a failed hook is reported, not a gate: {log}"
    );
    let fault = only_fault(&report, "command");
    let notes: Vec<&str> = fault["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(notes.contains(&"hook exit 3"), "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("stdout: hook saw http://127.0.0.1:")),
        "{notes:?}"
    );
    assert!(
        notes.contains(&"did not complete: hook exit 3"),
        "{notes:?}"
    );
}
