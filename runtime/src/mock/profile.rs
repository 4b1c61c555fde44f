//! The mock's model profile: latency distributions, prices, default lengths, concurrency and
//! the faults active at start, plus loading it from a TOML file.
//!
//! This file is for *configuration*: parse → validate → a [`Profile`] the server uses as is.
//! It is not for sampling latencies (`latency.rs`) or applying faults (`faults.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::faults::FaultSpec;

/// A latency distribution given by its median and 99th percentile (lognormal in between).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    #[serde(with = "duration_str")]
    pub median: Duration,
    #[serde(with = "duration_str")]
    pub p99: Duration,
}

impl LatencySpec {
    /// A distribution that is always zero (no latency at all).
    pub const ZERO: LatencySpec = LatencySpec {
        median: Duration::ZERO,
        p99: Duration::ZERO,
    };
}

/// Prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// How the mock behaves: one profile for every model name it is asked for.
///
/// In a TOML file every field is optional and falls back to [`Profile::default`] (realistic
/// values); tests usually start from [`Profile::fast`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    /// Time to first token.
    pub ttft: LatencySpec,
    /// Gap between consecutive tokens.
    pub itl: LatencySpec,
    /// Open streams above which every gap is stretched (see `latency::load_multiplier`).
    pub max_concurrent: usize,
    /// How much each stream over `max_concurrent` (relative to it) stretches the gaps.
    pub load_factor: f64,
    pub price: Price,
    /// Output tokens of a plain completion, and a planner's session total, when the request
    /// has no `[dz tokens=N]` directive.
    pub default_output_tokens: u32,
    /// Faults active from start until cleared (or until their `duration_ms` ends).
    pub faults: Option<FaultSpec>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            ttft: LatencySpec {
                median: Duration::from_millis(700),
                p99: Duration::from_secs(3),
            },
            itl: LatencySpec {
                median: Duration::from_millis(30),
                p99: Duration::from_millis(150),
            },
            max_concurrent: 256,
            load_factor: 1.0,
            price: Price {
                input_per_mtok: 3.0,
                output_per_mtok: 15.0,
            },
            default_output_tokens: 200,
            faults: None,
        }
    }
}

impl Profile {
    /// Fast latencies for tests: TTFT median 5 ms (p99 20 ms), gaps median 1 ms (p99 4 ms).
    pub fn fast() -> Self {
        Profile {
            ttft: LatencySpec {
                median: Duration::from_millis(5),
                p99: Duration::from_millis(20),
            },
            itl: LatencySpec {
                median: Duration::from_millis(1),
                p99: Duration::from_millis(4),
            },
            default_output_tokens: 50,
            ..Profile::default()
        }
    }

    /// No latency at all (throughput measurements).
    pub fn zero_latency() -> Self {
        Profile {
            ttft: LatencySpec::ZERO,
            itl: LatencySpec::ZERO,
            ..Profile::fast()
        }
    }

    /// Read and validate a TOML profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let profile: Profile = toml::from_str(&text).map_err(|source| ProfileError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        profile
            .validate()
            .map_err(|(field, reason)| ProfileError::Invalid {
                path: path.to_owned(),
                field,
                reason,
            })?;
        Ok(profile)
    }

    /// Check the values serde cannot: returns the offending field and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, spec) in [("ttft", &self.ttft), ("itl", &self.itl)] {
            if spec.p99 < spec.median {
                return Err((field, "p99 must be at least the median".into()));
            }
            if spec.median.is_zero() && !spec.p99.is_zero() {
                return Err((field, "a zero median needs a zero p99".into()));
            }
        }
        if self.max_concurrent == 0 {
            return Err(("max_concurrent", "must be at least 1".into()));
        }
        if !(self.load_factor >= 0.0 && self.load_factor.is_finite()) {
            return Err(("load_factor", "must be a finite number >= 0".into()));
        }
        let p = self.price;
        if !(p.input_per_mtok >= 0.0 && p.output_per_mtok >= 0.0) {
            return Err(("price", "prices must be >= 0".into()));
        }
        if let Some(f) = &self.faults {
            f.validate().map_err(|reason| ("faults", reason))?;
        }
        Ok(())
    }
}

/// Why a profile file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid profile {}", path.display())]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid profile {}: field `{field}`: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        field: &'static str,
        reason: String,
    },
}

/// Durations written as humantime strings ("700ms", "3s").
mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("bad duration {s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profile, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Profile::load(&path).map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))
    }

    #[test]
    fn parses_a_full_profile() {
        let p = parse(
            r#"
            default_output_tokens = 10
            ttft = { median = "700ms", p99 = "3s" }
            [price]
            input_per_mtok = 1.0
            output_per_mtok = 2.0
            [faults]
            rate_limit = 0.5
            "#,
        )
        .expect("valid profile");
        assert_eq!(p.ttft.median, Duration::from_millis(700));
        assert_eq!(p.itl, Profile::default().itl);
        assert_eq!(p.default_output_tokens, 10);
        assert_eq!(p.faults.map(|f| f.rate_limit), Some(0.5));
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let cases = [
            ("bogus = 1", "bogus"),
            ("ttft = { median = \"fast\", p99 = \"1s\" }", "fast"),
            ("ttft = { median = \"2s\", p99 = \"1s\" }", "ttft"),
            ("max_concurrent = 0", "max_concurrent"),
            ("[faults]\nrate_limit = 2.0", "faults"),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains("p.toml"), "{err}");
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
