//! SQLite journal throughput with group commit.
//!
//! `cargo run --release -p dropzero-runtime --example journal_bench -- [SESSIONS] [EVENTS_PER_SESSION]`
//!
//! Each of SESSIONS tasks appends EVENTS_PER_SESSION token-sized events one after another,
//! awaiting durability each time (exactly what a session's emitter does); the writer thread
//! batches whatever is queued into one transaction. Prints appends per second and the
//! append latency.
#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Instant};

use dropzero_runtime::{
    journal::{Journal, sqlite::SqliteJournal},
    session::{EventRecord, SessionRecord},
};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let sessions: u64 = args.next().map_or(200, |a| a.parse().unwrap());
    let per_session: u64 = args.next().map_or(500, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn Journal> =
        Arc::new(SqliteJournal::open(dir.path().join("bench.db")).unwrap());
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
            let mut worst = std::time::Duration::ZERO;
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
                worst = worst.max(t.elapsed());
            }
            worst
        }));
    }
    let mut worst = std::time::Duration::ZERO;
    for t in tasks {
        worst = worst.max(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let total = sessions * per_session;
    println!(
        "{total} appends from {sessions} concurrent sessions in {:.2?}: {:.0} appends/s, \
         mean per-session append latency {:.2?}, worst {:.2?}",
        elapsed,
        total as f64 / elapsed.as_secs_f64(),
        elapsed / per_session as u32,
        worst
    );
}
