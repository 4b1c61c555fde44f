//! The `Journal` contract, checked the same way for every backend. Each check takes a
//! [`Backend`], which hands out several journal handles on one store, as replicas sharing a
//! journal would open it; races run across two handles.

use std::{future::Future, sync::Arc};

use dropzero_runtime::{
    journal::{
        Journal, JournalError, memory::MemoryJournal, redis::RedisJournal, redis::RedisOptions,
        sqlite::SqliteJournal,
    },
    session::{EventRecord, SessionRecord, SessionStatus, Usage},
};
use serde_json::json;

use crate::redis_server::RedisServer;

/// A store that several journal handles share.
pub trait Backend {
    /// A new handle on the same store.
    fn open(&self) -> impl Future<Output = Arc<dyn Journal>>;
}

pub struct Memory(Arc<MemoryJournal>);

impl Backend for Memory {
    async fn open(&self) -> Arc<dyn Journal> {
        // One process: every "replica" shares the one in-memory journal.
        self.0.clone()
    }
}

pub struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    async fn open(&self) -> Arc<dyn Journal> {
        Arc::new(SqliteJournal::open(self.0.path().join("journal.db")).unwrap())
    }
}

pub struct Redis(pub RedisServer);

impl Backend for Redis {
    async fn open(&self) -> Arc<dyn Journal> {
        Arc::new(
            RedisJournal::open(&self.0.url(), RedisOptions::new("conformance"))
                .await
                .unwrap(),
        )
    }
}

/// The same server over TLS with an auth token (`rediss://:TOKEN@…`), trusting its CA.
pub struct RedisTls(pub RedisServer);

impl Backend for RedisTls {
    async fn open(&self) -> Arc<dyn Journal> {
        let options = RedisOptions {
            ca_pem: Some(self.0.ca_pem()),
            ..RedisOptions::new("conformance")
        };
        Arc::new(
            RedisJournal::open(&self.0.tls_url(), options)
                .await
                .unwrap(),
        )
    }
}

pub fn memory() -> Memory {
    Memory(Arc::new(MemoryJournal::new()))
}

pub fn sqlite() -> Sqlite {
    Sqlite(tempfile::tempdir().unwrap())
}

pub fn redis() -> Redis {
    Redis(RedisServer::start())
}

pub fn redis_tls() -> RedisTls {
    RedisTls(RedisServer::start_tls())
}

/// An arbitrary "now" in Unix epoch ms; leases in these checks are relative to it.
const NOW: i64 = 1_700_000_000_000;

fn session(owner: Option<&str>, lease: Option<i64>, key: Option<&str>) -> SessionRecord {
    let mut record = SessionRecord::new(
        owner.unwrap_or("nobody"),
        "q".into(),
        Default::default(),
        Some(json!({"tenant": "t1"})),
        key.map(str::to_string),
    );
    record.owner = owner.map(str::to_string);
    record.lease_expires_at_ms = lease;
    record
}

fn event(session_id: &str, seq: u64) -> EventRecord {
    EventRecord {
        session_id: session_id.to_string(),
        seq,
        kind: "token".into(),
        data: json!({"step": "s1", "text": format!(" t{seq}")}).to_string(),
    }
}

async fn create(journal: &Arc<dyn Journal>, record: SessionRecord) -> String {
    let created = journal.create(record).await.unwrap();
    assert!(!created.existed);
    created.record.session_id
}

/// create → session → many appends in flight → read_after pages → last_seq → finish.
pub async fn roundtrip(backend: &impl Backend) {
    let journal = backend.open().await;
    let other = backend.open().await;
    let record = session(Some("r1"), None, None);
    let id = create(&journal, record.clone()).await;
    assert_eq!(other.session(id.clone()).await.unwrap(), Some(record));
    // Many appends in flight at once: each is ordered when called, durable when it resolves.
    let pending: Vec<_> = (1..=300)
        .map(|seq| journal.append(event(&id, seq)))
        .collect();
    for p in pending {
        p.await.unwrap();
    }
    assert_eq!(other.last_seq(id.clone()).await.unwrap(), 300);
    let all = other.read_after(id.clone(), 0, 1000).await.unwrap();
    assert_eq!(
        all,
        (1..=300).map(|seq| event(&id, seq)).collect::<Vec<_>>()
    );
    let page = other.read_after(id.clone(), 100, 50).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (101..=150).collect::<Vec<_>>()
    );
    assert!(
        other
            .read_after(id.clone(), 300, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(other.read_after(id.clone(), 0, 0).await.unwrap().is_empty());
    // Unknown sessions are empty, not errors.
    assert_eq!(other.session("s_unknown".into()).await.unwrap(), None);
    assert_eq!(other.last_seq("s_unknown".into()).await.unwrap(), 0);
    assert!(
        other
            .read_after("s_unknown".into(), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let usage = Usage {
        input_tokens: 10,
        output_tokens: 300,
        cost_usd: 0.0045,
    };
    journal
        .finish(id.clone(), SessionStatus::Completed, usage, 300)
        .await
        .unwrap();
    let done = other.session(id.clone()).await.unwrap().unwrap();
    assert_eq!(
        (
            done.status,
            done.usage,
            done.last_seq,
            done.owner,
            done.lease_expires_at_ms
        ),
        (SessionStatus::Completed, usage, 300, None, None)
    );
    assert!(other.orphans(NOW, 10).await.unwrap().is_empty());
}

/// Two handles create with the same idempotency keys at once: one session per key.
pub async fn idempotent_create_races(backend: &impl Backend) {
    let (a, b) = (backend.open().await, backend.open().await);
    let mut races = Vec::new();
    for i in 0..20 {
        let key = format!("key-{i}");
        let first = a.create(session(Some("a"), None, Some(&key)));
        let second = b.create(session(Some("b"), None, Some(&key)));
        races.push(async move { futures::join!(first, second) });
    }
    for (first, second) in futures::future::join_all(races).await {
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.record.session_id, second.record.session_id);
        assert!(first.existed != second.existed, "exactly one create stores");
        let winner = if first.existed { &second } else { &first };
        assert_eq!(&first.record, &winner.record, "both see the stored record");
    }
    // Sessions without a key never collide.
    let x = create(&a, session(Some("a"), None, None)).await;
    let y = create(&b, session(Some("a"), None, None)).await;
    assert_ne!(x, y);
}

/// A seq that is already stored cannot be appended again (a stale writer cannot overwrite).
pub async fn appending_an_existing_seq_fails(backend: &impl Backend) {
    let (owner, stale) = (backend.open().await, backend.open().await);
    let id = create(&owner, session(Some("a"), None, None)).await;
    for seq in 1..=3 {
        owner.append(event(&id, seq)).await.unwrap();
    }
    let mut forged = event(&id, 2);
    forged.data = json!({"step": "s1", "text": "forged"}).to_string();
    let err = stale.append(forged).await.unwrap_err();
    assert!(
        matches!(&err, JournalError::SeqTaken { seq: 2, .. }),
        "expected SeqTaken, got {err:?}"
    );
    assert_eq!(
        owner.read_after(id.clone(), 0, 10).await.unwrap(),
        (1..=3).map(|seq| event(&id, seq)).collect::<Vec<_>>()
    );
}

/// Claims: a live lease blocks, an expired or released one is taken by exactly one claimer.
pub async fn claim_races(backend: &impl Backend) {
    let (a, b) = (backend.open().await, backend.open().await);
    let lease = NOW + 5_000;
    let id = create(&a, session(Some("r1"), Some(lease), None)).await;
    // Live lease: nobody else may take it.
    assert!(
        b.claim(id.clone(), "r2".into(), NOW, NOW + 10_000)
            .await
            .unwrap()
            .is_none()
    );
    // Expired: two claimers at once, exactly one wins.
    let after = lease + 1;
    let (x, y) = futures::join!(
        a.claim(id.clone(), "r2".into(), after, after + 5_000),
        b.claim(id.clone(), "r3".into(), after, after + 5_000),
    );
    let winners: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "exactly one claimer wins");
    let won = &winners[0];
    assert_eq!(won.previous_owner.as_deref(), Some("r1"));
    let new_owner = won.record.owner.clone().unwrap();
    assert!(new_owner == "r2" || new_owner == "r3");
    assert_eq!(won.record.lease_expires_at_ms, Some(after + 5_000));
    assert_eq!(won.record.status, SessionStatus::Running);
    assert_eq!(a.session(id.clone()).await.unwrap().unwrap(), won.record);
    // The winner's fresh lease blocks the loser.
    assert!(
        a.claim(id.clone(), "r1".into(), after + 1, after + 9_000)
            .await
            .unwrap()
            .is_none()
    );
    // Released: claimable at once, with no previous owner.
    b.release(id.clone()).await.unwrap();
    let released = a.session(id.clone()).await.unwrap().unwrap();
    assert_eq!((released.owner, released.lease_expires_at_ms), (None, None));
    let taken = a
        .claim(id.clone(), "r4".into(), NOW, NOW + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.previous_owner, None);
    assert_eq!(taken.record.owner.as_deref(), Some("r4"));
    // Owned without a lease: held until it ends (never expires).
    let unleased = create(&a, session(Some("r1"), None, None)).await;
    assert!(
        b.claim(unleased, "r2".into(), i64::MAX, i64::MAX)
            .await
            .unwrap()
            .is_none()
    );
    // Finished and unknown sessions are never claimed.
    a.finish(id.clone(), SessionStatus::Completed, Usage::default(), 0)
        .await
        .unwrap();
    assert!(
        b.claim(id, "r5".into(), i64::MAX, i64::MAX)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.claim("s_unknown".into(), "r5".into(), NOW, NOW)
            .await
            .unwrap()
            .is_none()
    );
}

/// A heartbeat extends exactly the owner's running sessions.
pub async fn heartbeat_extends_only_the_owners_running_sessions(backend: &impl Backend) {
    let journal = backend.open().await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(create(&journal, session(Some("a"), Some(NOW), None)).await);
    }
    let finished = create(&journal, session(Some("a"), Some(NOW), None)).await;
    journal
        .finish(finished.clone(), SessionStatus::Failed, Usage::default(), 0)
        .await
        .unwrap();
    let theirs = create(&journal, session(Some("b"), Some(NOW), None)).await;

    assert_eq!(journal.heartbeat("a".into(), NOW + 7_000).await.unwrap(), 3);
    for id in &mine {
        let record = journal.session(id.clone()).await.unwrap().unwrap();
        assert_eq!(record.lease_expires_at_ms, Some(NOW + 7_000), "{id}");
    }
    let untouched = journal.session(theirs.clone()).await.unwrap().unwrap();
    assert_eq!(untouched.lease_expires_at_ms, Some(NOW));
    let finished = journal.session(finished).await.unwrap().unwrap();
    assert_eq!(finished.lease_expires_at_ms, None);
    // "b" takes one of a's sessions over after it expired; a's heartbeat no longer covers it.
    let later = NOW + 7_001;
    let moved = journal
        .claim(mine[0].clone(), "b".into(), later, later + 5_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.previous_owner.as_deref(), Some("a"));
    assert_eq!(
        journal.heartbeat("a".into(), later + 9_000).await.unwrap(),
        2
    );
    assert_eq!(
        journal.heartbeat("b".into(), later + 9_000).await.unwrap(),
        2
    );
    // A released session is no longer the owner's.
    journal.release(mine[1].clone()).await.unwrap();
    assert_eq!(
        journal.heartbeat("a".into(), later + 9_500).await.unwrap(),
        1
    );
    assert_eq!(journal.heartbeat("nobody".into(), later).await.unwrap(), 0);
}

/// Orphans: running sessions whose lease is free, released first, then oldest lease first.
pub async fn orphans_oldest_lease_first(backend: &impl Backend) {
    let journal = backend.open().await;
    let expired_300 = create(&journal, session(Some("a"), Some(NOW - 300), None)).await;
    let expired_100 = create(&journal, session(Some("a"), Some(NOW - 100), None)).await;
    let expired_200 = create(&journal, session(Some("b"), Some(NOW - 200), None)).await;
    let live = create(&journal, session(Some("a"), Some(NOW + 10_000), None)).await;
    let _unleased = create(&journal, session(Some("a"), None, None)).await;
    let released = create(&journal, session(Some("a"), Some(NOW + 10_000), None)).await;
    journal.release(released.clone()).await.unwrap();
    let done = create(&journal, session(Some("a"), Some(NOW - 1_000), None)).await;
    journal
        .finish(done, SessionStatus::Completed, Usage::default(), 0)
        .await
        .unwrap();

    let expected = [&released, &expired_300, &expired_200, &expired_100].map(String::clone);
    assert_eq!(journal.orphans(NOW, 10).await.unwrap(), expected);
    assert_eq!(journal.orphans(NOW, 2).await.unwrap(), expected[..2]);
    assert!(journal.orphans(NOW, 0).await.unwrap().is_empty());
    // A lease is free strictly after it expires.
    assert_eq!(journal.orphans(NOW - 200, 10).await.unwrap(), expected[..2]);
    // Claimed again: no longer an orphan.
    journal
        .claim(expired_300.clone(), "c".into(), NOW, NOW + 5_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        journal.orphans(NOW, 10).await.unwrap(),
        [&released, &expired_200, &expired_100].map(String::clone)
    );
    // Later, the live lease has expired too; the unleased session never does.
    assert_eq!(
        journal.orphans(NOW + 20_000, 10).await.unwrap(),
        [&released, &expired_200, &expired_100, &expired_300, &live].map(String::clone)
    );
}

/// One test per check per backend: `conformance::<backend>::<check>`.
macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            #[tokio::test]
            async fn roundtrip() {
                super::roundtrip(&super::$backend()).await;
            }
            #[tokio::test]
            async fn idempotent_create_races() {
                super::idempotent_create_races(&super::$backend()).await;
            }
            #[tokio::test]
            async fn appending_an_existing_seq_fails() {
                super::appending_an_existing_seq_fails(&super::$backend()).await;
            }
            #[tokio::test]
            async fn claim_races() {
                super::claim_races(&super::$backend()).await;
            }
            #[tokio::test]
            async fn heartbeat_extends_only_the_owners_running_sessions() {
                super::heartbeat_extends_only_the_owners_running_sessions(&super::$backend()).await;
            }
            #[tokio::test]
            async fn orphans_oldest_lease_first() {
                super::orphans_oldest_lease_first(&super::$backend()).await;
            }
        }
    };
}

conformance!(memory);
conformance!(sqlite);
conformance!(redis);
conformance!(redis_tls);
