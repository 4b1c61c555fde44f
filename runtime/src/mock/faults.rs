//! Injectable faults: what can go wrong (error rates, cut streams, stalls, extra latency), the
//! window during which it is active, and the per-request draw that decides what happens.
//!
//! This file decides *whether* a fault hits a request; it does not render error bodies (each
//! API module does, in its own format) or sleep (the generator does).

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// A fault window, as posted to `POST /mock/faults` (JSON) or written in a profile (TOML).
///
/// Rates are probabilities per request in `0..=1`; the three error rates are drawn together,
/// so their sum must not exceed 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSpec {
    /// HTTP 429 (`rate_limit_error`, with `retry-after`).
    pub rate_limit: f64,
    /// HTTP 529 (`overloaded_error`).
    pub overloaded: f64,
    /// HTTP 500 (`api_error`).
    pub server_error: f64,
    /// Close the connection abruptly after this many output tokens...
    pub cut_after_tokens: Option<u32>,
    /// ...in this fraction of responses (default 1.0).
    #[serde(default = "one")]
    pub cut_rate: f64,
    /// Send an in-stream `error` event (Anthropic `overloaded_error`) after N tokens, then end.
    pub stream_error_after_tokens: Option<u32>,
    /// Pause once, mid-stream.
    pub stall: Option<Stall>,
    /// Added to every time to first token.
    pub extra_latency_ms: u64,
    /// Seconds announced in `retry-after` on 429/529.
    #[serde(default = "one_u64")]
    pub retry_after_s: u64,
    /// Window length from the moment it is set; absent = until cleared.
    pub duration_ms: Option<u64>,
}

/// A one-off pause after `after_tokens` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    pub after_tokens: u32,
    pub duration_ms: u64,
}

/// The longest time a fault spec may name, in milliseconds: one day.
pub const MAX_MS: u64 = 24 * 3600 * 1000;

fn one() -> f64 {
    1.0
}

fn one_u64() -> u64 {
    1
}

impl FaultSpec {
    /// Check ranges serde cannot; returns why the spec is unusable.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("rate_limit", self.rate_limit),
            ("overloaded", self.overloaded),
            ("server_error", self.server_error),
            ("cut_rate", self.cut_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be within 0..=1, got {rate}"));
            }
        }
        if self.rate_limit + self.overloaded + self.server_error > 1.0 + 1e-9 {
            return Err("rate_limit + overloaded + server_error must not exceed 1".into());
        }
        // Times beyond a day are a typo, and unbounded ones overflow `Instant + Duration`.
        for (name, ms) in [
            ("duration_ms", self.duration_ms),
            ("extra_latency_ms", Some(self.extra_latency_ms)),
            ("stall.duration_ms", self.stall.map(|s| s.duration_ms)),
        ] {
            if let Some(ms) = ms
                && ms > MAX_MS
            {
                return Err(format!(
                    "{name} must be at most {MAX_MS} (one day), got {ms}"
                ));
            }
        }
        if self.retry_after_s > MAX_MS / 1000 {
            return Err(format!(
                "retry_after_s must be at most {} (one day), got {}",
                MAX_MS / 1000,
                self.retry_after_s
            ));
        }
        Ok(())
    }
}

/// An error status a request is refused with before any output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    RateLimited { retry_after_s: u64 },
    Overloaded { retry_after_s: u64 },
    ServerError,
}

/// What the active faults decided for one request (all `None` when no window is active).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict {
    pub refuse: Option<Refusal>,
    pub cut_after: Option<u32>,
    pub stream_error_after: Option<u32>,
    pub stall: Option<(u32, Duration)>,
    pub extra_latency: Duration,
}

/// The fault window currently set, shared by every request.
#[derive(Debug, Default)]
pub struct Faults {
    active: Mutex<Option<(FaultSpec, Option<Instant>)>>,
}

impl Faults {
    /// Start a window now (replacing any active one).
    pub fn set(&self, spec: FaultSpec) {
        let until = spec
            .duration_ms
            .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
        *self.lock() = Some((spec, until));
    }

    pub fn clear(&self) {
        *self.lock() = None;
    }

    /// The active spec and the time left in its window (None = until cleared).
    pub fn current(&self) -> Option<(FaultSpec, Option<Duration>)> {
        let mut guard = self.lock();
        match *guard {
            Some((spec, Some(until))) => {
                let now = Instant::now();
                if now >= until {
                    *guard = None;
                    None
                } else {
                    Some((spec, Some(until - now)))
                }
            }
            Some((spec, None)) => Some((spec, None)),
            None => None,
        }
    }

    /// Draw the faults for one request.
    pub fn decide(&self, rng: &mut impl Rng) -> Verdict {
        let Some((spec, _)) = self.current() else {
            return Verdict::default();
        };
        let u: f64 = rng.random();
        let retry_after_s = spec.retry_after_s;
        let refuse = if u < spec.rate_limit {
            Some(Refusal::RateLimited { retry_after_s })
        } else if u < spec.rate_limit + spec.overloaded {
            Some(Refusal::Overloaded { retry_after_s })
        } else if u < spec.rate_limit + spec.overloaded + spec.server_error {
            Some(Refusal::ServerError)
        } else {
            None
        };
        let cut_after = spec
            .cut_after_tokens
            .filter(|_| rng.random::<f64>() < spec.cut_rate);
        Verdict {
            refuse,
            cut_after,
            stream_error_after: spec.stream_error_after_tokens,
            stall: spec
                .stall
                .map(|s| (s.after_tokens, Duration::from_millis(s.duration_ms))),
            extra_latency: Duration::from_millis(spec.extra_latency_ms),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(FaultSpec, Option<Instant>)>> {
        // A panic while holding this lock cannot leave the Option half-written.
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[tokio::test(start_paused = true)]
    async fn window_ends_after_its_duration() {
        let faults = Faults::default();
        faults.set(FaultSpec {
            rate_limit: 1.0,
            duration_ms: Some(1000),
            ..FaultSpec::default()
        });
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert!(matches!(
            faults.decide(&mut rng).refuse,
            Some(Refusal::RateLimited { .. })
        ));
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(faults.decide(&mut rng), Verdict::default());
        assert!(faults.current().is_none());
    }

    #[test]
    fn rejects_bad_rates_and_unknown_fields() {
        let bad: Result<FaultSpec, _> = serde_json::from_str(r#"{"rate_limt": 0.2}"#);
        assert!(bad.is_err());
        let spec: FaultSpec =
            serde_json::from_str(r#"{"rate_limit": 0.7, "overloaded": 0.7}"#).expect("parses");
        assert!(spec.validate().is_err());
        let spec: FaultSpec = serde_json::from_str(r#"{"cut_after_tokens": 3}"#).expect("parses");
        assert_eq!(spec.cut_rate, 1.0);
    }
}
