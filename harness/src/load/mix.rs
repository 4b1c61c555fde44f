//! The session mix: what session number `i` of a run asks for. A pure function of the seed
//! and `i`, so the same seed gives the same sessions however the load is scheduled.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

/// Inputs, already resolved from the scenario (durations already time-scaled).
#[derive(Debug, Clone)]
pub struct MixConfig {
    pub seed: u64,
    pub length_median: Duration,
    pub length_p99: Duration,
    /// Token rate of one session, real time (LLM speed is never scaled).
    pub tokens_per_second: f64,
    pub runaway_fraction: f64,
    /// Budget for runaway sessions' output tokens (sent with every session when set).
    pub max_output_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_duration: Option<Duration>,
}

/// One session's request.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPlan {
    pub index: u64,
    pub query: String,
    pub output_tokens: u64,
    pub runaway: bool,
    pub budget: Option<serde_json::Value>,
}

/// z-score of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_347_874;

/// The plan of session `index`.
pub fn session(cfg: &MixConfig, index: u64) -> SessionPlan {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let median = cfg.length_median.as_secs_f64().max(0.001);
    let p99 = cfg.length_p99.as_secs_f64().max(median);
    let sigma = (p99 / median).ln() / Z99;
    let length_s = match LogNormal::new(median.ln(), sigma) {
        Ok(d) => d.sample(&mut rng).min(p99 * 2.0),
        Err(_) => median,
    };
    let output_tokens = ((length_s * cfg.tokens_per_second).round() as u64).max(4);
    let runaway = rng.random::<f64>() < cfg.runaway_fraction;
    let topic = TOPICS[rng.random_range(0..TOPICS.len())];
    let query = if runaway {
        format!(
            "Keep investigating {topic} until nothing is left (session {index}) [dz runaway] [dz tokens={output_tokens}]"
        )
    } else {
        format!(
            "Investigate {topic} and summarise the findings (session {index}) [dz tokens={output_tokens}]"
        )
    };
    let mut budget = serde_json::Map::new();
    if let Some(t) = cfg.max_output_tokens {
        budget.insert("max_output_tokens".into(), t.into());
    }
    if let Some(c) = cfg.max_cost_usd {
        budget.insert("max_cost_usd".into(), c.into());
    }
    if let Some(d) = cfg.max_duration {
        budget.insert("max_duration_s".into(), d.as_secs_f64().into());
    }
    SessionPlan {
        index,
        query,
        output_tokens,
        runaway,
        budget: (!budget.is_empty()).then_some(serde_json::Value::Object(budget)),
    }
}

const TOPICS: &[&str] = &[
    "the checkout latency regression",
    "last night's failed deploy",
    "the billing export mismatch",
    "the search relevance drop",
    "the on-call handover notes",
    "the database failover drill",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> MixConfig {
        MixConfig {
            seed,
            length_median: Duration::from_secs(10),
            length_p99: Duration::from_secs(30),
            tokens_per_second: 20.0,
            runaway_fraction: 0.1,
            max_output_tokens: None,
            max_cost_usd: None,
            max_duration: None,
        }
    }

    #[test]
    fn same_seed_same_mix_different_seed_different_mix() {
        let a: Vec<_> = (0..50).map(|i| session(&cfg(7), i)).collect();
        let b: Vec<_> = (0..50).map(|i| session(&cfg(7), i)).collect();
        let c: Vec<_> = (0..50).map(|i| session(&cfg(8), i)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn lengths_follow_the_configured_median_and_runaways_their_fraction() {
        let n = 4000;
        let mut tokens: Vec<u64> = (0..n).map(|i| session(&cfg(1), i).output_tokens).collect();
        tokens.sort_unstable();
        let median = tokens[tokens.len() / 2] as f64;
        // 10 s × 20 tokens/s = 200 tokens at the median; sampling error is a few percent.
        assert!((180.0..220.0).contains(&median), "median {median}");
        let runaways = (0..n).filter(|&i| session(&cfg(1), i).runaway).count() as f64;
        assert!(
            (0.07..0.13).contains(&(runaways / n as f64)),
            "runaway share {runaways}"
        );
    }
}
