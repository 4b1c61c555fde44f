//! What a process costs, read from the kernel: this process's CPU time (`getrusage`, every
//! thread), another process's CPU time (`/proc/<pid>/stat`), resident memory
//! (`/proc/<pid>/status`), and CPU pinning (`sched_setaffinity`). Linux only where `/proc` is
//! read; elsewhere those readings are `None`.

use std::time::Duration;

use anyhow::Context;
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::Pid;

/// CPU time spent so far, split as the kernel accounts it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cpu {
    pub user: Duration,
    pub sys: Duration,
}

impl Cpu {
    pub fn total(&self) -> Duration {
        self.user + self.sys
    }

    /// `self - earlier`, saturating at zero.
    pub fn since(&self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }
}

/// This process's CPU time, all threads (`RUSAGE_SELF`; children are not included).
pub fn cpu_self() -> Cpu {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let d = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec().max(0) as u64)
                    + Duration::from_micros(t.tv_usec().max(0) as u64)
            };
            Cpu {
                user: d(u.user_time()),
                sys: d(u.system_time()),
            }
        }
        Err(_) => Cpu::default(),
    }
}

/// Another process's CPU time from `/proc/<pid>/stat` (`utime`, `stime`, in clock ticks).
pub fn cpu_of(pid: i32) -> Option<Cpu> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text, clock_ticks())
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Fields 14 and 15 of `/proc/<pid>/stat`, counted after the command name (which may hold
/// spaces and parentheses, so the split is at the last `)`).
fn parse_stat(text: &str, ticks_per_s: u64) -> Option<Cpu> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let d = |ticks: u64| Duration::from_secs_f64(ticks as f64 / ticks_per_s as f64);
    Some(Cpu {
        user: d(utime),
        sys: d(stime),
    })
}

/// Resident memory of `pid` (`self` for this process) in KiB, from `VmRSS`.
pub fn rss_kb(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    crate::fleet::memory::field_kb(&text, "VmRSS:")
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Pin the calling thread, and every thread it starts afterwards, to `cpu`.
pub fn pin_to(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .with_context(|| format!("CPU {cpu} is out of range"))?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to CPU {cpu}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        let stat = "1234 (dropzero (x) y) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0";
        let cpu = parse_stat(stat, 100).expect("parsed");
        assert_eq!(cpu.user, Duration::from_millis(2500));
        assert_eq!(cpu.sys, Duration::from_millis(750));
        assert_eq!(parse_stat("garbage", 100), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1 || cpu_self().total() > Duration::ZERO);
        assert!(rss_kb("self").is_some_and(|kb| kb > 0));
        assert!(cpu_of(std::process::id() as i32).is_some());
        assert!(!allowed_cpus().is_empty());
    }
}
