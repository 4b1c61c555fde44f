//! Takeover in process: a replica continues a session another one began, from any point of
//! its journal, with exactly the content an uninterrupted session has; a session released at
//! the drain deadline is claimed by the stream of the client reconnecting to another replica;
//! and a replica whose lease lapsed while it still runs is fenced out by the journal.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use dropzero_runtime::{
    Config,
    config::LeaseConfig,
    journal::{Claimed, Created, Journal, JournalError, JournalResult, sqlite::SqliteJournal},
    session::{EventRecord, SessionRecord, SessionStatus, Usage},
};
use futures::{FutureExt, future::BoxFuture};
use serde_json::json;
use support::{Ev, Resume, create, digest, memory, read, serve, verify};

/// Short leases and a fast sweep, so takeovers happen within a test's patience.
fn fast_leases(llm: &str) -> Config {
    let mut config = Config::new(llm);
    config.lease = LeaseConfig::new(Duration::from_millis(300), Some(Duration::from_millis(50)));
    config
}

/// Token text per step: what a session produced, whatever the interleaving of its steps.
fn per_step(events: &[Ev]) -> BTreeMap<String, String> {
    let mut steps = BTreeMap::<String, String>::new();
    for e in events.iter().filter(|e| e.kind == "token") {
        let step = e.data["step"].as_str().unwrap().to_string();
        steps
            .entry(step)
            .or_default()
            .push_str(e.data["text"].as_str().unwrap());
    }
    steps
}

fn count(events: &[Ev], kind: &str) -> usize {
    events.iter().filter(|e| e.kind == kind).count()
}

/// Where to cut a journal: nothing, after `session`, after `plan`, around every tool event,
/// a spread of token positions, and just before `done`.
fn cut_points(events: &[EventRecord]) -> BTreeSet<usize> {
    let last = events.len() - 1;
    let mut cuts = BTreeSet::from([0, 1, 2, last]);
    for (i, e) in events.iter().enumerate() {
        if e.kind == "tool" {
            cuts.extend([i, i + 1]);
        }
    }
    cuts.extend((3..last).step_by((last / 6).max(1)));
    cuts.retain(|&k| k <= last);
    cuts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_any_point_of_the_journal_with_the_same_content() {
    let mock = support::mock(support::profile(Duration::ZERO)).await;
    for query in [
        "one step [dz tokens=30] [dz steps=1] [dz tool=search]",
        "three steps [dz tokens=45] [dz steps=3] [dz tool=search]",
    ] {
        let a = serve(Config::new(&mock.url), memory()).await;
        let s = create(&a.base, json!({"query": query})).await;
        let full = read(&a.base, &s, Resume::Start, None).await;
        let full_done = verify(&full, 1);
        assert_eq!(full_done["status"], "completed");
        let record = a
            .state
            .journal
            .session(s.id.clone())
            .await
            .unwrap()
            .unwrap();
        let journaled = a
            .state
            .journal
            .read_after(s.id.clone(), 0, 10_000)
            .await
            .unwrap();
        for k in cut_points(&journaled) {
            // A journal holding the first k events of a session whose owner died.
            let journal = memory();
            let orphan = SessionRecord {
                status: SessionStatus::Running,
                owner: Some("dead".into()),
                lease_expires_at_ms: Some(1),
                last_seq: 0,
                usage: Usage::default(),
                ..record.clone()
            };
            journal.create(orphan).await.unwrap();
            for e in &journaled[..k] {
                journal.append(e.clone()).await.unwrap();
            }
            let b = serve(fast_leases(&mock.url), journal).await;
            let resumed = read(&b.base, &s, Resume::Header(k as u64), None).await;
            let done = verify(&resumed, k as u64 + 1);
            let takeover = &resumed[0];
            assert_eq!(takeover.kind, "session", "cut {k}");
            assert_eq!(
                takeover.data["takeover"],
                json!({"from": "dead", "after_seq": k, "reason": "lease_expired"}),
                "cut {k}"
            );
            assert_eq!(
                takeover.data["replica_id"],
                json!(b.state.config.replica_id)
            );
            let all: Vec<Ev> = full[..k].iter().cloned().chain(resumed).collect();
            assert_eq!(done["status"], "completed", "cut {k}");
            assert_eq!(done["content_sha256"], json!(digest(&all)), "cut {k}");
            assert_eq!(
                per_step(&all),
                per_step(&full),
                "cut {k}: same text per step"
            );
            assert_eq!(count(&all, "plan"), 1, "cut {k}: planned once");
            assert_eq!(count(&all, "tool"), count(&full, "tool"), "cut {k}");
            if query.contains("steps=1") {
                assert_eq!(
                    done["content_sha256"], full_done["content_sha256"],
                    "cut {k}"
                );
            }
            b.shutdown.cancel();
        }
        a.shutdown.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_hand_off_is_picked_up_by_the_reconnecting_stream() {
    let mock = support::mock(support::profile(Duration::from_millis(5))).await;
    let journal = memory();
    let mut config_a = fast_leases(&mock.url);
    config_a.drain_timeout = Duration::from_millis(300);
    // B's sweeper is slow: the reconnecting client's stream must do the claiming.
    let mut config_b = Config::new(&mock.url);
    config_b.lease = LeaseConfig::new(Duration::from_secs(5), Some(Duration::from_secs(60)));
    let a = serve(config_a, journal.clone()).await;
    let b = serve(config_b, journal.clone()).await;
    let s = create(
        &a.base,
        json!({"query": "hand me off [dz tokens=300] [dz steps=2]"}),
    )
    .await;
    let (base, session) = (
        a.base.clone(),
        support::Created {
            id: s.id.clone(),
            token: s.token.clone(),
        },
    );
    let reader = tokio::spawn(async move { read(&base, &session, Resume::Start, None).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    a.shutdown.cancel();
    let first = reader.await.unwrap();
    assert_eq!(count(&first, "done"), 0, "A's stream ends without done");
    tokio::time::timeout(Duration::from_secs(10), a.handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        a.state
            .drain
            .handed_off
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    let reconnected = Instant::now();
    let after = first.last().unwrap().seq;
    let rest = read(&b.base, &s, Resume::Header(after), None).await;
    let all: Vec<Ev> = first.iter().cloned().chain(rest.iter().cloned()).collect();
    let done = verify(&all, 1);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["content_sha256"], json!(digest(&all)));
    let takeover = rest.iter().find(|e| e.kind == "session").unwrap();
    assert_eq!(takeover.data["takeover"]["reason"], "released");
    assert_eq!(takeover.data["takeover"]["from"], json!(null));
    assert!(
        reconnected.elapsed() < Duration::from_secs(5),
        "picked up promptly"
    );
    let metrics = reqwest::get(format!("{}/metrics", b.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("dropzero_takeovers_total{reason=\"released\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dropzero_takeovers_total{reason=\"lease_expired\"} 0"),
        "{metrics}"
    );
}

/// A journal with injected faults: heartbeats that fail, and a stall (every append and
/// heartbeat waits while `stalled` is true — a replica frozen by a GC pause, SIGSTOP, a
/// saturated disk).
struct Faulty {
    inner: Arc<dyn Journal>,
    heartbeat_fails: bool,
    /// Set by the first renewal that had a lease to renew; every heartbeat fails from then on.
    failing: Arc<std::sync::atomic::AtomicBool>,
    stalled: tokio::sync::watch::Receiver<bool>,
}

impl Faulty {
    fn new(
        inner: Arc<dyn Journal>,
        heartbeat_fails: bool,
    ) -> (Faulty, tokio::sync::watch::Sender<bool>) {
        let (stall, stalled) = tokio::sync::watch::channel(false);
        (
            Faulty {
                inner,
                heartbeat_fails,
                failing: Arc::default(),
                stalled,
            },
            stall,
        )
    }

    fn gate(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stalled = self.stalled.clone();
        async move {
            let _ = stalled.wait_for(|s| !s).await;
        }
    }
}

impl Journal for Faulty {
    fn create(&self, record: SessionRecord) -> BoxFuture<'static, JournalResult<Created>> {
        self.inner.create(record)
    }
    fn session(&self, id: String) -> BoxFuture<'static, JournalResult<Option<SessionRecord>>> {
        self.inner.session(id)
    }
    fn append(&self, event: EventRecord) -> BoxFuture<'static, JournalResult<()>> {
        // One step per session in these tests, so one append in flight: order is kept.
        let (gate, inner) = (self.gate(), self.inner.clone());
        async move {
            gate.await;
            inner.append(event).await
        }
        .boxed()
    }
    fn read_after(
        &self,
        id: String,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'static, JournalResult<Vec<EventRecord>>> {
        self.inner.read_after(id, after, limit)
    }
    fn last_seq(&self, id: String) -> BoxFuture<'static, JournalResult<u64>> {
        self.inner.last_seq(id)
    }
    fn finish(
        &self,
        id: String,
        status: SessionStatus,
        usage: Usage,
        last_seq: u64,
    ) -> BoxFuture<'static, JournalResult<()>> {
        self.inner.finish(id, status, usage, last_seq)
    }
    fn release(&self, id: String) -> BoxFuture<'static, JournalResult<()>> {
        self.inner.release(id)
    }
    fn heartbeat(&self, owner: String, expires: i64) -> BoxFuture<'static, JournalResult<u64>> {
        if self.heartbeat_fails {
            // Renewals fail once there is a lease to renew: the replica accepted sessions
            // while its journal answered (a failed heartbeat makes it refuse new ones).
            let (inner, failing) = (self.inner.clone(), self.failing.clone());
            return async move {
                use std::sync::atomic::Ordering::SeqCst;
                if failing.load(SeqCst) {
                    return Err(JournalError::WriterGone);
                }
                match inner.heartbeat(owner, expires).await {
                    Ok(0) => Ok(0),
                    Ok(_) => {
                        failing.store(true, SeqCst);
                        Err(JournalError::WriterGone)
                    }
                    Err(e) => Err(e),
                }
            }
            .boxed();
        }
        let (gate, inner) = (self.gate(), self.inner.clone());
        async move {
            gate.await;
            inner.heartbeat(owner, expires).await
        }
        .boxed()
    }
    fn claim(
        &self,
        id: String,
        owner: String,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> BoxFuture<'static, JournalResult<Option<Claimed>>> {
        self.inner.claim(id, owner, now_ms, expires_at_ms)
    }
    fn orphans(&self, now_ms: i64, limit: usize) -> BoxFuture<'static, JournalResult<Vec<String>>> {
        self.inner.orphans(now_ms, limit)
    }
}

/// The text an uninterrupted single-step session has: its `done`.
async fn uninterrupted(llm: &str, query: &serde_json::Value) -> serde_json::Value {
    let reference = serve(Config::new(llm), memory()).await;
    let r = create(&reference.base, query.clone()).await;
    verify(&read(&reference.base, &r, Resume::Start, None).await, 1)
}

/// Two replicas on one SQLite file (two writers, as two processes have); A's journal faulty.
async fn pair(
    dir: &std::path::Path,
    llm: &str,
    heartbeat_fails: bool,
) -> (
    support::Runtime,
    support::Runtime,
    tokio::sync::watch::Sender<bool>,
) {
    let path = dir.join("j.db");
    let (faulty, stall) = Faulty::new(
        Arc::new(SqliteJournal::open(&path).unwrap()),
        heartbeat_fails,
    );
    let a = serve(fast_leases(llm), Arc::new(faulty)).await;
    let b = serve(
        fast_leases(llm),
        Arc::new(SqliteJournal::open(&path).unwrap()),
    )
    .await;
    (a, b, stall)
}

/// Read the session from B to its end; check it against the uninterrupted text and that
/// exactly one takeover, from A after its lease expired, happened.
async fn check_taken_over(
    a: &support::Runtime,
    b: &support::Runtime,
    s: &support::Created,
    expected: &serde_json::Value,
    reason: &str,
) {
    let events = read(&b.base, s, Resume::Start, None).await;
    let done = verify(&events, 1);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["content_sha256"], json!(digest(&events)));
    assert_eq!(
        done["content_sha256"], expected["content_sha256"],
        "same text as uninterrupted"
    );
    let sessions: Vec<&Ev> = events.iter().filter(|e| e.kind == "session").collect();
    assert_eq!(
        sessions.len(),
        2,
        "created on A, taken over once: {events:#?}"
    );
    assert_eq!(
        sessions[0].data["replica_id"],
        json!(a.state.config.replica_id)
    );
    assert_eq!(
        sessions[1].data["replica_id"],
        json!(b.state.config.replica_id)
    );
    // A released session has no previous owner to name; an expired lease names A.
    let from = match reason {
        "released" => serde_json::Value::Null,
        _ => json!(a.state.config.replica_id),
    };
    assert_eq!(sessions[1].data["takeover"]["from"], from);
    assert_eq!(sessions[1].data["takeover"]["reason"], reason);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !a.state.local.is_empty() {
        assert!(Instant::now() < deadline, "A's loop stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_renew_its_lease_stops_before_it_lapses() {
    let dir = tempfile::tempdir().unwrap();
    let mock = support::mock(support::profile(Duration::from_millis(4))).await;
    let query = json!({"query": "cannot renew [dz tokens=250] [dz steps=1]"});
    let expected = uninterrupted(&mock.url, &query).await;
    let (a, b, _stall) = pair(dir.path(), &mock.url, true).await;
    let s = create(&a.base, query).await;
    // A stops the session before its lease can lapse, then releases it (its journal still
    // takes writes, only the heartbeat fails): B continues it at once.
    check_taken_over(&a, &b, &s, &expected, "released").await;
    let failures = a
        .state
        .metrics
        .lease_heartbeat_failures
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(failures > 0);
    assert!(
        !a.state.leases.is_healthy(),
        "and A claims nothing meanwhile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_owner_is_fenced_out_when_it_wakes() {
    let dir = tempfile::tempdir().unwrap();
    let mock = support::mock(support::profile(Duration::from_millis(4))).await;
    let query = json!({"query": "stalled [dz tokens=250] [dz steps=1]"});
    let expected = uninterrupted(&mock.url, &query).await;
    let (a, b, stall) = pair(dir.path(), &mock.url, false).await;
    let s = create(&a.base, query).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    // A freezes mid-session: its lease lapses and B takes over. When A wakes, its pending
    // append finds the seq taken and A stops without writing anything more.
    stall.send_replace(true);
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.state.local.get(&s.id).is_none() {
        assert!(Instant::now() < deadline, "B took over while A was frozen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stall.send_replace(false);
    check_taken_over(&a, &b, &s, &expected, "lease_expired").await;
}
