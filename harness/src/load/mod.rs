//! Load models: *when* sessions start. One session engine serves both models; this module
//! never looks inside a session.
//!
//! - `closed`: a number of users, each running sessions back to back with think time; the
//!   user count follows the stages (linear ramps, then holds). Goose drives them (`goose`).
//! - `open`: sessions arrive at a rate (Poisson or constant) on a schedule computed from the
//!   start time alone, so a slow target cannot slow the arrivals down (no coordinated
//!   omission). Each session carries its *intended* start; a start that lags its schedule by
//!   more than [`LATE_START`] is counted.

pub mod goose;
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

use crate::session::HttpRequest;
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
/// harness cancels when it must stop at once; returns the session's HTTP requests (closed
/// users report them to goose).
pub type Runner = Arc<
    dyn Fn(
            SessionPlan,
            Instant,
            CancellationToken,
        ) -> Pin<Box<dyn Future<Output = Vec<HttpRequest>> + Send>>
        + Send
        + Sync,
>;

/// What the engine did, for the report.
#[derive(Debug, Default, Clone)]
pub struct LoadSummary {
    pub sessions_launched: u64,
    pub late_starts: u64,
    /// Closed model: what goose reported.
    pub goose: Option<goose::GooseSummary>,
    /// Why the load engine could not run (e.g. goose refused its configuration).
    pub error: Option<String>,
}

/// Drive the load until the stages end or `stop_new` fires, then wait for every session in
/// flight to finish (the caller bounds that wait by cancelling `hard_stop`). `goose_report`:
/// where goose writes its HTML report (closed model).
pub async fn drive(
    model: &LoadModel,
    mix: &MixConfig,
    runner: Runner,
    (stop_new, hard_stop): (CancellationToken, CancellationToken),
    goose_report: Option<&std::path::Path>,
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
            let tokens = (launcher.stop_new.clone(), launcher.hard_stop.clone());
            let next = launcher.next_index.clone();
            let run = goose::closed(
                &stages,
                *think_time,
                mix,
                launcher.runner.clone(),
                next,
                tokens,
                goose_report,
            );
            match run.await {
                Ok(goose) => summary.goose = goose,
                Err(e) => summary.error = Some(e),
            }
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
    /// Arrivals on a schedule computed from the start time alone. Returns the late starts.
    ///
    /// The rate varies along the stages, so arrivals are placed by the time-rescaling
    /// theorem: the k-th arrival is where the cumulative intensity Λ(t) = ∫₀ᵗ rate first
    /// reaches the sum of k unit-mean gaps (exponential for Poisson, exactly 1 for constant).
    /// A gap drawn from the instantaneous rate would be wrong wherever the rate changes —
    /// at the foot of a ramp from 0 it is nearly infinite and would skip the whole stage.
    async fn open(&mut self, stages: &[(f64, Duration, Duration)], poisson: bool) -> u64 {
        let start = Instant::now();
        let schedule = Intensity::new(stages);
        let mut rng = ChaCha8Rng::seed_from_u64(self.mix.seed ^ 0x0A11_7E57);
        let mut late = 0;
        let mut area = 0.0;
        loop {
            area += if poisson {
                // Exponential with mean 1 by inversion; 1 - u avoids ln(0).
                -(1.0 - rng.random::<f64>()).ln()
            } else {
                1.0
            };
            let Some(offset) = schedule.time_at(area) else {
                break;
            };
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
            self.sessions.spawn(async move {
                // The open model has no goose to report requests to.
                runner(plan, intended, hard).await;
            });
            while self.sessions.try_join_next().is_some() {}
        }
        late
    }
}

/// The cumulative arrival intensity of an open load: piecewise-linear rate stages integrated
/// into a piecewise-quadratic Λ(t), and its inverse.
struct Intensity {
    /// `(start s, length s, rate at start, rate at end, Λ at start)`, zero-length ones left out.
    segments: Vec<(f64, f64, f64, f64, f64)>,
    total: f64,
}

impl Intensity {
    fn new(stages: &[(f64, Duration, Duration)]) -> Intensity {
        let (mut segments, mut t, mut area, mut previous) = (Vec::new(), 0.0, 0.0, 0.0_f64);
        for &(rate, ramp, hold) in stages {
            let rate = rate.max(0.0);
            for (len, from, to) in [
                (ramp.as_secs_f64(), previous, rate),
                (hold.as_secs_f64(), rate, rate),
            ] {
                if len > 0.0 {
                    segments.push((t, len, from, to, area));
                    t += len;
                    area += (from + to) / 2.0 * len;
                }
            }
            previous = rate;
        }
        Intensity {
            segments,
            total: area,
        }
    }

    /// The time since start at which Λ reaches `area`; `None` at or past the schedule's end.
    fn time_at(&self, area: f64) -> Option<Duration> {
        if area >= self.total {
            return None;
        }
        // The first segment that reaches `area`: Λ is flat where the rate is 0, and the first
        // passage is the arrival time.
        let &(start, len, from, to, base) = self
            .segments
            .iter()
            .find(|s| s.4 + (s.2 + s.3) / 2.0 * s.1 >= area)?;
        let a = area - base;
        let slope = (to - from) / len;
        // Solve from·τ + slope·τ²/2 = a for τ ≥ 0, in the form that stays exact as slope → 0
        // and for a ramp that starts at rate 0.
        let root = (from * from + 2.0 * slope * a).max(0.0).sqrt();
        let tau = if from + root > 0.0 {
            2.0 * a / (from + root)
        } else {
            0.0
        };
        Some(Duration::from_secs_f64(start + tau.min(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
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
                Vec::new()
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
        let summary = drive(
            &model,
            &mix(),
            runner,
            (CancellationToken::new(), hard),
            None,
        )
        .await;
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

    /// Run an open load on paused time against a target that answers at once; return every
    /// arrival's intended offset from the start, in seconds.
    async fn open_arrivals(stages: Vec<OpenStage>, poisson: bool) -> Vec<f64> {
        let offsets = Arc::new(std::sync::Mutex::new(Vec::new()));
        let start = Instant::now();
        let runner: Runner = {
            let offsets = offsets.clone();
            Arc::new(move |_plan, intended: Instant, _hard| {
                let offsets = offsets.clone();
                Box::pin(async move {
                    let at = intended.duration_since(start).as_secs_f64();
                    offsets.lock().expect("offsets lock").push(at);
                    Vec::new()
                })
            })
        };
        let model = LoadModel::Open { stages, poisson };
        let tokens = (CancellationToken::new(), CancellationToken::new());
        let summary = drive(&model, &mix(), runner, tokens, None).await;
        assert_eq!(summary.late_starts, 0, "paused time never lags");
        let offsets = offsets.lock().expect("offsets lock").clone();
        assert_eq!(offsets.len() as u64, summary.sessions_launched);
        assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "in order");
        offsets
    }

    fn stage(rate: f64, ramp: u64, hold: u64) -> OpenStage {
        OpenStage {
            rate,
            ramp: s(ramp),
            hold: s(hold),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_ramp_from_zero_starts_arrivals_as_the_rate_rises() {
        // Λ over a ramp 0 → 10/s in 2 s is 10 sessions and the hold adds 10: the 20th
        // lands on the end, 19 fit strictly inside.
        let at = open_arrivals(vec![stage(10.0, 2, 1)], false).await;
        assert_eq!(at.len(), 19);
        // The first arrival is where 10·τ²/(2·2) = 1: τ = √0.4.
        assert!((at[0] - 0.4f64.sqrt()).abs() < 1e-3, "first at {}", at[0]);
        // The ramp holds the first 10, spaced ever closer; the hold the rest, 0.1 s apart.
        assert_eq!(at.iter().filter(|&&t| t < 2.0).count(), 9);
        assert!(at[1] - at[0] > at[8] - at[7]);
        assert!(((at[15] - at[14]) - 0.1).abs() < 1e-6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stage_that_passes_through_zero_pauses_arrivals_then_resumes() {
        // 10/s for 1 s, down to 0 over 1 s, 0 for 1 s, back to 10/s over 1 s:
        // Λ = 10 + 5 + 0 + 5 = 20, so 19 arrivals strictly inside; none while the rate is 0.
        let stages = vec![stage(10.0, 0, 1), stage(0.0, 1, 1), stage(10.0, 1, 0)];
        let at = open_arrivals(stages, false).await;
        assert_eq!(at.len(), 19);
        assert_eq!(at.iter().filter(|&&t| t > 2.0 && t < 3.0).count(), 0);
        assert_eq!(at.iter().filter(|&&t| t <= 1.0).count(), 10);
        assert_eq!(at.iter().filter(|&&t| t >= 3.0).count(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn poisson_arrivals_on_a_ramp_from_zero_follow_the_rising_rate() {
        // A ramp 0 → 40/s over 10 s: Λ = 200. Poisson counts are random but seeded; the
        // count is within 4 standard deviations (√200 ≈ 14) of the mean, and the last
        // second of the ramp (Λ = 38) sees many times the first (Λ = 2).
        let at = open_arrivals(vec![stage(40.0, 10, 0)], true).await;
        assert!((144..=256).contains(&at.len()), "{} arrivals", at.len());
        let first = at.iter().filter(|&&t| t < 1.0).count();
        let last = at.iter().filter(|&&t| t >= 9.0).count();
        assert!(
            first <= 8 && last >= 20,
            "first second {first}, last second {last}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_plan_at_rate_zero_starts_nothing_and_ends() {
        let at = open_arrivals(vec![stage(0.0, 1, 1)], true).await;
        assert!(at.is_empty());
    }

    #[test]
    fn intensity_inverts_the_integral_of_each_segment_shape() {
        // Ramp up, hold, ramp down to 0: Λ(t) checked against the closed form at a few points.
        let stages = [(4.0, s(2), s(1)), (0.0, s(2), s(0))];
        let i = Intensity::new(&stages);
        assert!((i.total - (4.0 + 4.0 + 4.0)).abs() < 1e-9);
        let check = |area: f64, t: Option<f64>| {
            let got = i.time_at(area).map(|d| d.as_secs_f64());
            match (got, t) {
                (Some(g), Some(t)) => assert!((g - t).abs() < 1e-6, "Λ={area}: {g} vs {t}"),
                (g, t) => assert_eq!(g, t, "Λ={area}"),
            }
        };
        check(1.0, Some(1.0)); // ramp 0→4 in 2 s: Λ = τ², τ = 1
        check(4.0, Some(2.0)); // end of the ramp
        check(6.0, Some(2.5)); // hold at 4/s
        check(11.0, Some(4.0)); // ramp down: 4τ - τ² = 3 → τ = 1
        check(12.0, None); // the end is outside the schedule
    }
}
