//! One step of `dropzero calibrate`: hold N streams against the zero-cost target through the
//! real load engine (closed users, [`crate::load::drive`]) and session engine
//! ([`crate::session::run_session`] recording through the run's own [`Recorder`]), and
//! measure what the harness process spent doing it.
//!
//! Timeline of a step: users ramp up to N, one more second settles, then the measurement
//! window (`--step-duration`) reads CPU, events, memory and the ITL samples of exactly that
//! window; then users stop starting sessions and every session in flight runs to its `done`
//! (so every digest of the step is checked), bounded by one session length plus a margin.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::read_error::{Observing, ReadErrors};
use super::report::{SessionCounts, StepResult};
use super::usage::{self, Cpu};
use crate::load::{self, ClosedStage, LoadModel, mix::MixConfig, mix::SessionPlan};
use crate::measure::recorder::Recorder;
use crate::measure::{Collector, Counters};
use crate::session::{self, ClientConfig, SessionSpec};

/// Between the end of the ramp and the start of the window: the last sessions' first events.
const SETTLE: Duration = Duration::from_secs(1);

/// What one step runs.
pub struct StepPlan {
    pub streams: u64,
    pub tokens_per_second: f64,
    pub session_tokens: u64,
    pub ramp: Duration,
    pub window: Duration,
    pub seed: u64,
}

impl StepPlan {
    /// One session's wall time at the target's pace.
    pub fn session_length(&self) -> Duration {
        Duration::from_secs_f64(self.session_tokens as f64 / self.tokens_per_second)
    }
}

/// Where the step runs and what to compare it with.
pub struct StepEnv<'a> {
    pub client: &'a reqwest::Client,
    pub base_url: &'a str,
    pub target_pid: Option<i32>,
    /// This process's resident memory before the first step.
    pub baseline_rss_kb: Option<u64>,
    pub interrupt: &'a CancellationToken,
}

/// Run one step; `interrupted` in the result when Ctrl-C cut it short.
pub async fn run(plan: &StepPlan, env: &StepEnv<'_>) -> StepResult {
    let collector = Arc::new(Collector::default());
    let stop_new = env.interrupt.child_token();
    let hard_stop = env.interrupt.child_token();
    let length = plan.session_length();
    let model = LoadModel::Closed {
        stages: vec![ClosedStage {
            users: u32::try_from(plan.streams).unwrap_or(u32::MAX),
            ramp: plan.ramp,
            // Users keep going until the window ends (stop_new), not until a schedule does.
            hold: SETTLE + plan.window + length + Duration::from_secs(3600),
        }],
        think_time: Duration::ZERO,
    };
    let mix = MixConfig {
        seed: plan.seed,
        length_median: length,
        length_p99: length,
        tokens_per_second: plan.tokens_per_second,
        runaway_fraction: 0.0,
        max_output_tokens: None,
        max_cost_usd: None,
        max_duration: None,
    };
    let cfg = ClientConfig {
        deadline: length * 2 + Duration::from_secs(60),
        lean_streams: true,
        ..ClientConfig::default()
    };
    let read_errors = ReadErrors::new();
    let runner = runner(&collector, &read_errors, env.client, env.base_url, cfg);
    let driving = {
        let tokens = (stop_new.clone(), hard_stop.clone());
        tokio::spawn(async move { load::drive(&model, &mix, runner, tokens, None).await })
    };

    let started = Instant::now();
    let window_start = started + plan.ramp + SETTLE;
    let mut interrupted = sleep_or(window_start, env.interrupt).await;
    let w = measure_window(plan, env, &collector, &read_errors, &mut interrupted).await;

    // Let every session in flight reach `done`, so each digest of the step is checked.
    stop_new.cancel();
    let drain = length + Duration::from_secs(10);
    let mut driving = driving;
    if tokio::time::timeout(drain, &mut driving).await.is_err() {
        hard_stop.cancel();
        let _ = driving.await;
    }
    let c = &collector.counters;
    let sessions = SessionCounts {
        started: Counters::get(&c.started),
        completed: Counters::get(&c.completed),
        resumed: Counters::get(&c.resumed),
        dropped: Counters::get(&c.dropped),
        failed: Counters::get(&c.failed),
        not_started: Counters::get(&c.not_started),
        cancelled: Counters::get(&c.cancelled),
        lost_events: Counters::get(&c.lost_events),
        duplicated_events: Counters::get(&c.duplicated_events),
        content_mismatches: Counters::get(&c.content_mismatches),
        interruptions: Counters::get(&c.interruptions),
    };
    w.into_result(
        plan,
        env,
        sessions,
        interrupted || env.interrupt.is_cancelled(),
    )
}

/// The session runner of the step: the same engine and recorder as `dropzero run`.
fn runner(
    collector: &Arc<Collector>,
    read_errors: &Arc<ReadErrors>,
    client: &reqwest::Client,
    base_url: &str,
    cfg: ClientConfig,
) -> load::Runner {
    let (collector, client, base_url) = (collector.clone(), client.clone(), base_url.to_string());
    let read_errors = read_errors.clone();
    Arc::new(
        move |plan: SessionPlan, intended: Instant, cancel: CancellationToken| {
            let (collector, read_errors, client, cfg, base_url) = (
                collector.clone(),
                read_errors.clone(),
                client.clone(),
                cfg.clone(),
                base_url.clone(),
            );
            Box::pin(async move {
                let spec = SessionSpec {
                    base_url,
                    query: plan.query.clone(),
                    budget: None,
                    api_key: None,
                    idempotency_key: format!("dz-cal-{}-{}", std::process::id(), plan.index),
                    intended_start: Some(intended.into_std()),
                };
                Counters::add(&collector.counters.started, 1);
                collector.counters.active.fetch_add(1, Ordering::Relaxed);
                let recorder = Recorder::new(collector.clone(), plan.index, None);
                let mut observer = Observing::new(recorder, read_errors);
                let outcome =
                    session::run_session(&client, &spec, &cfg, &mut observer, &cancel).await;
                collector.counters.active.fetch_sub(1, Ordering::Relaxed);
                collector.finish(&plan, &outcome, None);
                observer.recorder.requests
            })
        },
    )
}

/// Sleep until `at`; true when interrupted first.
async fn sleep_or(at: Instant, interrupt: &CancellationToken) -> bool {
    tokio::select! {
        _ = interrupt.cancelled() => true,
        _ = tokio::time::sleep_until(at) => false,
    }
}

/// What the measurement window read.
struct Window {
    elapsed: Duration,
    events: u64,
    tokens: u64,
    cpu: Cpu,
    target_cpu: Option<Cpu>,
    held_min: u64,
    held_sum: f64,
    samples: u64,
    rss_peak_kb: Option<u64>,
    itl: Histogram<u64>,
    target_gaps: Option<WriteGaps>,
    /// |measured gap − written gap| (µs): the harness's own ITL error.
    read_error: Histogram<u64>,
}

/// The target's own write-gap error over the window (`target::WRITE_GAPS_PATH`), in µs.
#[derive(serde::Deserialize)]
struct WriteGaps {
    count: u64,
    error_p50_us: u64,
    error_p99_us: u64,
}

/// Read (and reset) the target's write-gap error; `None` when it does not answer within
/// 5 s, answers something else, or Ctrl-C comes first.
async fn write_gaps(env: &StepEnv<'_>) -> Option<WriteGaps> {
    let url = format!("{}{}", env.base_url, super::target::WRITE_GAPS_PATH);
    let ask = async {
        let resp = env.client.get(url).send().await.ok()?;
        resp.json::<WriteGaps>().await.ok()
    };
    tokio::select! {
        _ = env.interrupt.cancelled() => None,
        answer = tokio::time::timeout(Duration::from_secs(5), ask) => answer.ok().flatten(),
    }
}

async fn measure_window(
    plan: &StepPlan,
    env: &StepEnv<'_>,
    collector: &Collector,
    read_errors: &ReadErrors,
    interrupted: &mut bool,
) -> Window {
    let c = &collector.counters;
    // The ITL samples of the window only: empty the run's current-second window.
    // The target's window starts first (a round trip), then ours, so both cover the same span.
    let _ = write_gaps(env).await;
    reset_itl(collector);
    read_errors.take();
    let (cpu0, target0) = (usage::cpu_self(), env.target_pid.and_then(usage::cpu_of));
    let (events0, tokens0, t0) = (
        Counters::get(&c.events),
        Counters::get(&c.tokens),
        Instant::now(),
    );
    let end = t0 + plan.window;
    let mut held_min = u64::MAX;
    let (mut held_sum, mut samples, mut rss_peak_kb) = (0.0, 0u64, None::<u64>);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    while !*interrupted && Instant::now() < end {
        tokio::select! {
            _ = env.interrupt.cancelled() => *interrupted = true,
            _ = tokio::time::sleep_until(end) => {}
            _ = tick.tick() => {
                let held = u64::try_from(c.active.load(Ordering::Relaxed)).unwrap_or(0);
                held_min = held_min.min(held);
                held_sum += held as f64;
                samples += 1;
                if let Some(kb) = usage::rss_kb("self") {
                    rss_peak_kb = Some(rss_peak_kb.map_or(kb, |p| p.max(kb)));
                }
            }
        }
    }
    let cpu = usage::cpu_self().since(cpu0);
    let target_cpu = match (target0, env.target_pid.and_then(usage::cpu_of)) {
        (Some(a), Some(b)) => Some(b.since(a)),
        _ => None,
    };
    let elapsed = t0.elapsed();
    let itl = take_itl(collector);
    let read_error = read_errors.take();
    let target_gaps = write_gaps(env).await.filter(|g| g.count > 0);
    Window {
        elapsed,
        events: Counters::get(&c.events) - events0,
        tokens: Counters::get(&c.tokens) - tokens0,
        cpu,
        target_cpu,
        held_min: if samples == 0 { 0 } else { held_min },
        held_sum,
        samples,
        rss_peak_kb,
        itl,
        target_gaps,
        read_error,
    }
}

fn reset_itl(collector: &Collector) {
    let mut w = match collector.window.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    w.itl.reset();
}

fn take_itl(collector: &Collector) -> Histogram<u64> {
    let w = match collector.window.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    w.itl.clone()
}

impl Window {
    fn into_result(
        self,
        plan: &StepPlan,
        env: &StepEnv<'_>,
        sessions: SessionCounts,
        interrupted: bool,
    ) -> StepResult {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let cpu_total = self.cpu.total().as_secs_f64();
        let interval_us = (1e6 / plan.tokens_per_second).round() as u64;
        let error = itl_error(&self.itl, interval_us);
        let ms = |h: &Histogram<u64>, q: f64| {
            (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e3)
        };
        let rss_growth_kb = match (self.rss_peak_kb, env.baseline_rss_kb) {
            (Some(peak), Some(base)) => Some(peak.saturating_sub(base)),
            _ => None,
        };
        StepResult {
            streams: plan.streams,
            held_min: self.held_min,
            held_mean: if self.samples == 0 {
                0.0
            } else {
                self.held_sum / self.samples as f64
            },
            window_s: secs,
            events: self.events,
            events_per_s: self.events as f64 / secs,
            tokens_per_s: self.tokens as f64 / secs,
            cpu_cores: cpu_total / secs,
            cpu_sys_fraction: if cpu_total > 0.0 {
                self.cpu.sys.as_secs_f64() / cpu_total
            } else {
                0.0
            },
            cpu_us_per_event: (self.events > 0).then(|| cpu_total * 1e6 / self.events as f64),
            rss_mb: self.rss_peak_kb.map(|kb| kb as f64 / 1024.0),
            kb_per_stream: rss_growth_kb.map(|kb| kb as f64 / plan.streams.max(1) as f64),
            itl_p50_ms: ms(&self.itl, 0.5),
            itl_p99_ms: ms(&self.itl, 0.99),
            itl_error_p50_ms: ms(&error, 0.5),
            itl_error_p99_ms: ms(&error, 0.99),
            itl_error_max_ms: (!error.is_empty()).then(|| error.max() as f64 / 1e3),
            target_cpu_cores: self.target_cpu.map(|c| c.total().as_secs_f64() / secs),
            harness_itl_error_p50_ms: ms(&self.read_error, 0.5),
            harness_itl_error_p99_ms: ms(&self.read_error, 0.99),
            target_gap_error_p50_ms: self
                .target_gaps
                .as_ref()
                .map(|g| g.error_p50_us as f64 / 1e3),
            target_gap_error_p99_ms: self
                .target_gaps
                .as_ref()
                .map(|g| g.error_p99_us as f64 / 1e3),
            sessions,
            interrupted,
            within_budget: false,
            over_budget: Vec::new(),
        }
    }
}

/// |measured ITL − true interval| for every ITL sample, from the ITL histogram itself (no
/// second per-event record): each recorded value's error, with its count.
pub fn itl_error(itl: &Histogram<u64>, interval_us: u64) -> Histogram<u64> {
    let mut error = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid bounds"));
    for v in itl.iter_recorded() {
        let value = itl.median_equivalent(v.value_iterated_to());
        let e = value.abs_diff(interval_us).clamp(1, error.high());
        let _ = error.record_n(e, v.count_at_value());
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itl_error_is_the_distance_from_the_interval() {
        let mut itl = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("hist");
        // 100 ms interval: 98 samples exact, one 2 ms late, one 3 ms early.
        itl.record_n(100_000, 98).expect("record");
        itl.record(102_000).expect("record");
        itl.record(97_000).expect("record");
        let e = itl_error(&itl, 100_000);
        assert_eq!(e.len(), 100);
        // At 3 significant figures a 100 ms sample is known to within 64 µs.
        let p50 = e.value_at_quantile(0.5);
        assert!(p50 < 100, "{p50}");
        let max = e.max();
        assert!((2_900..=3_100).contains(&max), "{max}");
        let p99 = e.value_at_quantile(0.99);
        assert!((1_900..=2_100).contains(&p99), "{p99}");
    }
}
