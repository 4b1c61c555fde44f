//! The small checks every section of a scenario uses, and the error they return: a field
//! path and a sentence saying what is allowed (`locate.rs` turns the path into a line).
//! Also [`Scale`], the one place real-world time becomes wall-clock time.

use std::time::Duration;

use super::file::{Dur, RawPercentiles};
use super::plan::Percentiles;

/// A problem with the field at `path` (e.g. `load.stages[0].users`).
#[derive(Debug)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

pub type Checked<T> = Result<T, Invalid>;

pub fn invalid<T>(path: impl Into<String>, message: impl Into<String>) -> Checked<T> {
    Err(Invalid {
        path: path.into(),
        message: message.into(),
    })
}

/// `30s`, `1m 30s`: how durations appear in messages.
pub fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Real-world time → wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Scale(pub f64);

impl Scale {
    pub fn time(self, real: Duration) -> Duration {
        real.mul_f64(self.0)
    }
    pub fn dur(self, real: Option<Dur>, default: Duration) -> Duration {
        self.time(real.map_or(default, |d| d.0))
    }
    /// Wall-clock time → real-world time, to the millisecond (for messages).
    pub fn to_real(self, wall: Duration) -> Duration {
        let ms = (wall.as_secs_f64() / self.0 * 1000.0).round();
        Duration::from_millis(ms as u64)
    }
    /// Per real second → per wall-clock second.
    pub fn rate(self, per_real_second: f64) -> f64 {
        per_real_second / self.0
    }
}

pub fn positive(path: &str, real: Duration) -> Checked<()> {
    if real.is_zero() {
        invalid(path, "must be longer than 0s")
    } else {
        Ok(())
    }
}

pub fn fraction(path: &str, value: f64) -> Checked<f64> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        invalid(path, format!("must be in [0, 1], found {value}"))
    }
}

pub fn positive_number(path: &str, value: f64) -> Checked<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        invalid(path, format!("must be a number above 0, found {value}"))
    }
}

pub fn non_negative(path: &str, value: f64) -> Checked<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        invalid(path, format!("must be 0 or more, found {value}"))
    }
}

pub fn at_least(path: &str, value: u32, min: u32) -> Checked<u32> {
    if value >= min {
        Ok(value)
    } else {
        invalid(path, format!("must be at least {min}, found {value}"))
    }
}

pub fn latency(
    path: &str,
    raw: Option<RawPercentiles<Dur>>,
    default: (Duration, Duration),
    scale: Scale,
) -> Checked<Percentiles<Duration>> {
    let (median, p99) = raw.map_or(default, |p| (p.median.0, p.p99.0));
    positive(&format!("{path}.median"), median)?;
    if p99 < median {
        return invalid(
            format!("{path}.p99"),
            format!(
                "must be at least the median ({}), found {}",
                show(median),
                show(p99)
            ),
        );
    }
    Ok(Percentiles {
        median: scale.time(median),
        p99: scale.time(p99),
    })
}
