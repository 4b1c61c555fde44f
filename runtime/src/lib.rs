//! # dropzero-runtime
//!
//! The system under test: a reference SSE agent runtime (`dropzero runtime`) and a mock LLM
//! provider (`dropzero mock-llm`). The harness never links this crate's internals into its
//! load or measurement code; only the two subcommands call [`run`] and [`mock::run`].
//!
//! A session's life, top-down: `api::sessions::create` stores it in the [`journal`] and
//! [`AppState::start_session`] launches its [`agent`] loop (planner → DAG → workers →
//! tools), which writes every event through its [`emitter`] into the journal. Streams
//! (`api::stream`) only ever read the journal, so a client never sees an event that a crash
//! could lose, and any replica sharing the journal can serve any session. The replica
//! running a session holds a [`lease`] on it; when that replica dies (the lease expires) or
//! drains (it releases the session), another one claims it and continues from the journal
//! ([`AppState::resume_session`], `agent::resume`). [`drain`] ends everything cleanly on
//! SIGTERM.
//!
//! # Layout
//! - [`config`]: flags ([`RuntimeArgs`]) resolved into a [`Config`].
//! - [`api`]: the router ([`app`]), errors, auth, session endpoints, the SSE stream.
//! - [`server`]: hyper under the router, with a header read timeout and a head size limit.
//! - [`session`]: session records, statuses, events, the registry of local sessions.
//! - [`journal`]: the write-ahead journal trait and its memory, SQLite and Redis backends.
//! - [`emitter`]: per-session seq assignment, digest, usage; append-then-notify.
//! - [`agent`]: planner, DAG, workers, tools with circuit breakers, retries with backoff;
//!   `agent::resume` rebuilds a session's progress from its events for a takeover.
//! - [`lease`]: heartbeats, the orphan sweeper, claiming a session to take it over.
//! - [`llm`]: the streaming Anthropic Messages client.
//! - [`protection`]: ECS task scale-in protection while sessions run here.
//! - [`ecs`]: the replica's name on ECS (its task id, from the task metadata endpoint).
//! - [`emf`]: active sessions as CloudWatch Embedded Metric Format lines (autoscaling).
//! - [`budget`], [`drain`], [`metrics`], [`state`].
//! - [`mock`]: the mock LLM provider (Anthropic + OpenAI streaming, latency, faults, ledger).

pub mod agent;
pub mod api;
pub mod budget;
pub mod config;
pub mod drain;
pub mod ecs;
pub mod emf;
pub mod emitter;
pub mod journal;
pub mod lease;
pub mod llm;
pub mod metrics;
pub mod mock;
pub mod protection;
pub mod server;
pub mod session;
pub mod state;

use std::{io::Write, sync::Arc, time::Duration};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use api::app;
pub use config::{Config, JournalSpec, Mode, RuntimeArgs};
pub use state::AppState;

use journal::{
    Journal,
    memory::MemoryJournal,
    redis::{RedisJournal, RedisOptions},
    sqlite::SqliteJournal,
};

/// How long `run` waits, after the drain deadline, for agent loops to hand their sessions off.
const HANDOFF_GRACE: Duration = Duration::from_secs(3);

/// Open the journal a spec names. Async because the Redis journal connects (bounded by its
/// operation timeout) and fails here, at start-up, if Redis cannot be reached.
pub async fn open_journal(spec: &JournalSpec) -> anyhow::Result<Arc<dyn Journal>> {
    Ok(match spec {
        JournalSpec::Memory => Arc::new(MemoryJournal::new()),
        JournalSpec::Sqlite(path) => Arc::new(
            SqliteJournal::open(path)
                .with_context(|| format!("opening the journal {}", path.display()))?,
        ),
        JournalSpec::Redis(redis) => {
            let options = RedisOptions {
                ca_pem: redis.ca_pem.clone(),
                ..RedisOptions::new(&redis.prefix)
            };
            Arc::new(
                RedisJournal::open(&redis.url, options)
                    .await
                    .with_context(|| format!("opening the journal {redis}"))?,
            )
        }
    })
}

/// Serve the runtime until `shutdown` fires, then drain and return.
pub async fn run(args: RuntimeArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (mut config, spec) = Config::from_args(&args)?;
    if let Some(id) = ecs::replica_id(
        args.replica_id.as_deref(),
        args.ecs_container_metadata_uri.as_deref(),
        ecs::METADATA_TIMEOUT,
    )
    .await
    {
        config.replica_id = id;
    }
    let journal = open_journal(&spec).await?;
    let listener = tokio::net::TcpListener::bind((args.bind, args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.bind, args.port))?;
    let addr = listener.local_addr()?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "{}",
            serde_json::json!({"listening": addr.to_string()})
        )?;
        stdout.flush()?;
    }
    let state = AppState::new(config, journal);
    tracing::info!(
        %addr,
        replica_id = %state.config.replica_id,
        mode = state.config.mode.as_str(),
        journal = ?spec,
        "runtime listening"
    );
    serve(listener, state, shutdown).await
}

/// Serve on `listener` until `shutdown` fires; in resilient mode heartbeat leases, take over
/// orphaned sessions and keep scale-in protection while serving, and drain first (see
/// [`drain`]) when `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let hard_stop = state.drain.hard_stop.clone();
    let server = server::serve(
        listener,
        app(state.clone()),
        state.config.connection,
        hard_stop.clone().cancelled_owned(),
    );
    // The metric lines stop with the process (dropping the guard), in both modes.
    let _emf = state.config.emf.clone().map(|emf| {
        let stop = CancellationToken::new();
        tokio::spawn(emit_metrics(emf, state.clone(), stop.clone()));
        stop.drop_guard()
    });
    if state.config.mode == Mode::Naive {
        // The fragile design: no drain; every stream is cut when the process goes.
        tokio::select! {
            () = server => {}
            _ = shutdown.cancelled() => tracing::info!("shutdown: naive mode exits at once"),
        }
        return Ok(());
    }
    let supervisor = tokio::spawn(drain_on(shutdown, state.clone()));
    // Leases are kept until the drain deadline (they stop at hard stop); protection follows
    // the session count until the process ends, so hand-offs turn it off.
    let background_stop = CancellationToken::new();
    let background = [
        tokio::spawn(lease::heartbeat(state.clone())),
        tokio::spawn(lease::sweep_orphans(state.clone())),
        tokio::spawn(protection::run(
            state.config.protection.clone(),
            state.local.watch_count(),
            background_stop.clone(),
        )),
    ];
    server.await;
    supervisor.abort();
    state.tasks.close();
    if tokio::time::timeout(HANDOFF_GRACE, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some agent loops did not stop within the hand-off grace period");
    }
    background_stop.cancel();
    for task in background {
        task.abort();
    }
    state.drain.log_summary();
    tracing::info!("drained; exiting");
    Ok(())
}

/// EMF lines on stderr, next to the JSON logs (awslogs ships both streams; stdout carries
/// only the `listening` line).
async fn emit_metrics(emf: emf::EmfConfig, state: AppState, stop: CancellationToken) {
    let reporter = emf::Reporter {
        replica_id: state.config.replica_id.clone(),
        mode: state.config.mode.as_str(),
        version: state.config.version_label.clone(),
    };
    let sample = || emf::Sample {
        active_sessions: state.local.len(),
        open_streams: state
            .metrics
            .open_streams
            .load(std::sync::atomic::Ordering::Relaxed),
    };
    emf::run(emf, reporter, sample, std::io::stderr(), stop).await;
}

/// Phase 1 of the drain at `shutdown`, phase 2 when no session runs here or at the deadline.
async fn drain_on(shutdown: CancellationToken, state: AppState) {
    shutdown.cancelled().await;
    let drain = &state.drain;
    drain.start(state.local.len());
    let deadline = tokio::time::Instant::now() + state.config.drain_timeout;
    tracing::info!(
        active = state.local.len(),
        timeout = ?state.config.drain_timeout,
        "draining"
    );
    loop {
        let ended = drain.session_ended.notified();
        if state.local.is_empty() {
            tracing::info!("drain: no sessions left");
            break;
        }
        if tokio::time::timeout_at(deadline, ended).await.is_err() {
            tracing::warn!(
                remaining = state.local.len(),
                "drain deadline: handing off remaining sessions"
            );
            break;
        }
    }
    drain.hard_stop.cancel();
}
