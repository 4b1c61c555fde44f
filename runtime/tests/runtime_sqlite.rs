//! Two runtimes (two `AppState`s, separate connections) sharing ONE SQLite journal file:
//! each serves the other's sessions, idempotency keys hold across them, and the journal
//! survives a reopen.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use std::{sync::Arc, time::Duration};

use dropzero_runtime::{
    Config,
    journal::{Journal, sqlite::SqliteJournal},
    session::{EventRecord, SessionRecord},
};
use serde_json::json;
use support::{Resume, create, digest, read, serve, verify};

fn open(path: &std::path::Path) -> Arc<dyn Journal> {
    Arc::new(SqliteJournal::open(path).unwrap())
}

#[tokio::test]
async fn each_replica_serves_the_others_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mock = support::mock(support::profile(Duration::from_millis(2))).await;
    let llm = &mock.url;
    let a = serve(Config::new(llm), open(&path)).await;
    let b = serve(Config::new(llm), open(&path)).await;
    let on_a = create(&a.base, json!({"query": "alpha [dz tokens=40]"})).await;
    let on_b = create(
        &b.base,
        json!({"query": "beta [dz tokens=40] [dz tool=search]"}),
    )
    .await;
    // Live tail from the other replica (it polls the journal), then a replay from the owner.
    for (session, reader, owner) in [(&on_a, &b, &a), (&on_b, &a, &b)] {
        let remote = read(&reader.base, session, Resume::Start, None).await;
        let done = verify(&remote, 1);
        assert_eq!(done["status"], "completed");
        assert_eq!(done["content_sha256"], json!(digest(&remote)));
        let local = read(&owner.base, session, Resume::Start, None).await;
        assert_eq!(local, remote);
        // Resume across replicas: first half from one, the rest from the other.
        let half = remote.len() as u64 / 2;
        let rest = read(&reader.base, session, Resume::Header(half), None).await;
        assert_eq!(rest, remote[half as usize..].to_vec());
    }
    // The idempotency key is in the shared journal.
    let client = reqwest::Client::new();
    let post = |base: String| {
        client
            .post(format!("{base}/v1/sessions"))
            .header("idempotency-key", "same")
            .json(&json!({"query": "once"}))
            .send()
    };
    let first = post(a.base.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let second = post(b.base.clone()).await.unwrap();
    assert_eq!(second.status(), 200);
    let (x, y): (serde_json::Value, serde_json::Value) =
        (first.json().await.unwrap(), second.json().await.unwrap());
    assert_eq!(x["session_id"], y["session_id"]);
}

#[tokio::test]
async fn appends_are_ordered_durable_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let journal = open(&path);
    let record = SessionRecord::new("r1", "q".into(), Default::default(), None, Some("k".into()));
    let id = record.session_id.clone();
    assert!(!journal.create(record.clone()).await.unwrap().existed);
    let mut again =
        SessionRecord::new("r2", "q".into(), Default::default(), None, Some("k".into()));
    again.session_id = "s_other".into();
    let existing = journal.create(again).await.unwrap();
    assert!(existing.existed);
    assert_eq!(existing.record.session_id, id);
    // Many appends in flight at once: group commit, order kept.
    let pending: Vec<_> = (1..=500)
        .map(|seq| {
            journal.append(EventRecord {
                session_id: id.clone(),
                seq,
                kind: "token".into(),
                data: json!({"step": "s1", "text": format!(" t{seq}")}).to_string(),
            })
        })
        .collect();
    for p in pending {
        p.await.unwrap();
    }
    drop(journal);
    let reopened = open(&path);
    assert_eq!(reopened.last_seq(id.clone()).await.unwrap(), 500);
    let page = reopened.read_after(id.clone(), 100, 50).await.unwrap();
    assert_eq!(page.first().unwrap().seq, 101);
    assert_eq!(page.last().unwrap().seq, 150);
    assert_eq!(
        reopened
            .session(id)
            .await
            .unwrap()
            .unwrap()
            .owner
            .as_deref(),
        Some("r1")
    );
}

#[tokio::test]
async fn an_append_for_an_unknown_session_is_refused_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&dir.path().join("journal.db"));
    let err = journal
        .append(EventRecord {
            session_id: "nobody".into(),
            seq: 1,
            kind: "token".into(),
            data: "{}".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, dropzero_runtime::journal::JournalError::UnknownSession(id) if id == "nobody"),
        "{err}"
    );
}

#[test]
fn a_file_with_the_old_schema_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE events (session_id TEXT NOT NULL, seq INTEGER NOT NULL,
                 kind TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (session_id, seq))
                 WITHOUT ROWID;",
        )
        .unwrap();
    let err = SqliteJournal::open(&path).unwrap_err().to_string();
    assert!(err.contains("old journal schema"), "{err}");
}

#[test]
fn a_file_with_the_single_events_table_schema_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE sessions (sid INTEGER PRIMARY KEY AUTOINCREMENT,
                 session_id TEXT NOT NULL UNIQUE);
             CREATE TABLE events (sid INTEGER NOT NULL, seq INTEGER NOT NULL,
                 kind TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (sid, seq)) WITHOUT ROWID;",
        )
        .unwrap();
    let err = SqliteJournal::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("old journal schema") && err.contains("no hot/heads tables"),
        "{err}"
    );
}

/// Appends one at a time (one batch each), so the writer's sweep moves rows from `hot` to
/// `events` between them: the fence, the order check and reads hold wherever rows live.
#[tokio::test]
async fn fence_and_reads_hold_across_the_hot_to_events_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    // `stale` is fenced by its first SeqTaken (every later append of it fails so), so the
    // order check runs on a third handle.
    let (owner, stale, ahead) = (open(&path), open(&path), open(&path));
    let event = |id: &str, seq: u64| EventRecord {
        session_id: id.into(),
        seq,
        kind: "token".into(),
        data: json!({"text": format!(" t{seq}")}).to_string(),
    };
    let mut ids = Vec::new();
    for _ in 0..20 {
        let record = SessionRecord::new("r1", "q".into(), Default::default(), None, None);
        ids.push(owner.create(record).await.unwrap().record.session_id);
    }
    for seq in 1..=30 {
        for id in &ids {
            owner.append(event(id, seq)).await.unwrap();
        }
    }
    let moved: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert!(moved > 0, "the sweep moved nothing");
    for id in &ids {
        let err = stale.append(event(id, 2)).await.unwrap_err();
        assert!(
            matches!(
                &err,
                dropzero_runtime::journal::JournalError::SeqTaken { seq: 2, .. }
            ),
            "{err}"
        );
        let err = ahead.append(event(id, 32)).await.unwrap_err();
        assert!(
            matches!(
                &err,
                dropzero_runtime::journal::JournalError::OutOfOrder {
                    seq: 32,
                    expected: 31,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(stale.last_seq(id.clone()).await.unwrap(), 30);
        let all = stale.read_after(id.clone(), 0, 100).await.unwrap();
        assert_eq!(all, (1..=30).map(|seq| event(id, seq)).collect::<Vec<_>>());
        let page = stale.read_after(id.clone(), 7, 5).await.unwrap();
        assert_eq!(
            page.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (8..=12).collect::<Vec<_>>()
        );
    }
}
