//! The replica's peak resident memory during a step, from `/proc/<pid>/status`: the larger
//! of the sampled `VmRSS` values and the kernel's own high-water mark `VmHWM` (exact, since
//! every step starts a fresh process). Linux only; elsewhere it reads nothing (`None`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often `VmRSS` is sampled between the `VmHWM` reads.
const EVERY: Duration = Duration::from_millis(250);

/// Sample until `stop`, then return the peak in MiB (`None` if never readable).
pub async fn peak_mb(pid: i32, stop: CancellationToken) -> Option<u64> {
    let path = format!("/proc/{pid}/status");
    let mut peak_kb: Option<u64> = None;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        if let Ok(text) = tokio::fs::read_to_string(&path).await {
            for key in ["VmRSS:", "VmHWM:"] {
                if let Some(kb) = field_kb(&text, key) {
                    peak_kb = Some(peak_kb.map_or(kb, |p| p.max(kb)));
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
    }
    peak_kb.map(|kb| kb.div_ceil(1024))
}

/// `VmRSS:     12345 kB` → 12345.
pub(crate) fn field_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kb_fields() {
        let status = "Name:\tdropzero\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(field_kb(status, "VmRSS:"), Some(10240));
        assert_eq!(field_kb(status, "VmHWM:"), Some(20480));
        assert_eq!(field_kb(status, "VmSwap:"), None);
    }

    #[tokio::test]
    async fn peak_of_this_process_is_positive() {
        let stop = CancellationToken::new();
        stop.cancel();
        let mb = peak_mb(std::process::id() as i32, stop).await;
        assert!(mb.is_some_and(|m| m > 0), "{mb:?}");
    }
}
