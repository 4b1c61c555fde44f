//! What only the Redis backend does: the exact-next append check, failure and recovery when
//! Redis dies, script reload, and key prefixes that keep runs apart.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{FutureExt, TryFutureExt, future::BoxFuture};

use dropzero_runtime::{
    JournalSpec,
    journal::{
        Journal, JournalError,
        redis::{RedisJournal, RedisOptions},
    },
    open_journal,
    session::{EventRecord, SessionRecord},
};

use crate::redis_server::RedisServer;

fn record() -> SessionRecord {
    SessionRecord::new("r1", "q".into(), Default::default(), None, None)
}

fn event(session_id: &str, seq: u64) -> EventRecord {
    EventRecord {
        session_id: session_id.to_string(),
        seq,
        kind: "token".into(),
        data: format!(r#"{{"step":"s1","text":" t{seq}"}}"#),
    }
}

async fn open(server: &RedisServer, prefix: &str, op_timeout: Duration) -> RedisJournal {
    let options = RedisOptions {
        op_timeout,
        ..RedisOptions::new(prefix)
    };
    RedisJournal::open(&server.url(), options).await.unwrap()
}

/// A raw connection, to look at and poke the server behind the journal's back.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn append_must_be_exactly_the_next_seq() {
    let server = RedisServer::start();
    let journal = open(&server, "t", Duration::from_secs(5)).await;
    let id = journal.create(record()).await.unwrap().record.session_id;
    journal.append(event(&id, 1)).await.unwrap();
    journal.append(event(&id, 2)).await.unwrap();
    // A seq already written is the fence against a stale owner.
    for seq in [2, 1, 0] {
        match journal.append(event(&id, seq)).await {
            Err(JournalError::SeqTaken {
                session_id,
                seq: got,
            }) => {
                assert_eq!((session_id.as_str(), got), (id.as_str(), seq))
            }
            other => panic!("seq {seq}: expected SeqTaken, got {other:?}"),
        }
    }
    // A gap is a bug in the writer.
    for (seq, expected) in [(5, 3), (4, 3)] {
        match journal.append(event(&id, seq)).await {
            Err(JournalError::OutOfOrder {
                session_id,
                seq: got,
                expected: want,
            }) => assert_eq!(
                (session_id.as_str(), got, want),
                (id.as_str(), seq, expected)
            ),
            other => panic!("seq {seq}: expected OutOfOrder, got {other:?}"),
        }
    }
    assert!(matches!(
        journal.append(event("s_unknown", 1)).await,
        Err(JournalError::UnknownSession(id)) if id == "s_unknown"
    ));
    assert_eq!(journal.last_seq(id).await.unwrap(), 2);
}

#[tokio::test]
async fn redis_killed_mid_run_fails_fast_then_recovers() {
    let mut server = RedisServer::start();
    let op_timeout = Duration::from_secs(2);
    let journal: Arc<dyn Journal> = Arc::new(open(&server, "t", op_timeout).await);
    let id = journal.create(record()).await.unwrap().record.session_id;
    journal.append(event(&id, 1)).await.unwrap();

    server.kill();
    // Every operation fails with a Redis error within its timeout, and nothing panics.
    let operations: Vec<(&str, BoxFuture<'static, Result<(), JournalError>>)> = vec![
        ("append", journal.append(event(&id, 2))),
        (
            "read_after",
            journal.read_after(id.clone(), 0, 10).map_ok(drop).boxed(),
        ),
        (
            "last_seq",
            journal.last_seq(id.clone()).map_ok(drop).boxed(),
        ),
        ("session", journal.session(id.clone()).map_ok(drop).boxed()),
        ("create", journal.create(record()).map_ok(drop).boxed()),
        (
            "claim",
            journal
                .claim(id.clone(), "r2".into(), 0, 1)
                .map_ok(drop)
                .boxed(),
        ),
        (
            "heartbeat",
            journal.heartbeat("r1".into(), 1).map_ok(drop).boxed(),
        ),
        ("orphans", journal.orphans(0, 10).map_ok(drop).boxed()),
    ];
    for (name, operation) in operations {
        let started = Instant::now();
        let err = operation.await.expect_err("Redis is down");
        let took = started.elapsed();
        assert!(matches!(err, JournalError::Redis { .. }), "{name}: {err:?}");
        assert!(
            err.to_string().starts_with("redis journal: "),
            "{name}: {err}"
        );
        assert!(
            took < op_timeout + Duration::from_secs(1),
            "{name} took {took:?}"
        );
    }

    // A new, empty Redis on the same address: the journal reconnects on its own and loads
    // its scripts again (the new server has none).
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let id = loop {
        match journal.create(record()).await {
            Ok(created) => break created.record.session_id,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the journal did not recover after Redis restarted: {e}"),
        }
    };
    journal.append(event(&id, 1)).await.unwrap();
    assert_eq!(journal.last_seq(id).await.unwrap(), 1);
}

#[tokio::test]
async fn opening_fails_clearly_when_redis_is_down() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    let spec: JournalSpec = format!("{url}?prefix=p").parse().unwrap();
    let started = Instant::now();
    let err = match open_journal(&spec).await {
        Ok(_) => panic!("opened a journal with Redis down"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("opening the journal redis://127.0.0.1"),
        "{err}"
    );
    assert!(err.contains("redis journal: connecting"), "{err}");
}

#[tokio::test]
async fn scripts_are_reloaded_after_a_script_flush() {
    let server = RedisServer::start();
    let journal = open(&server, "t", Duration::from_secs(5)).await;
    let id = journal.create(record()).await.unwrap().record.session_id;
    let mut conn = raw(&server).await;
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    // Several queued at once: all fail with NOSCRIPT, are retried in order after the reload.
    let pending: Vec<_> = (1..=50)
        .map(|seq| journal.append(event(&id, seq)))
        .collect();
    for p in pending {
        p.await.unwrap();
    }
    assert_eq!(journal.last_seq(id).await.unwrap(), 50);
}

#[tokio::test]
async fn prefixes_keep_runs_apart() {
    let server = RedisServer::start();
    let spec = |prefix: &str| -> JournalSpec {
        format!("{}?prefix={prefix}", server.url()).parse().unwrap()
    };
    let run1 = open_journal(&spec("dz-run1")).await.unwrap();
    let run2 = open_journal(&spec("dz-run2")).await.unwrap();
    let mut record = record();
    record.idempotency_key = Some("same-key".into());
    let id = run1.create(record.clone()).await.unwrap().record.session_id;
    run1.append(event(&id, 1)).await.unwrap();
    // The same key in another run is a different session; run1's session is unknown there.
    record.session_id = "s_other".into();
    assert!(!run2.create(record).await.unwrap().existed);
    assert_eq!(run2.session(id.clone()).await.unwrap(), None);
    assert_eq!(run2.last_seq(id.clone()).await.unwrap(), 0);
    // Every key lives under its run's prefix.
    let mut conn = raw(&server).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert!(
            key.starts_with("dz-run1:") || key.starts_with("dz-run2:"),
            "{key}"
        );
    }
}

/// `--journal rediss://:TOKEN@HOST:PORT/0?prefix=…` with `--journal-ca-file`, as the
/// runtime opens it: a real TLS round trip through the spec parser and `open_journal`.
#[tokio::test]
async fn rediss_journal_round_trip_with_auth_token() {
    let server = RedisServer::start_tls();
    let mut spec: JournalSpec = format!("{}?prefix=tls", server.tls_url()).parse().unwrap();
    let JournalSpec::Redis(redis) = &mut spec else {
        panic!("a rediss:// URL is a Redis journal: {spec:?}");
    };
    redis.ca_pem = Some(server.ca_pem());
    assert!(
        !format!("{spec:?}").contains(crate::redis_server::TLS_PASSWORD),
        "the token stays out of logs: {spec:?}"
    );
    let journal = open_journal(&spec).await.unwrap();
    let id = journal.create(record()).await.unwrap().record.session_id;
    for seq in 1..=3 {
        journal.append(event(&id, seq)).await.unwrap();
    }
    let events = journal.read_after(id.clone(), 1, 10).await.unwrap();
    assert_eq!(events, vec![event(&id, 2), event(&id, 3)]);
    // The keys went through the TLS port into the same server, under the prefix.
    let mut conn = redis::Client::open(format!(
        "redis://:{}@{}",
        crate::redis_server::TLS_PASSWORD,
        server.url().trim_start_matches("redis://")
    ))
    .unwrap()
    .get_multiplexed_async_connection()
    .await
    .unwrap();
    let len: u64 = redis::cmd("XLEN")
        .arg(format!("tls:ev:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 3);
}

/// A server whose certificate does not chain to a trusted CA is refused at start-up,
/// within the bound, with the reason in the error chain.
#[tokio::test]
async fn rediss_refuses_an_untrusted_certificate() {
    let server = RedisServer::start_tls();
    // No CA given: the system's trust store, which does not know the test CA.
    let spec: JournalSpec = format!("{}?prefix=p", server.tls_url()).parse().unwrap();
    let started = Instant::now();
    let err = match open_journal(&spec).await {
        Ok(_) => panic!("trusted a certificate from an unknown CA"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.contains("redis journal: connecting"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(!err.contains(crate::redis_server::TLS_PASSWORD), "{err}");
}

/// The right CA but a wrong auth token: refused, not hung.
#[tokio::test]
async fn rediss_refuses_a_wrong_auth_token() {
    let server = RedisServer::start_tls();
    let url = server
        .tls_url()
        .replace(crate::redis_server::TLS_PASSWORD, "not-the-token");
    let options = RedisOptions {
        ca_pem: Some(server.ca_pem()),
        ..RedisOptions::new("p")
    };
    match RedisJournal::open(&url, options).await {
        Ok(_) => panic!("opened with a wrong auth token"),
        Err(e) => {
            let err = format!("{e:#}");
            assert!(err.contains("redis journal"), "{err}");
        }
    }
}
