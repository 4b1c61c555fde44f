//! Resident memory of a local child process, from `/proc/<pid>/status`: the larger of
//! `VmRSS` (now) and the kernel's high-water mark `VmHWM` (since the process started), so a
//! read once a second still sees a peak between reads. Linux only; elsewhere every read is
//! `None`. Used for the report's per-replica peak RSS and by `dropzero capacity`.

/// `max(VmRSS, VmHWM)` of `pid` in KiB, or `None` if unreadable (exited, not Linux).
pub fn peak_rss_kb(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    ["VmRSS:", "VmHWM:"]
        .iter()
        .filter_map(|key| field_kb(&text, key))
        .max()
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

    #[test]
    fn this_process_has_a_peak_and_a_missing_one_has_none() {
        assert!(peak_rss_kb(std::process::id() as i32).is_some_and(|kb| kb > 0));
        assert_eq!(peak_rss_kb(i32::MAX), None);
    }
}
