//! Health checks: one task per registered target that GETs `/readyz` every interval with a
//! timeout and feeds the result to the target's thresholds, like an ALB target group.
//!
//! A check passes on any 2xx answered within the timeout; anything else (connection refused,
//! timeout, 503 `draining`) fails it. The first check runs at once, so a target can become
//! healthy after `(healthy_threshold - 1) × interval`. The task ends when the target is
//! deregistered, replaced or removed, or when the router shuts down.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::targets::{Registry, Target, Thresholds};

/// What a health-check task needs to know; copied out of the router config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HealthCheck {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) thresholds: Thresholds,
}

/// Checks `target` until its `checks` token is cancelled.
pub(crate) async fn run(
    target: Arc<Target>,
    registry: Arc<Registry>,
    client: reqwest::Client,
    cfg: HealthCheck,
) {
    let url = format!("http://{}/readyz", target.addr);
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let passed = tokio::select! {
            _ = target.checks.cancelled() => return,
            passed = async {
                tick.tick().await;
                check(&client, &url, cfg.timeout).await
            } => passed,
        };
        if let Some((from, to)) = target.record_check(passed, cfg.thresholds) {
            tracing::info!(target_id = %target.id, ?from, ?to, "target health changed");
            registry.changed();
        }
    }
}

async fn check(client: &reqwest::Client, url: &str, timeout: Duration) -> bool {
    let probe = async {
        let response = client.get(url).send().await.ok()?;
        let passed = response.status().is_success();
        // Read the (tiny) body so the connection goes back to the pool.
        response.bytes().await.ok()?;
        Some(passed)
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Some(true)))
}
