//! Closed users on goose: a [`GooseAttack`] whose test plan is the scenario's stages, one
//! scenario ("agent session") whose single transaction runs one whole session through the
//! run's session engine, and goose's wait time as the think time.
//!
//! What goose needs to behave inside a harness (DESIGN §7):
//! - **No second HTTP stack.** Sessions go through the run's own client (the [`Runner`]);
//!   goose's users share one client of their own (cookies off), built once and never used for
//!   a request. Goose's 60 s request timeout therefore never cuts a stream.
//! - **Goose's metrics are the engine's.** Each session hands back its HTTP requests
//!   (create attempts, stream opens, resumes: status, time to headers, why it failed) and the
//!   transaction records them into goose ([`GooseUser::record_custom_request_duration`]), so
//!   goose's request table and HTML report show exactly what the engine measured.
//! - **No controllers, no reset, no printing.** Telnet and WebSocket controllers are off,
//!   metrics are never reset when the ramp ends (goose never resets under a test plan, and
//!   refuses `no_reset_metrics` beside one), and goose prints no tables (the terminal
//!   belongs to the progress line). Goose's `log` records reach the run's tracing log.
//! - **Ending on time.** Goose checks for its end only between transactions, and a session is
//!   one long transaction. So the run's `stop_new` (duration reached, halt, Ctrl-C) triggers
//!   goose's killswitch (users then stop after their session), a transaction that starts
//!   after it runs no session, and the session itself watches `hard_stop`, which the run
//!   fires after the end grace: goose's wait for its users is bounded by the run's.
//! - **Ctrl-C stays ours.** Goose installs a `ctrlc` handler for SIGINT when it starts; the
//!   CLI installs its own first (the first one in a process wins), so goose's is refused and
//!   the CLI's signal handling, which stops the fleet and kills every child, is unchanged.
//! - **Whole seconds.** Goose's test plan counts whole seconds; each stage boundary is rounded
//!   to the nearest second of the run (a boundary is off by at most 0.5 s, never cumulatively).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::prelude::{GooseAttack, GooseUser, Scenario, Transaction, TransactionResult};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::Runner;
use super::mix::{self, MixConfig};
#[cfg(test)]
use crate::session::{HttpRequest, RequestKind};

/// One request name's numbers as goose aggregated them.
#[derive(Debug, Clone, PartialEq)]
pub struct GooseRequests {
    /// `POST` or `GET`.
    pub method: String,
    /// `create session`, `open stream` or `resume stream`.
    pub name: String,
    pub success: u64,
    pub fail: u64,
    /// Time to response headers (or to the failure), from goose's buckets.
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Status code → count (requests that got no response have none).
    pub status_codes: BTreeMap<u16, u64>,
}

/// What goose reported for the closed users of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GooseSummary {
    /// The most users goose ran at once.
    pub maximum_users: u64,
    /// Users goose launched over the run (a user retired by a ramp down and one launched
    /// later are two).
    pub total_users: u64,
    pub requests: Vec<GooseRequests>,
    /// Sessions the users ran (goose's transaction count, successes and failures).
    pub sessions: u64,
    /// The file name of goose's HTML report, when goose wrote it.
    pub html_report: Option<String>,
}

/// Goose's test plan for the stages: `users,seconds;…;0,0`, each step a linear change from
/// the previous level (a zero-length step is a jump). Boundaries are rounded to whole
/// seconds from the start. `None` when no stage has a user.
pub fn test_plan(stages: &[(f64, Duration, Duration)]) -> Option<String> {
    if stages.iter().all(|s| s.0.round() < 1.0) {
        return None;
    }
    let mut steps = Vec::new();
    let (mut at, mut rounded) = (Duration::ZERO, 0u64);
    for &(users, ramp, hold) in stages {
        let users = users.round().max(0.0) as u64;
        for length in [ramp, hold] {
            at += length;
            let boundary = at.as_secs_f64().round() as u64;
            steps.push(format!("{users},{}", boundary - rounded));
            rounded = boundary;
        }
    }
    steps.push("0,0".into());
    Some(steps.join(";"))
}

/// Run the closed users on goose until the plan ends or `stop_new` fires; sessions in flight
/// then finish (or are cancelled by `hard_stop`). Writes goose's HTML report to `report`.
pub(super) async fn closed(
    stages: &[(f64, Duration, Duration)],
    think_time: Duration,
    mix: &MixConfig,
    runner: Runner,
    next_index: Arc<AtomicU64>,
    tokens: (CancellationToken, CancellationToken),
    report: Option<&Path>,
) -> Result<Option<GooseSummary>, String> {
    let (stop_new, hard_stop) = tokens;
    let Some(plan) = test_plan(stages) else {
        return Ok(None);
    };
    let session = {
        let (mix, stop_new) = (mix.clone(), stop_new.clone());
        Transaction::new(Arc::new(move |user: &mut GooseUser| {
            let (mix, runner, next, stop_new, hard) = (
                mix.clone(),
                runner.clone(),
                next_index.clone(),
                stop_new.clone(),
                hard_stop.clone(),
            );
            Box::pin(async move { one_session(user, &mix, &runner, &next, &stop_new, hard).await })
        }))
        .set_name("session")
    };
    let scenario = Scenario::new("agent session")
        .register_transaction(session)
        .set_wait_time(think_time, think_time)
        .map_err(|e| format!("goose refused the think time {think_time:?}: {e}"))?;

    let mut config = GooseConfiguration::default();
    // Goose needs a host; the engine's requests carry their own URLs.
    config.host = Some("http://127.0.0.1".into());
    // Goose's WebSocket controller is off unless asked for; telnet is on unless refused.
    config.no_telnet = true;
    // `no_reset_metrics` is implied: goose never resets metrics under a test plan (and
    // refuses the option beside one).
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.quiet = 1;
    if let Some(path) = report {
        config.report_file = vec![path.display().to_string()];
    }
    let attack = GooseAttack::initialize_with_config(config)
        .and_then(|a| a.set_default(GooseDefault::TestPlan, plan.as_str()))
        .and_then(|a| {
            let a = *a;
            a.set_client_builder_without_cookies(
                goose::client::GooseClientBuilder::new().without_cookies(),
            )
        })
        .map_err(|e| format!("configuring goose (test plan {plan}): {}", describe(&e)))?
        .register_scenario(scenario);

    // Goose checks its killswitch between transactions; fire it when the run stops new work.
    let watcher = {
        let stop_new = stop_new.clone();
        tokio::spawn(async move {
            stop_new.cancelled().await;
            goose::trigger_killswitch("dropzero: the run stops starting sessions");
        })
    };
    let result = attack.execute().await;
    watcher.abort();
    let metrics = result.map_err(|e| format!("goose (test plan {plan}): {}", describe(&e)))?;
    let mut summary = summarise(&metrics);
    summary.html_report = report
        .filter(|path| path.exists())
        .and_then(|path| path.file_name())
        .map(|name| name.to_string_lossy().into_owned());
    Ok(Some(summary))
}

/// Goose's error with what it names: its `Display` alone is one generic sentence.
fn describe(e: &goose::GooseError) -> String {
    match e {
        goose::GooseError::InvalidOption {
            option,
            value,
            detail,
        } => format!("{option} = {value:?} refused: {detail}"),
        other => format!("{other} ({other:?})"),
    }
}

/// One transaction: one session, its requests recorded into goose.
async fn one_session(
    user: &mut GooseUser,
    mix: &MixConfig,
    runner: &Runner,
    next: &AtomicU64,
    stop_new: &CancellationToken,
    hard: CancellationToken,
) -> TransactionResult {
    // Goose may start a transaction after the run stopped new work, before it sees the
    // killswitch: no session then. The pause matters: a transaction that returns at once
    // makes goose's user loop spin without yielding, which starves goose's own task (it
    // checks the killswitch, then tells the users to exit, every 500 ms).
    if stop_new.is_cancelled() || hard.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    let index = next.fetch_add(1, Ordering::Relaxed);
    // The session runs in its own task, so each of its events wakes and polls the session
    // alone, not goose's user loop and transaction wrapped around it (those wrappers were
    // ≈ 10 % of the harness's samples in a profile at 5,000 users; the gain was not visible
    // through the benchmark's noise, docs/benchmarks.md). It dies with the user if goose
    // drops it.
    let session = AbortOnDropHandle::new(tokio::spawn(runner(
        mix::session(mix, index),
        Instant::now(),
        hard,
    )));
    let requests = match session.await {
        Ok(requests) => requests,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Vec::new(),
    };
    for r in requests {
        user.record_custom_request_duration(
            r.kind.method(),
            r.kind.name(),
            r.elapsed,
            r.failure.is_none(),
            r.status,
            r.failure,
        )
        .await?;
    }
    Ok(())
}

fn summarise(m: &goose::metrics::GooseMetrics) -> GooseSummary {
    let requests = m
        .requests
        .iter()
        .map(|(key, a)| {
            // A custom request's method is goose's `CUSTOM`; its key keeps the label given.
            let (method, name) = key.split_once(' ').unwrap_or(("", key));
            let t = &a.raw_data;
            let mut buckets: Vec<(u64, u64)> =
                t.times_us.iter().map(|(&us, &n)| (us, n as u64)).collect();
            buckets.sort_unstable();
            let ms = |us: u64| us as f64 / 1000.0;
            GooseRequests {
                method: method.to_string(),
                name: name.to_string(),
                success: a.success_count as u64,
                fail: a.fail_count as u64,
                mean_ms: if t.counter > 0 {
                    ms(t.total_time_us) / t.counter as f64
                } else {
                    0.0
                },
                p50_ms: ms(quantile(&buckets, 0.50)),
                p99_ms: ms(quantile(&buckets, 0.99)),
                max_ms: ms(t.maximum_time_us),
                status_codes: a
                    .status_code_counts
                    .iter()
                    .map(|(&code, &n)| (code, n as u64))
                    .collect(),
            }
        })
        .collect();
    let sessions = m
        .transactions
        .iter()
        .flatten()
        .map(|t| (t.success_count + t.fail_count) as u64)
        .sum();
    GooseSummary {
        maximum_users: m.maximum_users as u64,
        total_users: m.total_users as u64,
        requests,
        sessions,
        html_report: None,
    }
}

/// The smallest bucket value with at least `q` of the counts at or below it.
fn quantile(sorted: &[(u64, u64)], q: f64) -> u64 {
    let total: u64 = sorted.iter().map(|b| b.1).sum();
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for &(value, n) in sorted {
        seen += n;
        if seen >= rank {
            return value;
        }
    }
    sorted.last().map_or(0, |b| b.0)
}

#[cfg(test)]
mod tests {
    use super::super::{ClosedStage, LoadModel, LoadSummary, drive};
    use super::*;
    use std::sync::Mutex;

    /// Goose's killswitch is one per process: its tests take turns.
    static ONE_ATTACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn mix() -> MixConfig {
        MixConfig {
            seed: 3,
            length_median: s(1.0),
            length_p99: s(2.0),
            tokens_per_second: 10.0,
            runaway_fraction: 0.0,
            max_output_tokens: None,
            max_cost_usd: None,
            max_duration: None,
        }
    }

    /// Sessions in flight over time: `(seconds since the start, in flight after the change)`.
    type Trace = Arc<Mutex<Vec<(f64, i64)>>>;

    /// A runner whose sessions last `length`, or until the hard stop when `None`; each one
    /// reports a create and a stream open, as the engine would.
    fn runner(length: Option<Duration>, trace: Trace, start: Instant) -> Runner {
        let in_flight = Arc::new(AtomicU64::new(0));
        Arc::new(move |_plan, _intended, hard: CancellationToken| {
            let (trace, in_flight) = (trace.clone(), in_flight.clone());
            Box::pin(async move {
                let note = |delta: i64| {
                    let now = if delta > 0 {
                        in_flight.fetch_add(1, Ordering::SeqCst) + 1
                    } else {
                        in_flight.fetch_sub(1, Ordering::SeqCst) - 1
                    };
                    let at = start.elapsed().as_secs_f64();
                    trace.lock().expect("trace").push((at, now as i64));
                };
                note(1);
                match length {
                    Some(length) => tokio::select! {
                        _ = tokio::time::sleep(length) => {}
                        _ = hard.cancelled() => {}
                    },
                    None => hard.cancelled().await,
                }
                note(-1);
                [(RequestKind::Create, 201), (RequestKind::StreamOpen, 200)]
                    .map(|(kind, status)| HttpRequest {
                        kind,
                        elapsed: Duration::from_millis(2),
                        status: Some(status),
                        failure: None,
                    })
                    .to_vec()
            })
        })
    }

    async fn closed(
        stages: Vec<ClosedStage>,
        think_time: Duration,
        runner: Runner,
        tokens: (CancellationToken, CancellationToken),
    ) -> LoadSummary {
        let model = LoadModel::Closed { stages, think_time };
        drive(&model, &mix(), runner, tokens, None).await
    }

    fn stage(users: u32, ramp: f64, hold: f64) -> ClosedStage {
        ClosedStage {
            users,
            ramp: s(ramp),
            hold: s(hold),
        }
    }

    fn peak(trace: &Trace, from: f64) -> i64 {
        let trace = trace.lock().expect("trace");
        trace
            .iter()
            .filter(|(at, _)| *at >= from)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_users_never_exceed_the_stage_level() {
        let _turn = ONE_ATTACK.lock().await;
        let (start, trace) = (Instant::now(), Trace::default());
        let hard = CancellationToken::new();
        let stopper = hard.clone();
        tokio::spawn(async move {
            tokio::time::sleep(s(3.0)).await;
            stopper.cancel();
        });
        // A target that never answers: each user holds one session until the hard stop.
        let summary = closed(
            vec![stage(3, 0.0, 2.0)],
            Duration::ZERO,
            runner(None, trace.clone(), start),
            (CancellationToken::new(), hard),
        )
        .await;
        assert_eq!(summary.error, None);
        assert_eq!(summary.sessions_launched, 3);
        assert_eq!(peak(&trace, 0.0), 3);
        let goose = summary.goose.expect("goose ran");
        assert_eq!(goose.maximum_users, 3);
        assert_eq!(goose.sessions, 3);
        let create = goose
            .requests
            .iter()
            .find(|r| r.name == "create session")
            .expect("creates recorded");
        assert_eq!((create.method.as_str(), create.success), ("POST", 3));
        assert_eq!(create.status_codes.get(&201), Some(&3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_ramp_down_retires_users_after_their_session() {
        let _turn = ONE_ATTACK.lock().await;
        let (start, trace) = (Instant::now(), Trace::default());
        let length = Duration::from_millis(300);
        let summary = closed(
            vec![stage(4, 0.0, 2.0), stage(1, 0.0, 2.0)],
            Duration::from_millis(50),
            runner(Some(length), trace.clone(), start),
            (CancellationToken::new(), CancellationToken::new()),
        )
        .await;
        assert_eq!(summary.error, None);
        assert_eq!(peak(&trace, 0.0), 4, "four users at first");
        // Goose retires the extra users at 2 s, each after its session (300 ms) and goose's
        // own check (every 500 ms): one user is left well within a second.
        assert_eq!(peak(&trace, 3.0), 1, "one user after the ramp down");
        let second_stage = trace
            .lock()
            .expect("trace")
            .iter()
            .filter(|(at, n)| *at >= 3.0 && *n == 1)
            .count();
        assert!(second_stage >= 2, "the last user kept running sessions");
        assert!(
            start.elapsed() < s(6.0),
            "ended {:?} after the start",
            start.elapsed()
        );
    }

    /// Ctrl-C cancels both tokens at once, with zero think time: goose must still get to
    /// tell its users to exit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupt_ends_goose_at_once() {
        let _turn = ONE_ATTACK.lock().await;
        let (start, trace) = (Instant::now(), Trace::default());
        let interrupt = CancellationToken::new();
        let fire = interrupt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(s(1.0)).await;
            fire.cancel();
        });
        let load = closed(
            vec![stage(6, 0.0, 3600.0)],
            Duration::ZERO,
            runner(None, trace.clone(), start),
            (interrupt.child_token(), interrupt.child_token()),
        );
        // Bounded, so a goose that never ends fails the test instead of hanging it.
        let summary = tokio::time::timeout(s(20.0), load)
            .await
            .expect("goose ended after the interrupt");
        let ended = start.elapsed();
        assert_eq!(summary.error, None);
        assert_eq!(summary.sessions_launched, 6);
        assert!(ended < s(3.0), "goose ended {ended:?} after the start");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_new_sessions_ends_goose_with_sessions_in_flight() {
        let _turn = ONE_ATTACK.lock().await;
        let (start, trace) = (Instant::now(), Trace::default());
        let (stop_new, hard) = (CancellationToken::new(), CancellationToken::new());
        let (a, b) = (stop_new.clone(), hard.clone());
        tokio::spawn(async move {
            tokio::time::sleep(s(1.5)).await;
            a.cancel();
            tokio::time::sleep(s(1.0)).await;
            b.cancel();
        });
        // An hour of stage, sessions that never end by themselves: only the run's tokens
        // can end this load.
        let summary = closed(
            vec![stage(2, 0.0, 3600.0)],
            Duration::ZERO,
            runner(None, trace.clone(), start),
            (stop_new, hard),
        )
        .await;
        let ended = start.elapsed();
        assert_eq!(summary.error, None);
        assert_eq!(summary.sessions_launched, 2, "no session after the stop");
        assert!(ended >= s(2.5), "sessions ran until the hard stop");
        assert!(ended < s(5.0), "goose ended {ended:?} after the start");
    }

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn the_test_plan_rounds_boundaries_not_lengths() {
        // 0.4 s + 0.4 s: each alone rounds to 0, their end (0.8 s) to 1.
        let plan = test_plan(&[(5.0, s(0.4), s(0.4)), (2.0, s(1.3), s(2.0))]);
        assert_eq!(plan.as_deref(), Some("5,0;5,1;2,1;2,2;0,0"));
        assert_eq!(
            test_plan(&[(3.0, Duration::ZERO, s(2.0))]).as_deref(),
            Some("3,0;3,2;0,0")
        );
        assert_eq!(test_plan(&[(0.0, s(1.0), s(1.0))]), None);
    }

    #[test]
    fn quantiles_come_from_the_buckets() {
        let b = [(1000, 50), (2000, 49), (9000, 1)];
        assert_eq!(quantile(&b, 0.5), 1000);
        assert_eq!(quantile(&b, 0.99), 2000);
        assert_eq!(quantile(&b, 1.0), 9000);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
