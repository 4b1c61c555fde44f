//! The latency model: lognormal time to first token and inter-token gaps given a median and a
//! p99, stretched while more streams are open than the profile's `max_concurrent`.
//!
//! Only the arithmetic and sampling live here; the generator does the sleeping.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, LogNormal};

use super::profile::LatencySpec;

/// z-score of the 99th percentile of a standard normal.
const Z_P99: f64 = 2.326;

/// A sampler for one [`LatencySpec`].
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    /// `None` for a zero-latency spec.
    dist: Option<LogNormal<f64>>,
}

impl Sampler {
    pub fn new(spec: LatencySpec) -> Sampler {
        let median = spec.median.as_secs_f64();
        if median <= 0.0 {
            return Sampler { dist: None };
        }
        let p99 = spec.p99.as_secs_f64().max(median);
        let sigma = (p99 / median).ln() / Z_P99;
        // `LogNormal::new` only fails for a negative or non-finite sigma, which the max above
        // and the validated profile rule out; fall back to a constant just in case.
        Sampler {
            dist: LogNormal::new(median.ln(), sigma)
                .or_else(|_| LogNormal::new(median.ln(), 0.0))
                .ok(),
        }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        match &self.dist {
            // Cap at an hour so a freak draw can never overflow a Duration.
            Some(d) => Duration::from_secs_f64(d.sample(rng).min(3600.0)),
            None => Duration::ZERO,
        }
    }
}

/// How much every gap is stretched with `open` streams: `1 + load_factor × (open − max) / max`
/// when `open > max`, else 1.
pub fn load_multiplier(open: usize, max_concurrent: usize, load_factor: f64) -> f64 {
    let max = max_concurrent.max(1);
    if open <= max {
        1.0
    } else {
        1.0 + load_factor * (open - max) as f64 / max as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn percentile(sorted: &[Duration], q: f64) -> Duration {
        sorted[((sorted.len() - 1) as f64 * q) as usize]
    }

    #[test]
    fn samples_match_median_and_p99() {
        let spec = LatencySpec {
            median: Duration::from_millis(30),
            p99: Duration::from_millis(150),
        };
        let sampler = Sampler::new(spec);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut v: Vec<Duration> = (0..20_000).map(|_| sampler.sample(&mut rng)).collect();
        v.sort();
        let (median, p99) = (percentile(&v, 0.5), percentile(&v, 0.99));
        assert!((27..=33).contains(&median.as_millis()), "median {median:?}");
        assert!((120..=190).contains(&p99.as_millis()), "p99 {p99:?}");
    }

    #[test]
    fn zero_spec_is_always_zero() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        assert_eq!(
            Sampler::new(LatencySpec::ZERO).sample(&mut rng),
            Duration::ZERO
        );
    }

    #[test]
    fn load_multiplier_cases() {
        for (open, max, factor, want) in [
            (0, 10, 1.0, 1.0),
            (10, 10, 1.0, 1.0),
            (15, 10, 1.0, 1.5),
            (20, 10, 2.0, 3.0),
            (5, 0, 1.0, 5.0),
        ] {
            assert_eq!(load_multiplier(open, max, factor), want, "{open}/{max}");
        }
    }
}
