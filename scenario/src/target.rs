//! Checks and resolves `[target]`: the local fleet's settings against ECS and ALB limits
//! (a rolling deploy must be able to progress, the drain must end before SIGKILL,
//! keepalives must beat the idle timeout), and the `url` and `ecs` connection details.

use super::checks::*;
use super::defaults as d;
use super::file::{RawEcs, RawLocal, RawTarget};
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
            let api_key = api_key(u.api_key, u.api_key_env)?;
            Ok(TargetPlan::Url(UrlTarget { url, api_key }))
        }
        RawTarget::Ecs(e) => Ok(TargetPlan::Ecs(ecs_target(e, scale)?)),
    }
}

/// `api_key` or `api_key_env` (never both): how sessions are authorised at a url or ECS target.
fn api_key(literal: Option<String>, env: Option<String>) -> Checked<Option<ApiKey>> {
    match (literal, env) {
        (Some(_), Some(_)) => invalid("target.api_key_env", "set api_key or api_key_env, not both"),
        (Some(key), None) => Ok(Some(ApiKey::Literal(key))),
        (None, Some(var)) => Ok(Some(ApiKey::Env(var))),
        (None, None) => Ok(None),
    }
}

/// `[target] kind = "ecs"`: a real service (`url` = its load balancer), or a local rehearsal
/// through the ECS emulator (`[target.emulator]`, a local fleet's settings; then the
/// emulator's endpoint and router are used and `url`/`endpoint_url` must be left out).
fn ecs_target(e: RawEcs, scale: Scale) -> Checked<EcsTarget> {
    for (field, value) in [
        ("cluster", &e.cluster),
        ("service", &e.service),
        ("region", &e.region),
    ] {
        if value.trim().is_empty() {
            return invalid(format!("target.{field}"), "must not be empty");
        }
    }
    let emulator = e
        .emulator
        .map(|mut l| {
            let broken_revisions = l.broken_revisions.take().unwrap_or_default();
            let circuit_breaker = l.circuit_breaker.take().map(|c| c.rollback);
            local_target(*l, scale)
                .map_err(under_emulator)
                .map(|fleet| {
                    Box::new(EmulatorPlan {
                        fleet,
                        broken_revisions,
                        circuit_breaker,
                    })
                })
        })
        .transpose()?;
    match (&emulator, &e.url, &e.endpoint_url) {
        (None, None, _) => {
            return invalid(
                "target.url",
                "an ecs target needs url = \"https://<your ALB DNS name>\" (where clients create sessions), or [target.emulator] to rehearse locally",
            );
        }
        (Some(_), Some(_), _) => {
            return invalid(
                "target.url",
                "leave url out with [target.emulator]: clients use the emulated load balancer",
            );
        }
        (Some(_), _, Some(_)) => {
            return invalid(
                "target.endpoint_url",
                "leave endpoint_url out with [target.emulator]: the harness serves the ECS API itself",
            );
        }
        _ => {}
    }
    for (field, value) in [
        ("url", &e.url),
        ("endpoint_url", &e.endpoint_url),
        ("llm_url", &e.llm_url),
    ] {
        if let Some(v) = value
            && !(v.starts_with("http://") || v.starts_with("https://"))
        {
            return invalid(
                format!("target.{field}"),
                format!("must start with http:// or https://, found {v:?}"),
            );
        }
    }
    if let Some(arn) = &e.service_arn {
        let expected_tail = format!(":service/{}/{}", e.cluster, e.service);
        if !arn.starts_with("arn:") || !arn.ends_with(&expected_tail) {
            return invalid(
                "target.service_arn",
                format!(
                    "must be the ARN of service {} in cluster {} (arn:aws:ecs:<region>:<account>{expected_tail}), found {arn:?}",
                    e.service, e.cluster
                ),
            );
        }
    }
    let max_stopped = at_least("target.max_stopped", e.max_stopped.unwrap_or(1), 1)?;
    let poll_interval = e.poll_interval.map_or(d::ECS_POLL_INTERVAL, |t| t.0);
    if poll_interval < d::ECS_MIN_POLL_INTERVAL {
        return invalid(
            "target.poll_interval",
            format!(
                "must be at least {} (ECS API rate limits), found {}",
                show(d::ECS_MIN_POLL_INTERVAL),
                show(poll_interval)
            ),
        );
    }
    let deploy_timeout = e.deploy_timeout.map_or(d::ECS_DEPLOY_TIMEOUT, |t| t.0);
    positive("target.deploy_timeout", deploy_timeout)?;
    let api_key = api_key(e.api_key, e.api_key_env)?;
    // A real ECS deployment takes the time it takes; only the emulator's is scaled.
    let deploy_timeout = if emulator.is_some() {
        scale.time(deploy_timeout)
    } else {
        deploy_timeout
    };
    Ok(EcsTarget {
        cluster: e.cluster,
        service: e.service,
        region: e.region,
        endpoint_url: e.endpoint_url,
        url: e.url,
        llm_url: e.llm_url,
        service_arn: e.service_arn,
        max_stopped,
        poll_interval,
        deploy_timeout,
        api_key,
        emulator,
    })
}

fn local_target(raw: RawLocal, scale: Scale) -> Checked<LocalTarget> {
    if raw.broken_revisions.is_some() || raw.circuit_breaker.is_some() {
        let field = if raw.broken_revisions.is_some() {
            "target.broken_revisions"
        } else {
            "target.circuit_breaker"
        };
        return invalid(
            field,
            "only applies to [target.emulator] (it describes the emulated ECS service)",
        );
    }
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
    let cors_origins = raw.cors_origins.unwrap_or_default();
    for (i, origin) in cors_origins.iter().enumerate() {
        cors_origin(&format!("target.cors_origins[{i}]"), origin)?;
    }
    let journal = raw.journal.unwrap_or(Journal::Sqlite);
    if raw.journal_persistence.is_some() && journal != (Journal::Redis { url: None }) {
        return invalid(
            "target.journal_persistence",
            "only applies to journal = \"redis\" (the redis-server the harness starts); a redis:// server's persistence is its operator's",
        );
    }
    Ok(LocalTarget {
        replicas,
        mode: raw.mode.unwrap_or(RuntimeMode::Resilient),
        journal,
        journal_persistence: raw
            .journal_persistence
            .unwrap_or(JournalPersistence::AofEverysec),
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
        cors_origins,
    })
}

/// A browser origin as it appears in an `Origin` header: `http(s)://host[:port]`, nothing
/// after it. A path or trailing slash would never match a browser's header, and `*` is
/// refused because the runtime allows named origins only.
fn cors_origin(path: &str, origin: &str) -> Checked<()> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let ok = rest.is_some_and(|host| {
        !host.is_empty()
            && !host.starts_with(':')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    });
    if ok {
        Ok(())
    } else {
        invalid(
            path,
            format!(
                "must be an origin as a browser sends it, http(s)://host[:port] with no path or trailing slash (e.g. \"http://localhost:5173\"), found {origin:?}"
            ),
        )
    }
}

/// A local fleet's error found inside `[target.emulator]`: name the field where it is
/// (`target.emulator.replicas`, not `target.replicas`), so the message and its line point
/// at the table the user wrote.
fn under_emulator(mut e: super::checks::Invalid) -> super::checks::Invalid {
    if let Some(rest) = e.path.strip_prefix("target.") {
        e.path = format!("target.emulator.{rest}");
    }
    e
}
