//! Load models: *when* sessions start. One session engine serves both models; this module
//! never looks inside a session.
//!
//! - `closed`: a number of users, each running sessions back to back with think time; the
//!   user count follows the stages (linear ramps, then holds).
//! - `open`: sessions arrive at a rate (Poisson or constant) on a schedule computed from the
//!   start time alone, so a slow target cannot slow the arrivals down (no coordinated
//!   omission). Each session carries its *intended* start; a start that lags its schedule by
//!   more than [`LATE_START`] is counted.

pub mod mix;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use mix::{MixConfig, SessionPlan};

/// A scheduled start later than this counts as a late start.
pub const LATE_START: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq)]
pub struct ClosedStage {
    pub users: u32,
    pub ramp: Duration,
    pub hold: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpenStage {
    /// Sessions per second at the end of the ramp (and during the hold).
    pub rate: f64,
    pub ramp: Duration,
    pub hold: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoadModel {
    Closed {
        stages: Vec<ClosedStage>,
        think_time: Duration,
    },
    Open {
        stages: Vec<OpenStage>,
        poisson: bool,
    },
}

/// Runs one session to its end. Given the plan, the intended start and a token that the
/// harness cancels when it must stop at once.
pub type Runner = Arc<
    dyn Fn(SessionPlan, Instant, CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// What the engine did, for the report.
#[derive(Debug, Default, Clone)]
pub struct LoadSummary {
    pub sessions_launched: u64,
    pub late_starts: u64,
}

/// Value of a piecewise-linear stage schedule at `t` since start: ramps from the previous
/// stage's level to this stage's, then holds. `None` after the last stage.
fn level_at(stages: &[(f64, Duration, Duration)], t: Duration) -> Option<f64> {
    let mut start = Duration::ZERO;
    let mut previous = 0.0;
    for &(level, ramp, hold) in stages {
        if t < start + ramp {
            let frac = (t - start).as_secs_f64() / ramp.as_secs_f64().max(1e-9);
            return Some(previous + (level - previous) * frac);
        }
        if t < start + ramp + hold {
            return Some(level);
        }
        start += ramp + hold;
        previous = level;
    }
    None
}

/// Drive the load until the stages end or `stop_new` fires, then wait for every session in
/// flight to finish (the caller bounds that wait by cancelling `hard_stop`).
pub async fn drive(
    model: &LoadModel,
    mix: &MixConfig,
    runner: Runner,
    stop_new: CancellationToken,
    hard_stop: CancellationToken,
) -> LoadSummary {
    let mut launcher = Launcher {
        mix,
        runner,
        next_index: Arc::new(AtomicU64::new(0)),
        stop_new,
        hard_stop,
        sessions: JoinSet::new(),
    };
    let mut summary = LoadSummary::default();
    match model {
        LoadModel::Closed { stages, think_time } => {
            let stages: Vec<_> = stages
                .iter()
                .map(|s| (f64::from(s.users), s.ramp, s.hold))
                .collect();
            launcher.closed(&stages, *think_time).await;
        }
        LoadModel::Open { stages, poisson } => {
            let stages: Vec<_> = stages.iter().map(|s| (s.rate, s.ramp, s.hold)).collect();
            summary.late_starts = launcher.open(&stages, *poisson).await;
        }
    }
    while launcher.sessions.join_next().await.is_some() {}
    summary.sessions_launched = launcher.next_index.load(Ordering::Relaxed);
    summary
}

/// What both load models share: how a session is numbered, planned and spawned.
struct Launcher<'a> {
    mix: &'a MixConfig,
    runner: Runner,
    next_index: Arc<AtomicU64>,
    stop_new: CancellationToken,
    hard_stop: CancellationToken,
    sessions: JoinSet<()>,
}

impl Launcher<'_> {
    /// Users follow the stage levels; each runs sessions back to back with think time.
    async fn closed(&mut self, stages: &[(f64, Duration, Duration)], think_time: Duration) {
        let start = Instant::now();
        // One retire token per user, newest last: scaling down retires the newest users,
        // each after its current session (a user never abandons a session mid-stream).
        let mut users: Vec<CancellationToken> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = self.stop_new.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Some(level) = level_at(stages, start.elapsed()) else {
                break;
            };
            let wanted = level.round() as usize;
            while users.len() < wanted {
                let retire = self.stop_new.child_token();
                users.push(retire.clone());
                let (mix, runner, next, hard) = (
                    self.mix.clone(),
                    self.runner.clone(),
                    self.next_index.clone(),
                    self.hard_stop.clone(),
                );
                self.sessions.spawn(async move {
                    while !retire.is_cancelled() && !hard.is_cancelled() {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        runner(mix::session(&mix, index), Instant::now(), hard.clone()).await;
                        tokio::select! {
                            _ = retire.cancelled() => break,
                            _ = hard.cancelled() => break,
                            _ = tokio::time::sleep(think_time) => {}
                        }
                    }
                });
            }
            while users.len() > wanted {
                if let Some(user) = users.pop() {
                    user.cancel();
                }
            }
            // Reap finished users' tasks so the set does not grow.
            while self.sessions.try_join_next().is_some() {}
        }
        for user in users {
            user.cancel();
        }
    }

    /// Arrivals on a schedule computed from the start time alone. Returns the late starts.
    async fn open(&mut self, stages: &[(f64, Duration, Duration)], poisson: bool) -> u64 {
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(self.mix.seed ^ 0x0A11_7E57);
        let mut late = 0;
        let mut offset = Duration::ZERO;
        while let Some(rate) = level_at(stages, offset) {
            if rate <= 1e-9 {
                // Nothing arrives at rate zero: step forward in small increments.
                offset += Duration::from_millis(10);
                continue;
            }
            let gap = if poisson {
                // Exponential inter-arrival time by inversion; 1 - u avoids ln(0).
                -(1.0 - rng.random::<f64>()).ln() / rate
            } else {
                1.0 / rate
            };
            offset += Duration::from_secs_f64(gap);
            if level_at(stages, offset).is_none() {
                break;
            }
            let intended = start + offset;
            tokio::select! {
                _ = self.stop_new.cancelled() => break,
                _ = tokio::time::sleep_until(intended) => {}
            }
            if intended.elapsed() > LATE_START {
                late += 1;
            }
            let index = self.next_index.fetch_add(1, Ordering::Relaxed);
            let plan = mix::session(self.mix, index);
            let (runner, hard) = (self.runner.clone(), self.hard_stop.clone());
            self.sessions
                .spawn(async move { runner(plan, intended, hard).await });
            while self.sessions.try_join_next().is_some() {}
        }
        late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn stage_levels_ramp_then_hold() {
        let stages = [(10.0, s(10), s(10)), (20.0, s(0), s(5)), (0.0, s(10), s(0))];
        let check =
            |t: u64, expected: Option<f64>| assert_eq!(level_at(&stages, s(t)), expected, "t={t}");
        check(0, Some(0.0));
        check(5, Some(5.0));
        check(15, Some(10.0));
        check(20, Some(20.0));
        check(30, Some(10.0));
        check(35, None);
    }

    fn mix() -> MixConfig {
        MixConfig {
            seed: 3,
            length_median: s(1),
            length_p99: s(2),
            tokens_per_second: 10.0,
            runaway_fraction: 0.0,
            max_output_tokens: None,
            max_cost_usd: None,
            max_duration: None,
        }
    }

    /// A runner for a target that never answers: each session holds until the hard stop.
    /// Records how many sessions are in flight at most.
    fn stuck_target(in_flight: Arc<AtomicU64>, peak: Arc<AtomicU64>) -> Runner {
        Arc::new(move |_plan, _intended, hard: CancellationToken| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            Box::pin(async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                hard.cancelled().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn open_arrivals_keep_their_schedule_when_the_target_never_answers() {
        let (in_flight, peak) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let model = LoadModel::Open {
            stages: vec![OpenStage {
                rate: 20.0,
                ramp: Duration::ZERO,
                hold: s(2),
            }],
            poisson: false,
        };
        let hard = CancellationToken::new();
        let stopper = hard.clone();
        // The hard stop comes after the schedule ends, so only the schedule bounds arrivals.
        tokio::spawn(async move {
            tokio::time::sleep(s(3)).await;
            stopper.cancel();
        });
        let runner = stuck_target(in_flight, peak.clone());
        let summary = drive(&model, &mix(), runner, CancellationToken::new(), hard).await;
        // 20/s for 2 s, none waiting for the stuck sessions before it: 39 arrivals fit
        // strictly inside the window (the 40th would land on its end).
        assert_eq!(summary.sessions_launched, 39);
        assert_eq!(
            peak.load(Ordering::SeqCst),
            39,
            "all were in flight together"
        );
        assert_eq!(summary.late_starts, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn closed_users_never_exceed_the_stage_level() {
        let (in_flight, peak) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let model = LoadModel::Closed {
            stages: vec![ClosedStage {
                users: 3,
                ramp: Duration::ZERO,
                hold: s(2),
            }],
            think_time: Duration::ZERO,
        };
        let hard = CancellationToken::new();
        let stopper = hard.clone();
        tokio::spawn(async move {
            tokio::time::sleep(s(3)).await;
            stopper.cancel();
        });
        let runner = stuck_target(in_flight, peak.clone());
        let summary = drive(&model, &mix(), runner, CancellationToken::new(), hard).await;
        // Each user waits for its session: a stuck target holds exactly 3 sessions.
        assert_eq!(summary.sessions_launched, 3);
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
