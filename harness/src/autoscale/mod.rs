//! The emulated ECS service autoscaler for the local fleet: Application Auto Scaling target
//! tracking on the average active sessions per task ([`policy`], where the AWS rules and the
//! simplifications are listed), driven by the replicas' own `/metrics`.
//!
//! Several times per datapoint (every second, or a third of a datapoint at small time
//! scales) the controller scrapes each live replica (`dropzero_active_sessions`,
//! `dropzero_scale_in_protected`); a datapoint is the average over one scaled minute. It
//! applies the desired count: scale-out starts replicas (the reaction is ready when all are
//! healthy in the router); scale-in stops unprotected replicas the way ECS does (deregister,
//! deregistration delay, SIGTERM, SIGKILL after `stop_timeout`). A replica raising scale-in
//! protection is never stopped; a scale-in that finds only protected replicas is counted as
//! blocked and retried every second. Scale-in is suspended while a deploy runs.

pub mod policy;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dropzero_reports as r;
use futures::future::join_all;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::faults::stop::{How, metric, stop_replica};
use crate::fleet::local::LocalFleet;
use crate::scenario::AutoscalingPlan;
use crate::target_setup::AnyTarget;
use policy::{Decision, Policy, TargetTracking};

/// Real-world length of one CloudWatch datapoint.
pub const DATAPOINT: Duration = Duration::from_secs(60);

/// What the autoscaler did, shared with the sampler (timeline) and the report builder.
#[derive(Debug)]
pub struct AutoscaleLog {
    pub plan: AutoscalingPlan,
    /// Wall length of one datapoint.
    pub period: Duration,
    start: Instant,
    desired: AtomicU32,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    metric_now: Option<f64>,
    decisions: Vec<r::ScalingDecision>,
    reactions: Vec<r::ScaleReaction>,
    scale_ins: u64,
    blocked_by_protection: u64,
    cut_sessions: u64,
}

impl AutoscaleLog {
    pub fn new(
        plan: AutoscalingPlan,
        time_scale: f64,
        start: Instant,
        initial: u32,
    ) -> AutoscaleLog {
        AutoscaleLog {
            plan,
            period: DATAPOINT.mul_f64(time_scale),
            start,
            desired: AtomicU32::new(initial),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn secs(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64()
    }

    pub fn desired(&self) -> u32 {
        self.desired.load(Ordering::SeqCst)
    }

    /// The metric over the last second (average active sessions per live task).
    pub fn metric_now(&self) -> Option<f64> {
        self.lock().metric_now
    }

    /// The report section; SLO recovery and provisioning are filled in from the timeline by
    /// the report builder.
    pub fn report(&self) -> r::AutoscalingReport {
        let inner = self.lock();
        r::AutoscalingReport {
            metric: "active_sessions".into(),
            target_value: self.plan.target_value,
            min: self.plan.min,
            max: self.plan.max,
            datapoint_s: self.period.as_secs_f64(),
            decisions: inner.decisions.clone(),
            reactions: inner.reactions.clone(),
            scale_ins: inner.scale_ins,
            scale_ins_blocked_by_protection: inner.blocked_by_protection,
            scale_in_cut_sessions: inner.cut_sessions,
            task_seconds_over: 0.0,
            task_seconds_under: 0.0,
        }
    }
}

/// Samples averaged into one datapoint per `period` (a scaled minute), as CloudWatch
/// aggregates a one-minute metric; shared by the local autoscaler and the ECS emulator's.
pub(crate) struct Datapoints {
    period: Duration,
    period_start: Instant,
    samples: Vec<f64>,
}

impl Datapoints {
    pub fn new(period: Duration, start: Instant) -> Datapoints {
        Datapoints {
            period,
            period_start: start,
            samples: Vec::new(),
        }
    }

    /// How often to sample: several times per datapoint even at small time scales, at
    /// most once a second.
    pub fn sample_every(&self) -> Duration {
        (self.period / 3).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    pub fn sample(&mut self, value: f64) {
        self.samples.push(value);
    }

    /// At `now`, when a period has ended: its start and the average of its samples. `None`
    /// while the period runs, and for a period without samples (a missing datapoint: no
    /// task answered; see `policy`). After a slow scrape the missed periods are skipped,
    /// not replayed.
    pub fn close(&mut self, now: Instant) -> Option<(Instant, f64)> {
        if now.duration_since(self.period_start) < self.period {
            return None;
        }
        let this_period = self.period_start;
        self.period_start += self.period;
        if now.duration_since(self.period_start) >= self.period {
            self.period_start = now;
        }
        if self.samples.is_empty() {
            return None;
        }
        let average = self.samples.iter().sum::<f64>() / self.samples.len() as f64;
        self.samples.clear();
        Some((this_period, average))
    }
}

/// One replica's view at a sample.
pub(crate) struct Sample {
    pub active: Option<f64>,
    pub protected: bool,
}

/// Read a replica's active sessions and scale-in protection from its `/metrics`.
pub(crate) async fn scrape(url: String) -> Sample {
    let text = async {
        reqwest::Client::new()
            .get(format!("{url}/metrics"))
            .timeout(Duration::from_millis(800))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    }
    .await;
    match text {
        Some(t) => Sample {
            active: metric(&t, "dropzero_active_sessions"),
            protected: metric(&t, "dropzero_scale_in_protected").unwrap_or(0.0) > 0.0,
        },
        None => Sample {
            active: None,
            protected: false,
        },
    }
}

/// Run the autoscaler until `cancel`.
/// Run the autoscaler until `cancel` (only on a local target; the scenario checks that).
pub async fn run(target: Arc<AnyTarget>, log: Arc<AutoscaleLog>, cancel: CancellationToken) {
    let Some(fleet) = local(&target) else {
        return;
    };
    let p = &log.plan;
    let policy = Policy::from(p);
    let mut tt = TargetTracking::default();
    let mut datapoints = Datapoints::new(log.period, log.start);
    let mut tick = tokio::time::interval(datapoints.sample_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut streak_start: Option<Instant> = None;
    let mut stopping = 0usize;
    let (stopped_tx, mut stopped_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        while stopped_rx.try_recv().is_ok() {
            stopping = stopping.saturating_sub(1);
        }
        let live = fleet.live_replicas();
        let views = join_all(live.iter().map(|r| scrape(r.url()))).await;
        let answered: Vec<f64> = views.iter().filter_map(|v| v.active).collect();
        if !answered.is_empty() {
            let per_task = answered.iter().sum::<f64>() / answered.len() as f64;
            datapoints.sample(per_task);
            log.lock().metric_now = Some(per_task);
        }

        // Apply the desired count: start missing replicas, stop surplus unprotected ones.
        let desired = log.desired() as usize;
        let running = live.len();
        if running > desired + stopping {
            let surplus = running - desired - stopping;
            let candidates: Vec<_> = live
                .iter()
                .zip(&views)
                .filter(|(_, v)| !v.protected)
                .map(|(r, _)| r.clone())
                .collect();
            if candidates.is_empty() {
                log.lock().blocked_by_protection += 1;
            }
            for replica in candidates.into_iter().take(surplus) {
                if !replica.claim_for_stop() {
                    continue;
                }
                stopping += 1;
                let (target, log, tx) = (target.clone(), log.clone(), stopped_tx.clone());
                tokio::spawn(async move {
                    let Some(fleet) = local(&target) else {
                        return;
                    };
                    let stop = stop_replica(fleet, &replica, How::Deploy).await;
                    let mut inner = log.lock();
                    inner.scale_ins += 1;
                    inner.cut_sessions += stop.severed.unwrap_or(0);
                    drop(inner);
                    let _ = tx.send(());
                });
            }
        }

        // A datapoint at the end of each period.
        let now = Instant::now();
        let Some((this_period, metric_avg)) = datapoints.close(now) else {
            continue;
        };
        if metric_avg > p.target_value {
            streak_start.get_or_insert(this_period);
        } else {
            streak_start = None;
        }
        let tasks = u32::try_from(running).unwrap_or(u32::MAX);
        let t = now.duration_since(log.start);
        let decision = tt.datapoint(&policy, t, metric_avg, tasks, fleet.is_deploying());
        let (action, to, reason) = match decision {
            Decision::None => continue,
            Decision::ScaleOut { to, reason } => ("scale_out", to, reason),
            Decision::ScaleIn { to, reason } => ("scale_in", to, reason),
            Decision::Blocked { reason } => ("blocked", tasks, reason),
        };
        tracing::info!(action, from = tasks, to, metric = metric_avg, %reason, "autoscaler");
        {
            let mut inner = log.lock();
            inner.decisions.push(r::ScalingDecision {
                t_s: log.secs(now),
                action: action.into(),
                from: tasks,
                to,
                metric: metric_avg,
                reason,
            });
        }
        match action {
            "scale_out" => {
                log.desired.store(to, Ordering::SeqCst);
                let index = {
                    let mut inner = log.lock();
                    inner.reactions.push(r::ScaleReaction {
                        breach_s: log.secs(streak_start.unwrap_or(this_period)),
                        decision_s: log.secs(now),
                        ready_s: None,
                        slo_recovered_s: None,
                        seconds_over_slo_during_lag: 0,
                    });
                    inner.reactions.len() - 1
                };
                streak_start = None;
                let add = (to as usize).saturating_sub(running);
                let (target, log) = (target.clone(), log.clone());
                tokio::spawn(async move {
                    let Some(fleet) = local(&target) else {
                        return;
                    };
                    let mut ids = Vec::new();
                    for _ in 0..add {
                        match fleet.start_replica().await {
                            Ok(r) => ids.push(r.id.clone()),
                            Err(e) => {
                                tracing::warn!(error = %e, "scale-out: replica did not start")
                            }
                        }
                    }
                    if fleet
                        .wait_healthy(&ids, fleet.config().ready_timeout)
                        .await
                        .is_ok()
                    {
                        let ready = log.secs(Instant::now());
                        if let Some(r) = log.lock().reactions.get_mut(index) {
                            r.ready_s = Some(ready);
                        }
                    }
                });
            }
            "scale_in" => log.desired.store(to, Ordering::SeqCst),
            _ => {}
        }
    }
}

fn local(target: &AnyTarget) -> Option<&LocalFleet> {
    match target {
        AnyTarget::Local(fleet) => Some(fleet),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datapoint_averages_its_period_skips_empty_ones_and_missed_periods() {
        let start = Instant::now();
        let s = Duration::from_secs;
        let mut d = Datapoints::new(s(1), start);
        assert_eq!(d.sample_every(), s(1) / 3);
        d.sample(4.0);
        d.sample(8.0);
        assert_eq!(
            d.close(start + Duration::from_millis(900)),
            None,
            "period still running"
        );
        assert_eq!(d.close(start + s(1)), Some((start, 6.0)));
        // No samples in [1 s, 2 s): a missing datapoint, not a zero.
        assert_eq!(d.close(start + s(2)), None);
        // A slow scrape: at 7.5 s the periods from 2 s to 7 s are skipped, not replayed.
        d.sample(3.0);
        assert_eq!(
            d.close(start + Duration::from_millis(7500)),
            Some((start + s(2), 3.0))
        );
        d.sample(5.0);
        assert_eq!(
            d.close(start + s(8)),
            None,
            "the next period starts at 7.5 s"
        );
        assert_eq!(
            d.close(start + Duration::from_millis(8500)),
            Some((start + Duration::from_millis(7500), 5.0))
        );
    }
}
