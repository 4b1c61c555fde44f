//! Runs the fault timeline: each fault starts at its `at` (from the run start) in its own
//! task, so a brownout window can overlap a deploy, and each opens and closes an entry in
//! the [`FaultLog`]. Faults still running when the run ends are aborted and reported as
//! still running.
//!
//! Kills and OOMs are followed by what the ECS service scheduler does: replacement tasks of
//! the current version start until the desired count runs again.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use rand::SeedableRng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::stop::{How, stop_replica};
use super::{FaultId, FaultLog};
use super::{deploy, ecs};
use crate::fleet::Target;
use crate::fleet::local::{LocalFleet, Replica};
use crate::fleet::router::{FaultEffect, NetworkFault as RouterFault};
use crate::scenario::{
    BrownoutFault, CommandFault, FaultAction, FaultPlan, JournalKillFault, JournalOutageFault,
    KillFault, KillSignal, KillWho, NetworkFault, OutageFault, ScenarioPlan, TargetPlan,
};
use crate::target_setup::AnyTarget;
use dropzero_reports as r;

/// Most output kept from a `command` hook, per stream.
const MAX_HOOK_OUTPUT: usize = 2048;

/// Everything a fault needs to run.
#[derive(Clone)]
pub struct FaultCtx {
    pub target: Arc<AnyTarget>,
    pub log: Arc<FaultLog>,
    pub seed: u64,
    /// `(minimum_healthy_percent, maximum_percent)` for deploys.
    pub deployment: (u32, u32),
    /// The scenario's name, for the reasons ECS records (`StopTask`).
    pub scenario: String,
    /// ECS: `(max_stopped, deploy_timeout)`.
    pub ecs_limits: (u32, Duration),
}

impl FaultCtx {
    pub fn new(plan: &ScenarioPlan, target: Arc<AnyTarget>, log: Arc<FaultLog>) -> FaultCtx {
        let deployment = match &plan.target {
            TargetPlan::Local(l) => (
                l.deployment.minimum_healthy_percent,
                l.deployment.maximum_percent,
            ),
            _ => (100, 200),
        };
        let ecs_limits = match &plan.target {
            TargetPlan::Ecs(e) => (e.max_stopped, e.deploy_timeout),
            _ => (1, Duration::from_secs(1800)),
        };
        FaultCtx {
            target,
            log,
            seed: plan.seed,
            deployment,
            scenario: plan.name.clone(),
            ecs_limits,
        }
    }
}

/// Run every fault at its time; returns when all have finished or `cancel` fires (then the
/// unfinished ones are aborted).
pub async fn run(faults: Vec<FaultPlan>, ctx: FaultCtx, start: Instant, cancel: CancellationToken) {
    let mut tasks = Vec::new();
    for (index, fault) in faults.into_iter().enumerate() {
        tokio::select! {
            _ = tokio::time::sleep_until(start + fault.at) => {}
            _ = cancel.cancelled() => break,
        }
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(
            async move { execute(index, fault, &ctx).await },
        ));
    }
    let all = join_all(tasks.iter_mut());
    tokio::select! {
        _ = all => {}
        _ = cancel.cancelled() => {
            for t in &tasks {
                t.abort();
            }
        }
    }
}

async fn execute(index: usize, fault: FaultPlan, ctx: &FaultCtx) {
    let log = &ctx.log;
    let action = fault.action.name();
    let id = log.begin(action, fault.at, params(&fault.action), Vec::new());
    if let Some(repeat) = fault.repeat {
        log.update(id, |e| {
            e.repeat = Some(r::FaultRepeat {
                entry: u32::try_from(repeat.entry).unwrap_or(u32::MAX),
                index: repeat.index,
                times: repeat.times,
                every_s: repeat.every.as_secs_f64(),
            })
        });
    }
    tracing::info!(fault = index, action, repeat = ?fault.repeat.map(|r| r.index), "fault starting");
    let seed = fault_seed(ctx.seed, index);
    let result: Result<(), String> = match (&fault.action, ctx.target.as_ref()) {
        (FaultAction::Deploy(d), AnyTarget::Local(fleet)) => {
            deploy::rolling(fleet, log, id, &d.version, ctx.deployment).await
        }
        (FaultAction::Kill(k), AnyTarget::Local(fleet)) => kill(fleet, log, id, k, seed).await,
        (FaultAction::Oom(o), AnyTarget::Local(fleet)) => {
            let live = fleet.live_replicas();
            let victim = pick(&live, o.replica, seed);
            stop_and_replace(fleet, log, id, victim.into_iter().collect(), How::Oom).await
        }
        (FaultAction::Deploy(d), AnyTarget::Ecs(target, _)) => {
            ecs::deploy(&ecs_ctx(ctx, target, id, index, action), d).await
        }
        (FaultAction::Kill(k), AnyTarget::Ecs(target, _)) => {
            ecs::kill(&ecs_ctx(ctx, target, id, index, action), k, seed).await
        }
        (FaultAction::LlmBrownout(b), target) => brownout(target, b).await,
        (FaultAction::LlmOutage(o), target) => outage(target, o).await,
        (FaultAction::Network(n), AnyTarget::Local(fleet)) => {
            network(fleet, n, seed).await;
            Ok(())
        }
        (FaultAction::Command(c), target) => command(target, log, id, c).await,
        (FaultAction::JournalKill(k), AnyTarget::Local(fleet)) => {
            journal_kill(fleet, log, id, k).await
        }
        (FaultAction::JournalOutage(o), AnyTarget::Local(fleet)) => {
            journal_outage(fleet, log, id, o).await
        }
        (action, target) => Err(format!(
            "{} is not supported by the {} target",
            action.name(),
            target.kind()
        )),
    };
    if let Err(e) = result {
        tracing::warn!(fault = index, action, error = %e, "fault did not complete");
        log.note(id, format!("did not complete: {e}"));
        log.update(id, |e| e.incomplete = true);
    }
    log.end(id);
    tracing::info!(fault = index, action, "fault ended");
}

/// The seed of the fault at `index` in the timeline (sorted by time): its own, so each
/// repetition of a repeated kill picks its own victim, and the same for every run of a seed.
fn fault_seed(run_seed: u64, index: usize) -> u64 {
    run_seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn ecs_ctx<'a>(
    ctx: &'a FaultCtx,
    target: &'a crate::fleet::ecs::EcsTarget,
    id: FaultId,
    index: usize,
    action: &str,
) -> ecs::EcsFaultCtx<'a> {
    ecs::EcsFaultCtx {
        target,
        log: &ctx.log,
        id,
        label: format!(
            "dropzero: scenario {}, fault {index} ({action})",
            ctx.scenario
        ),
        max_stopped: ctx.ecs_limits.0,
        deadline: ctx.ecs_limits.1,
    }
}

/// The fault's parameters for the report, as the harness applied them (wall-clock times).
fn params(action: &FaultAction) -> serde_json::Value {
    let ms = |d: Duration| d.as_millis() as u64;
    match action {
        FaultAction::Deploy(d) => {
            json!({"version": d.version, "task_definition": d.task_definition})
        }
        FaultAction::Kill(k) => {
            let who = match &k.who {
                KillWho::Count(n) => json!({"count": n}),
                KillWho::Percent(p) => json!({"percent": p}),
                KillWho::Replica(r) => json!({"replica": r}),
                KillWho::Task(t) => json!({"task": t}),
            };
            let signal = match k.signal {
                KillSignal::Term { timeout } => {
                    json!({"signal": "SIGTERM", "timeout_ms": ms(timeout)})
                }
                KillSignal::Kill => json!({"signal": "SIGKILL"}),
            };
            json!({"who": who, "signal": signal})
        }
        FaultAction::Oom(o) => json!({"replica": o.replica}),
        FaultAction::LlmBrownout(b) => json!({
            "duration_ms": ms(b.duration),
            "rate_limit": b.faults.rate_limit,
            "overloaded": b.faults.overloaded,
            "server_error": b.faults.server_error,
            "extra_latency_ms": ms(b.faults.extra_latency),
            "cut_after_tokens": b.faults.cut_after_tokens,
            "stall_ms": b.faults.stall.map(ms),
        }),
        FaultAction::LlmOutage(o) => json!({"duration_ms": ms(o.duration)}),
        FaultAction::Network(n) => json!({
            "duration_ms": ms(n.duration),
            "fraction": n.fraction,
            "latency_ms": n.latency.map(ms),
            "reset": n.reset,
            "stall_ms": n.stall.map(ms),
        }),
        FaultAction::Command(c) => json!({"run": c.run, "timeout_ms": ms(c.timeout)}),
        FaultAction::JournalKill(k) => json!({"signal": "SIGKILL", "down_ms": ms(k.down)}),
        FaultAction::JournalOutage(o) => json!({"duration_ms": ms(o.duration)}),
    }
}

/// The replica a fault names (index among the live replicas, in start order), or one chosen
/// by the seed.
fn pick(live: &[Arc<Replica>], index: Option<u32>, seed: u64) -> Option<Arc<Replica>> {
    match index {
        Some(i) => live.get(i as usize).cloned(),
        None => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            live.choose(&mut rng).cloned()
        }
    }
}

async fn kill(
    fleet: &LocalFleet,
    log: &FaultLog,
    id: FaultId,
    k: &KillFault,
    seed: u64,
) -> Result<(), String> {
    let mut live = fleet.live_replicas();
    let victims: Vec<Arc<Replica>> = match &k.who {
        KillWho::Replica(i) => pick(&live, Some(*i), seed).into_iter().collect(),
        KillWho::Count(n) => {
            live.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            live.into_iter().take(*n as usize).collect()
        }
        KillWho::Percent(p) => {
            let n = (live.len() * *p as usize).div_ceil(100);
            live.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            live.into_iter().take(n).collect()
        }
        KillWho::Task(t) => {
            return Err(format!(
                "task = {t:?} names an ECS task; a local kill names a replica"
            ));
        }
    };
    let how = match k.signal {
        KillSignal::Term { timeout } => How::Term { timeout },
        KillSignal::Kill => How::Kill,
    };
    stop_and_replace(fleet, log, id, victims, how).await
}

/// Stop `victims` at once, then start replacements until as many replicas run as before.
async fn stop_and_replace(
    fleet: &LocalFleet,
    log: &FaultLog,
    id: FaultId,
    victims: Vec<Arc<Replica>>,
    how: How,
) -> Result<(), String> {
    if victims.is_empty() {
        return Err("no live replica to act on".into());
    }
    let desired = fleet.live_replicas().len();
    let victims: Vec<Arc<Replica>> = victims.into_iter().filter(|r| r.claim_for_stop()).collect();
    log.update(id, |e| {
        e.replicas = victims.iter().map(|r| r.id.clone()).collect()
    });
    let stops = join_all(victims.iter().map(|r| stop_replica(fleet, r, how))).await;
    log.update(id, |e| e.stops.extend(stops));
    // The ECS service scheduler replaces stopped tasks to keep the desired count.
    let mut started = Vec::new();
    while fleet.live_replicas().len() < desired {
        let replica = fleet.start_replica().await.map_err(|e| e.to_string())?;
        log.update(id, |e| e.started_replicas.push(replica.id.clone()));
        started.push(replica.id.clone());
    }
    fleet
        .wait_healthy(&started, fleet.config().ready_timeout)
        .await
        .map_err(|e| format!("replacements {started:?}: {e}"))
}

async fn brownout(target: &AnyTarget, b: &BrownoutFault) -> Result<(), String> {
    let llm = target
        .llm_url()
        .ok_or("llm_brownout needs a target with the mock LLM")?;
    let f = &b.faults;
    let mut spec = json!({
        "rate_limit": f.rate_limit,
        "overloaded": f.overloaded,
        "server_error": f.server_error,
        "extra_latency_ms": f.extra_latency.as_millis() as u64,
        "duration_ms": b.duration.as_millis() as u64,
    });
    if let Some(n) = f.cut_after_tokens {
        spec["cut_after_tokens"] = json!(n);
    }
    if let Some(stall) = f.stall {
        spec["stall"] = json!({"after_tokens": 5, "duration_ms": stall.as_millis() as u64});
    }
    let resp = reqwest::Client::new()
        .post(format!("{llm}/mock/faults"))
        .json(&spec)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("POST /mock/faults: {e}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        return Err(format!("POST /mock/faults answered {status}: {body}"));
    }
    // The mock ends the window by itself (`duration_ms`); the entry stays open as long.
    tokio::time::sleep(b.duration).await;
    Ok(())
}

/// The mock LLM refuses every connection for the window (`POST /mock/outage`); it comes
/// back by itself, on the same port, with its ledger.
async fn outage(target: &AnyTarget, o: &OutageFault) -> Result<(), String> {
    let llm = target
        .llm_url()
        .ok_or("llm_outage needs a target with the mock LLM")?;
    let resp = reqwest::Client::new()
        .post(format!("{llm}/mock/outage"))
        .json(&json!({"duration_ms": o.duration.as_millis() as u64}))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("POST /mock/outage: {e}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        return Err(format!("POST /mock/outage answered {status}: {body}"));
    }
    tokio::time::sleep(o.duration).await;
    Ok(())
}

async fn network(fleet: &LocalFleet, n: &NetworkFault, seed: u64) {
    let effect = if n.reset {
        FaultEffect::Reset
    } else if let Some(duration) = n.stall {
        FaultEffect::Stall { duration }
    } else {
        FaultEffect::Latency {
            per_chunk: n.latency.unwrap_or_default(),
        }
    };
    fleet.router().set_network_fault(Some(RouterFault {
        fraction: n.fraction,
        seed,
        effect,
    }));
    tokio::time::sleep(n.duration).await;
    fleet.router().set_network_fault(None);
}

/// SIGKILL the run's `redis-server`, wait `down`, start it again on the same port from its
/// own files. The notes say what was killed and how long the restart took.
async fn journal_kill(
    fleet: &LocalFleet,
    log: &FaultLog,
    id: FaultId,
    k: &JournalKillFault,
) -> Result<(), String> {
    let server = fleet
        .journal_server()
        .ok_or("journal_kill needs the harness's own redis-server (journal = \"redis\")")?;
    let pid = server.kill().await?;
    log.note(id, format!("redis-server (pid {pid}) killed with SIGKILL"));
    tokio::time::sleep(k.down).await;
    let started = Instant::now();
    let pid = server.restart().await?;
    log.note(
        id,
        format!(
            "redis-server restarted (pid {pid}) on the same port and files; accepting connections after {} ms",
            started.elapsed().as_millis()
        ),
    );
    Ok(())
}

/// Close the journal's gate for the window: connections cut, new ones refused, data intact.
async fn journal_outage(
    fleet: &LocalFleet,
    log: &FaultLog,
    id: FaultId,
    o: &JournalOutageFault,
) -> Result<(), String> {
    let server = fleet
        .journal_server()
        .ok_or("journal_outage needs the harness's own redis-server (journal = \"redis\")")?;
    server.set_reachable(false)?;
    log.note(id, "journal unreachable: connections cut, new ones refused");
    tokio::time::sleep(o.duration).await;
    server.set_reachable(true)?;
    log.note(id, "journal reachable again");
    Ok(())
}

/// Run a shell hook with `DROPZERO_TARGET_URL` (and `DROPZERO_LLM_URL`) set; its exit
/// status and the tail of its output go into the fault's notes.
async fn command(
    target: &AnyTarget,
    log: &FaultLog,
    id: FaultId,
    c: &CommandFault,
) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&c.run)
        .env("DROPZERO_TARGET_URL", target.base_url())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(llm) = target.llm_url() {
        cmd.env("DROPZERO_LLM_URL", llm);
    }
    let output = tokio::time::timeout(c.timeout, cmd.output()).await;
    let output = match output {
        Err(_) => return Err(format!("timed out after {:?} (killed)", c.timeout)),
        Ok(Err(e)) => return Err(format!("cannot run sh: {e}")),
        Ok(Ok(o)) => o,
    };
    let tail = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        let s = s.trim();
        let start = s.len().saturating_sub(MAX_HOOK_OUTPUT);
        let start = (start..=s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].to_string()
    };
    let status = crate::fleet::process::describe_exit(Some(output.status));
    log.note(id, format!("hook {status}"));
    for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = tail(bytes);
        if !text.is_empty() {
            log.note(id, format!("{name}: {text}"));
        }
    }
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("hook {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kill of `count = 1` takes the first replica of the live list shuffled by its seed:
    /// over a hundred repetitions of one entry (consecutive timeline indices) every replica
    /// of three is picked, and no victim repeats a long streak.
    #[test]
    fn each_repetition_picks_its_own_victim() {
        let victims: Vec<usize> = (0..100)
            .map(|index| {
                let mut live = [0usize, 1, 2];
                live.shuffle(&mut rand::rngs::StdRng::seed_from_u64(fault_seed(7, index)));
                live[0]
            })
            .collect();
        for replica in 0..3 {
            let n = victims.iter().filter(|&&v| v == replica).count();
            assert!(
                (15..=55).contains(&n),
                "replica {replica} picked {n} times: {victims:?}"
            );
        }
        let longest = victims
            .chunk_by(|a, b| a == b)
            .map(<[usize]>::len)
            .max()
            .unwrap_or(0);
        assert!(longest <= 8, "a streak of {longest}: {victims:?}");
        // Deterministic per seed.
        assert_eq!(fault_seed(7, 3), fault_seed(7, 3));
        assert_ne!(fault_seed(7, 3), fault_seed(8, 3));
    }
}
