//! How late the mock hands each paced token to the HTTP connection, measured inside the mock.
//!
//! A client's measurement of the inter-token gap also holds its own queueing and parsing
//! (docs/benchmarks.md: the example's client thread was ~80% busy at 256 streams). Recording
//! at the mock separates the two. Off unless a [`Lateness`] is passed to
//! [`super::serve_recording`]; then one clock read and one uncontended lock per body frame.
//!
//! The instant recorded is when hyper takes the frame from the body stream; it flushes every
//! body frame before asking for the next one, so this is just before the `writev`.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// The paced tokens in one body frame: normally one; more only when the mock fell behind by
/// a whole gap and tokens already due joined the pending batch (`generate::Batch`).
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    /// Due instant of the frame's first and last paced token.
    pub first: Instant,
    pub last: Instant,
    pub tokens: u32,
}

impl Paced {
    /// Add a paced token due at `due`.
    pub fn add(this: &mut Option<Paced>, due: Instant) {
        match this {
            Some(p) => {
                p.last = due;
                p.tokens += 1;
            }
            None => {
                *this = Some(Paced {
                    first: due,
                    last: due,
                    tokens: 1,
                })
            }
        }
    }
}

/// Histograms (microseconds) of paced tokens, over every stream of one mock.
#[derive(Debug)]
pub struct Lateness {
    inner: Mutex<Hists>,
}

#[derive(Debug, Clone)]
pub struct Hists {
    /// Handed to the connection − due. Includes tokio's timer rounding (a sleep ends on the
    /// next 1 ms tick), which is the same offset for every token of a stream.
    pub late: Histogram<u64>,
    /// The mock's share of the gap a client sees: (this token's hand-over − the previous
    /// one's) − (this due − the previous due), floored at 0 like the client's measure. The
    /// constant per-stream rounding cancels out; grouped wake-ups and queueing do not.
    pub added: Histogram<u64>,
}

impl Default for Lateness {
    fn default() -> Self {
        let hist =
            || Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds");
        Lateness {
            inner: Mutex::new(Hists {
                late: hist(),
                added: hist(),
            }),
        }
    }
}

impl Lateness {
    /// A copy of both histograms.
    pub fn snapshot(&self) -> Hists {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hists> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a frame handed over at `now`; `prev` is the stream's previous paced frame
    /// (hand-over instant, last due), updated here.
    pub(super) fn record(&self, paced: Paced, now: Instant, prev: &mut Option<(Instant, Instant)>) {
        let micros = |d: Duration| (d.as_micros() as u64).max(1);
        let mut h = self.lock();
        // Every token of the frame is counted as late as its first (an upper bound).
        let late = micros(now.saturating_duration_since(paced.first));
        h.late.saturating_record_n(late, u64::from(paced.tokens));
        if let Some((at, due)) = *prev {
            let added = now
                .saturating_duration_since(at)
                .saturating_sub(paced.first.saturating_duration_since(due));
            h.added.saturating_record(micros(added));
            // The frame's other tokens arrive together: a gap of 0 added, as a client sees it.
            if paced.tokens > 1 {
                h.added.saturating_record_n(1, u64::from(paced.tokens - 1));
            }
        }
        *prev = Some((now, paced.last));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The arithmetic only (instants are made up): a stream paced every 2 ms whose frames
    /// leave 1 ms late, then 1.5 ms late, then two tokens in one frame.
    #[test]
    fn records_lateness_and_the_added_gap_like_a_client() {
        let (l, t0, mut prev) = (Lateness::default(), Instant::now(), None);
        let one = |due: Instant| Paced {
            first: due,
            last: due,
            tokens: 1,
        };
        l.record(one(t0 + ms(2)), t0 + ms(3), &mut prev);
        l.record(one(t0 + ms(4)), t0 + ms(5) + ms(1) / 2, &mut prev);
        let mut two = None;
        Paced::add(&mut two, t0 + ms(6));
        Paced::add(&mut two, t0 + ms(8));
        l.record(two.expect("two tokens"), t0 + ms(9), &mut prev);
        let h = l.snapshot();
        // 1 ms, 1.5 ms, and 3 ms twice (the frame's tokens count as late as its first).
        assert_eq!(h.late.len(), 4);
        assert_eq!(h.late.min(), 1000);
        assert_eq!(h.late.count_between(2999, 3001), 2);
        // Gaps: 2.5 ms for a 2 ms pace (0.5 ms added), 3.5 ms for 2 ms (1.5 ms), then 0.
        assert_eq!(h.added.len(), 3);
        assert_eq!(h.added.count_between(499, 501), 1);
        assert_eq!(h.added.count_between(1499, 1501), 1);
        assert_eq!(h.added.count_between(0, 1), 1);
        assert_eq!(prev, Some((t0 + ms(9), t0 + ms(8))));
    }
}
