//! Resident memory per active session of the runtime (agent loop + LLM stream + journal).
//!
//! ```text
//! dropzero mock-llm --port 0 --profile slow.toml     # a separate process (see below)
//! cargo run --release -p dropzero-runtime --example rss_per_session -- \
//!     http://127.0.0.1:PORT 1000 memory|sqlite:/tmp/rss.db [lean|reqwest]
//! ```
//! The mock runs in its own process so only the runtime is measured; give it a slow profile
//! (e.g. `itl = { median = "1s", p99 = "2s" }`) so sessions stay active. The example starts
//! N sessions directly through `AppState::start_session` (no HTTP client in this process),
//! waits until every one has streamed tokens, and reports (VmRSS after − before) / N. The
//! last argument picks the LLM client (`--llm-client`; default `lean`), so one binary
//! measures both.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use dropzero_runtime::config::LlmClientKind;
use dropzero_runtime::{AppState, Config, JournalSpec, open_journal, session::SessionRecord};

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let llm = args.next().expect("mock LLM URL");
    let n: usize = args.next().map_or(1000, |a| a.parse().unwrap());
    let spec: JournalSpec = args.next().unwrap_or("memory".into()).parse().unwrap();
    let client = args.next().unwrap_or("lean".into());
    let mut config = Config::new(&llm);
    config.llm_client = match client.as_str() {
        "lean" => LlmClientKind::Lean,
        "reqwest" => LlmClientKind::Reqwest,
        other => panic!("LLM client {other:?}: lean or reqwest"),
    };
    config.step_timeout = Duration::from_secs(600);
    let state = AppState::new(config, open_journal(&spec).await.unwrap());
    // Warm up one session so lazily-initialised pools exist before the baseline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = vm_rss_kib();
    let started = Instant::now();
    for i in 0..n {
        let query = format!("session {i} [dz tokens=100000] [dz steps=2]");
        let record = SessionRecord::new(
            &state.config.replica_id,
            query,
            Default::default(),
            None,
            None,
        );
        let record = state.journal.create(record).await.unwrap().record;
        state.start_session(record);
    }
    // Wait until every session has its workers streaming tokens.
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ids = state.local.ids();
        let streaming = ids
            .iter()
            .filter_map(|id| state.local.get(id))
            .filter(|s| s.emitter.last_seq() > 8)
            .count();
        eprintln!(
            "{:>6.1?}: {streaming}/{n} sessions streaming, VmRSS {} KiB",
            started.elapsed(),
            vm_rss_kib()
        );
        if streaming == n || started.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = vm_rss_kib();
    println!(
        "{n} active sessions ({spec:?}): VmRSS {before} KiB -> {after} KiB, {:.1} KiB per session",
        (after - before) as f64 / n as f64
    );
}
