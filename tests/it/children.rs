//! No child process outlives the harness: not after Ctrl-C (the harness stops the load, goose's
//! users with it, and its fleet), and not even when the harness is SIGKILLed (it gets no
//! chance to clean up: only the kernel's parent-death signal can save us).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{dropzero_bin, repo_root, small_scenario};

/// Direct children of `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // Field 4 (after the parenthesised command name) is the parent pid.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        if after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
            == Some(pid)
        {
            found.push(child);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait would reap it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `dropzero run <scenario> --out <out>` with its load held for an hour (the small scenario's
/// stages alone end after 3.6 s), returned once its fleet is up: the mock LLM and both
/// replicas (3 children), waited for with a bound.
fn start_fleet(scenario: &std::path::Path, out: &std::path::Path) -> (Child, Vec<u32>) {
    let harness = Command::new(dropzero_bin())
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(["--set", "duration=\"60m\""])
        .args(["--set", "load.stages.0.hold=\"59m\""])
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("harness starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut kids = Vec::new();
    while Instant::now() < deadline {
        kids = children_of(harness.id());
        if kids.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(kids.len() >= 3, "fleet started: children {kids:?}");
    (harness, kids)
}

#[test]
fn sigkilled_harness_leaves_no_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = small_scenario(dir.path(), "resilient", "sqlite", "dropped_sessions = 0");
    let (mut harness, kids) = start_fleet(&scenario, &dir.path().join("out"));
    let pid = harness.id();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill harness");
    let _ = harness.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && kids.iter().any(|&k| alive(k)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let survivors: Vec<u32> = kids.into_iter().filter(|&k| alive(k)).collect();
    assert!(
        survivors.is_empty(),
        "children survived the harness: {survivors:?}"
    );
}

#[test]
fn ctrl_c_stops_the_closed_users_writes_the_report_and_leaves_no_children() {
    let _fleet = super::support::one_fleet_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = small_scenario(dir.path(), "resilient", "sqlite", "dropped_sessions = 0");
    let out = dir.path().join("out");
    let (mut harness, kids) = start_fleet(&scenario, &out);
    let pid = harness.id();
    // Goose's users are running sessions once finished ones reach sessions.jsonl (a line per
    // finished session, written in buffered blocks; sessions last about a second here).
    let records = out.join("sessions.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&records).map_or(true, |m| m.len() == 0) {
        assert!(Instant::now() < deadline, "no session finished within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("interrupt harness");
    // Ctrl-C cancels the sessions in flight at once: the harness ends in seconds, not after
    // the hour the scenario asked for nor the sessions' end grace.
    let status = loop {
        if let Some(status) = harness.try_wait().expect("wait") {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(60) {
            let _ = harness.kill();
            panic!("the harness did not end within 60 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.code().is_some(), "exited by itself: {status:?}");
    let survivors: Vec<u32> = kids.into_iter().filter(|&k| alive(k)).collect();
    assert!(
        survivors.is_empty(),
        "children survived Ctrl-C: {survivors:?}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report written"),
    )
    .expect("report parses");
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("interrupted"),
        "the report says so: {errors}"
    );
    // The users were mid-session (their load runs for an hour): those sessions were cancelled.
    let cancelled = report["sessions"]["cancelled"].as_u64().unwrap_or(0);
    assert!(
        cancelled >= 1,
        "sessions in flight were cancelled: {}",
        report["sessions"]
    );
    let started = report["sessions"]["started"].as_u64().unwrap_or(0);
    assert!(started >= 6, "goose's 6 users ran sessions: {started}");
    assert_eq!(
        report["load"]["goose"]["maximum_users"].as_u64(),
        Some(6),
        "goose's users are in the report: {}",
        report["load"]
    );
}
