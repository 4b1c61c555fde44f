//! The lease contract of every journal backend: heartbeats extend only the holder's running
//! sessions, a claim wins only on a free lease and exactly one of several racing claimers
//! wins, orphans lists released and expired sessions oldest first, and an append on a taken
//! seq fails with `SeqTaken` (the fence against a stale owner). Run against the memory
//! journal, one SQLite handle, and two SQLite handles on one file (two writer threads, as two
//! replica processes have).

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

use std::sync::Arc;

use dropzero_runtime::{
    journal::{Journal, JournalError, memory::MemoryJournal, sqlite::SqliteJournal},
    session::{EventRecord, SessionRecord, SessionStatus, Usage},
};

/// A backend's name and two views of one journal.
type Backend = (&'static str, Arc<dyn Journal>, Arc<dyn Journal>);

/// Two views of one journal: the same object twice, or two handles on one file.
fn backends(dir: &std::path::Path) -> Vec<Backend> {
    let memory: Arc<dyn Journal> = Arc::new(MemoryJournal::new());
    let one: Arc<dyn Journal> = Arc::new(SqliteJournal::open(dir.join("one.db")).unwrap());
    let shared = dir.join("shared.db");
    let first: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&shared).unwrap());
    let second: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&shared).unwrap());
    vec![
        ("memory", memory.clone(), memory),
        ("sqlite", one.clone(), one),
        ("sqlite, two handles", first, second),
    ]
}

async fn session(journal: &dyn Journal, owner: &str, lease: i64) -> String {
    let mut record = SessionRecord::new(owner, "q".into(), Default::default(), None, None);
    record.lease_expires_at_ms = Some(lease);
    let id = record.session_id.clone();
    let created = journal.create(record).await.unwrap();
    assert_eq!(created.record.lease_expires_at_ms, Some(lease));
    id
}

fn event(id: &str, seq: u64) -> EventRecord {
    EventRecord {
        session_id: id.to_string(),
        seq,
        kind: "token".into(),
        data: format!("{{\"step\":\"s1\",\"text\":\" w{seq}\"}}"),
    }
}

#[tokio::test]
async fn heartbeat_extends_only_the_holders_running_sessions() {
    let dir = tempfile::tempdir().unwrap();
    for (name, a, b) in backends(dir.path()) {
        let mine = session(&*a, "r1", 1_000).await;
        let other = session(&*a, "r2", 1_000).await;
        let finished = session(&*a, "r1", 1_000).await;
        a.finish(
            finished.clone(),
            SessionStatus::Completed,
            Usage::default(),
            0,
        )
        .await
        .unwrap();
        assert_eq!(b.heartbeat("r1".into(), 5_000).await.unwrap(), 1, "{name}");
        let record = a.session(mine.clone()).await.unwrap().unwrap();
        assert_eq!(record.lease_expires_at_ms, Some(5_000), "{name}");
        let record = a.session(other.clone()).await.unwrap().unwrap();
        assert_eq!(record.lease_expires_at_ms, Some(1_000), "{name}");
        let record = a.session(finished.clone()).await.unwrap().unwrap();
        assert_eq!(
            (record.owner, record.lease_expires_at_ms),
            (None, None),
            "{name}: finish clears the lease"
        );
        assert_eq!(
            b.heartbeat("nobody".into(), 5_000).await.unwrap(),
            0,
            "{name}"
        );
        // r2's lease (1 000) expired at 2 000; r1's (5 000) did not.
        assert_eq!(a.orphans(2_000, 10).await.unwrap(), vec![other], "{name}");
    }
}

#[tokio::test]
async fn claim_wins_only_on_a_free_lease() {
    let dir = tempfile::tempdir().unwrap();
    for (name, a, b) in backends(dir.path()) {
        let id = session(&*a, "r1", 1_000).await;
        // Live lease: nobody may claim it, not even at the exact expiry instant.
        for now in [0, 999, 1_000] {
            assert!(
                b.claim(id.clone(), "r2".into(), now, now + 500)
                    .await
                    .unwrap()
                    .is_none(),
                "{name} at {now}"
            );
        }
        let claimed = b
            .claim(id.clone(), "r2".into(), 1_001, 3_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.previous_owner.as_deref(), Some("r1"), "{name}");
        assert_eq!(claimed.record.owner.as_deref(), Some("r2"), "{name}");
        assert_eq!(claimed.record.lease_expires_at_ms, Some(3_000), "{name}");
        assert!(a.orphans(2_000, 10).await.unwrap().is_empty(), "{name}");
        // The new holder's heartbeat keeps it; the old one's does nothing.
        assert_eq!(a.heartbeat("r1".into(), 9_000).await.unwrap(), 0, "{name}");
        assert_eq!(a.heartbeat("r2".into(), 9_000).await.unwrap(), 1, "{name}");
        // Released: claimable at once, whatever the clock says; no previous owner.
        a.release(id.clone()).await.unwrap();
        assert_eq!(b.orphans(0, 10).await.unwrap(), vec![id.clone()], "{name}");
        let claimed = b
            .claim(id.clone(), "r3".into(), 0, 1_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.previous_owner, None, "{name}");
        // Finished or unknown: never claimable.
        a.finish(id.clone(), SessionStatus::Completed, Usage::default(), 0)
            .await
            .unwrap();
        assert!(
            b.claim(id.clone(), "r4".into(), 99_999, 100_000)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        assert!(
            b.claim("s_unknown".into(), "r4".into(), 0, 1)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        assert!(b.orphans(99_999, 10).await.unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn exactly_one_of_racing_claimers_wins() {
    let dir = tempfile::tempdir().unwrap();
    for (name, a, b) in backends(dir.path()) {
        for round in 0..5 {
            let id = session(&*a, "dead", 100).await;
            let claims = (0..8).map(|i| {
                let journal = if i % 2 == 0 { a.clone() } else { b.clone() };
                let id = id.clone();
                async move {
                    journal
                        .claim(id, format!("r{i}"), 1_000, 6_000)
                        .await
                        .unwrap()
                }
            });
            let results = futures::future::join_all(claims).await;
            let winners: Vec<_> = results.iter().flatten().collect();
            assert_eq!(winners.len(), 1, "{name} round {round}: {results:?}");
            let record = a.session(id).await.unwrap().unwrap();
            assert_eq!(record.owner, winners[0].record.owner, "{name}");
            assert_eq!(winners[0].previous_owner.as_deref(), Some("dead"), "{name}");
        }
    }
}

#[tokio::test]
async fn orphans_are_oldest_lease_first_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    for (name, a, b) in backends(dir.path()) {
        let late = session(&*a, "r1", 300).await;
        let early = session(&*a, "r1", 100).await;
        let released = session(&*a, "r1", 900).await;
        a.release(released.clone()).await.unwrap();
        let _live = session(&*a, "r1", 10_000).await;
        assert_eq!(
            b.orphans(1_000, 10).await.unwrap(),
            vec![released.clone(), early.clone(), late],
            "{name}: released (no lease) first, then oldest expiry"
        );
        assert_eq!(
            b.orphans(1_000, 2).await.unwrap(),
            vec![released, early],
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_taken_seq_fences_the_stale_writer() {
    let dir = tempfile::tempdir().unwrap();
    for (name, a, b) in backends(dir.path()) {
        let id = session(&*a, "r1", 100).await;
        for seq in 1..=2 {
            a.append(event(&id, seq)).await.unwrap();
        }
        // b took the session over and journaled seq 3 first.
        b.claim(id.clone(), "r2".into(), 1_000, 5_000)
            .await
            .unwrap()
            .unwrap();
        b.append(event(&id, 3)).await.unwrap();
        let err = a.append(event(&id, 3)).await.unwrap_err();
        assert!(
            matches!(&err, JournalError::SeqTaken { seq: 3, .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains("already journaled"),
            "{name}: {err}"
        );
        let events = b.read_after(id.clone(), 0, 10).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3],
            "{name}"
        );
        assert_eq!(
            events[2],
            event(&id, 3),
            "{name}: the new owner's event stands"
        );
    }
    // With separate writers (two processes), a fenced writer stays fenced: its next seq fails
    // even though nobody holds it yet, so it cannot slip an event in behind the new owner.
    let shared = dir.path().join("fence.db");
    let stale: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&shared).unwrap());
    let owner: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&shared).unwrap());
    let id = session(&*stale, "r1", 100).await;
    stale.append(event(&id, 1)).await.unwrap();
    owner
        .claim(id.clone(), "r2".into(), 1_000, 5_000)
        .await
        .unwrap()
        .unwrap();
    owner.append(event(&id, 2)).await.unwrap();
    assert!(matches!(
        stale.append(event(&id, 2)).await,
        Err(JournalError::SeqTaken { .. })
    ));
    assert!(matches!(
        stale.append(event(&id, 3)).await,
        Err(JournalError::SeqTaken { .. })
    ));
    owner.append(event(&id, 3)).await.unwrap();
    // Claiming the session back lifts the fence.
    owner.release(id.clone()).await.unwrap();
    stale
        .claim(id.clone(), "r1".into(), 2_000, 7_000)
        .await
        .unwrap()
        .unwrap();
    stale.append(event(&id, 4)).await.unwrap();
}
