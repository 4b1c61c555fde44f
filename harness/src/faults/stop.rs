//! Stopping one local replica the way ECS would, and keeping its drain account: sessions in
//! flight when it was signalled (its `/metrics`), finished during the drain and handed off
//! (its `drain summary` log line), severed (the rest), how it exited and how long it took.

use std::time::{Duration, Instant};

use dropzero_reports as r;
use nix::sys::signal::Signal;

use crate::fleet::local::{LocalFleet, Replica};
use crate::fleet::process::describe_exit;
use crate::fleet::router::DeregisterOutcome;

/// How long an OOM-driven replica may take to die before the harness gives up on it.
const OOM_DEADLINE: Duration = Duration::from_secs(60);

/// How a fault stops a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Rolling deploy: deregister, wait for the streams (deregistration delay, ends early),
    /// SIGTERM, SIGKILL after `stop_timeout`.
    Deploy,
    /// StopTask: SIGTERM, SIGKILL after `timeout`; no deregistration first.
    Term { timeout: Duration },
    /// SIGKILL at once.
    Kill,
    /// Drive it past its memory limit by real allocation (`POST /admin/oom`).
    Oom,
}

impl How {
    fn label(self) -> &'static str {
        match self {
            How::Deploy => "deploy",
            How::Term { .. } => "sigterm",
            How::Kill => "sigkill",
            How::Oom => "oom",
        }
    }
}

/// Stop `replica` (already claimed with [`Replica::claim_for_stop`]) and account for it.
pub async fn stop_replica(fleet: &LocalFleet, replica: &Replica, how: How) -> r::ReplicaStop {
    let deregistration_wait_s = match how {
        How::Deploy => deregister(fleet, replica).await,
        _ => None,
    };
    signal_and_account(fleet, replica, how, deregistration_wait_s).await
}

/// The first half of a [`How::Deploy`] stop: deregister from the router and wait for the
/// streams (or the deregistration delay). Returns how long it waited, for the account.
/// Callers that show the two phases apart (the ECS emulator's `DEACTIVATING`, then
/// `STOPPING`) call this, then [`signal_and_account`].
pub async fn deregister(fleet: &LocalFleet, replica: &Replica) -> Option<f64> {
    match fleet.router().deregister(&replica.id).await {
        DeregisterOutcome::Drained { waited } | DeregisterOutcome::DelayExpired { waited, .. } => {
            Some(waited.as_secs_f64())
        }
        _ => None,
    }
}

/// The second half of a stop: signal as `how` says (no deregistration here), wait for the
/// exit, remove the replica from the router and account for it. `deregistration_wait_s` is
/// what [`deregister`] returned, if it ran.
pub async fn signal_and_account(
    fleet: &LocalFleet,
    replica: &Replica,
    how: How,
    deregistration_wait_s: Option<f64>,
) -> r::ReplicaStop {
    let router = fleet.router();
    let in_flight = active_sessions(&replica.url()).await;
    // Its last memory reading: after the signal there may be no process left to read.
    replica.sample_rss();
    let signalled = Instant::now();
    let (status, sigkill) = match how {
        How::Deploy => replica.child.stop(fleet.config().stop_timeout).await,
        How::Term { timeout } => replica.child.stop(timeout).await,
        How::Kill => {
            replica.child.signal(Signal::SIGKILL);
            (
                replica.child.wait_timeout(Duration::from_secs(10)).await,
                true,
            )
        }
        How::Oom => oom(replica).await,
    };
    let stop_s = signalled.elapsed().as_secs_f64();
    router.remove(&replica.id);
    replica.mark_stopped();
    let summary = drain_summary(replica.child.log_path());
    let (finished, handed_off) = match summary {
        Some(s) => (Some(s.finished), Some(s.handed_off)),
        None => (None, None),
    };
    // The replica's own count at SIGTERM is exact; the scrape just before is the fallback
    // (a replica killed without a summary).
    let in_flight = summary.and_then(|s| s.in_flight).or(in_flight);
    let severed =
        in_flight.map(|n| n.saturating_sub(finished.unwrap_or(0) + handed_off.unwrap_or(0)));
    tracing::info!(
        replica = %replica.id, how = how.label(), ?in_flight, ?finished, ?handed_off, ?severed,
        exit = %describe_exit(status), "replica stopped"
    );
    r::ReplicaStop {
        replica: replica.id.clone(),
        version: replica.version.clone(),
        how: how.label().into(),
        deregistration_wait_s,
        in_flight_at_signal: in_flight,
        finished_during_drain: finished,
        handed_off,
        severed,
        sigkill,
        exit: describe_exit(status),
        stop_s,
    }
}

/// Ask the replica to allocate until its memory limit kills it; SIGKILL it if it has not
/// died by [`OOM_DEADLINE`] (reported as `sigkill`, so the report never claims an OOM that
/// did not happen).
async fn oom(replica: &Replica) -> (Option<std::process::ExitStatus>, bool) {
    let url = format!("{}/admin/oom", replica.url());
    let sent = reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => {}
        Ok(resp) => {
            tracing::warn!(replica = %replica.id, status = %resp.status(), "POST /admin/oom refused")
        }
        Err(e) => tracing::warn!(replica = %replica.id, error = %e, "POST /admin/oom failed"),
    }
    if let Some(status) = replica.child.wait_timeout(OOM_DEADLINE).await {
        return (Some(status), false);
    }
    tracing::warn!(replica = %replica.id, "did not die of its memory limit; SIGKILL");
    replica.child.signal(Signal::SIGKILL);
    (
        replica.child.wait_timeout(Duration::from_secs(10)).await,
        true,
    )
}

/// `dropzero_active_sessions` from the replica's `/metrics`; `None` if it does not answer.
pub async fn active_sessions(base_url: &str) -> Option<u64> {
    let text = reqwest::Client::new()
        .get(format!("{base_url}/metrics"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    metric(&text, "dropzero_active_sessions").map(|v| v as u64)
}

/// The value of an unlabelled metric in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DrainSummary {
    in_flight: Option<u64>,
    finished: u64,
    handed_off: u64,
}

/// The runtime's `drain summary` JSON log line (resilient mode, on a clean exit).
fn drain_summary(log: &std::path::Path) -> Option<DrainSummary> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter(|l| l.contains("drain summary"))
        .find_map(parse_summary)
}

fn parse_summary(line: &str) -> Option<DrainSummary> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields").unwrap_or(&v);
    Some(DrainSummary {
        in_flight: fields
            .get("in_flight_at_sigterm")
            .and_then(serde_json::Value::as_u64),
        finished: fields.get("finished_during_drain")?.as_u64()?,
        handed_off: fields.get("handed_off")?.as_u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_metrics_only() {
        let text = "# TYPE dropzero_active_sessions gauge\ndropzero_active_sessions 7\ndropzero_active_sessions_total{x=\"1\"} 9\n";
        assert_eq!(metric(text, "dropzero_active_sessions"), Some(7.0));
        assert_eq!(metric(text, "dropzero_missing"), None);
    }

    #[test]
    fn parses_the_drain_summary_from_tracing_json() {
        let line = r#"{"timestamp":"x","level":"INFO","fields":{"message":"drain summary","in_flight_at_sigterm":5,"finished_during_drain":3,"handed_off":2},"target":"dropzero_runtime"}"#;
        assert_eq!(
            parse_summary(line),
            Some(DrainSummary {
                in_flight: Some(5),
                finished: 3,
                handed_off: 2
            })
        );
        assert_eq!(parse_summary("not json drain summary"), None);
    }
}
