//! The 1-second timeline: each sample turns the collector's running counters into per-second
//! deltas and adds the fleet's replica states. One point per second of the run, so the vector
//! is bounded by the run's duration, not by its load.

use std::collections::BTreeMap;

use dropzero_reports::TimelinePoint;
use tokio::time::Instant;

use super::Counters;
use crate::fleet::{ReplicaInfo, ReplicaState};

pub struct Timeline {
    start: Instant,
    last_at: Instant,
    prev_tokens: u64,
    prev_interruptions: u64,
    prev_drops: u64,
    prev_completed: u64,
    pub points: Vec<TimelinePoint>,
}

impl Timeline {
    pub fn new(start: Instant) -> Self {
        Timeline {
            start,
            last_at: start,
            prev_tokens: 0,
            prev_interruptions: 0,
            prev_drops: 0,
            prev_completed: 0,
            points: Vec::new(),
        }
    }

    /// Take one sample now.
    pub fn sample(&mut self, c: &Counters, replicas: &[ReplicaInfo]) -> &TimelinePoint {
        let now = Instant::now();
        let dt = now.duration_since(self.last_at).as_secs_f64().max(1e-3);
        self.last_at = now;
        let tokens = Counters::get(&c.tokens);
        let interruptions = Counters::get(&c.interruptions);
        let drops = Counters::get(&c.dropped);
        let completed = Counters::get(&c.completed) + Counters::get(&c.resumed);
        let count = |s: ReplicaState| replicas.iter().filter(|r| r.state == s).count() as u32;
        let point = TimelinePoint {
            t_s: now.duration_since(self.start).as_secs_f64(),
            active_sessions: u64::try_from(c.active.load(std::sync::atomic::Ordering::Relaxed))
                .unwrap_or(0),
            tokens_per_s: (tokens - self.prev_tokens) as f64 / dt,
            replicas_ready: count(ReplicaState::Ready),
            replicas_draining: count(ReplicaState::Draining),
            interruptions: interruptions - self.prev_interruptions,
            drops: drops - self.prev_drops,
            completed: completed - self.prev_completed,
            versions: versions(replicas),
            ..TimelinePoint::default()
        };
        self.prev_tokens = tokens;
        self.prev_interruptions = interruptions;
        self.prev_drops = drops;
        self.prev_completed = completed;
        self.points.push(point);
        self.points
            .last()
            .unwrap_or_else(|| unreachable!("just pushed"))
    }
}

/// Replicas that are not stopped, per version.
fn versions(replicas: &[ReplicaInfo]) -> BTreeMap<String, u32> {
    let mut by_version = BTreeMap::new();
    for r in replicas.iter().filter(|r| r.state != ReplicaState::Stopped) {
        *by_version.entry(r.version.clone()).or_insert(0) += 1;
    }
    by_version
}
