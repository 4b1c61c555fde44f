//! ECS task scale-in protection: while a replica runs any session, ask the ECS agent not to
//! pick this task when the service scales in, so an autoscaler never cuts a live session.
//!
//! The interface is AWS's documented task-protection endpoint, reachable from inside a task at
//! `$ECS_AGENT_URI`: `PUT {ECS_AGENT_URI}/task-protection/v1/state` with
//! `{"ProtectionEnabled": bool, "ExpiresInMinutes": n}`. Off ECS (no `ECS_AGENT_URI`) this
//! module does nothing; the `dropzero_scale_in_protected` gauge reports the same state.
//!
//! Protection is turned on as soon as the first local session starts (late protection is
//! the dangerous direction) and off only after the replica stayed idle for the debounce
//! (~1 s), so a replica that finishes one session and starts the next does not flap. While
//! protected, the request is repeated before `ExpiresInMinutes` lapses. Every call is best
//! effort: failures are logged, never fatal.
//!
//! Not for draining (ECS stops a protected task only after protection ends or expires; the
//! drain itself is in `drain`).

use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::ProtectionConfig;

/// How long to wait before asking again after the agent refused or could not be reached.
const RETRY: Duration = Duration::from_secs(5);

/// Follow the local session count and keep the ECS agent told, until `stop`.
pub async fn run(
    config: ProtectionConfig,
    mut count: watch::Receiver<usize>,
    stop: CancellationToken,
) {
    let Some(uri) = config.ecs_agent_uri.clone() else {
        return;
    };
    let url = format!("{uri}/task-protection/v1/state");
    let client = reqwest::Client::new();
    let minutes = config.expires_in_minutes;
    // Refresh at half the expiry, so one failed refresh does not let protection lapse.
    let refresh = Duration::from_secs(u64::from(minutes) * 60 / 2);
    // What the agent last accepted.
    let mut protected = false;
    loop {
        let busy = *count.borrow_and_update() > 0;
        let wake = match (busy, protected) {
            (true, false) => {
                protected = set(&client, &url, true, minutes).await;
                if protected { refresh } else { RETRY }
            }
            (true, true) => refresh,
            (false, true) => {
                // Debounce: only an idle period of `debounce` turns protection off.
                tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = count.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        continue;
                    }
                    _ = tokio::time::sleep(config.debounce) => {}
                }
                if set(&client, &url, false, minutes).await {
                    protected = false;
                    Duration::MAX
                } else {
                    RETRY
                }
            }
            (false, false) => Duration::MAX,
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = count.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            // Time to refresh (or retry): ask again as if unprotected.
            _ = sleep_for(wake) => protected = protected && !busy,
        }
    }
}

async fn sleep_for(d: Duration) {
    match tokio::time::Instant::now().checked_add(d) {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// One PUT; true when the agent accepted it.
async fn set(client: &reqwest::Client, url: &str, enabled: bool, expires_in_minutes: u32) -> bool {
    let body = json!({"ProtectionEnabled": enabled, "ExpiresInMinutes": expires_in_minutes});
    let result = client
        .put(url)
        .json(&body)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match result {
        Ok(response) if response.status().is_success() => {
            tracing::info!(enabled, "scale-in protection set");
            true
        }
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            tracing::warn!(enabled, status, body = %text, "scale-in protection refused");
            false
        }
        Err(e) => {
            tracing::warn!(enabled, error = %e, "scale-in protection call failed");
            false
        }
    }
}
