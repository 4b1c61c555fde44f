//! The journal faults as shipped, on the harness's own `redis-server`: killed with an AOF
//! fsynced before every reply (nothing a client saw is lost), killed when it only snapshots
//! (events clients saw are lost and the harness says so), and unreachable for a window (the
//! replicas take themselves out of the router meanwhile, and every session finishes).

use serde_json::Value;

use super::shipped::run_as_shipped;

/// `scenarios/<name>.toml` at time scale 0.02 (20 simulated minutes in 24 s) with 20 users;
/// its declared `[expect]` verdict is checked.
fn run_shipped(name: &str) -> (Value, String) {
    let run = run_as_shipped(name, "0.02", &["--set", "load.stages.0.users=20"]);
    (run.report, run.log)
}

fn count(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, found {v}"))
}

/// The run's single fault, finished, with every note it must carry.
fn only_fault<'a>(report: &'a Value, action: &str, notes: &[&str]) -> &'a Value {
    let faults = report["faults"].as_array().expect("faults array");
    assert_eq!(faults.len(), 1, "faults: {faults:?}");
    let fault = &faults[0];
    assert_eq!(fault["action"], action);
    assert!(fault["ended_s"].is_number(), "fault finished: {fault}");
    let written = fault["notes"].to_string();
    for note in notes {
        assert!(written.contains(note), "note {note:?} missing: {fault}");
    }
    fault
}

#[test]
fn a_killed_journal_that_fsyncs_every_write_loses_nothing() {
    let (report, log) = run_shipped("journal-kill");
    assert_eq!(report["target"]["journal"], "redis", "{log}");
    let fault = only_fault(
        &report,
        "journal_kill",
        &["killed with SIGKILL", "restarted"],
    );
    // The kill hit live streams (they were cut and resumed), and yet nothing was lost.
    assert!(count(&fault["interrupted"]) > 0, "{fault}");
    let e = &report["events"];
    for field in ["lost", "duplicated", "content_mismatches"] {
        assert_eq!(count(&e[field]), 0, "{field}: {e}\n{log}");
    }
}

#[test]
fn a_killed_journal_that_only_snapshots_loses_events_and_the_harness_says_so() {
    let (report, log) = run_shipped("journal-kill-unsafe");
    only_fault(
        &report,
        "journal_kill",
        &["killed with SIGKILL", "restarted"],
    );
    assert!(
        count(&report["events"]["content_mismatches"]) > 0,
        "{}\n{log}",
        report["events"]
    );
}

#[test]
fn an_unreachable_journal_takes_the_replicas_out_and_every_session_finishes() {
    let (report, log) = run_shipped("journal-outage");
    let fault = only_fault(
        &report,
        "journal_outage",
        &["unreachable", "reachable again"],
    );
    let (start, end) = (
        fault["started_s"].as_f64().expect("started_s"),
        fault["ended_s"].as_f64().expect("ended_s"),
    );
    let timeline = report["timeline"].as_array().expect("timeline");
    let ready = |t: &Value| count(&t["replicas_ready"]);
    // While the journal is unreachable both replicas fail /readyz and leave the router…
    assert!(
        timeline
            .iter()
            .filter(|t| (start..=end).contains(&t["t_s"].as_f64().unwrap_or(-1.0)))
            .any(|t| ready(t) == 0),
        "no second without a ready replica during {start}..{end}: {timeline:?}"
    );
    // …and come back by themselves, without a restart.
    let last = timeline.last().expect("a timeline");
    assert_eq!(ready(last), 2, "{last}");
    assert_eq!(count(&report["sessions"]["dropped"]), 0, "{log}");
    assert!(
        count(&report["sessions"]["resumed"]) > 0,
        "{}",
        report["sessions"]
    );
}
