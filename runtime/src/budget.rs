//! Per-session budgets: output tokens, cost and wall-clock duration. Checked before every
//! LLM call, so a runaway agent overshoots by at most the call in flight (per running step);
//! the duration limit is also enforced by a timer in `agent`. Not for rate limiting.

use std::time::Duration;

use crate::session::{Budget, Usage};

/// Which limit was hit, for `done.reason`.
pub fn exceeded(budget: &Budget, usage: &Usage, elapsed: Duration) -> Option<String> {
    if let Some(max) = budget.max_output_tokens
        && usage.output_tokens >= max
    {
        return Some(format!(
            "max_output_tokens {max} reached ({})",
            usage.output_tokens
        ));
    }
    if let Some(max) = budget.max_cost_usd
        && usage.cost_usd >= max
    {
        return Some(format!(
            "max_cost_usd {max} reached ({:.6})",
            usage.cost_usd
        ));
    }
    if let Some(max) = budget.max_duration_s
        && elapsed.as_secs_f64() >= max
    {
        return Some(format!("max_duration_s {max} reached"));
    }
    None
}

/// The wall-clock limit, if any, as a `Duration`.
pub fn max_duration(budget: &Budget) -> Option<Duration> {
    budget
        .max_duration_s
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(budget: Budget, output_tokens: u64, cost_usd: f64, secs: u64, hit: bool) {
        let usage = Usage {
            input_tokens: 0,
            output_tokens,
            cost_usd,
        };
        assert_eq!(
            exceeded(&budget, &usage, Duration::from_secs(secs)).is_some(),
            hit,
            "{budget:?} {usage:?} {secs}s"
        );
    }

    #[test]
    fn limits() {
        let tokens = Budget {
            max_output_tokens: Some(10),
            ..Budget::default()
        };
        check(tokens, 9, 0.0, 0, false);
        check(tokens, 10, 0.0, 0, true);
        let cost = Budget {
            max_cost_usd: Some(0.5),
            ..Budget::default()
        };
        check(cost, 0, 0.49, 0, false);
        check(cost, 0, 0.5, 0, true);
        let time = Budget {
            max_duration_s: Some(2.0),
            ..Budget::default()
        };
        check(time, 0, 0.0, 1, false);
        check(time, 0, 0.0, 2, true);
        check(Budget::default(), u64::MAX, 1e9, 1 << 30, false);
    }
}
