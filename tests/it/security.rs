//! Secrets never reach a log or a report (docs/security.md): a real run against a runtime
//! that requires an API key and holds an LLM key, then every file the run wrote and both
//! servers' logs are searched for the two keys and for any resume token.

use std::path::Path;
use std::process::{Command, Stdio};

use super::support::{dropzero_bin, one_fleet_at_a_time, run_scenario_with_env, start_command};

const API_KEY: &str = "dz-api-key-3b9f1c7e5a";
const LLM_KEY: &str = "sk-ant-test-77d0e4a2c6";

fn logged(args: &[&str], log: &Path) -> super::support::Server {
    let file = std::fs::File::create(log).expect("create the log file");
    start_command(
        Command::new(dropzero_bin())
            .args(args)
            // Debug level: a secret in a debug line would leak as soon as someone turns it on.
            .env("RUST_LOG", "debug")
            .env("ANTHROPIC_API_KEY", LLM_KEY)
            .stderr(Stdio::from(file)),
    )
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the run directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Where `text` holds something shaped like a resume token (`rt_` and 16+ hex digits).
fn token_at(text: &str) -> Option<usize> {
    text.match_indices("rt_").map(|(i, _)| i).find(|&i| {
        text[i + 3..]
            .bytes()
            .take_while(u8::is_ascii_hexdigit)
            .count()
            >= 16
    })
}

#[test]
fn no_secret_reaches_any_log_or_report() {
    let _fleet = one_fleet_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mock_log, runtime_log) = (dir.path().join("mock.log"), dir.path().join("runtime.log"));
    let mock = logged(&["mock-llm", "--port", "0"], &mock_log);
    let runtime = logged(
        &[
            "runtime",
            "--port",
            "0",
            "--llm-url",
            &format!("http://{}", mock.addr),
            "--api-key",
            API_KEY,
            // The run is time-scaled: keepalives well inside the client's scaled idle timeout.
            "--keepalive",
            "100ms",
        ],
        &runtime_log,
    );
    let scenario = dir.path().join("secrets.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
name = "secrets"
description = "a short run with an API key, to grep its output for secrets"
seed = 5
time_scale = 0.01
duration = "5m"

[target]
kind = "url"
url = "http://{addr}"
api_key_env = "DZ_SECURITY_TEST_KEY"

[load]
model = "closed"
stages = [ {{ users = 3, ramp = "20s", hold = "4m40s" }} ]

[sessions]
length = {{ median = "1m", p99 = "2m" }}
tokens_per_second = 40

[gates]
dropped_sessions = 0
"#,
            addr = runtime.addr
        ),
    )
    .expect("write the scenario");
    let out = dir.path().join("out");
    let (code, report, log) = run_scenario_with_env(
        &scenario,
        &out,
        &["-v"],
        &[("DZ_SECURITY_TEST_KEY", API_KEY)],
    );
    assert_eq!(code, Some(0), "{log}");
    for secret in [API_KEY, LLM_KEY] {
        assert!(!log.contains(secret), "the terminal output holds {secret}");
    }
    assert_eq!(
        token_at(&log),
        None,
        "the terminal output holds a resume token"
    );
    let completed = report["sessions"]["completed"].as_u64().unwrap_or(0);
    assert!(
        completed > 0,
        "sessions ran with the key: {}",
        report["sessions"]
    );
    drop(runtime);
    drop(mock);
    let runtime_text = std::fs::read_to_string(&runtime_log).expect("runtime log");
    assert!(
        runtime_text.contains("session created"),
        "the runtime logged its sessions"
    );
    let mut searched = vec![mock_log, runtime_log];
    searched.extend(files(&out));
    let names: Vec<String> = searched
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "dropzero.log.jsonl",
        "report.json",
        "report.md",
        "sessions.jsonl",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    for path in &searched {
        let bytes = std::fs::read(path).expect("read a run file");
        let text = String::from_utf8_lossy(&bytes);
        for secret in [API_KEY, LLM_KEY] {
            assert!(!text.contains(secret), "{} holds {secret}", path.display());
        }
        if let Some(at) = token_at(&text) {
            let around = &text[at.saturating_sub(80)..(at + 80).min(text.len())];
            panic!("{} holds a resume token: …{around}…", path.display());
        }
    }
}
