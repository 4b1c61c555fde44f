//! The arithmetic of a capacity sweep, pure and tested: which levels to try, the arrival
//! rate that holds a level (Little's law), whether a measured level is within the SLO, the
//! knee, and the autoscaling numbers derived from it. No I/O, no clocks.

use std::time::Duration;

use dropzero_reports as r;

/// z-score of the 99th percentile of a standard normal (the mix's lognormal parameter).
const Z99: f64 = 2.326_347_874;

/// `start, 2·start, 4·start, …` up to and including `cap` (`cap` itself ends the sequence
/// when it is not a power-of-two multiple of `start`).
pub fn doubling_levels(start: u64, cap: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut level = start.max(1);
    while level < cap {
        out.push(level);
        level = level.saturating_mul(2);
    }
    out.push(cap.max(1));
    out.dedup();
    out
}

/// Mean of the mix's lognormal session length given its median and p99:
/// `median × exp(σ²/2)` with `σ = ln(p99 / median) / z99`. (The mix caps a draw at twice the
/// p99, which trims the mean by well under 1 % for realistic spreads; ignored.)
pub fn lognormal_mean(median: Duration, p99: Duration) -> Duration {
    let m = median.as_secs_f64().max(1e-3);
    let sigma = (p99.as_secs_f64().max(m) / m).ln() / Z99;
    Duration::from_secs_f64(m * (sigma * sigma / 2.0).exp())
}

/// Little's law `L = λ W`: the arrival rate (per second of `mean_length`'s clock) that holds
/// `level` sessions on average.
pub fn arrival_rate(level: u64, mean_length: Duration) -> f64 {
    level as f64 / mean_length.as_secs_f64().max(1e-6)
}

/// The limits a level is held to. Latencies are real time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo {
    pub ttft_p99: Option<Duration>,
    pub itl_p99: Option<Duration>,
    pub max_rss_mb: Option<u64>,
}

/// Why a level is outside the SLO: one sentence per broken limit; empty when within.
/// Drops and failed sessions always count against a level: a replica that loses sessions
/// holds nothing "within" an SLO.
pub fn violations(l: &r::LevelResult, slo: &Slo) -> Vec<String> {
    let mut out = Vec::new();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if let Some(limit) = slo.ttft_p99
        && l.ttft_p99_ms > ms(limit)
    {
        out.push(format!(
            "TTFT p99 {:.0} ms > {:.0} ms",
            l.ttft_p99_ms,
            ms(limit)
        ));
    }
    if let Some(limit) = slo.itl_p99
        && l.itl_p99_ms > ms(limit)
    {
        out.push(format!(
            "ITL p99 {:.1} ms > {:.0} ms",
            l.itl_p99_ms,
            ms(limit)
        ));
    }
    if let (Some(limit), Some(rss)) = (slo.max_rss_mb, l.peak_rss_mb)
        && rss > limit
    {
        out.push(format!("peak RSS {rss} MB > {limit} MB"));
    }
    if l.dropped > 0 {
        out.push(format!("{} dropped", l.dropped));
    }
    if l.failed > 0 {
        out.push(format!("{} failed", l.failed));
    }
    if l.completed == 0 {
        out.push("no session completed".into());
    }
    out
}

/// The knee: the highest level within the SLO before the first level outside it (levels in
/// the order they ran). A level that passes after a failed one does not count: the sweep
/// stops at the first failure, and a curve that recovers is noise, not capacity.
pub fn knee(levels: &[r::LevelResult]) -> Option<u64> {
    levels
        .iter()
        .take_while(|l| l.within_slo)
        .map(|l| l.level)
        .max()
}

/// Inputs of the recommendation, in real-world time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizing {
    /// In (0, 1].
    pub headroom: f64,
    pub mean_session: Duration,
    /// Load crosses the target → new tasks serve (datapoints + alarm + task start).
    pub scale_out_lag: Duration,
    pub peak_rate: Option<f64>,
    pub base_rate: f64,
}

/// `target_value = floor(knee × headroom)` (at least 1), and when a peak rate is given:
/// - tasks at the peak: `ceil(peak × W / target_value)` (Little's law, target tracking
///   holding each task at its target value);
/// - tasks ahead of a jump from `base` to `peak`: the scaling policy adds nothing for
///   `scale_out_lag`, during which `(peak − base) × min(lag, W)` more sessions arrive (after
///   `W`, arrivals are matched by departures). They must fit under the *knee* on the tasks
///   already running, which target tracking keeps at `ceil(base × W / target_value)` at
///   least: `max(that, ceil((base × W + (peak − base) × min(lag, W)) / knee))`.
pub fn recommend(knee: u64, s: &Sizing) -> r::Recommendation {
    let target = ((knee as f64 * s.headroom).floor() as u64).max(1);
    let w = s.mean_session.as_secs_f64();
    let peak = s.peak_rate.map(|peak| {
        let base = s.base_rate.clamp(0.0, peak);
        let at_peak = peak * w;
        let steady_base = ceil_div(base * w, target as f64);
        let surge = base * w + (peak - base) * s.scale_out_lag.as_secs_f64().min(w);
        r::PeakPlan {
            peak_rate_per_s: peak,
            base_rate_per_s: base,
            concurrent_sessions_at_peak: at_peak,
            tasks_at_peak: ceil_div(at_peak, target as f64).max(1),
            tasks_ahead_of_jump: Some(steady_base.max(ceil_div(surge, knee as f64)).max(1)),
        }
    });
    r::Recommendation {
        headroom: s.headroom,
        target_value: target,
        scale_out_lag_s: s.scale_out_lag.as_secs_f64(),
        peak,
    }
}

/// `ceil(a / b)` for non-negative reals, tolerant of float noise just above an integer.
fn ceil_div(a: f64, b: f64) -> u64 {
    let q = a / b.max(1e-9);
    (q - 1e-9).ceil().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn level_sequences_double_up_to_the_cap() {
        let check = |start, cap, want: &[u64]| {
            assert_eq!(doubling_levels(start, cap), want, "{start}..{cap}");
        };
        check(4, 64, &[4, 8, 16, 32, 64]);
        check(4, 50, &[4, 8, 16, 32, 50]);
        check(4, 4, &[4]);
        check(0, 2, &[1, 2]);
    }

    #[test]
    fn littles_law_rate_and_lognormal_mean() {
        assert_eq!(arrival_rate(16, s(8)), 2.0);
        // No spread: the mean is the median.
        assert_eq!(lognormal_mean(s(60), s(60)), s(60));
        // median 3 min, p99 10 min: σ = ln(10/3)/2.326 = 0.5176, mean = 180 × e^0.134 = 205.8 s.
        let mean = lognormal_mean(s(180), s(600)).as_secs_f64();
        assert!((mean - 205.8).abs() < 0.5, "{mean}");
    }

    fn level(level: u64, ttft: f64, itl: f64) -> r::LevelResult {
        r::LevelResult {
            level,
            completed: 10,
            ttft_p99_ms: ttft,
            itl_p99_ms: itl,
            peak_rss_mb: Some(100),
            ..r::LevelResult::default()
        }
    }

    #[test]
    fn violations_name_each_broken_limit() {
        let slo = Slo {
            ttft_p99: Some(Duration::from_millis(500)),
            itl_p99: Some(Duration::from_millis(100)),
            max_rss_mb: Some(80),
        };
        assert_eq!(
            violations(&level(4, 400.0, 50.0), &slo),
            ["peak RSS 100 MB > 80 MB"]
        );
        let mut bad = level(4, 501.0, 100.5);
        bad.dropped = 1;
        let v = violations(
            &bad,
            &Slo {
                max_rss_mb: None,
                ..slo
            },
        );
        assert_eq!(
            v,
            [
                "TTFT p99 501 ms > 500 ms",
                "ITL p99 100.5 ms > 100 ms",
                "1 dropped"
            ]
        );
        let none = Slo {
            ttft_p99: None,
            itl_p99: None,
            max_rss_mb: None,
        };
        assert!(violations(&level(4, 9e9, 9e9), &none).is_empty());
    }

    #[test]
    fn knee_is_the_last_level_before_the_first_failure() {
        let mk = |pairs: &[(u64, bool)]| -> Vec<r::LevelResult> {
            pairs
                .iter()
                .map(|&(level, within_slo)| r::LevelResult {
                    level,
                    within_slo,
                    ..r::LevelResult::default()
                })
                .collect()
        };
        assert_eq!(knee(&mk(&[(4, true), (8, true), (16, false)])), Some(8));
        assert_eq!(knee(&mk(&[(4, false), (8, true)])), None);
        assert_eq!(knee(&mk(&[(4, true), (8, false), (16, true)])), Some(4));
        assert_eq!(knee(&mk(&[(4, true), (8, true)])), Some(8));
        assert_eq!(knee(&[]), None);
    }

    #[test]
    fn recommendation_follows_littles_law() {
        let sizing = Sizing {
            headroom: 0.7,
            mean_session: s(60),
            scale_out_lag: s(240),
            peak_rate: Some(2.0),
            base_rate: 0.5,
        };
        let rec = recommend(16, &sizing);
        // floor(16 × 0.7) = 11.
        assert_eq!(rec.target_value, 11);
        let peak = rec.peak.expect("peak plan");
        // 2/s × 60 s = 120 sessions; ceil(120 / 11) = 11 tasks.
        assert_eq!(peak.concurrent_sessions_at_peak, 120.0);
        assert_eq!(peak.tasks_at_peak, 11);
        // Lag 240 s > W = 60 s: the whole jump lands before scale-out. Base holds
        // 0.5 × 60 = 30 sessions (3 tasks at 11), the surge is 30 + 1.5 × 60 = 120
        // sessions, which need ceil(120 / 16) = 8 tasks at the knee.
        assert_eq!(peak.tasks_ahead_of_jump, Some(8));

        // A lag shorter than a session: only the arrivals of the lag pile up.
        let short = recommend(
            16,
            &Sizing {
                scale_out_lag: s(30),
                base_rate: 0.0,
                ..sizing
            },
        );
        // 2/s × 30 s = 60 sessions → ceil(60 / 16) = 4 tasks.
        assert_eq!(short.peak.expect("peak").tasks_ahead_of_jump, Some(4));

        // The target value is never 0, and no peak plan without a peak rate.
        let tiny = recommend(
            1,
            &Sizing {
                peak_rate: None,
                ..sizing
            },
        );
        assert_eq!(tiny.target_value, 1);
        assert!(tiny.peak.is_none());
    }
}
