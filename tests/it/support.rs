//! Starting `dropzero` subcommands as real child processes, bounded in time.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub use dropzero_tests::{dropzero_bin, repo_root};

/// A child process killed on drop, with the address it printed.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `dropzero <args>` and read its `{"listening":"addr"}` line.
pub fn start(args: &[&str]) -> Server {
    start_command(
        Command::new(dropzero_bin())
            .args(args)
            .stderr(Stdio::null()),
    )
}

/// Like [`start`], with the child's stderr (its JSON logs) written to `log`.
pub fn start_logged(args: &[&str], log: &std::path::Path) -> Server {
    let file = std::fs::File::create(log).expect("create the log file");
    start_command(Command::new(dropzero_bin()).args(args).stderr(file))
}

/// Spawn a prepared `dropzero` command and read its listening line.
pub fn start_command(command: &mut Command) -> Server {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("dropzero binary runs (scripts/test.sh builds it first)");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("listening line is JSON");
    let addr = v["listening"]
        .as_str()
        .expect("listening address")
        .to_string();
    Server { child, addr }
}

/// A small, fast scenario for end-to-end runs: 6 simulated minutes at time_scale 0.01.
pub fn small_scenario(
    dir: &std::path::Path,
    mode: &str,
    journal: &str,
    gates: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"
name = "e2e-small"
description = "a small steady run for the end-to-end tests"
seed = 11
time_scale = 0.01
duration = "6m"

[target]
kind = "local"
replicas = 2
mode = "{mode}"
journal = "{journal}"

[load]
model = "closed"
stages = [ {{ users = 6, ramp = "30s", hold = "5m30s" }} ]

[sessions]
length = {{ median = "1m", p99 = "2m" }}
tokens_per_second = 40

[llm]
ttft = {{ median = "20ms", p99 = "80ms" }}

[gates]
{gates}
"#
    );
    let path = dir.join("e2e-small.toml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// How many whole fleets run at once (`DROPZERO_E2E_FLEETS`, default 2). A fleet at the
/// tests' scale (20 users, debug build) keeps about half a core busy, so two share a 2-core
/// machine without starving each other, and the end-to-end suite takes half the wall time.
/// Tests whose result is a measurement of this machine take [`whole_machine`] instead.
fn fleet_slots() -> usize {
    std::env::var("DROPZERO_E2E_FLEETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(2)
}

/// Slots in use, and the condition a waiting test sleeps on.
static SLOTS: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// Held while a test runs fleets: `n` slots of [`fleet_slots`].
pub struct FleetSlots(usize);

impl Drop for FleetSlots {
    fn drop(&mut self) {
        let (used, freed) = &SLOTS;
        *used.lock().unwrap_or_else(|e| e.into_inner()) -= self.0;
        freed.notify_all();
    }
}

fn take_slots(n: usize) -> FleetSlots {
    let n = n.min(fleet_slots());
    let (used, freed) = &SLOTS;
    let mut used = used.lock().unwrap_or_else(|e| e.into_inner());
    while *used + n > fleet_slots() {
        used = freed.wait(used).unwrap_or_else(|e| e.into_inner());
    }
    *used += n;
    FleetSlots(n)
}

/// Held by every test that runs a whole scenario: at most [`fleet_slots`] fleets at once.
pub fn one_fleet_at_a_time() -> FleetSlots {
    take_slots(1)
}

/// Held by a test that measures the machine itself (a capacity sweep's latency against
/// concurrency): no other fleet runs beside it.
pub fn whole_machine() -> FleetSlots {
    take_slots(usize::MAX)
}

/// `dropzero run <scenario> --out <out> <extra…>` from the repository root; returns the exit
/// code, the parsed report.json and the combined output (for assertion messages).
pub fn run_scenario(
    scenario: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value, String) {
    run_scenario_with_env(scenario, out, extra, &[])
}

/// [`run_scenario`] with environment variables set for the harness process.
pub fn run_scenario_with_env(
    scenario: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, serde_json::Value, String) {
    let output = Command::new(dropzero_bin())
        .envs(env.iter().copied())
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(extra)
        .current_dir(repo_root())
        .output()
        .expect("dropzero runs");
    let mut log = format!(
        "stdout:\n{}\nstderr (tail):\n{}",
        String::from_utf8_lossy(&output.stdout),
        tail(&String::from_utf8_lossy(&output.stderr), 4000)
    );
    let report = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    log.push_str(&unfinished_sessions(out));
    (output.status.code(), report, log)
}

/// The first few dropped or failed sessions of a run, from its `sessions.jsonl`: why each
/// ended, its interruptions and timings. The run directory is a temporary one, gone with the
/// test, so a failure message has to carry what explains a drop.
fn unfinished_sessions(out: &std::path::Path) -> String {
    let Ok(text) = std::fs::read_to_string(out.join("sessions.jsonl")) else {
        return String::new();
    };
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"outcome\":\"dropped\"") || l.contains("\"outcome\":\"failed\""))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n{} dropped or failed session(s); the first:\n",
        rows.len()
    );
    for row in rows.iter().take(3) {
        s.extend(row.chars().take(2000));
        s.push('\n');
    }
    s
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}
