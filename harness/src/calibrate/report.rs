//! The calibration report: what each step measured, which budget it crossed, the verdict,
//! and its two renderings (`calibrate.json`, `calibrate.md`). Pure: no I/O beyond
//! `impl Write`.

use std::io::Write;

use serde::Serialize;

/// Version of `calibrate.json`'s shape; bump on any change a reader would notice.
pub const SCHEMA_VERSION: u32 = 1;

/// `calibrate.json`.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrateReport {
    pub schema_version: u32,
    pub run_id: String,
    pub started_at: String,
    pub host: Host,
    pub config: Config,
    pub steps: Vec<StepResult>,
    /// The largest step that stayed within every budget (and every earlier one did too).
    pub verdict: Option<Verdict>,
    /// Why the sweep ended: `"all steps ran"`, a crossed budget, failed verification, Ctrl-C.
    pub stopped: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// CPUs this process was allowed to use when it started.
    pub cpus: usize,
    /// The CPU the harness (every thread of it) was pinned to, if any.
    pub harness_cpu: Option<usize>,
    /// The CPU the target process was pinned to, if any.
    pub target_cpu: Option<usize>,
    /// Tokio worker threads of the harness.
    pub worker_threads: usize,
    pub open_file_limit: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub tokens_per_second: f64,
    pub session_tokens: u64,
    pub step_duration_s: f64,
    pub max_itl_error_ms: f64,
    pub max_cpu_cores: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub streams: u64,
    pub tokens_per_second: f64,
}

/// Session outcomes of a whole step (ramp, window and drain).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionCounts {
    pub started: u64,
    pub completed: u64,
    pub resumed: u64,
    pub dropped: u64,
    pub failed: u64,
    pub not_started: u64,
    /// Ended by the harness at a step's hard stop or Ctrl-C (not verified to `done`).
    pub cancelled: u64,
    pub lost_events: u64,
    pub duplicated_events: u64,
    pub content_mismatches: u64,
    pub interruptions: u64,
}

impl SessionCounts {
    /// Why this step's sessions fail verification, if they do. A stream interrupted and
    /// resumed against a target on loopback is a harness failure too: the target never cuts.
    pub fn failure(&self) -> Option<String> {
        let parts: Vec<String> = [
            ("dropped", self.dropped),
            ("failed", self.failed),
            ("not started", self.not_started),
            ("lost events", self.lost_events),
            ("duplicated events", self.duplicated_events),
            ("content mismatches", self.content_mismatches),
            ("interruptions", self.interruptions),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// One step: N streams held for the measurement window.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub streams: u64,
    /// Sessions in flight during the window (sampled twice a second): fewest and mean.
    pub held_min: u64,
    pub held_mean: f64,
    pub window_s: f64,
    /// SSE events received in the window, every one parsed and verified.
    pub events: u64,
    pub events_per_s: f64,
    pub tokens_per_s: f64,
    /// The harness process's CPU time (user + sys, every thread) per second of the window.
    pub cpu_cores: f64,
    pub cpu_sys_fraction: f64,
    pub cpu_us_per_event: Option<f64>,
    /// Peak resident memory of the harness during the window.
    pub rss_mb: Option<f64>,
    /// (peak RSS in the window − RSS before the first step) / streams.
    pub kb_per_stream: Option<f64>,
    pub itl_p50_ms: Option<f64>,
    pub itl_p99_ms: Option<f64>,
    /// |measured ITL − the target's interval|: the harness's error and the target's together.
    pub itl_error_p50_ms: Option<f64>,
    pub itl_error_p99_ms: Option<f64>,
    pub itl_error_max_ms: Option<f64>,
    /// |measured ITL − the gap at which the target wrote the two tokens| (each token carries
    /// its write time): the harness's own measurement error, what the ITL budget judges.
    pub harness_itl_error_p50_ms: Option<f64>,
    pub harness_itl_error_p99_ms: Option<f64>,
    /// The target's CPU per second of the window (to tell a saturated target from a
    /// saturated harness).
    pub target_cpu_cores: Option<f64>,
    /// The target's own share of the ITL error: |gap between two of its token writes −
    /// interval| (it writes on an absolute schedule, so this is its lateness varying). An ITL
    /// error well above it is the harness's.
    pub target_gap_error_p50_ms: Option<f64>,
    pub target_gap_error_p99_ms: Option<f64>,
    pub sessions: SessionCounts,
    pub interrupted: bool,
    pub within_budget: bool,
    /// Which budgets the step crossed, in words.
    pub over_budget: Vec<String>,
}

impl StepResult {
    /// Judge the step against the budgets: sets `within_budget` and `over_budget`.
    pub fn judge(&mut self, cfg: &Config) {
        let mut over = Vec::new();
        if let Some(why) = self.sessions.failure() {
            over.push(format!("verification: {why}"));
        }
        // The harness's own error where the target stamped its writes, else the total.
        match self.harness_itl_error_p99_ms.or(self.itl_error_p99_ms) {
            Some(e) if e > cfg.max_itl_error_ms => over.push(format!(
                "ITL error p99 {e:.2} ms > {} ms",
                cfg.max_itl_error_ms
            )),
            Some(_) => {}
            None => over.push("no ITL sample in the window".into()),
        }
        if self.cpu_cores > cfg.max_cpu_cores {
            over.push(format!(
                "harness CPU {:.2} cores > {}",
                self.cpu_cores, cfg.max_cpu_cores
            ));
        }
        // Fewer streams held than asked for means the step did not measure N streams. A user
        // between two sessions is briefly not holding one: 2% (at least 2) is allowed.
        if self.held_min + (self.streams / 50).max(2) < self.streams {
            over.push(format!(
                "held only {} of {} streams",
                self.held_min, self.streams
            ));
        }
        self.within_budget = over.is_empty() && !self.interrupted;
        self.over_budget = over;
    }
}

/// The verdict: the last step of the unbroken run of steps within budget from the start.
pub fn verdict(steps: &[StepResult], tokens_per_second: f64) -> Option<Verdict> {
    steps
        .iter()
        .take_while(|s| s.within_budget)
        .map(|s| s.streams)
        .max()
        .map(|streams| Verdict {
            streams,
            tokens_per_second,
        })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.digits$}"))
}

/// One progress line for a finished step.
pub fn step_line(s: &StepResult) -> String {
    format!(
        "{:>6} streams (held ≥{}) · {:>7.0} events/s · harness {:.2} cores, {} µs/event ({:.0}% sys) · {} KB/stream · ITL error p99 {} ms (harness's own p50 {} ms p99 {} ms) · target {} cores, own gap error p99 {} ms · {} — {}",
        s.streams,
        s.held_min,
        s.events_per_s,
        s.cpu_cores,
        opt(s.cpu_us_per_event, 1),
        s.cpu_sys_fraction * 100.0,
        opt(s.kb_per_stream, 1),
        opt(s.itl_error_p99_ms, 2),
        opt(s.harness_itl_error_p50_ms, 2),
        opt(s.harness_itl_error_p99_ms, 2),
        opt(s.target_cpu_cores, 2),
        opt(s.target_gap_error_p99_ms, 2),
        s.sessions.failure().unwrap_or_else(|| format!(
            "{} sessions verified, 0 dropped/failed",
            s.sessions.completed
        )),
        if s.within_budget {
            "within budget".to_string()
        } else if s.interrupted {
            "interrupted".to_string()
        } else {
            s.over_budget.join("; ")
        }
    )
}

/// The verdict sentence.
pub fn verdict_line(r: &CalibrateReport) -> String {
    match &r.verdict {
        Some(v) => format!(
            "this box drives {} streams at {} tokens/s within budget (ITL error p99 ≤ {} ms, harness CPU ≤ {} cores)",
            v.streams, v.tokens_per_second, r.config.max_itl_error_ms, r.config.max_cpu_cores
        ),
        None => format!(
            "no step stayed within budget (ITL error p99 ≤ {} ms, harness CPU ≤ {} cores): {}",
            r.config.max_itl_error_ms, r.config.max_cpu_cores, r.stopped
        ),
    }
}

/// `calibrate.md`.
pub fn render_markdown(r: &CalibrateReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "# dropzero calibrate — {}\n", r.run_id)?;
    writeln!(out, "**{}.**\n", verdict_line(r))?;
    let pin = |c: Option<usize>| c.map_or("not pinned".to_string(), |c| format!("CPU {c}"));
    writeln!(
        out,
        "Started {} · {} CPUs · harness {} ({} worker thread(s)) · target {} · open-file limit {}",
        r.started_at,
        r.host.cpus,
        pin(r.host.harness_cpu),
        r.host.worker_threads,
        pin(r.host.target_cpu),
        r.host.open_file_limit
    )?;
    writeln!(
        out,
        "Each stream: {} tokens/s, {} tokens per session; {} s measurement window per step; every event parsed and verified.\n",
        r.config.tokens_per_second, r.config.session_tokens, r.config.step_duration_s
    )?;
    writeln!(
        out,
        "| streams | held (min) | events/s | harness CPU (cores) | CPU µs/event | sys % | RSS MB | KB/stream | ITL error p50 (ms) | ITL error p99 (ms) | harness's own ITL error p50 (ms) | harness's own ITL error p99 (ms) | target CPU (cores) | target's own gap error p99 (ms) | dropped/failed | verdict |"
    )?;
    writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for s in &r.steps {
        let verdict = if s.within_budget {
            "within budget".to_string()
        } else if s.interrupted {
            "interrupted".to_string()
        } else {
            s.over_budget.join("; ")
        };
        writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.streams,
            s.held_min,
            s.events_per_s,
            s.cpu_cores,
            opt(s.cpu_us_per_event, 1),
            s.cpu_sys_fraction * 100.0,
            opt(s.rss_mb, 0),
            opt(s.kb_per_stream, 1),
            opt(s.itl_error_p50_ms, 2),
            opt(s.itl_error_p99_ms, 2),
            opt(s.harness_itl_error_p50_ms, 2),
            opt(s.harness_itl_error_p99_ms, 2),
            opt(s.target_cpu_cores, 2),
            opt(s.target_gap_error_p99_ms, 2),
            s.sessions.dropped + s.sessions.failed + s.sessions.not_started,
            verdict
        )?;
    }
    writeln!(out, "\nSweep ended: {}.", r.stopped)?;
    writeln!(
        out,
        "\nITL error = |measured gap − the target's interval|: the harness's and the target's error together. The harness's own ITL error = |measured gap − the gap at which the target wrote the two tokens| (every token carries its write time): what reading added, the figure the ITL budget judges. The target's own gap error = how far the gaps between its writes strayed from the interval."
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(streams: u64, error_ms: f64, cpu: f64) -> StepResult {
        StepResult {
            streams,
            held_min: streams,
            held_mean: streams as f64,
            window_s: 10.0,
            events: 1000,
            events_per_s: 100.0,
            tokens_per_s: 100.0,
            cpu_cores: cpu,
            cpu_sys_fraction: 0.4,
            cpu_us_per_event: Some(5.0),
            rss_mb: Some(50.0),
            kb_per_stream: Some(10.0),
            itl_p50_ms: Some(100.0),
            itl_p99_ms: Some(100.5),
            itl_error_p50_ms: Some(0.1),
            itl_error_p99_ms: Some(error_ms * 2.0),
            itl_error_max_ms: Some(error_ms),
            target_cpu_cores: Some(0.1),
            harness_itl_error_p50_ms: Some(error_ms / 4.0),
            harness_itl_error_p99_ms: Some(error_ms),
            target_gap_error_p50_ms: Some(0.05),
            target_gap_error_p99_ms: Some(0.4),
            sessions: SessionCounts::default(),
            interrupted: false,
            within_budget: false,
            over_budget: Vec::new(),
        }
    }

    fn cfg() -> Config {
        Config {
            tokens_per_second: 10.0,
            session_tokens: 300,
            step_duration_s: 30.0,
            max_itl_error_ms: 1.0,
            max_cpu_cores: 0.9,
        }
    }

    #[test]
    fn each_budget_is_judged_and_named() {
        let check = |mut s: StepResult, within: bool, says: &str| {
            s.judge(&cfg());
            assert_eq!(s.within_budget, within, "{:?}", s.over_budget);
            assert!(
                s.over_budget.join("; ").contains(says),
                "{:?}",
                s.over_budget
            );
        };
        check(step(100, 0.5, 0.5), true, "");
        check(step(100, 1.5, 0.5), false, "ITL error p99 1.50 ms > 1 ms");
        check(step(100, 0.5, 0.95), false, "harness CPU 0.95 cores > 0.9");
        let mut dropped = step(100, 0.5, 0.5);
        dropped.sessions.dropped = 2;
        dropped.sessions.content_mismatches = 1;
        check(
            dropped,
            false,
            "verification: 2 dropped, 1 content mismatches",
        );
        let mut short = step(100, 0.5, 0.5);
        short.held_min = 90;
        check(short, false, "held only 90 of 100 streams");
    }

    #[test]
    fn the_verdict_is_the_last_step_before_the_first_breach() {
        let mut steps = vec![step(10, 0.2, 0.1), step(20, 0.3, 0.2), step(40, 2.0, 0.4)];
        for s in &mut steps {
            s.judge(&cfg());
        }
        assert_eq!(verdict(&steps, 10.0).map(|v| v.streams), Some(20));
        steps[0].within_budget = false;
        assert!(verdict(&steps, 10.0).is_none());
    }
}
