//! From a resolved scenario to a running target and the inputs of the load engine: the
//! glue between `scenario` (what was asked) and `fleet`/`load` (what runs). Kept apart from
//! `run.rs` so the orchestration reads as a sequence of steps.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::ecs_emulator::{CircuitBreaker, Emulator, EmulatorConfig};
use crate::fleet::ecs::EcsTarget;
use crate::fleet::journal_server::{RedisPersistence, RedisServerConfig};
use crate::fleet::local::{LocalConfig, LocalFleet};
use crate::fleet::url::UrlTarget;
use crate::fleet::{ReplicaInfo, Target, router};
use crate::load::{ClosedStage, LoadModel, OpenStage, mix::MixConfig};
use crate::scenario::{self, ScenarioPlan, TargetPlan};

/// The targets this build can run against, as one type the run loop can own.
pub enum AnyTarget {
    Local(Box<LocalFleet>),
    Url(UrlTarget),
    /// An ECS service, and the emulator serving it when the scenario rehearses locally.
    Ecs(Box<EcsTarget>, Option<Box<Emulator>>),
}

impl Target for AnyTarget {
    fn kind(&self) -> &'static str {
        match self {
            AnyTarget::Local(t) => t.kind(),
            AnyTarget::Url(t) => t.kind(),
            AnyTarget::Ecs(t, _) => t.kind(),
        }
    }
    fn base_url(&self) -> String {
        match self {
            AnyTarget::Local(t) => t.base_url(),
            AnyTarget::Url(t) => t.base_url(),
            AnyTarget::Ecs(t, _) => t.base_url(),
        }
    }
    fn llm_url(&self) -> Option<String> {
        match self {
            AnyTarget::Local(t) => t.llm_url(),
            AnyTarget::Url(t) => t.llm_url(),
            AnyTarget::Ecs(t, _) => t.llm_url(),
        }
    }
    fn replicas(&self) -> Vec<ReplicaInfo> {
        match self {
            AnyTarget::Local(t) => t.replicas(),
            AnyTarget::Url(t) => t.replicas(),
            AnyTarget::Ecs(t, _) => t.replicas(),
        }
    }
    async fn shutdown(&self) {
        match self {
            AnyTarget::Local(t) => t.shutdown().await,
            AnyTarget::Url(t) => t.shutdown().await,
            AnyTarget::Ecs(t, emulator) => {
                t.shutdown().await;
                if let Some(emulator) = emulator {
                    emulator.shutdown().await;
                }
            }
        }
    }
}

/// Start (or attach to) the scenario's target.
pub async fn start(plan: &ScenarioPlan, dir: &Path, exe: &Path) -> anyhow::Result<AnyTarget> {
    match &plan.target {
        TargetPlan::Local(local) => {
            let cfg = local_config(plan, local, dir, exe)?;
            let fleet = LocalFleet::start(cfg)
                .await
                .context("starting the local fleet")?;
            Ok(AnyTarget::Local(Box::new(fleet)))
        }
        TargetPlan::Url(url) => Ok(AnyTarget::Url(UrlTarget::new(url.url.clone()))),
        TargetPlan::Ecs(ecs) => {
            let Some(rehearsal) = &ecs.emulator else {
                let target = EcsTarget::connect(ecs_config(ecs, None, plan.autoscaling.is_some()))
                    .await
                    .context("connecting to the ECS service")?;
                return Ok(AnyTarget::Ecs(Box::new(target), None));
            };
            let emulator = start_emulator(plan, ecs, rehearsal, dir, exe).await?;
            let fleet = emulator.fleet();
            let emulated = (emulator.endpoint_url(), fleet.base_url(), fleet.llm_url());
            match EcsTarget::connect(ecs_config(ecs, Some(emulated), plan.autoscaling.is_some()))
                .await
            {
                Ok(target) => Ok(AnyTarget::Ecs(Box::new(target), Some(Box::new(emulator)))),
                Err(e) => {
                    emulator.shutdown().await;
                    Err(anyhow::Error::new(e).context("connecting to the ECS emulator"))
                }
            }
        }
    }
}

/// The ECS emulator over the local fleet `[target.emulator]` describes, serving the cluster,
/// service and region the scenario names (the account is the emulator's, 123456789012).
async fn start_emulator(
    plan: &ScenarioPlan,
    ecs: &scenario::EcsTarget,
    rehearsal: &scenario::EmulatorPlan,
    dir: &Path,
    exe: &Path,
) -> anyhow::Result<Emulator> {
    let fleet = local_config(plan, &rehearsal.fleet, dir, exe)?;
    let cfg = EmulatorConfig {
        cluster: ecs.cluster.clone(),
        service: ecs.service.clone(),
        region: ecs.region.clone(),
        desired_count: usize::try_from(rehearsal.fleet.replicas).unwrap_or(1),
        minimum_healthy_percent: rehearsal.fleet.deployment.minimum_healthy_percent,
        maximum_percent: rehearsal.fleet.deployment.maximum_percent,
        circuit_breaker: rehearsal
            .circuit_breaker
            .map(|rollback| CircuitBreaker { rollback }),
        broken_revisions: rehearsal.broken_revisions.clone(),
        scaling: plan
            .autoscaling
            .map(|a| crate::ecs_emulator::EmulatedScaling::new(a, plan.time_scale)),
        ..EmulatorConfig::default()
    };
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    Emulator::start(cfg, fleet, listen)
        .await
        .context("starting the ECS emulator")
}

/// The ECS target's connection settings; `emulated` = (endpoint, router URL, LLM URL) of an
/// emulator the harness started; `observe_scaling`: the scenario has `[autoscaling]`.
pub fn ecs_config(
    ecs: &scenario::EcsTarget,
    emulated: Option<(String, String, Option<String>)>,
    observe_scaling: bool,
) -> crate::fleet::ecs::EcsConfig {
    let (endpoint_url, url, llm_url, static_credentials) = match emulated {
        Some((endpoint, url, llm)) => (Some(endpoint), url, llm, true),
        None => (
            ecs.endpoint_url.clone(),
            ecs.url.clone().unwrap_or_default(),
            ecs.llm_url.clone(),
            false,
        ),
    };
    crate::fleet::ecs::EcsConfig {
        cluster: ecs.cluster.clone(),
        service: ecs.service.clone(),
        region: ecs.region.clone(),
        endpoint_url,
        url,
        llm_url,
        static_credentials,
        poll_interval: ecs.poll_interval,
        observe_scaling,
    }
}

/// A local fleet's settings from the scenario (the `local` target, or the fleet under the
/// ECS emulator): the mock LLM profile file, the journal, the runtime's flags, the router.
pub fn local_config(
    plan: &ScenarioPlan,
    local: &scenario::LocalTarget,
    dir: &Path,
    exe: &Path,
) -> anyhow::Result<LocalConfig> {
    let profile = dir.join("mock-profile.toml");
    std::fs::write(&profile, mock_profile(plan))
        .with_context(|| format!("writing {}", profile.display()))?;
    let journal = match &local.journal {
        scenario::Journal::Memory => "memory".to_string(),
        scenario::Journal::Sqlite => format!("sqlite:{}", dir.join("journal.db").display()),
        // Keys of this run under their own prefix, so runs sharing a server never mix.
        scenario::Journal::Redis { url: Some(url) } => with_prefix(url, dir),
        scenario::Journal::Redis { url: None } => String::new(),
    };
    let runtime_args: Vec<OsString> = [
        "--drain-timeout".to_string(),
        humantime::format_duration(local.drain_timeout).to_string(),
        "--keepalive".to_string(),
        humantime::format_duration(local.keepalive).to_string(),
        "--price-input-per-mtok".to_string(),
        plan.llm.price.input_per_mtok.to_string(),
        "--price-output-per-mtok".to_string(),
        plan.llm.price.output_per_mtok.to_string(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let mut runtime_args = runtime_args;
    if local.mode == scenario::RuntimeMode::Resilient {
        runtime_args.push("--lease-ttl".into());
        runtime_args.push(
            humantime::format_duration(local.lease_ttl)
                .to_string()
                .into(),
        );
    }
    for origin in &local.cors_origins {
        runtime_args.push("--cors-origin".into());
        runtime_args.push(origin.into());
    }
    if plan
        .faults
        .iter()
        .any(|f| matches!(f.action, scenario::FaultAction::Oom(_)))
    {
        runtime_args.push("--fault-endpoints".into());
    }
    let r = &local.router;
    let cfg = LocalConfig {
        exe: exe.to_path_buf(),
        run_dir: dir.to_path_buf(),
        replicas: usize::try_from(local.replicas).unwrap_or(1),
        mode: match local.mode {
            scenario::RuntimeMode::Resilient => "resilient".into(),
            scenario::RuntimeMode::Naive => "naive".into(),
        },
        journal,
        runtime_args,
        mock_args: vec![
            "--seed".into(),
            plan.seed.to_string().into(),
            "--profile".into(),
            profile.into_os_string(),
        ],
        router: router::RouterConfig {
            algorithm: match r.algorithm {
                scenario::Algorithm::RoundRobin => router::Algorithm::RoundRobin,
                scenario::Algorithm::LeastOutstanding => router::Algorithm::LeastOutstanding,
            },
            health_check_interval: r.health_check_interval,
            healthy_threshold: r.healthy_threshold,
            unhealthy_threshold: r.unhealthy_threshold,
            // Never under a second: a compressed run's checks come every few hundred ms,
            // and on a 2-core box a replica busy with a load step answers `/readyz` later
            // than that; an ECS-style scheduler then replaces healthy tasks (seen: the ECS
            // autoscale step failing its scale-out reaction with tasks replaced in a loop).
            // A dead replica still fails at once (connection refused).
            health_check_timeout: r.health_check_interval.max(Duration::from_secs(1)),
            idle_timeout: r.idle_timeout,
            deregistration_delay: local.deregistration_delay,
            stickiness: r.stickiness,
        },
        stop_timeout: local.stop_timeout,
        ready_timeout: Duration::from_secs(30),
        version: "v1".into(),
        memory_limit: local.memory_limit_mb.map(|mb| mb * 1024 * 1024),
        redis_server: (local.journal == scenario::Journal::Redis { url: None }).then(|| {
            RedisServerConfig {
                persistence: match local.journal_persistence {
                    scenario::JournalPersistence::AofAlways => RedisPersistence::AofAlways,
                    scenario::JournalPersistence::AofEverysec => RedisPersistence::AofEverysec,
                    scenario::JournalPersistence::Snapshot => RedisPersistence::Snapshot,
                },
                gate: plan
                    .faults
                    .iter()
                    .any(|f| matches!(f.action, scenario::FaultAction::JournalOutage(_))),
            }
        }),
    };
    Ok(cfg)
}

/// `url` with `prefix=dz-<run dir name>` added, unless it names a prefix already.
fn with_prefix(url: &str, dir: &Path) -> String {
    if url.contains("prefix=") {
        return url.to_string();
    }
    let run: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}prefix=dz-{run}")
}

/// The mock LLM profile for this scenario, as the TOML `dropzero mock-llm --profile` reads.
fn mock_profile(plan: &ScenarioPlan) -> String {
    let l = &plan.llm;
    let d = |d: Duration| format!("\"{}us\"", d.as_micros());
    let mut s = format!(
        "max_concurrent = {}\nload_factor = {}\n\n[ttft]\nmedian = {}\np99 = {}\n\n[itl]\nmedian = {}\np99 = {}\n\n[price]\ninput_per_mtok = {}\noutput_per_mtok = {}\n",
        l.max_concurrent,
        l.load_factor,
        d(l.ttft.median),
        d(l.ttft.p99),
        d(l.itl.median),
        d(l.itl.p99),
        l.price.input_per_mtok,
        l.price.output_per_mtok,
    );
    let f = &l.faults;
    if !f.is_none() {
        s.push_str(&format!(
            "\n[faults]\nrate_limit = {}\noverloaded = {}\nserver_error = {}\nextra_latency_ms = {}\n",
            f.rate_limit,
            f.overloaded,
            f.server_error,
            f.extra_latency.as_millis()
        ));
        if let Some(n) = f.cut_after_tokens {
            s.push_str(&format!("cut_after_tokens = {n}\n"));
        }
    }
    s
}

/// The mock LLM's billing ledger, when the target has one.
pub async fn ledger(target: &AnyTarget) -> Option<serde_json::Value> {
    let url = format!("{}/mock/ledger", target.llm_url()?);
    let resp = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// The API key sessions are created with (url targets only).
pub fn api_key(plan: &ScenarioPlan) -> anyhow::Result<Option<String>> {
    match &plan.target {
        TargetPlan::Url(scenario::UrlTarget { api_key, .. })
        | TargetPlan::Ecs(scenario::EcsTarget { api_key, .. }) => match api_key {
            None => Ok(None),
            Some(scenario::ApiKey::Literal(k)) => Ok(Some(k.clone())),
            Some(scenario::ApiKey::Env(var)) => std::env::var(var).map(Some).with_context(|| {
                format!("target.api_key_env: environment variable {var} is not set")
            }),
        },
        _ => Ok(None),
    }
}

pub fn load_model(plan: &ScenarioPlan) -> LoadModel {
    match &plan.load {
        scenario::LoadPlan::Closed(c) => LoadModel::Closed {
            stages: c
                .stages
                .iter()
                .map(|s| ClosedStage {
                    users: s.users,
                    ramp: s.ramp,
                    hold: s.hold,
                })
                .collect(),
            think_time: c.think_time,
        },
        scenario::LoadPlan::Open(o) => LoadModel::Open {
            stages: o
                .stages
                .iter()
                .map(|s| OpenStage {
                    rate: s.rate,
                    ramp: s.ramp,
                    hold: s.hold,
                })
                .collect(),
            poisson: matches!(o.arrival, scenario::Arrival::Poisson),
        },
    }
}

pub fn mix_config(plan: &ScenarioPlan) -> MixConfig {
    let s = &plan.sessions;
    let tps = s.tokens_per_second.max(1e-6);
    let (median, p99) = match &s.size {
        scenario::SessionSize::Length(p) => (p.median, p.p99),
        scenario::SessionSize::Tokens(p) => (
            Duration::from_secs_f64(p.median as f64 / tps),
            Duration::from_secs_f64(p.p99 as f64 / tps),
        ),
    };
    MixConfig {
        seed: plan.seed,
        length_median: median,
        length_p99: p99,
        tokens_per_second: tps,
        runaway_fraction: s.runaway_fraction,
        max_output_tokens: s.budget.as_ref().and_then(|b| b.max_output_tokens),
        max_cost_usd: s.budget.as_ref().and_then(|b| b.max_cost_usd),
        max_duration: s.budget.as_ref().and_then(|b| b.max_duration),
    }
}

/// The longest a session may plausibly take: sessions can run to twice the p99 length (the
/// mix caps there), plus LLM latency; beyond this a session counts as dropped (`deadline`).
pub fn session_deadline(plan: &ScenarioPlan) -> Duration {
    let mix = mix_config(plan);
    mix.length_p99 * 3 + plan.llm.ttft.p99 * 4 + Duration::from_secs(10)
}

/// How long in-flight sessions may continue after the load duration ends.
pub fn end_grace(plan: &ScenarioPlan) -> Duration {
    session_deadline(plan)
}

/// Before anything acts on real infrastructure: name the account, region, cluster and
/// service, and refuse to run faults on a service the scenario did not name in
/// `target.service_arn` (unless `yes`). Other targets pass.
pub fn confirm(plan: &ScenarioPlan, target: &AnyTarget, yes: bool) -> anyhow::Result<()> {
    let (AnyTarget::Ecs(ecs, _), TargetPlan::Ecs(want)) = (target, &plan.target) else {
        return Ok(());
    };
    let arn = &ecs.service_arn;
    let account = arn.split(':').nth(4).unwrap_or("unknown");
    eprintln!(
        "dropzero: ECS target: account {account}, region {}, cluster {}, service {} ({arn}); {} fault(s) will act on it",
        want.region,
        want.cluster,
        want.service,
        plan.faults.len()
    );
    if plan.faults.is_empty() {
        return Ok(());
    }
    match &want.service_arn {
        Some(expected) if expected == arn => Ok(()),
        _ if yes => {
            eprintln!("dropzero: --yes: running faults against {arn}");
            Ok(())
        }
        Some(expected) => anyhow::bail!(
            "{}: refusing to run faults: target.service_arn names {expected}, but the service found is {arn}",
            plan.file.display()
        ),
        None => anyhow::bail!(
            "{}: refusing to run faults against {arn}: name the service you expect with target.service_arn = \"{arn}\" (or pass --yes)",
            plan.file.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    /// Every origin of `[target] cors_origins` reaches each replica as one `--cors-origin`.
    #[test]
    fn cors_origins_become_runtime_flags() {
        let src = "name = \"t\"\nduration = \"1m\"\n[target]\nkind = \"local\"\ncors_origins = [\"http://127.0.0.1:8080\", \"https://app.example.com\"]\n[load]\nmodel = \"closed\"\nstages = [ { users = 1, hold = \"1m\" } ]\n";
        let plan = scenario::parse(src, Path::new("x.toml"), &scenario::Overrides::default())
            .expect("valid");
        let scenario::TargetPlan::Local(local) = &plan.target else {
            panic!("local target expected")
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = local_config(&plan, local, dir.path(), Path::new("dropzero")).expect("config");
        let args: Vec<&str> = cfg.runtime_args.iter().filter_map(|a| a.to_str()).collect();
        let flags: Vec<&[&str]> = args
            .windows(2)
            .filter(|w| w[0] == "--cors-origin")
            .collect();
        assert_eq!(
            flags,
            [
                &["--cors-origin", "http://127.0.0.1:8080"][..],
                &["--cors-origin", "https://app.example.com"][..],
            ]
        );
    }
}
