//! Journal append throughput and latency under concurrent sessions, for any backend.
//!
//! `cargo run --release -p dropzero-runtime --example journal_bench -- [SESSIONS] [EVENTS_PER_SESSION] [JOURNAL]`
//!
//! JOURNAL is `sqlite` (the default: a fresh file in a temporary directory), `memory`, or any
//! `--journal` spec (`sqlite:PATH`, `redis://127.0.0.1:6379/0?prefix=bench-1`; give Redis a
//! fresh prefix per run, the bench does not delete its keys). Each of SESSIONS tasks appends
//! EVENTS_PER_SESSION token-sized events one after another, awaiting durability each time
//! (exactly what a session's emitter does), so the backend's group commit sees up to
//! SESSIONS appends in flight. Prints appends per second and the append latency percentiles.
#![allow(clippy::unwrap_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use dropzero_runtime::{
    JournalSpec,
    journal::Journal,
    open_journal,
    session::{EventRecord, SessionRecord},
};
use hdrhistogram::Histogram;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let sessions: u64 = args.next().map_or(200, |a| a.parse().unwrap());
    let per_session: u64 = args.next().map_or(500, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let spec: JournalSpec = match args.next().as_deref() {
        None | Some("sqlite") => JournalSpec::Sqlite(dir.path().join("bench.db")),
        Some(spec) => spec.parse().unwrap(),
    };
    let journal: Arc<dyn Journal> = open_journal(&spec).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..sessions {
        let record = SessionRecord::new("bench", "q".into(), Default::default(), None, None);
        ids.push(journal.create(record).await.unwrap().record.session_id);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in ids {
        let journal = journal.clone();
        tasks.push(tokio::spawn(async move {
            // Microseconds, 1 µs to 60 s at 3 significant digits.
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            for seq in 1..=per_session {
                let t = Instant::now();
                journal
                    .append(EventRecord {
                        session_id: id.clone(),
                        seq,
                        kind: "token".into(),
                        data: format!(r#"{{"step":"s1","text":" word{seq}"}}"#),
                    })
                    .await
                    .unwrap();
                latency.saturating_record(t.elapsed().as_micros() as u64);
            }
            latency
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for t in tasks {
        latency.add(t.await.unwrap()).unwrap();
    }
    let elapsed = started.elapsed();
    let total = sessions * per_session;
    let us = |v: u64| Duration::from_micros(v);
    println!(
        "{spec:?}: {total} appends from {sessions} concurrent sessions in {elapsed:.2?}: \
         {:.0} appends/s; append latency mean {:.2?}, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        total as f64 / elapsed.as_secs_f64(),
        us(latency.mean() as u64),
        us(latency.value_at_quantile(0.5)),
        us(latency.value_at_quantile(0.99)),
        us(latency.max()),
    );
}
