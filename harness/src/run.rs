//! `dropzero run`: load a scenario, start its target, drive the load, sample the timeline,
//! stop on time (or on Ctrl-C, still writing what was measured), and write the report.
//!
//! This is orchestration only: how sessions are verified lives in `session`, when they
//! start in `load`, what a fleet is in `fleet`, and what a report says in `dropzero-reports`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::faults::FaultLog;
use crate::faults::driver::FaultCtx;
use crate::fleet::Target;
use crate::load::{self, mix::SessionPlan};
use crate::measure::hlog::IntervalLog;
use crate::measure::recorder::Recorder;
use crate::measure::timeline::Timeline;
use crate::measure::{Collector, Counters};
use crate::progress::Progress;
use crate::scenario::{self, ScenarioPlan};
use crate::session::{self, ClientConfig, SessionSpec};
use crate::{build_report, target_setup};

/// What `dropzero run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    pub out: Option<PathBuf>,
    pub overrides: scenario::Overrides,
    /// The executable that serves `runtime` and `mock-llm` (normally this one).
    pub exe: PathBuf,
    /// Act on an ECS service the scenario's `service_arn` does not name (`--yes`).
    pub yes: bool,
}

/// Where the report went and what it says.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub report: dropzero_reports::Report,
    /// The verdict the scenario says it is written to reach (`[expect]`).
    pub expect: Option<scenario::Expectation>,
}

/// Run a scenario end to end. `interrupt` is Ctrl-C: the run stops early, children are
/// killed, and the report is still written (marked as interrupted).
pub async fn run(opts: RunOptions, interrupt: CancellationToken) -> anyhow::Result<RunOutcome> {
    let plan = scenario::load_with(&opts.scenario, &opts.overrides)?;
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let run_id = run_id();
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports/out").join(&plan.name).join(&run_id));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::logs::attach(&dir).with_context(|| format!("creating the log in {}", dir.display()))?;
    tracing::info!(scenario = %plan.name, dir = %dir.display(), "run starting");

    let target = Arc::new(target_setup::start(&plan, &dir, &opts.exe).await?);
    if let Err(e) = target_setup::confirm(&plan, &target, opts.yes) {
        target.shutdown().await;
        return Err(e);
    }
    let result = drive(&plan, &target, &dir, &interrupt).await;
    let ledger = target_setup::ledger(&target).await;
    target.shutdown().await;
    let measured = result?;

    let report = build_report::build(build_report::Inputs {
        plan: &plan,
        run_id,
        started_at,
        measured: &measured,
        ledger: ledger.as_ref(),
        target: &target,
    });
    // The histogram files first: index.html, written last, links every file.
    build_report::write_histograms(&measured, &dir)?;
    build_report::write_all(&report, &dir)?;
    if let Some(e) = &measured.load.error {
        // The load engine itself could not run (goose refused its configuration): a harness
        // failure (exit 2), named, not "no session started".
        anyhow::bail!("the load engine failed: {e} (report in {})", dir.display());
    }
    if measured.load.sessions_launched == 0
        && !interrupt.is_cancelled()
        && measured.halted.is_none()
    {
        // Nothing was measured, so no gate can say anything about the target: the plan
        // itself is at fault, and that is a harness failure (exit 2), not a verdict.
        anyhow::bail!(
            "the load plan started no session: {} over {:?} wall-clock (report in {})",
            describe_load(&plan.load),
            plan.duration,
            dir.display()
        );
    }
    Ok(RunOutcome {
        dir,
        report,
        expect: plan.expect.clone(),
    })
}

/// One line on what the load plan asked for, for the "started no session" error.
fn describe_load(load: &scenario::LoadPlan) -> String {
    match load {
        scenario::LoadPlan::Closed(c) => format!(
            "closed users {:?}",
            c.stages.iter().map(|s| s.users).collect::<Vec<_>>()
        ),
        scenario::LoadPlan::Open(o) => format!(
            "open arrivals at {:?} sessions per wall-clock second",
            o.stages.iter().map(|s| s.rate).collect::<Vec<_>>()
        ),
    }
}

/// Everything measured during the run, handed to the report builder.
pub struct Measured {
    pub collector: Arc<Collector>,
    pub faults: Arc<FaultLog>,
    pub autoscale: Option<Arc<crate::autoscale::AutoscaleLog>>,
    /// When the load started (time zero of the report).
    pub start: Instant,
    pub timeline: Timeline,
    pub load: load::LoadSummary,
    pub errors: Vec<String>,
    /// Why a `[halt]` condition stopped the run early.
    pub halted: Option<String>,
    /// TTFT, ITL and resume per second, for `latency.hlog`.
    pub hlog: IntervalLog,
    /// Wall-clock time of `start`.
    pub started_wall: std::time::SystemTime,
}

/// Goose's own HTML report of the closed users, beside ours in the run directory.
pub const GOOSE_REPORT: &str = "goose.html";

/// Run `plan`'s load (and its fault timeline) against a started `target` for the plan's
/// duration, with live progress; in-flight sessions get [`target_setup::end_grace`] to finish.
/// `dropzero capacity` calls this once per step.
pub async fn drive(
    plan: &ScenarioPlan,
    target: &Arc<target_setup::AnyTarget>,
    dir: &std::path::Path,
    interrupt: &CancellationToken,
) -> anyhow::Result<Measured> {
    let collector = Arc::new(Collector::default());
    let start = Instant::now();
    // The longest a client can take to notice a dead stream: its idle timeout.
    let slack = plan.sessions.idle_timeout + Duration::from_secs(1);
    let faults = Arc::new(FaultLog::new(start.into_std(), slack));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .redirect(session::redirect_policy())
        .build()
        .context("building the HTTP client")?;
    let client_cfg = client_config(plan);
    let base_url = target.base_url();
    let api_key = target_setup::api_key(plan)?;

    let (records_tx, records_task) =
        crate::measure::recorder::spawn_writer(dir.join("sessions.jsonl"))?;
    let runner: load::Runner = {
        let collector = collector.clone();
        let faults = faults.clone();
        Arc::new(
            move |plan: SessionPlan, intended: Instant, cancel: CancellationToken| {
                let (collector, faults, client, cfg, base_url, api_key, records_tx) = (
                    collector.clone(),
                    faults.clone(),
                    client.clone(),
                    client_cfg.clone(),
                    base_url.clone(),
                    api_key.clone(),
                    records_tx.clone(),
                );
                Box::pin(async move {
                    let spec = SessionSpec {
                        base_url,
                        query: plan.query.clone(),
                        budget: plan.budget.clone(),
                        api_key,
                        idempotency_key: format!("dz-{}-{}", std::process::id(), plan.index),
                        intended_start: Some(intended.into_std()),
                    };
                    Counters::add(&collector.counters.started, 1);
                    collector.counters.active.fetch_add(1, Ordering::Relaxed);
                    let mut recorder =
                        Recorder::new(collector.clone(), plan.index, Some(faults.clone()));
                    let outcome =
                        session::run_session(&client, &spec, &cfg, &mut recorder, &cancel).await;
                    collector.counters.active.fetch_sub(1, Ordering::Relaxed);
                    let fault = faults.note_session(&outcome, std::time::Instant::now());
                    let record = collector.finish(&plan, &outcome, fault.map(|f| f.0));
                    let _ = records_tx.send(record);
                    recorder.requests
                })
            },
        )
    };

    let stop_new = interrupt.child_token();
    let hard_stop = interrupt.child_token();
    let model = target_setup::load_model(plan);
    let mix = target_setup::mix_config(plan);
    let load_task = {
        let tokens = (stop_new.clone(), hard_stop.clone());
        let goose_report = dir.join(GOOSE_REPORT);
        tokio::spawn(
            async move { load::drive(&model, &mix, runner, tokens, Some(&goose_report)).await },
        )
    };
    tokio::pin!(load_task);
    let faults_done = interrupt.child_token();
    let autoscale = match (&plan.autoscaling, target.as_ref()) {
        (Some(a), target_setup::AnyTarget::Local(fleet)) => {
            Some(Arc::new(crate::autoscale::AutoscaleLog::new(
                *a,
                plan.time_scale,
                start,
                u32::try_from(fleet.live_replicas().len()).unwrap_or(1),
            )))
        }
        _ => None,
    };
    let autoscale_task = autoscale.clone().map(|log| {
        tokio::spawn(crate::autoscale::run(
            target.clone(),
            log,
            faults_done.clone(),
        ))
    });
    let fault_task = tokio::spawn(crate::faults::driver::run(
        plan.faults.clone(),
        FaultCtx::new(plan, target.clone(), faults.clone()),
        start,
        faults_done.clone(),
    ));

    let grace = target_setup::end_grace(plan);
    let mut timeline = Timeline::new(start);
    let started_wall = std::time::SystemTime::now() - start.elapsed();
    let mut hlog = IntervalLog::default();
    let mut interval_start = Duration::ZERO;
    let mut progress = Progress::new(&plan.name, plan.duration);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut errors = Vec::new();
    let mut halted: Option<String> = None;
    let summary = loop {
        tokio::select! {
            res = &mut load_task => break res.unwrap_or_else(|e| {
                errors.push(format!("load engine failed: {e}"));
                load::LoadSummary::default()
            }),
            _ = tick.tick() => {
                let elapsed = start.elapsed();
                if elapsed >= plan.duration && !stop_new.is_cancelled() {
                    tracing::info!("duration reached; no new sessions, in-flight ones get {grace:?}");
                    stop_new.cancel();
                }
                if elapsed >= plan.duration + grace && !hard_stop.is_cancelled() {
                    errors.push(format!(
                        "{} sessions still running {grace:?} after the end were cancelled",
                        collector.counters.active.load(Ordering::Relaxed)
                    ));
                    hard_stop.cancel();
                }
                if halted.is_none()
                    && let Some(why) = plan.halt.and_then(|h| h.breached(halt_inputs(&collector.counters)))
                {
                    // Faults stop first (no new damage), then the load, at once: the point
                    // of a halt is to stop hurting a target that is already failing.
                    tracing::warn!(reason = %why, "halt condition: stopping faults and load");
                    faults_done.cancel();
                    stop_new.cancel();
                    hard_stop.cancel();
                    halted = Some(why);
                }
                let replicas = target.replicas();
                timeline.sample(&collector.counters, &replicas);
                if let target_setup::AnyTarget::Local(fleet) = target.as_ref() {
                    fleet.sample_rss();
                }
                let now = start.elapsed();
                let second = collector.close_window(&mut hlog, interval_start, now - interval_start);
                interval_start = now;
                if let Some(point) = timeline.points.last_mut() {
                    point.ttft_p99_ms = second.ttft_p99_ms;
                    point.itl_p99_ms = second.itl_p99_ms;
                    point.resume_p99_ms = second.resume_p99_ms;
                    point.resumes = second.resumes;
                    if let target_setup::AnyTarget::Ecs(ecs, _) = target.as_ref()
                        && let Some(service) = ecs.observed().service
                    {
                        point.desired_tasks = Some(service.desired);
                        point.running_tasks = Some(service.running);
                        // The clients' view of the scaling metric: their active sessions
                        // over the service's running tasks.
                        point.scaling_metric = (service.running > 0).then(|| {
                            point.active_sessions as f64 / f64::from(service.running)
                        });
                    }
                    if let Some(log) = &autoscale {
                        point.desired_tasks = Some(log.desired());
                        point.running_tasks = Some(
                            replicas
                                .iter()
                                .filter(|r| r.state != crate::fleet::ReplicaState::Stopped)
                                .count() as u32,
                        );
                        point.scaling_metric = log.metric_now();
                    }
                    progress.update(elapsed, &collector.counters, point);
                }
            }
        }
    };
    if let Some(e) = &summary.error {
        errors.push(format!("load engine: {e}"));
    }
    progress.finish(&collector.counters);
    // The replicas' last memory readings, before the target is shut down.
    if let target_setup::AnyTarget::Local(fleet) = target.as_ref() {
        fleet.sample_rss();
    }
    // The samples of the end grace's last partial second.
    let now = start.elapsed();
    collector.close_window(
        &mut hlog,
        interval_start,
        now.saturating_sub(interval_start),
    );
    faults_done.cancel();
    let _ = fault_task.await;
    if let Some(task) = autoscale_task {
        let _ = task.await;
    }
    records_tx_guard(records_task).await;
    if interrupt.is_cancelled() {
        errors.push("run interrupted (Ctrl-C): results cover the part that ran".into());
    }
    Ok(Measured {
        collector,
        faults,
        autoscale,
        start,
        timeline,
        load: summary,
        errors,
        halted,
        hlog,
        started_wall,
    })
}

fn halt_inputs(c: &Counters) -> scenario::HaltInputs {
    let dropped = Counters::get(&c.dropped);
    let failed = Counters::get(&c.failed);
    scenario::HaltInputs {
        dropped,
        failed,
        finished: Counters::get(&c.completed) + Counters::get(&c.resumed) + dropped + failed,
        data_loss: Counters::get(&c.lost_events)
            + Counters::get(&c.duplicated_events)
            + Counters::get(&c.content_mismatches),
    }
}

/// Wait for the `sessions.jsonl` writer to flush (every sender is gone once the load ends).
async fn records_tx_guard(task: tokio::task::JoinHandle<()>) {
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

fn client_config(plan: &ScenarioPlan) -> ClientConfig {
    let s = &plan.sessions;
    ClientConfig {
        idle_timeout: s.idle_timeout,
        resume: session::ResumePolicy {
            max_retries: s.resume.max_retries,
            backoff_initial: s.resume.backoff_initial,
            backoff_max: s.resume.backoff_max,
            retry_hint: s.resume.retry_hint,
            ..session::ResumePolicy::default()
        },
        deadline: target_setup::session_deadline(plan),
        ..ClientConfig::default()
    }
}

/// `20261122T051502Z-1a2b`: sortable, unique enough for one machine.
pub(crate) fn run_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{compact}-{:04x}", std::process::id() & 0xffff)
}
