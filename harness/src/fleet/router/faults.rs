//! Network faults the router injects on proxied response streams: added latency per chunk,
//! connection resets and stalls, each for a fraction of streams.
//!
//! A fault is set (or cleared with `None`) on the router and applies at once to every live
//! stream and to every stream opened while it is set. Which streams it hits is decided per
//! stream from the fault's `seed` and the stream's sequence number in the router, so the same
//! seed and the same order of streams hit the same streams. The window (when to set, when to
//! clear) belongs to the caller's fault timeline; this module knows nothing of time lines.

use std::time::Duration;

/// A fault on live proxied streams.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkFault {
    /// The fraction of streams affected, in `0.0..=1.0` (values outside are clamped).
    pub fraction: f64,
    /// Chooses which streams are affected; see the module docs.
    pub seed: u64,
    pub effect: FaultEffect,
}

/// What happens to an affected stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultEffect {
    /// Every chunk is held back this long before it is forwarded.
    Latency { per_chunk: Duration },
    /// The downstream connection is aborted at once: the client sees the body end without its
    /// terminating chunk (a reset), not a clean end of stream.
    Reset,
    /// Nothing is forwarded for this long from the moment the fault applies (the upstream is
    /// not read either, so the target feels backpressure). The idle timeout keeps counting, so
    /// a stall longer than it closes the stream, as it would behind an ALB.
    Stall { duration: Duration },
}

impl NetworkFault {
    /// Whether this fault hits the stream with the given sequence number.
    pub(crate) fn hits(&self, stream_seq: u64) -> bool {
        let fraction = self.fraction.clamp(0.0, 1.0);
        unit_interval(splitmix64(self.seed ^ splitmix64(stream_seq))) < fraction
    }
}

/// SplitMix64: a small, well-mixed hash, enough to spread stream numbers uniformly.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a hash to `[0, 1)` using its top 53 bits.
fn unit_interval(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(fraction: f64, seed: u64) -> NetworkFault {
        NetworkFault {
            fraction,
            seed,
            effect: FaultEffect::Reset,
        }
    }

    #[test]
    fn router_fault_fraction_is_respected_and_deterministic() {
        let check = |fraction: f64, lo: usize, hi: usize| {
            let f = fault(fraction, 7);
            let hit = (0..10_000).filter(|&s| f.hits(s)).count();
            assert!((lo..=hi).contains(&hit), "{fraction}: {hit} hits");
        };
        check(0.0, 0, 0);
        check(1.0, 10_000, 10_000);
        check(0.25, 2_300, 2_700);
        check(7.0, 10_000, 10_000);

        let a: Vec<bool> = (0..100).map(|s| fault(0.5, 1).hits(s)).collect();
        let b: Vec<bool> = (0..100).map(|s| fault(0.5, 1).hits(s)).collect();
        let c: Vec<bool> = (0..100).map(|s| fault(0.5, 2).hits(s)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
