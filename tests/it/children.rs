//! No child process outlives the harness, even when the harness is SIGKILLed (it gets no
//! chance to clean up: only the kernel's parent-death signal can save us).

use std::process::{Command, Stdio};
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

#[test]
fn sigkilled_harness_leaves_no_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = small_scenario(dir.path(), "resilient", "sqlite", "dropped_sessions = 0");
    let mut harness = Command::new(dropzero_bin())
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(dir.path().join("out"))
        .args(["--set", "duration=\"60m\""])
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("harness starts");
    let pid = harness.id();
    // Wait for the mock LLM and both replicas (3 children), bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut kids = Vec::new();
    while Instant::now() < deadline {
        kids = children_of(pid);
        if kids.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(kids.len() >= 3, "fleet started: children {kids:?}");
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
