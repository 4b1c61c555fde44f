//! `dropzero calibrate`: how many verified SSE streams this box can drive.
//!
//! It starts a zero-cost protocol-v1 target as a child process (`target`, the hidden
//! `calibrate-target` subcommand of this executable), pinned to another CPU than the harness
//! where the box has two, and steps the stream count up at a fixed token rate. Each step
//! (`step`) runs the real load and session engines — closed users, every event parsed and
//! verified, every digest checked — and measures the harness process: CPU per event
//! (`usage`: `getrusage`), memory per stream, and the ITL error: measured gap − the target's
//! interval (the harness's and the target's error together), and the harness's own part,
//! measured gap − the gap at which the target wrote the two tokens (`read_error`; the target
//! stamps each token and reports its own lateness). The sweep ends at the first step that
//! crosses a budget (the harness's own ITL error p99, harness CPU) or fails verification; the
//! verdict is the last step within budget (`report`).
//!
//! Architecture invariant: calibration has no client of its own. What it measures is the
//! engine `dropzero run` uses, through the same recorder, so its numbers size real runs.

pub mod read_error;
pub mod report;
pub mod step;
pub mod target;
pub mod usage;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::fleet::process::{self, Ready, SpawnSpec};
use report::{CalibrateReport, Config, Host};

/// Open files the harness needs beside one socket per stream: pooled create connections
/// (the client keeps up to 1024 idle), the log, the runtime.
const FD_MARGIN: u64 = 1024 + 256;

/// Which CPUs the harness and the target run on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    pub cpus: usize,
    pub harness_cpu: Option<usize>,
    pub target_cpu: Option<usize>,
}

/// Decide the placement and pin the calling thread (call it before the runtime starts, so
/// every harness thread inherits the pin): with two CPUs or more the harness gets the first
/// allowed CPU and the target the second; with one, both share it unpinned.
pub fn place() -> anyhow::Result<Placement> {
    let cpus = usage::allowed_cpus();
    match cpus.as_slice() {
        [harness, target, ..] => {
            usage::pin_to(*harness)?;
            Ok(Placement {
                cpus: cpus.len(),
                harness_cpu: Some(*harness),
                target_cpu: Some(*target),
            })
        }
        _ => Ok(Placement {
            cpus: cpus.len(),
            ..Placement::default()
        }),
    }
}

/// What `dropzero calibrate` was asked to do, already parsed.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// Stream counts to try, in order.
    pub streams: Vec<u64>,
    pub tokens_per_second: f64,
    pub session_tokens: u64,
    /// The measurement window of each step.
    pub step_duration: Duration,
    /// Time to ramp up to a step's streams (default: 500 new streams a second, 1–30 s).
    pub ramp: Option<Duration>,
    pub max_itl_error: Duration,
    pub max_cpu: f64,
    pub out: Option<PathBuf>,
    /// The executable that serves `calibrate-target` (normally this one).
    pub exe: PathBuf,
    pub placement: Placement,
    pub worker_threads: usize,
}

impl CalibrateOptions {
    /// Reject what cannot be measured, naming the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.streams.is_empty() || self.streams.contains(&0) {
            anyhow::bail!("--streams needs one or more counts above 0");
        }
        if !(0.1..=1000.0).contains(&self.tokens_per_second) {
            anyhow::bail!(
                "--tokens-per-second must be between 0.1 and 1000 (a stream silent for longer \
                 than 10 s would meet the idle timeout), got {}",
                self.tokens_per_second
            );
        }
        if !(4..=target::MAX_TOKENS).contains(&self.session_tokens) {
            anyhow::bail!(
                "--session-tokens must be between 4 and {}, got {}",
                target::MAX_TOKENS,
                self.session_tokens
            );
        }
        if self.step_duration < Duration::from_secs(1) {
            anyhow::bail!("--step-duration must be at least 1s");
        }
        if self.max_itl_error.is_zero() {
            anyhow::bail!("--max-itl-error-ms must be above 0");
        }
        if !(self.max_cpu > 0.0 && self.max_cpu.is_finite()) {
            anyhow::bail!("--max-cpu must be a number of cores above 0");
        }
        Ok(())
    }

    fn ramp_for(&self, streams: u64) -> Duration {
        self.ramp
            .unwrap_or_else(|| Duration::from_secs_f64((streams as f64 / 500.0).clamp(1.0, 30.0)))
    }
}

/// The default sweep: `start`, doubling, up to `max` (which is always the last step).
pub fn doubling(start: u64, max: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut n = start.max(1);
    while n < max {
        out.push(n);
        n = n.saturating_mul(2);
    }
    out.push(max.max(1));
    out
}

/// Where the report went and what it says.
pub struct CalibrateOutcome {
    pub dir: PathBuf,
    pub report: CalibrateReport,
}

/// Run the sweep. Ctrl-C (`interrupt`) ends the current step early; the report still says
/// what was measured, and the target is killed with the harness's handle on it.
pub async fn run(
    opts: CalibrateOptions,
    interrupt: CancellationToken,
) -> anyhow::Result<CalibrateOutcome> {
    opts.validate()?;
    let run_id = crate::run::run_id();
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports/out/calibrate").join(&run_id));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::logs::attach(&dir).with_context(|| format!("creating the log in {}", dir.display()))?;

    let largest = opts.streams.iter().copied().max().unwrap_or(0);
    let fd_limit = crate::fdlimit::raise_to(largest + FD_MARGIN);
    if largest + FD_MARGIN > fd_limit {
        anyhow::bail!(
            "{largest} streams need about {} open files, but the limit is {fd_limit} and could \
             not be raised (raise the hard limit: `ulimit -Hn`, or run fewer streams)",
            largest + FD_MARGIN
        );
    }

    let mut args: Vec<std::ffi::OsString> = vec![
        "calibrate-target".into(),
        "--tokens-per-second".into(),
        opts.tokens_per_second.to_string().into(),
    ];
    if let Some(cpu) = opts.placement.target_cpu {
        args.extend(["--cpu".into(), cpu.to_string().into()]);
    }
    let target = process::spawn(
        SpawnSpec {
            name: "calibrate-target".into(),
            exe: opts.exe.clone(),
            args,
            log_path: dir.join("calibrate-target.log"),
            memory_limit: None,
            env: Vec::new(),
            ready: Ready::ListeningLine,
        },
        Duration::from_secs(10),
    )
    .await
    .context("starting the calibration target")?;
    let base_url = format!("http://{}", target.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .redirect(crate::session::redirect_policy())
        .build()
        .context("building the HTTP client")?;

    let config = Config {
        tokens_per_second: opts.tokens_per_second,
        session_tokens: opts.session_tokens,
        step_duration_s: opts.step_duration.as_secs_f64(),
        max_itl_error_ms: opts.max_itl_error.as_secs_f64() * 1e3,
        max_cpu_cores: opts.max_cpu,
    };
    let baseline_rss_kb = usage::rss_kb("self");
    let env = step::StepEnv {
        client: &client,
        base_url: &base_url,
        target_pid: Some(target.pid()),
        baseline_rss_kb,
        interrupt: &interrupt,
    };
    println!(
        "calibrate: {} tokens/s per stream, {} tokens per session, {:?} per step; harness on {}, target on {} → {}",
        opts.tokens_per_second,
        opts.session_tokens,
        opts.step_duration,
        opts.placement
            .harness_cpu
            .map_or("any CPU".into(), |c| format!("CPU {c}")),
        opts.placement
            .target_cpu
            .map_or("any CPU".into(), |c| format!("CPU {c}")),
        dir.display()
    );
    let mut steps = Vec::new();
    let mut stopped = "all steps ran".to_string();
    for (i, &streams) in opts.streams.iter().enumerate() {
        let plan = step::StepPlan {
            streams,
            tokens_per_second: opts.tokens_per_second,
            session_tokens: opts.session_tokens,
            ramp: opts.ramp_for(streams),
            window: opts.step_duration,
            seed: 0xCA11 + i as u64,
        };
        tracing::info!(streams, ramp = ?plan.ramp, "calibrate step starting");
        let mut result = step::run(&plan, &env).await;
        result.judge(&config);
        println!(
            "step {}/{}: {}",
            i + 1,
            opts.streams.len(),
            report::step_line(&result)
        );
        let (within, interrupted) = (result.within_budget, result.interrupted);
        let over = result.over_budget.join("; ");
        steps.push(result);
        if interrupted {
            stopped = format!("interrupted (Ctrl-C) during the {streams}-stream step");
            break;
        }
        if !within {
            stopped = format!("the {streams}-stream step crossed a budget: {over}");
            break;
        }
    }
    drop(target);

    let report = CalibrateReport {
        schema_version: report::SCHEMA_VERSION,
        run_id,
        started_at,
        host: Host {
            cpus: opts.placement.cpus,
            harness_cpu: opts.placement.harness_cpu,
            target_cpu: opts.placement.target_cpu,
            worker_threads: opts.worker_threads,
            open_file_limit: fd_limit,
        },
        verdict: report::verdict(&steps, opts.tokens_per_second),
        config,
        steps,
        stopped,
    };
    write_all(&report, &dir)?;
    Ok(CalibrateOutcome { dir, report })
}

/// `calibrate.json` and `calibrate.md` in `dir`.
pub fn write_all(report: &CalibrateReport, dir: &std::path::Path) -> anyhow::Result<()> {
    let json = dir.join("calibrate.json");
    let text = serde_json::to_string_pretty(report).context("serialising calibrate.json")?;
    std::fs::write(&json, text + "\n").with_context(|| format!("writing {}", json.display()))?;
    let md = dir.join("calibrate.md");
    let mut file =
        std::fs::File::create(&md).with_context(|| format!("writing {}", md.display()))?;
    report::render_markdown(report, &mut file)
        .with_context(|| format!("writing {}", md.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_ends_on_the_max() {
        assert_eq!(doubling(1000, 8000), [1000, 2000, 4000, 8000]);
        assert_eq!(doubling(1000, 10000), [1000, 2000, 4000, 8000, 10000]);
        assert_eq!(doubling(50, 50), [50]);
    }

    fn opts() -> CalibrateOptions {
        CalibrateOptions {
            streams: vec![10],
            tokens_per_second: 10.0,
            session_tokens: 300,
            step_duration: Duration::from_secs(30),
            ramp: None,
            max_itl_error: Duration::from_millis(1),
            max_cpu: 0.9,
            out: None,
            exe: PathBuf::from("dropzero"),
            placement: Placement::default(),
            worker_threads: 1,
        }
    }

    #[test]
    fn bad_input_names_the_flag() {
        let check = |o: CalibrateOptions, flag: &str| {
            let e = o.validate().expect_err("rejected").to_string();
            assert!(e.contains(flag), "{e}");
        };
        check(
            CalibrateOptions {
                streams: vec![],
                ..opts()
            },
            "--streams",
        );
        check(
            CalibrateOptions {
                streams: vec![5, 0],
                ..opts()
            },
            "--streams",
        );
        check(
            CalibrateOptions {
                tokens_per_second: 0.0,
                ..opts()
            },
            "--tokens-per-second",
        );
        check(
            CalibrateOptions {
                session_tokens: 2,
                ..opts()
            },
            "--session-tokens",
        );
        check(
            CalibrateOptions {
                step_duration: Duration::from_millis(10),
                ..opts()
            },
            "--step-duration",
        );
        check(
            CalibrateOptions {
                max_cpu: f64::NAN,
                ..opts()
            },
            "--max-cpu",
        );
        assert!(opts().validate().is_ok());
    }

    #[test]
    fn the_ramp_grows_with_the_streams() {
        let o = opts();
        assert_eq!(o.ramp_for(100), Duration::from_secs(1));
        assert_eq!(o.ramp_for(5000), Duration::from_secs(10));
        assert_eq!(o.ramp_for(100_000), Duration::from_secs(30));
    }
}
