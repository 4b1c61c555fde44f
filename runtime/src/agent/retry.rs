//! Exponential backoff with full jitter for retrying LLM calls. Not for deciding *whether*
//! to retry (see `LlmError::is_retryable`).

use std::time::Duration;

use rand::Rng;

use crate::config::RetryPolicy;

/// The delay before retry number `attempt` (1-based): uniform in `[0, min(max, base·2^(attempt-1))]`.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let cap = policy
        .base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(policy.max);
    let millis = cap.as_millis() as u64;
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            outage_wait: Duration::from_secs(60),
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for (attempt, cap_ms) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            for _ in 0..50 {
                assert!(backoff(&policy, attempt) <= Duration::from_millis(cap_ms));
            }
        }
    }
}
