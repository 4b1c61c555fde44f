//! Repeated faults: a `[[faults]]` entry with `every = "<dur>"` and `times = N` stands for N
//! faults at `at`, `at + every`, …, `at + (N-1)·every` (a soak: "kill a random replica every
//! minute, 100 times"). This module checks the pair and says when each repetition starts;
//! `timeline.rs` builds the faults. Times here are real (unscaled), like the file.
//!
//! Rules: both keys or neither; `times >= 1`; `every > 0`; a fault with a window (brownout,
//! outage, network, journal faults) repeats no sooner than its window ends, so one entry
//! never overlaps itself; every repetition, window included, lies inside the run.

use std::time::Duration;

use super::checks::{Checked, at_least, invalid, positive, show};
use super::file::Dur;

/// When an entry's faults start, real time: `[at]` for an entry that does not repeat.
pub fn starts(
    path: &str,
    (every, times): (Option<Dur>, Option<u32>),
    at: Duration,
    window: Duration,
    run: Duration,
) -> Checked<Vec<Duration>> {
    let (every, times) = match (every, times) {
        (None, None) => return Ok(vec![at]),
        (Some(every), Some(times)) => (every.0, times),
        (Some(_), None) => {
            return invalid(
                format!("{path}.every"),
                "needs times = N as well (how many repetitions, N >= 1)",
            );
        }
        (None, Some(_)) => {
            return invalid(
                format!("{path}.times"),
                "needs every = \"<duration>\" as well (the interval between repetitions)",
            );
        }
    };
    let times = at_least(&format!("{path}.times"), times, 1)?;
    positive(&format!("{path}.every"), every)?;
    if every < window {
        return invalid(
            format!("{path}.every"),
            format!(
                "must be at least the fault's own window ({}) so repetitions do not overlap, found {}",
                show(window),
                show(every)
            ),
        );
    }
    // The last repetition, window included, must end within the run (`timeline.rs` has
    // checked the first). In u128 nanoseconds, so an absurd `times` is an error, not an
    // overflow.
    let fit = fitting(at, window, every, run);
    if u128::from(times) > fit {
        return invalid(
            format!("{path}.times"),
            format!(
                "{times} repetitions every {} from {} do not fit in the run (duration = {}{}): at most {fit} do",
                show(every),
                show(at),
                show(run),
                if window.is_zero() {
                    String::new()
                } else {
                    format!(", each lasting {}", show(window))
                }
            ),
        );
    }
    Ok((0..times).map(|k| at + every * k).collect())
}

/// How many repetitions fit: each starts before the end of the run and its window ends by it.
fn fitting(at: Duration, window: Duration, every: Duration, run: Duration) -> u128 {
    let every = every.as_nanos().max(1);
    if window.is_zero() {
        match run.saturating_sub(at).as_nanos() {
            0 => 0,
            room => (room - 1) / every + 1,
        }
    } else {
        match run.checked_sub(at + window) {
            Some(room) => room.as_nanos() / every + 1,
            None => 0,
        }
    }
}
