//! The command line: one enum of subcommands and one dispatch. Exit codes are chosen here
//! and only here: 0 every gate passed, 1 a gate failed, 2 the harness itself failed
//! (for `capacity`: 0 a knee was found, 1 even the lowest level broke the SLO; for `compare`:
//! 1 a regression with `--fail-on-regression`, 2 runs that are not comparable; for
//! `calibrate`: 0 some step stayed within budget, 1 none did).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::scenario;

/// Every gate passed.
pub const EXIT_OK: u8 = 0;
/// At least one gate failed.
pub const EXIT_GATE_FAILED: u8 = 1;
/// The harness could not do its job (bad scenario, target would not start, I/O).
pub const EXIT_HARNESS_FAILED: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "dropzero",
    version,
    about = "Load and chaos testing for streaming LLM agent runtimes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Show the harness's logs live on stderr (-v info, -vv debug); they always go to
    /// `dropzero.log.jsonl` in the run directory. `RUST_LOG` sets both filters.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: start its target, drive the load, inject its faults, write a report.
    /// Exit 0 when every gate passes, 1 when one fails, 2 when the harness itself fails.
    Run(RunArgs),
    /// Find how many concurrent sessions one replica holds inside the scenario's latency SLO
    /// (`gates.ttft_p99`, `gates.itl_p99`) and the autoscaling target value that follows.
    /// Exit 0 when a knee was found, 1 when even the lowest level breaks the SLO, 2 on errors.
    Capacity(CapacityArgs),
    /// Measure what this box can drive: step the number of verified SSE streams up against
    /// a built-in zero-cost target (on another CPU where there is one) until the ITL error
    /// or the harness's CPU crosses its budget. Writes calibrate.json and calibrate.md.
    /// Exit 0 when some step stayed within budget, 1 when none did, 2 on errors.
    Calibrate(CalibrateArgs),
    /// The zero-cost protocol-v1 target `calibrate` starts (not for use by hand).
    #[command(hide = true)]
    CalibrateTarget(crate::calibrate::target::TargetArgs),
    /// Parse and check a scenario file without running it.
    Validate(ScenarioArgs),
    /// Re-render report.md, junit.xml and index.html from a report.json (exit code from its
    /// gates).
    Report {
        /// Path to a report.json written by `dropzero run`.
        report: PathBuf,
    },
    /// Compare a candidate run with a base run (run directories or report.json files): per
    /// metric base / candidate / Δ / Δ% / verdict, and every gate. Writes compare.md,
    /// compare.json and compare.html (default: `<candidate dir>/compare-vs-<base run id>/`).
    /// Exit 2 when the runs are not comparable (other scenario, target kind or seed) unless
    /// `--force`; with `--fail-on-regression`, exit 1 on any regression.
    Compare(CompareArgs),
    /// Serve the ECS API (AWS JSON 1.1) over a local fleet, to rehearse an ECS scenario or
    /// point the AWS CLI/SDK at (`--endpoint-url`). Prints one JSON line with the addresses,
    /// runs until Ctrl-C, then stops every replica.
    EcsEmulator(EcsEmulatorArgs),
    /// Serve the reference SSE agent runtime.
    Runtime(dropzero_runtime::RuntimeArgs),
    /// Serve the mock LLM provider (Anthropic and OpenAI streaming APIs, with a billing ledger).
    MockLlm(dropzero_runtime::mock::MockArgs),
}

/// A scenario file plus the command-line overrides every scenario command accepts.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the scenario's time_scale (every duration is multiplied by it).
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Override any scenario value, e.g. `--set target.replicas=2 --set load.stages.0.users=10`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ScenarioArgs {
    fn overrides(&self) -> anyhow::Result<scenario::Overrides> {
        Ok(scenario::Overrides {
            seed: self.seed,
            time_scale: self.time_scale,
            set: self.set.clone(),
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Report directory (default `reports/out/<scenario>/<run-id>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run faults against an ECS service even though `target.service_arn` does not name it.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Concurrent sessions per replica to try, in order (default: 4, 8, 16, … up to
    /// `--max-level`). The sweep stops at the first level outside the SLO.
    #[arg(long, value_delimiter = ',')]
    pub levels: Option<Vec<u64>>,
    /// The last level of the default doubling sequence.
    #[arg(long, default_value_t = 256)]
    pub max_level: u64,
    /// Real-world length of each step, scaled by time_scale (default: 4 mean session
    /// lengths, at least 2 minutes).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub step_duration: Option<std::time::Duration>,
    /// Fraction of the knee to run at: target value = floor(knee × headroom).
    #[arg(long, default_value_t = 0.7)]
    pub headroom: f64,
    /// A level whose replica's peak RSS exceeds this breaks the SLO.
    #[arg(long)]
    pub max_rss_mb: Option<u64>,
    /// Peak arrival rate (real-world sessions per second): prints the tasks it needs.
    #[arg(long)]
    pub peak_rate: Option<f64>,
    /// Arrival rate before a sudden jump to `--peak-rate` (0: a jump from idle).
    #[arg(long, default_value_t = 0.0)]
    pub base_rate: f64,
    /// Load crosses the target → new tasks serve: 3 one-minute datapoints above target plus
    /// about a minute of task start and health checks (ECS target tracking, DESIGN §6).
    #[arg(long, default_value = "4m", value_parser = humantime::parse_duration)]
    pub scale_out_lag: std::time::Duration,
    /// Output directory (default `reports/out/<scenario>-capacity/<run-id>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Stream counts to try, in order (e.g. `1000,2000,5000,10000`); replaces
    /// `--start`/`--max`.
    #[arg(long, value_delimiter = ',')]
    pub streams: Option<Vec<u64>>,
    /// First stream count of the default doubling sweep.
    #[arg(long, default_value_t = 1000)]
    pub start: u64,
    /// Last stream count of the default doubling sweep.
    #[arg(long, default_value_t = 16000)]
    pub max: u64,
    /// Token events per second of every stream.
    #[arg(long, default_value_t = 10.0)]
    pub tokens_per_second: f64,
    /// Tokens per session (users start a new session when one ends).
    #[arg(long, default_value_t = 300)]
    pub session_tokens: u64,
    /// Measurement window of each step (after its ramp).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub step_duration: std::time::Duration,
    /// Ramp to each step's streams (default: 500 new streams per second, 1 s to 30 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ramp: Option<std::time::Duration>,
    /// Budget: p99 of the harness's own ITL error, |measured ITL − the gap at which the target
    /// wrote the two tokens|, in milliseconds (the target's lateness is reported beside it).
    #[arg(long, default_value_t = 1.0)]
    pub max_itl_error_ms: f64,
    /// Budget: CPU of the harness process (user + sys, all threads), in cores.
    #[arg(long, default_value_t = 0.9)]
    pub max_cpu: f64,
    /// Output directory (default `reports/out/calibrate/<run-id>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The base run (e.g. main's): a run directory or its report.json.
    pub base: PathBuf,
    /// The candidate run (e.g. the PR's): a run directory or its report.json.
    pub candidate: PathBuf,
    /// Where to write compare.md, compare.json, compare.html.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare runs of different scenarios, target kinds or seeds anyway.
    #[arg(long)]
    pub force: bool,
    /// Relative noise threshold for every metric, in percent (replaces the per-metric
    /// defaults; absolute floors stay, drops and data loss have no noise).
    #[arg(long, value_name = "PCT")]
    pub noise: Option<f64>,
    /// Exit 1 when any metric or gate regressed.
    #[arg(long)]
    pub fail_on_regression: bool,
}

#[derive(Debug, clap::Args)]
pub struct EcsEmulatorArgs {
    /// A scenario whose `[target]` is `kind = "local"`: the fleet behind the service.
    #[arg(long)]
    pub scenario: PathBuf,
    /// Port of the ECS API on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[arg(long, default_value = "dropzero")]
    pub cluster: String,
    #[arg(long, default_value = "agent-runtime")]
    pub service: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// The task definition family (the service starts on revision 1).
    #[arg(long, default_value = "agent-runtime")]
    pub family: String,
    /// The deployment circuit breaker.
    #[arg(long, value_enum, default_value_t = Breaker::Rollback)]
    pub circuit_breaker: Breaker,
    /// A task definition revision whose tasks exit at start (repeatable), to rehearse a
    /// failed deployment: `aws ecs update-service --task-definition <family>:<rev>`.
    #[arg(long = "broken-revision")]
    pub broken_revisions: Vec<u32>,
    /// Run directory for logs and the journal (default `reports/out/ecs-emulator/<run-id>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Breaker {
    Off,
    On,
    Rollback,
}

pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    // These two pin threads to CPUs before any runtime thread exists.
    match cli.command {
        Command::Calibrate(args) => return calibrate(args, cli.verbose),
        Command::CalibrateTarget(args) => {
            crate::calibrate::target::main(args)?;
            return Ok(ExitCode::from(EXIT_OK));
        }
        _ => {}
    }
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Command::Calibrate(_) | Command::CalibrateTarget(_) => {
            unreachable!("dispatched above")
        }
        Command::Run(args) => {
            crate::logs::init_run_logs(cli.verbose);
            crate::fdlimit::raise();
            let overrides = args.scenario.overrides()?;
            let opts = crate::run::RunOptions {
                scenario: args.scenario.scenario.clone(),
                out: args.out.clone(),
                overrides,
                exe: std::env::current_exe().context("locating the dropzero executable")?,
                yes: args.yes,
            };
            let outcome = rt.block_on(async {
                let interrupt = shutdown_on_signal();
                crate::run::run(opts, interrupt).await
            })?;
            print_summary(&outcome.report, &outcome.dir);
            if let Some(expect) = &outcome.expect {
                print_expectation(&outcome.report, expect);
            }
            let passed = dropzero_reports::all_passed(&outcome.report);
            return Ok(ExitCode::from(if passed {
                EXIT_OK
            } else {
                EXIT_GATE_FAILED
            }));
        }
        Command::Capacity(args) => {
            crate::logs::init_run_logs(cli.verbose);
            crate::fdlimit::raise();
            let opts = crate::capacity::CapacityOptions {
                scenario: args.scenario.scenario.clone(),
                overrides: args.scenario.overrides()?,
                out: args.out.clone(),
                exe: std::env::current_exe().context("locating the dropzero executable")?,
                levels: args.levels.clone(),
                max_level: args.max_level,
                step_duration: args.step_duration,
                headroom: args.headroom,
                max_rss_mb: args.max_rss_mb,
                peak_rate: args.peak_rate,
                base_rate: args.base_rate,
                scale_out_lag: args.scale_out_lag,
            };
            let outcome = rt.block_on(async {
                let interrupt = shutdown_on_signal();
                crate::capacity::run(opts, interrupt).await
            })?;
            print_capacity(&outcome.report, &outcome.dir);
            return Ok(ExitCode::from(if outcome.report.knee.is_some() {
                EXIT_OK
            } else {
                EXIT_GATE_FAILED
            }));
        }
        Command::Validate(args) => {
            let plan = scenario::load_with(&args.scenario, &args.overrides()?)?;
            println!(
                "{}: ok — scenario {:?}, {:?} wall-clock at time_scale {}",
                args.scenario.display(),
                plan.name,
                plan.duration,
                plan.time_scale
            );
        }
        Command::Report { report } => {
            let text = std::fs::read_to_string(&report)
                .with_context(|| format!("reading {}", report.display()))?;
            let parsed = dropzero_reports::parse_json(&text)
                .with_context(|| format!("parsing {}", report.display()))?;
            let dir = report.parent().unwrap_or(std::path::Path::new("."));
            let mut md = std::fs::File::create(dir.join("report.md"))?;
            dropzero_reports::render_markdown(&parsed, &mut md)?;
            let mut junit = std::fs::File::create(dir.join("junit.xml"))?;
            dropzero_reports::render_junit(&parsed, &mut junit)?;
            drop((md, junit));
            crate::build_report::write_index(&parsed, dir)?;
            dropzero_reports::render_markdown(&parsed, &mut std::io::stdout().lock())?;
            let passed = dropzero_reports::all_passed(&parsed);
            return Ok(ExitCode::from(if passed {
                EXIT_OK
            } else {
                EXIT_GATE_FAILED
            }));
        }
        Command::Compare(args) => {
            let outcome = crate::compare::run(&crate::compare::CompareOptions {
                base: args.base.clone(),
                candidate: args.candidate.clone(),
                out: args.out.clone(),
                force: args.force,
                noise_pct: args.noise,
            })?;
            dropzero_reports::render_compare_markdown(
                &outcome.comparison,
                &mut std::io::stdout().lock(),
            )?;
            println!("\ncompare: {}", outcome.dir.join("compare.html").display());
            let regressed = outcome.comparison.regressions > 0;
            return Ok(ExitCode::from(if regressed && args.fail_on_regression {
                EXIT_GATE_FAILED
            } else {
                EXIT_OK
            }));
        }
        Command::EcsEmulator(args) => {
            // A server run by hand: its log stays live (info) as well as in the file.
            crate::logs::init_run_logs(cli.verbose.max(1));
            crate::fdlimit::raise();
            rt.block_on(ecs_emulator(args))?;
        }
        Command::Runtime(args) => {
            init_json_logs();
            rt.block_on(async {
                let shutdown = shutdown_on_signal();
                dropzero_runtime::run(args, shutdown).await
            })?;
        }
        Command::MockLlm(args) => {
            init_json_logs();
            rt.block_on(async {
                let shutdown = shutdown_on_signal();
                dropzero_runtime::mock::run(args, shutdown).await
            })?;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// `dropzero calibrate`: pin, start a runtime on the harness's CPU, sweep, print the verdict.
fn calibrate(args: CalibrateArgs, verbose: u8) -> anyhow::Result<ExitCode> {
    crate::logs::init_run_logs(verbose);
    if !(args.max_itl_error_ms > 0.0 && args.max_itl_error_ms.is_finite()) {
        anyhow::bail!("--max-itl-error-ms must be above 0");
    }
    let streams = match &args.streams {
        Some(list) => list.clone(),
        None if args.start == 0 || args.max < args.start => {
            anyhow::bail!("--start must be above 0 and at most --max")
        }
        None => crate::calibrate::doubling(args.start, args.max),
    };
    let placement = crate::calibrate::place()?;
    // `available_parallelism` follows the pin: one worker on the harness's one CPU.
    let worker_threads = std::thread::available_parallelism().map_or(1, usize::from);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let opts = crate::calibrate::CalibrateOptions {
        streams,
        tokens_per_second: args.tokens_per_second,
        session_tokens: args.session_tokens,
        step_duration: args.step_duration,
        ramp: args.ramp,
        max_itl_error: std::time::Duration::from_secs_f64(args.max_itl_error_ms / 1e3),
        max_cpu: args.max_cpu,
        out: args.out.clone(),
        exe: std::env::current_exe().context("locating the dropzero executable")?,
        placement,
        worker_threads,
    };
    let outcome = rt.block_on(async {
        let interrupt = shutdown_on_signal();
        crate::calibrate::run(opts, interrupt).await
    })?;
    println!(
        "\n{}",
        crate::calibrate::report::verdict_line(&outcome.report)
    );
    println!("  report: {}", outcome.dir.join("calibrate.md").display());
    print_log_line(&outcome.dir);
    Ok(ExitCode::from(if outcome.report.verdict.is_some() {
        EXIT_OK
    } else {
        EXIT_GATE_FAILED
    }))
}

/// `dropzero ecs-emulator`: start, print the addresses, serve until a signal.
async fn ecs_emulator(args: EcsEmulatorArgs) -> anyhow::Result<()> {
    let interrupt = shutdown_on_signal();
    let plan = scenario::load(&args.scenario)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports/out/ecs-emulator").join(crate::run::run_id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::logs::attach(&dir).with_context(|| format!("creating the log in {}", dir.display()))?;
    let cfg = crate::ecs_emulator::EmulatorConfig {
        cluster: args.cluster.clone(),
        service: args.service.clone(),
        region: args.region.clone(),
        family: args.family.clone(),
        circuit_breaker: match args.circuit_breaker {
            Breaker::Off => None,
            Breaker::On => Some(crate::ecs_emulator::CircuitBreaker { rollback: false }),
            Breaker::Rollback => Some(crate::ecs_emulator::CircuitBreaker { rollback: true }),
        },
        broken_revisions: args.broken_revisions.clone(),
        ..Default::default()
    };
    let exe = std::env::current_exe().context("locating the dropzero executable")?;
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let emulator = tokio::select! {
        started = crate::ecs_emulator::from_scenario::start(&plan, cfg, &dir, &exe, listen) => started?,
        () = interrupt.cancelled() => return Ok(()),
    };
    let fleet = emulator.fleet();
    let line = serde_json::json!({
        "listening": emulator.endpoint_url().trim_start_matches("http://"),
        "cluster": args.cluster,
        "service": args.service,
        "region": args.region,
        "router": crate::fleet::Target::base_url(fleet),
        "llm": crate::fleet::Target::llm_url(fleet),
        "dir": dir.display().to_string(),
    });
    println!("{line}");
    interrupt.cancelled().await;
    emulator.shutdown().await;
    Ok(())
}

/// JSON logs on stderr, one object per line, filtered by `RUST_LOG` (default `info`).
/// Stdout stays free for the single `{"listening": ...}` line the fleet reads.
fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The gate table and where the report is, on stdout.
fn print_summary(report: &dropzero_reports::Report, dir: &std::path::Path) {
    println!(
        "\nscenario {} — {}",
        report.scenario.name,
        if dropzero_reports::all_passed(report) {
            "PASSED"
        } else {
            "FAILED"
        }
    );
    if let Some(why) = &report.halted {
        println!("  HALTED: {why} (faults and load stopped early)");
    }
    for g in &report.gates {
        let observed = g
            .observed
            .map_or_else(|| "n/a".to_string(), |v| format!("{v}"));
        println!(
            "  {} {:<22} observed {:>12}  limit {} {}",
            if g.passed { "ok  " } else { "FAIL" },
            g.name,
            observed,
            g.threshold,
            g.unit
        );
    }
    let s = &report.sessions;
    println!(
        "  sessions: {} started, {} completed, {} resumed, {} dropped, {} failed",
        s.started, s.completed, s.resumed, s.dropped, s.failed
    );
    println!("  report: {}", dir.join("report.md").display());
    print_log_line(dir);
}

/// Where the harness's log is, and whether it holds warnings worth a look.
fn print_log_line(dir: &std::path::Path) {
    crate::logs::flush();
    let path = dir.join(crate::logs::FILE_NAME);
    match crate::logs::warnings() {
        0 => println!("  log: {}", path.display()),
        n => println!(
            "  log: {} ({n} warnings; -v shows them live)",
            path.display()
        ),
    }
}

/// Whether the run reached the verdict its scenario is written for (a naive twin is meant
/// to fail); informational, the exit code stays the gates' verdict.
fn print_expectation(report: &dropzero_reports::Report, expect: &scenario::Expectation) {
    let failed: Vec<&str> = report
        .gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| g.name.as_str())
        .collect();
    let verdict = match expect.verdict {
        scenario::Verdict::Pass => "pass",
        scenario::Verdict::Fail => "fail",
    };
    match expect.check(&failed) {
        Ok(()) => println!("  as this scenario expects ([expect] verdict = {verdict:?})"),
        Err(why) => {
            println!("  NOT as this scenario expects ([expect] verdict = {verdict:?}): {why}")
        }
    }
}

/// The capacity verdict and where the files are, on stdout.
fn print_capacity(report: &dropzero_reports::CapacityReport, dir: &std::path::Path) {
    match (report.knee, &report.recommendation) {
        (Some(knee), Some(rec)) => {
            println!(
                "\ncapacity {}: knee {knee} concurrent sessions per task; target_value = {} (headroom {})",
                report.scenario, rec.target_value, rec.headroom
            );
            if let Some(p) = &rec.peak {
                println!(
                    "  peak {} sessions/s: {} tasks at the target; {} tasks ahead of a jump from {} sessions/s",
                    p.peak_rate_per_s,
                    p.tasks_at_peak,
                    p.tasks_ahead_of_jump
                        .map_or("n/a".to_string(), |n| n.to_string()),
                    p.base_rate_per_s
                );
            }
        }
        _ => println!(
            "\ncapacity {}: no level within the SLO (lowest tried: {})",
            report.scenario,
            report.levels.first().map_or(0, |l| l.level)
        ),
    }
    println!("  report: {}", dir.join("capacity.md").display());
    print_log_line(dir);
}

/// A token cancelled by the first SIGTERM or SIGINT. A second signal exits at once, so an
/// operator is never stuck behind a drain they did not want.
///
/// SIGINT goes through `ctrlc`, installed here before anything else runs: goose (closed
/// users) installs a `ctrlc` handler when an attack starts, which would otherwise replace
/// this one. The first `ctrlc` handler of a process wins, so goose's is refused and Ctrl-C
/// stays ours (goose stops its users through the run, see `load::goose`).
fn shutdown_on_signal() -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let fired = token.clone();
    let (int_tx, mut int) = tokio::sync::mpsc::unbounded_channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = int_tx.send(());
    }) {
        tracing::error!(error = %e, "cannot install the Ctrl-C handler");
    }
    tokio::spawn(async move {
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            tracing::error!("cannot install signal handlers; shutdown only by kill");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "shutdown requested"),
        }
        fired.cancel();
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    token
}
