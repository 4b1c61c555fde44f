//! End-to-end tests of the local router: real sockets on port 0, small axum backends, a
//! reqwest client. Streams are driven by the test through channels, so "the client got
//! event 1 before the backend sent event 2" is proven by order, not by timing. Every wait is
//! bounded by [`fleet::within`], so a regression fails in seconds instead of hanging CI.

mod fleet; // the backends, the router under test and bounded waits

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use dropzero::fleet::router::{
    Algorithm, DeregisterOutcome, FaultEffect, NetworkFault, RouterConfig, TargetState,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use fleet::{Backend, Fleet, assert_aborted, config, next_text, send, within};

#[tokio::test]
async fn round_robin_alternates_between_healthy_backends_and_forwards_requests() {
    let fleet = Fleet::start(config(), &["a", "b"]).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (status, body) = fleet.get_text("/whoami").await;
        assert_eq!(status, StatusCode::OK);
        seen.push(body);
    }
    assert_eq!(seen, ["a", "b", "a", "b"]);

    let response = within(
        fleet
            .client
            .post(fleet.url("/echo?x=1"))
            .body("hello")
            .send(),
    )
    .await
    .expect("post");
    assert_eq!(
        within(response.text()).await.expect("body"),
        "POST /echo?x=1 hello"
    );
    let total: u64 = fleet
        .router
        .snapshot()
        .iter()
        .map(|t| t.total_requests)
        .sum();
    assert_eq!(total, 5);
}

#[tokio::test]
async fn least_outstanding_sends_new_streams_to_the_backend_with_fewer_open() {
    let cfg = RouterConfig {
        algorithm: Algorithm::LeastOutstanding,
        ..config()
    };
    let mut fleet = Fleet::start(cfg, &["a"]).await;
    let (_s1, on1, _t1) = fleet.open_stream().await;
    let (_s2, on2, _t2) = fleet.open_stream().await;
    assert_eq!((on1, on2), ("a", "a"));

    // A scale-out: the newcomer takes the next streams until it has as many as "a".
    let b = Backend::start("b", &fleet.shutdown).await;
    fleet.router.register("b", b.addr);
    within(fleet.router.wait_for_state("b", TargetState::Healthy)).await;
    fleet.backends.push(b);
    let (_s3, on3, _t3) = fleet.open_stream().await;
    let (_s4, on4, _t4) = fleet.open_stream().await;
    assert_eq!((on3, on4), ("b", "b"));

    let snapshot = fleet.router.snapshot();
    assert!(
        snapshot
            .iter()
            .all(|t| t.open_streams == 2 && t.in_flight == 2)
    );
}

#[tokio::test]
async fn unready_backend_leaves_rotation_after_threshold_and_returns_after_recovery() {
    let fleet = Fleet::start(config(), &["a", "b"]).await;
    let a = &fleet.backends[0];

    a.ready.store(false, Ordering::SeqCst);
    let hits_at_flip = a.readyz_hits.load(Ordering::SeqCst);
    within(fleet.router.wait_for_state("a", TargetState::Unhealthy)).await;
    let failing_checks = a.readyz_hits.load(Ordering::SeqCst) - hits_at_flip;
    assert!(
        failing_checks >= 2,
        "unhealthy after {failing_checks} checks"
    );
    for _ in 0..4 {
        assert_eq!(fleet.get_text("/whoami").await.1, "b");
    }

    a.ready.store(true, Ordering::SeqCst);
    within(fleet.router.wait_for_state("a", TargetState::Healthy)).await;
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..2 {
        seen.push(fleet.get_text("/whoami").await.1);
    }
    seen.sort();
    assert_eq!(seen, ["a", "b"]);
}

#[tokio::test]
async fn sse_flows_through_chunk_by_chunk() {
    let fleet = Fleet::start(config(), &["a"]).await;
    let (mut client, _, backend) = fleet.open_stream().await;

    send(
        &backend,
        "id: 1\nevent: token\ndata: {\"text\":\" one\"}\n\n",
    );
    // Event 2 is only sent once the client holds event 1: a buffering proxy hangs here.
    assert!(next_text(&mut client).await.starts_with("id: 1\n"));
    assert_eq!(fleet.router.snapshot()[0].open_streams, 1);
    send(
        &backend,
        "id: 2\nevent: token\ndata: {\"text\":\" two\"}\n\n",
    );
    assert!(next_text(&mut client).await.starts_with("id: 2\n"));

    drop(backend);
    assert!(within(client.next()).await.is_none(), "clean end of stream");
}

#[tokio::test]
async fn deregister_ends_early_when_the_last_stream_closes() {
    let fleet = Fleet::start(config(), &["a"]).await;
    let (mut client, _, backend) = fleet.open_stream().await;

    let router = fleet.router.clone();
    let drain = tokio::spawn(async move { router.deregister("a").await });
    within(fleet.router.wait_for_state("a", TargetState::Draining)).await;
    let (status, _) = fleet.get_text("/whoami").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no new requests while draining"
    );

    // The open stream keeps flowing while its target drains.
    send(&backend, "id: 1\n\n");
    assert_eq!(next_text(&mut client).await, "id: 1\n\n");
    assert!(!drain.is_finished());
    drop(backend);
    assert!(within(client.next()).await.is_none());

    match within(drain).await.expect("drain task") {
        DeregisterOutcome::Drained { waited } => assert!(waited < Duration::from_secs(5)),
        other => panic!("expected Drained, got {other:?}"),
    }
}

#[tokio::test]
async fn deregister_returns_after_the_delay_without_cutting_an_open_stream() {
    let cfg = RouterConfig {
        deregistration_delay: Duration::from_millis(100),
        ..config()
    };
    let fleet = Fleet::start(cfg, &["a"]).await;
    let (mut client, _, backend) = fleet.open_stream().await;

    match within(fleet.router.deregister("a")).await {
        DeregisterOutcome::DelayExpired {
            waited,
            open_streams,
            in_flight,
        } => {
            assert!(waited >= Duration::from_millis(100));
            assert_eq!((open_streams, in_flight), (1, 1));
        }
        other => panic!("expected DelayExpired, got {other:?}"),
    }
    send(&backend, "id: 1\n\n");
    assert_eq!(next_text(&mut client).await, "id: 1\n\n");
    assert_eq!(
        within(fleet.router.deregister("nope")).await,
        DeregisterOutcome::UnknownTarget
    );
}

#[tokio::test]
async fn no_healthy_targets_is_a_503_json_error() {
    let fleet = Fleet::start(config(), &[]).await;
    let (status, body) = fleet.get_text("/v1/sessions").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["error"]["type"], "no_healthy_targets");

    // Registered but never ready is no better.
    let b = Backend::start("b", &fleet.shutdown).await;
    b.ready.store(false, Ordering::SeqCst);
    fleet.router.register("b", b.addr);
    within(fleet.router.wait_for_state("b", TargetState::Unhealthy)).await;
    assert_eq!(fleet.get_text("/").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn unreachable_target_is_a_502_json_error() {
    // One check makes the backend healthy, and the next is a minute away, so the router
    // still routes to it after it is gone.
    let cfg = RouterConfig {
        healthy_threshold: 1,
        health_check_interval: Duration::from_secs(60),
        ..config()
    };
    let fleet = Fleet::start(cfg, &[]).await;
    let stop = CancellationToken::new();
    let gone = Backend::start("gone", &stop).await;
    fleet.router.register("gone", gone.addr);
    within(fleet.router.wait_for_state("gone", TargetState::Healthy)).await;
    stop.cancel();
    // Wait until the port refuses connections (the backend's listener is dropped).
    within(async {
        while tokio::net::TcpStream::connect(gone.addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;

    let (status, body) = fleet.get_text("/whoami").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let kind = json["error"]["type"].as_str().unwrap_or_default();
    assert!(
        ["target_connect_failed", "bad_gateway"].contains(&kind),
        "{kind}"
    );
}

#[tokio::test]
async fn idle_timeout_closes_silent_streams_but_not_ones_with_keepalives() {
    let cfg = RouterConfig {
        idle_timeout: Duration::from_millis(300),
        ..config()
    };
    let fleet = Fleet::start(cfg, &["a"]).await;
    assert_eq!(fleet.get_text("/hang").await.0, StatusCode::GATEWAY_TIMEOUT);

    let (mut silent, _, silent_tx) = fleet.open_stream().await;
    send(&silent_tx, "id: 1\n\n");
    assert_eq!(next_text(&mut silent).await, "id: 1\n\n");
    assert_aborted(&mut silent).await;

    let (mut chatty, _, chatty_tx) = fleet.open_stream().await;
    let keepalives = tokio::spawn(async move {
        // Keepalives for longer than the idle timeout, then an event.
        for _ in 0..12 {
            send(&chatty_tx, ": keepalive\n\n");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        send(&chatty_tx, "id: 1\n\n");
        chatty_tx
    });
    let mut received = String::new();
    while !received.contains("id: 1") {
        received.push_str(&next_text(&mut chatty).await);
    }
    assert_eq!(received.matches(": keepalive").count(), 12);
    drop(within(keepalives).await);
}

#[tokio::test]
async fn network_fault_reset_aborts_a_live_stream() {
    let fleet = Fleet::start(config(), &["a"]).await;
    let (mut client, _, backend) = fleet.open_stream().await;
    send(&backend, "id: 1\n\n");
    assert_eq!(next_text(&mut client).await, "id: 1\n\n");

    fleet.router.set_network_fault(Some(NetworkFault {
        fraction: 1.0,
        seed: 1,
        effect: FaultEffect::Reset,
    }));
    assert_aborted(&mut client).await;
    // The aborted stream was counted out: the drain ends at once.
    let drained = within(fleet.router.deregister("a")).await;
    assert!(
        matches!(drained, DeregisterOutcome::Drained { .. }),
        "{drained:?}"
    );
}

#[tokio::test]
async fn network_fault_stall_holds_chunks_until_it_ends() {
    let fleet = Fleet::start(config(), &["a"]).await;
    let (mut client, _, backend) = fleet.open_stream().await;
    let stall = Duration::from_millis(200);
    fleet.router.set_network_fault(Some(NetworkFault {
        fraction: 1.0,
        seed: 1,
        effect: FaultEffect::Stall { duration: stall },
    }));
    let started = tokio::time::Instant::now();
    send(&backend, "id: 1\n\n");
    assert_eq!(next_text(&mut client).await, "id: 1\n\n");
    assert!(started.elapsed() >= stall - Duration::from_millis(20));
}

#[tokio::test]
async fn network_fault_latency_delays_each_chunk_until_cleared() {
    let fleet = Fleet::start(config(), &["a"]).await;
    let (mut client, _, backend) = fleet.open_stream().await;
    let per_chunk = Duration::from_millis(100);
    fleet.router.set_network_fault(Some(NetworkFault {
        fraction: 1.0,
        seed: 1,
        effect: FaultEffect::Latency { per_chunk },
    }));
    let started = tokio::time::Instant::now();
    send(&backend, "id: 1\n\n");
    assert_eq!(next_text(&mut client).await, "id: 1\n\n");
    assert!(started.elapsed() >= per_chunk);

    fleet.router.set_network_fault(None);
    send(&backend, "id: 2\n\n");
    assert_eq!(next_text(&mut client).await, "id: 2\n\n");
}

#[tokio::test]
async fn shutdown_ends_live_streams_and_stops_the_router() {
    let fleet = Fleet::start(config(), &["a"]).await;
    let (mut client, _, _backend) = fleet.open_stream().await;
    fleet.shutdown.cancel();
    assert_aborted(&mut client).await;
    within(fleet.router.stopped()).await;
}

#[tokio::test]
async fn stickiness_cookie_pins_a_client_to_its_target_until_it_leaves() {
    let cfg = RouterConfig {
        stickiness: true,
        ..config()
    };
    let fleet = Fleet::start(cfg, &["a", "b"]).await;
    let first = within(fleet.client.get(fleet.url("/whoami")).send())
        .await
        .expect("request");
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    let pinned = within(first.text()).await.expect("body");
    assert_eq!(cookie, format!("AWSALB={pinned}; Path=/"));
    let pair = cookie.split(';').next().expect("pair").to_string();
    // Round robin would alternate; the cookie keeps every request on the same target.
    for _ in 0..4 {
        let response = within(
            fleet
                .client
                .get(fleet.url("/whoami"))
                .header("cookie", format!("other=1; {pair}"))
                .send(),
        )
        .await
        .expect("request");
        assert_eq!(within(response.text()).await.expect("body"), pinned);
    }
    // Once the pinned target leaves, the request goes elsewhere and the cookie moves with it.
    fleet.router.remove(&pinned);
    let response = within(
        fleet
            .client
            .get(fleet.url("/whoami"))
            .header("cookie", pair)
            .send(),
    )
    .await
    .expect("request");
    let moved = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    let other = within(response.text()).await.expect("body");
    assert_ne!(other, pinned);
    assert_eq!(moved, format!("AWSALB={other}; Path=/"));
}
