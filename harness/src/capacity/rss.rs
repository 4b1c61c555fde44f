//! The replica's peak resident memory during a step (`fleet::memory`: the larger of the
//! sampled `VmRSS` values and the kernel's high-water mark `VmHWM`, exact since every step
//! starts a fresh process). Linux only; elsewhere it reads nothing (`None`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::fleet::memory::peak_rss_kb;

/// How often `VmRSS` is sampled between the `VmHWM` reads.
const EVERY: Duration = Duration::from_millis(250);

/// Sample until `stop`, then return the peak in MiB (`None` if never readable).
pub async fn peak_mb(pid: i32, stop: CancellationToken) -> Option<u64> {
    let mut peak_kb: Option<u64> = None;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak_kb = Some(peak_kb.map_or(kb, |p| p.max(kb)));
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
    }
    peak_kb.map(|kb| kb.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn peak_of_this_process_is_positive() {
        let stop = CancellationToken::new();
        stop.cancel();
        let mb = peak_mb(std::process::id() as i32, stop).await;
        assert!(mb.is_some_and(|m| m > 0), "{mb:?}");
    }
}
