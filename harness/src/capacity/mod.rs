//! `dropzero capacity`: how many concurrent sessions one task holds inside the latency SLO.
//!
//! A sweep of steps, each a bounded run of the scenario's session mix and LLM profile
//! against **one** local replica with no faults and no autoscaling, under the **open** model
//! (arrivals scheduled from the start, no coordinated omission) at the rate that holds
//! `level` sessions on average (Little's law, [`plan::arrival_rate`]). Levels rise until one
//! breaks the SLO (`gates.ttft_p99`, `gates.itl_p99`, `--max-rss-mb`, or any drop or failed
//! session); the last level before it is the knee, and the knee gives the autoscaling
//! target value ([`plan::recommend`]).
//!
//! Each step starts a **fresh fleet** (mock LLM + one replica + router, about a second on
//! loopback) so steps are independent: no journal, connection pool or allocator state
//! carries over, and the replica's peak RSS (`VmHWM`) is the step's own.
//!
//! A step *is* `run::drive` — the same load engine, session clients and collector as
//! `dropzero run` — on a plan rewritten by [`step_plan`]. Not here: the arithmetic (`plan.rs`),
//! the report model and renderers (`dropzero_reports::capacity`).

pub mod plan;
pub(crate) mod rss;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dropzero_reports as r;
use tokio_util::sync::CancellationToken;

use crate::fleet::Target;
use crate::run::Measured;
use crate::scenario::{self, ScenarioPlan};
use crate::target_setup::{self, AnyTarget};

/// What `dropzero capacity` was asked to do. Durations and rates are real-world (scaled by
/// the scenario's `time_scale` like everything else, except the latency SLO).
#[derive(Debug, Clone)]
pub struct CapacityOptions {
    pub scenario: PathBuf,
    pub overrides: scenario::Overrides,
    pub out: Option<PathBuf>,
    pub exe: PathBuf,
    /// `None`: [`plan::doubling_levels`] from 4 to `max_level`.
    pub levels: Option<Vec<u64>>,
    pub max_level: u64,
    /// `None`: four mean session lengths, at least two minutes.
    pub step_duration: Option<Duration>,
    pub headroom: f64,
    pub max_rss_mb: Option<u64>,
    pub peak_rate: Option<f64>,
    pub base_rate: f64,
    pub scale_out_lag: Duration,
}

/// Where the sweep went and what it found.
#[derive(Debug)]
pub struct CapacityOutcome {
    pub dir: PathBuf,
    pub report: r::CapacityReport,
}

/// Run the sweep and write `capacity.json`, `capacity.md`, `junit.xml`. Ctrl-C
/// (`interrupt`) stops the current step (its children are killed); the steps that finished
/// are still written, with `interrupted = true`.
pub async fn run(
    opts: CapacityOptions,
    interrupt: CancellationToken,
) -> anyhow::Result<CapacityOutcome> {
    anyhow::ensure!(
        opts.headroom > 0.0 && opts.headroom <= 1.0,
        "--headroom must be in (0, 1], got {}",
        opts.headroom
    );
    let base = scenario::load_with(&opts.scenario, &opts.overrides)?;
    let scenario::TargetPlan::Local(local) = &base.target else {
        anyhow::bail!(
            "{}: dropzero capacity needs target.kind = \"local\" (it starts one replica per step)",
            base.file.display()
        );
    };
    let mix = target_setup::mix_config(&base);
    let mean_wall = plan::lognormal_mean(mix.length_median, mix.length_p99);
    let step_real = opts
        .step_duration
        .unwrap_or_else(|| (base.to_real(mean_wall) * 4).max(Duration::from_secs(120)));
    let step_wall = step_real.mul_f64(base.time_scale);
    let levels = match &opts.levels {
        Some(l) if !l.is_empty() => l.clone(),
        _ => plan::doubling_levels(4, opts.max_level),
    };
    anyhow::ensure!(levels.iter().all(|&l| l >= 1), "--levels must all be >= 1");
    let slo = plan::Slo {
        ttft_p99: base.gates.iter().find_map(|g| match g {
            scenario::Gate::TtftP99(d) => Some(*d),
            _ => None,
        }),
        itl_p99: base.gates.iter().find_map(|g| match g {
            scenario::Gate::ItlP99(d) => Some(*d),
            _ => None,
        }),
        max_rss_mb: opts.max_rss_mb,
    };
    if slo.ttft_p99.is_none() && slo.itl_p99.is_none() && slo.max_rss_mb.is_none() {
        tracing::warn!(
            "no ttft_p99, itl_p99 or --max-rss-mb: only drops and failures end the sweep"
        );
    }

    let run_id = crate::run::run_id();
    let dir = opts.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports/out")
            .join(format!("{}-capacity", base.name))
            .join(&run_id)
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::logs::attach(&dir).with_context(|| format!("creating the log in {}", dir.display()))?;
    let mut report = r::CapacityReport {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id,
        started_at: now(),
        scenario: base.name.clone(),
        scenario_file: base.file.display().to_string(),
        seed: base.seed,
        time_scale: base.time_scale,
        mode: format!("{:?}", local.mode).to_lowercase(),
        step_duration_s: step_real.as_secs_f64(),
        mean_session_s: base.to_real(mean_wall).as_secs_f64(),
        slo: r::Slo {
            ttft_p99_ms: slo.ttft_p99.map(|d| d.as_secs_f64() * 1e3),
            itl_p99_ms: slo.itl_p99.map(|d| d.as_secs_f64() * 1e3),
            max_rss_mb: slo.max_rss_mb,
        },
        ..r::CapacityReport::default()
    };
    eprintln!(
        "capacity sweep of {}: one {} replica, levels {levels:?}, steps of {step_wall:?} wall \
         ({step_real:?} real), mean session {:?} real",
        base.name,
        report.mode,
        base.to_real(mean_wall)
    );

    // Little's law needs the mean time a session occupies the replica. The mix's planned
    // length leaves out the LLM's real-time overhead (planner call, TTFTs), so after each
    // step the measured mean session duration, when longer, calibrates the next step's rate.
    let mut occupancy_wall = mean_wall;
    for &level in &levels {
        let rate_wall = plan::arrival_rate(level, occupancy_wall);
        let step = step_plan(&base, level, rate_wall, step_wall);
        let step_dir = dir.join(format!("level-{level:04}"));
        std::fs::create_dir_all(&step_dir)
            .with_context(|| format!("creating {}", step_dir.display()))?;
        let measured = run_step(&step, &step_dir, &opts.exe, &interrupt).await?;
        if interrupt.is_cancelled() {
            report.interrupted = true;
            report.errors.push(format!(
                "level {level} interrupted (Ctrl-C) before its step ended: not counted"
            ));
            break;
        }
        let (m, peak_rss_mb) = measured;
        let measured_mean = m.collector.merged().session.mean();
        let mut result = level_result(
            level,
            rate_wall * base.time_scale,
            occupancy_wall,
            step_wall,
            &m,
        );
        if measured_mean.is_finite() && measured_mean > 0.0 {
            occupancy_wall = occupancy_wall.max(Duration::from_secs_f64(measured_mean / 1e6));
        }
        result.peak_rss_mb = peak_rss_mb;
        result.violations = plan::violations(&result, &slo);
        result.within_slo = result.violations.is_empty();
        report
            .errors
            .extend(m.errors.iter().map(|e| format!("level {level}: {e}")));
        eprintln!("{}", level_line(&result));
        let stop = !result.within_slo;
        report.levels.push(result);
        if stop {
            break;
        }
    }

    report.knee = plan::knee(&report.levels);
    report.recommendation = report.knee.map(|knee| {
        plan::recommend(
            knee,
            &plan::Sizing {
                headroom: opts.headroom,
                mean_session: base.to_real(mean_wall),
                scale_out_lag: opts.scale_out_lag,
                peak_rate: opts.peak_rate,
                base_rate: opts.base_rate,
            },
        )
    });
    report.finished_at = now();
    write_all(&report, &dir)?;
    Ok(CapacityOutcome { dir, report })
}

/// The scenario rewritten for one step: one replica, no faults (neither on the timeline nor
/// in the LLM profile), no autoscaling, open arrivals at `rate_wall` for `step_wall`
/// (Poisson unless the scenario's own open load says `constant`).
pub fn step_plan(
    base: &ScenarioPlan,
    level: u64,
    rate_wall: f64,
    step_wall: Duration,
) -> ScenarioPlan {
    let mut p = base.clone();
    p.name = format!("{}-L{level}", base.name);
    if let scenario::TargetPlan::Local(l) = &mut p.target {
        l.replicas = 1;
    }
    let arrival = match &base.load {
        scenario::LoadPlan::Open(o) => o.arrival,
        scenario::LoadPlan::Closed(_) => scenario::Arrival::Poisson,
    };
    p.load = scenario::LoadPlan::Open(scenario::OpenLoad {
        stages: vec![scenario::RateStage {
            rate: rate_wall,
            ramp: Duration::ZERO,
            hold: step_wall,
        }],
        arrival,
    });
    p.duration = step_wall;
    p.real_duration = base.to_real(step_wall);
    p.faults.clear();
    p.llm.faults = scenario::LlmFaults::default();
    p.autoscaling = None;
    p
}

/// One step on a fresh fleet: start, drive, sample the replica's RSS, shut down (always).
async fn run_step(
    plan: &ScenarioPlan,
    dir: &Path,
    exe: &Path,
    interrupt: &CancellationToken,
) -> anyhow::Result<(Measured, Option<u64>)> {
    let target = Arc::new(target_setup::start(plan, dir, exe).await?);
    let pid = match target.as_ref() {
        AnyTarget::Local(fleet) => fleet.live_replicas().first().map(|r| r.child.pid()),
        AnyTarget::Url(_) | AnyTarget::Ecs(..) => None,
    };
    let sampler_stop = CancellationToken::new();
    let sampler = pid.map(|pid| tokio::spawn(rss::peak_mb(pid, sampler_stop.clone())));
    let result = crate::run::drive(plan, &target, dir, interrupt).await;
    sampler_stop.cancel();
    let peak = match sampler {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    target.shutdown().await;
    let measured = result?;
    crate::build_report::write_histograms(&measured, dir)?;
    Ok((measured, peak))
}

/// A level's numbers from a step's measurements.
fn level_result(
    level: u64,
    rate_real: f64,
    mean_wall: Duration,
    step_wall: Duration,
    m: &Measured,
) -> r::LevelResult {
    use crate::measure::Counters;
    let c = &m.collector.counters;
    let h = m.collector.merged();
    let q = |h: &hdrhistogram::Histogram<u64>, q: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1e3
        }
    };
    r::LevelResult {
        level,
        arrival_rate_per_s: rate_real,
        achieved_concurrency: achieved_concurrency(&m.timeline.points, mean_wall, step_wall),
        sessions: Counters::get(&c.started),
        completed: Counters::get(&c.completed) + Counters::get(&c.resumed),
        dropped: Counters::get(&c.dropped),
        failed: Counters::get(&c.failed),
        ttft_p50_ms: q(&h.ttft, 0.5),
        ttft_p99_ms: q(&h.ttft, 0.99),
        itl_p50_ms: q(&h.itl, 0.5),
        itl_p99_ms: q(&h.itl, 0.99),
        ..r::LevelResult::default()
    }
}

/// Mean active sessions over the steady part of a step: after the first mean session length
/// (the open model fills up from zero) and until the arrivals stop. Falls back to every
/// point when the step was too short to have a steady part.
fn achieved_concurrency(
    points: &[r::TimelinePoint],
    warmup: Duration,
    arrivals_end: Duration,
) -> f64 {
    let (from, to) = (warmup.as_secs_f64(), arrivals_end.as_secs_f64());
    let steady: Vec<u64> = points
        .iter()
        .filter(|p| p.t_s >= from && p.t_s <= to)
        .map(|p| p.active_sessions)
        .collect();
    let pick: Vec<u64> = if steady.is_empty() {
        points.iter().map(|p| p.active_sessions).collect()
    } else {
        steady
    };
    if pick.is_empty() {
        0.0
    } else {
        pick.iter().sum::<u64>() as f64 / pick.len() as f64
    }
}

fn level_line(l: &r::LevelResult) -> String {
    format!(
        "level {:>4}: achieved {:>6.1} | {:>5} sessions | TTFT p50 {:>6.0} p99 {:>6.0} ms | ITL p50 {:>5.1} p99 {:>6.1} ms | dropped {} failed {} | RSS {} | {}",
        l.level,
        l.achieved_concurrency,
        l.sessions,
        l.ttft_p50_ms,
        l.ttft_p99_ms,
        l.itl_p50_ms,
        l.itl_p99_ms,
        l.dropped,
        l.failed,
        l.peak_rss_mb
            .map_or("n/a".to_string(), |m| format!("{m} MB")),
        if l.within_slo {
            "within SLO".to_string()
        } else {
            format!("OUTSIDE SLO: {}", l.violations.join("; "))
        }
    )
}

/// `capacity.json`, `capacity.md`, `junit.xml`, then `index.html` into `dir`.
pub fn write_all(report: &r::CapacityReport, dir: &Path) -> anyhow::Result<()> {
    let open = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let path = dir.join(name);
        let f =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(std::io::BufWriter::new(f))
    };
    r::render_capacity_json(report, &mut open("capacity.json")?)?;
    r::render_capacity_markdown(report, &mut open("capacity.md")?)?;
    r::render_capacity_junit(report, &mut open("junit.xml")?)?;
    // Last, so it links every other file of the sweep (per-level directories included).
    let names = crate::artefacts::list(dir)?;
    let mut index = open("index.html")?;
    r::render_capacity_html(report, &names, &mut index)?;
    std::io::Write::flush(&mut index).context("writing index.html")?;
    Ok(())
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_s: f64, active_sessions: u64) -> r::TimelinePoint {
        r::TimelinePoint {
            t_s,
            active_sessions,
            ..r::TimelinePoint::default()
        }
    }

    #[test]
    fn achieved_concurrency_skips_fill_and_drain() {
        // Fill over 2 s, hold 8 until the arrivals stop at 7 s, then drain.
        let pts: Vec<_> = [0, 8, 8, 8, 8, 8, 8, 2, 0]
            .iter()
            .enumerate()
            .map(|(i, &a)| point(i as f64 + 1.0, a))
            .collect();
        let s = Duration::from_secs;
        assert_eq!(achieved_concurrency(&pts, s(2), s(7)), 8.0);
        // Too short for a steady part: every point counts.
        assert_eq!(achieved_concurrency(&pts[..1], s(2), s(7)), 0.0);
        assert_eq!(achieved_concurrency(&[], s(2), s(7)), 0.0);
    }
}
