//! Checks and resolves `[target]`: the local fleet's settings against ECS and ALB limits
//! (a rolling deploy must be able to progress, the drain must end before SIGKILL,
//! keepalives must beat the idle timeout), and the `url` and `ecs` connection details.

use super::checks::*;
use super::defaults as d;
use super::file::{RawLocal, RawTarget};
use super::plan::*;

pub fn target(raw: RawTarget, scale: Scale) -> Checked<TargetPlan> {
    match raw {
        RawTarget::Local(local) => Ok(TargetPlan::Local(local_target(local, scale)?)),
        RawTarget::Url(u) => {
            let Some(url) = u.url else {
                return invalid(
                    "target.url",
                    "a url target needs url = \"http://host:port\"",
                );
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return invalid(
                    "target.url",
                    format!("must start with http:// or https://, found {url:?}"),
                );
            }
            let api_key = match (u.api_key, u.api_key_env) {
                (Some(_), Some(_)) => {
                    return invalid("target.api_key_env", "set api_key or api_key_env, not both");
                }
                (Some(key), None) => Some(ApiKey::Literal(key)),
                (None, Some(var)) => Some(ApiKey::Env(var)),
                (None, None) => None,
            };
            Ok(TargetPlan::Url(UrlTarget { url, api_key }))
        }
        RawTarget::Ecs(e) => {
            for (field, value) in [
                ("cluster", &e.cluster),
                ("service", &e.service),
                ("region", &e.region),
            ] {
                if value.trim().is_empty() {
                    return invalid(format!("target.{field}"), "must not be empty");
                }
            }
            Ok(TargetPlan::Ecs(EcsTarget {
                cluster: e.cluster,
                service: e.service,
                region: e.region,
                endpoint_url: e.endpoint_url,
            }))
        }
    }
}

fn local_target(raw: RawLocal, scale: Scale) -> Checked<LocalTarget> {
    let replicas = at_least("target.replicas", raw.replicas.unwrap_or(d::REPLICAS), 1)?;
    let stop_timeout = raw.stop_timeout.map_or(d::STOP_TIMEOUT, |t| t.0);
    positive("target.stop_timeout", stop_timeout)?;
    if stop_timeout > d::MAX_STOP_TIMEOUT {
        return invalid(
            "target.stop_timeout",
            format!(
                "must be at most {} (Fargate's maximum stopTimeout), found {}",
                show(d::MAX_STOP_TIMEOUT),
                show(stop_timeout)
            ),
        );
    }
    let drain_timeout = raw
        .drain_timeout
        .map_or(stop_timeout.mul_f64(d::DRAIN_SHARE_OF_STOP_TIMEOUT), |t| {
            t.0
        });
    if drain_timeout >= stop_timeout {
        return invalid(
            "target.drain_timeout",
            format!(
                "must be shorter than stop_timeout ({}) so sessions are handed off before SIGKILL, found {}",
                show(stop_timeout),
                show(drain_timeout)
            ),
        );
    }
    let min_healthy = raw
        .deployment
        .minimum_healthy_percent
        .unwrap_or(d::MINIMUM_HEALTHY_PERCENT);
    if min_healthy > 100 {
        return invalid(
            "target.deployment.minimum_healthy_percent",
            format!("must be in 0..=100, found {min_healthy}"),
        );
    }
    let max_percent = at_least(
        "target.deployment.maximum_percent",
        raw.deployment.maximum_percent.unwrap_or(d::MAXIMUM_PERCENT),
        100,
    )?;
    // ECS rounds the upper bound down and the lower bound up; a deployment needs room to
    // start or stop at least one task, or it never progresses.
    let (n, max, min) = (
        u64::from(replicas),
        u64::from(max_percent),
        u64::from(min_healthy),
    );
    if n * max / 100 <= n && (n * min).div_ceil(100) >= n {
        return invalid(
            "target.deployment.maximum_percent",
            format!(
                "leaves no room for a rolling deploy: with {replicas} replicas, maximum_percent {max_percent} and minimum_healthy_percent {min_healthy}, no task can start or stop"
            ),
        );
    }
    let idle_timeout = raw.router.idle_timeout.map_or(d::IDLE_TIMEOUT, |t| t.0);
    positive("target.router.idle_timeout", idle_timeout)?;
    let keepalive = raw.keepalive.map_or(d::KEEPALIVE, |t| t.0);
    positive("target.keepalive", keepalive)?;
    if keepalive >= idle_timeout {
        return invalid(
            "target.keepalive",
            format!(
                "must be shorter than router.idle_timeout ({}), or quiet streams are cut, found {}",
                show(idle_timeout),
                show(keepalive)
            ),
        );
    }
    let health_check_interval = raw
        .router
        .health_check_interval
        .map_or(d::HEALTH_CHECK_INTERVAL, |t| t.0);
    positive("target.router.health_check_interval", health_check_interval)?;
    if let Some(ttl) = raw.lease_ttl {
        positive("target.lease_ttl", ttl.0)?;
    }
    if let Some(mb) = raw.memory_limit_mb
        && mb < 32
    {
        return invalid(
            "target.memory_limit_mb",
            format!("must be at least 32 (a replica needs room to start), found {mb}"),
        );
    }
    Ok(LocalTarget {
        replicas,
        mode: raw.mode.unwrap_or(RuntimeMode::Resilient),
        journal: raw.journal.unwrap_or(Journal::Sqlite),
        stop_timeout: scale.time(stop_timeout),
        deregistration_delay: scale.dur(raw.deregistration_delay, d::DEREGISTRATION_DELAY),
        deployment: DeploymentConfig {
            minimum_healthy_percent: min_healthy,
            maximum_percent: max_percent,
        },
        router: RouterConfig {
            algorithm: raw.router.algorithm.unwrap_or(Algorithm::RoundRobin),
            health_check_interval: scale.time(health_check_interval),
            healthy_threshold: at_least(
                "target.router.healthy_threshold",
                raw.router.healthy_threshold.unwrap_or(d::HEALTHY_THRESHOLD),
                1,
            )?,
            unhealthy_threshold: at_least(
                "target.router.unhealthy_threshold",
                raw.router
                    .unhealthy_threshold
                    .unwrap_or(d::UNHEALTHY_THRESHOLD),
                1,
            )?,
            idle_timeout: scale.time(idle_timeout),
            stickiness: raw.router.stickiness.unwrap_or(false),
        },
        drain_timeout: scale.time(drain_timeout),
        keepalive: scale.time(keepalive),
        memory_limit_mb: raw.memory_limit_mb,
        lease_ttl: scale
            .dur(raw.lease_ttl, d::LEASE_TTL)
            .max(d::MIN_WALL_LEASE_TTL),
    })
}
