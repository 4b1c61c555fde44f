//! Application Auto Scaling target tracking, as a pure state machine over one-minute
//! datapoints of the average active sessions per task (DESIGN §6). No clock, no I/O: the
//! caller feeds datapoints and applies decisions, so every rule is tested with data.
//!
//! Where it follows AWS:
//! - Scale out when 3 consecutive datapoints are above the target (the high alarm), scale in
//!   when 15 consecutive datapoints are below 90% of the target (the low alarm).
//! - New desired count `ceil(tasks × metric / target)`, clamped to `min..=max`.
//! - Scale-out cooldown: a further scale-out inside it happens only if it asks for more than
//!   the last one did (AWS counts the capacity already added). Scale-in cooldown: no scale-in
//!   until it has passed since the last scale-in, and a scale-out inside it is not blocked.
//! - No scale-in while a deployment is in progress (ECS suspends it).
//!
//! Where it simplifies: alarms evaluate only on datapoint boundaries, a missing datapoint
//! (no task answered) is skipped rather than treated as breaching, and scale-in never goes
//! below one task per step more than the formula says (AWS may apply its own scale-in
//! damping for some metrics).

use std::time::Duration;

/// AWS: the high alarm needs 3 datapoints over the target.
pub const OUT_AFTER: u32 = 3;
/// AWS: the low alarm needs 15 datapoints under 90% of the target.
pub const IN_AFTER: u32 = 15;
/// AWS: the low alarm's threshold as a share of the target value.
pub const IN_THRESHOLD: f64 = 0.9;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub target_value: f64,
    pub min: u32,
    pub max: u32,
    pub scale_out_cooldown: Duration,
    pub scale_in_cooldown: Duration,
}

impl From<&crate::scenario::AutoscalingPlan> for Policy {
    fn from(p: &crate::scenario::AutoscalingPlan) -> Policy {
        Policy {
            target_value: p.target_value,
            min: p.min,
            max: p.max,
            scale_out_cooldown: p.scale_out_cooldown,
            scale_in_cooldown: p.scale_in_cooldown,
        }
    }
}

/// What the policy decided at a datapoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    None,
    ScaleOut {
        to: u32,
        reason: String,
    },
    ScaleIn {
        to: u32,
        reason: String,
    },
    /// An alarm fired but the policy may not act; counted and reported.
    Blocked {
        reason: String,
    },
}

/// The state between datapoints.
#[derive(Debug, Clone, Default)]
pub struct TargetTracking {
    above: u32,
    below: u32,
    last_out: Option<(Duration, u32)>,
    last_in: Option<Duration>,
}

impl TargetTracking {
    /// One datapoint at `t` (since the run started): the period's average `metric` per task,
    /// with `tasks` running and `deploying` true while a deployment is in progress.
    pub fn datapoint(
        &mut self,
        p: &Policy,
        t: Duration,
        metric: f64,
        tasks: u32,
        deploying: bool,
    ) -> Decision {
        if metric > p.target_value {
            self.above += 1;
            self.below = 0;
        } else if metric < p.target_value * IN_THRESHOLD {
            self.below += 1;
            self.above = 0;
        } else {
            self.above = 0;
            self.below = 0;
        }
        let tasks = tasks.max(1);
        let wanted =
            ((f64::from(tasks) * metric / p.target_value).ceil() as u32).clamp(p.min, p.max);
        if self.above >= OUT_AFTER {
            if wanted <= tasks {
                return Decision::Blocked {
                    reason: format!("high alarm, but already at {tasks} (max {})", p.max),
                };
            }
            if let Some((at, to)) = self.last_out
                && t < at + p.scale_out_cooldown
                && wanted <= to
            {
                return Decision::Blocked {
                    reason: format!("scale-out cooldown: {wanted} ≤ the {to} asked at {at:?}"),
                };
            }
            self.above = 0;
            self.last_out = Some((t, wanted));
            return Decision::ScaleOut {
                to: wanted,
                reason: format!(
                    "{OUT_AFTER} datapoints above target {}: {metric:.2} per task × {tasks} tasks",
                    p.target_value
                ),
            };
        }
        if self.below >= IN_AFTER {
            if wanted >= tasks {
                return Decision::None;
            }
            if deploying {
                return Decision::Blocked {
                    reason: "scale-in suspended during a deployment".into(),
                };
            }
            if let Some(at) = self.last_in
                && t < at + p.scale_in_cooldown
            {
                return Decision::Blocked {
                    reason: format!("scale-in cooldown since {at:?}"),
                };
            }
            self.below = 0;
            self.last_in = Some(t);
            return Decision::ScaleIn {
                to: wanted,
                reason: format!(
                    "{IN_AFTER} datapoints below 90% of target {}: {metric:.2} per task × {tasks} tasks",
                    p.target_value
                ),
            };
        }
        Decision::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        target_value: 10.0,
        min: 1,
        max: 8,
        scale_out_cooldown: Duration::from_secs(300),
        scale_in_cooldown: Duration::from_secs(300),
    };

    fn minute(m: u64) -> Duration {
        Duration::from_secs(60 * m)
    }

    /// Feed `(metric, tasks, deploying)` datapoints one minute apart; return the decisions
    /// that were not `None`, with their minute.
    fn feed(points: &[(f64, u32, bool)]) -> Vec<(u64, Decision)> {
        let mut tt = TargetTracking::default();
        points
            .iter()
            .enumerate()
            .map(|(i, &(m, tasks, dep))| {
                (
                    i as u64,
                    tt.datapoint(&POLICY, minute(i as u64), m, tasks, dep),
                )
            })
            .filter(|(_, d)| *d != Decision::None)
            .collect()
    }

    fn out(to: u32) -> impl Fn(&Decision) -> bool {
        move |d| matches!(d, Decision::ScaleOut { to: t, .. } if *t == to)
    }

    #[test]
    fn scales_out_on_the_third_datapoint_above_proportionally() {
        let d = feed(&[(25.0, 2, false), (25.0, 2, false), (25.0, 2, false)]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, 2, "the third datapoint");
        assert!(out(5)(&d[0].1), "ceil(2 × 25 / 10) = 5: {:?}", d[0].1);
    }

    #[test]
    fn a_dip_resets_the_streak() {
        let d = feed(&[
            (25.0, 2, false),
            (25.0, 2, false),
            (9.5, 2, false),
            (25.0, 2, false),
            (25.0, 2, false),
        ]);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn max_caps_the_step_and_at_max_the_alarm_is_blocked() {
        let d = feed(&[(100.0, 2, false); 3]);
        assert!(out(8)(&d[0].1), "{d:?}");
        let d = feed(&[(100.0, 8, false); 3]);
        assert!(matches!(d[0].1, Decision::Blocked { .. }), "{d:?}");
    }

    #[test]
    fn scale_out_cooldown_allows_only_a_larger_ask() {
        // 3 datapoints → out to 4; the new tasks are not running yet, so three more at the
        // same level ask for 4 again inside the cooldown (blocked: AWS counts the capacity
        // already added); a higher load asks for more (allowed).
        let mut pts = vec![(20.0, 2, false); 3];
        pts.extend([(20.0, 2, false); 3]);
        pts.extend([(40.0, 2, false); 3]);
        let d = feed(&pts);
        assert!(out(4)(&d[0].1), "{d:?}");
        assert!(matches!(d[1].1, Decision::Blocked { .. }), "{d:?}");
        assert!(out(8)(&d[2].1), "{d:?}");
    }

    #[test]
    fn scales_in_after_fifteen_datapoints_below_ninety_percent() {
        let mut pts = vec![(5.0, 4, false); 14];
        assert!(feed(&pts).is_empty());
        pts.push((5.0, 4, false));
        let d = feed(&pts);
        // ceil(4 × 5 / 10) = 2.
        assert!(
            matches!(d[..], [(14, Decision::ScaleIn { to: 2, .. })]),
            "{d:?}"
        );
        // Below 90% but ceil(4 × 8.9 / 10) = 4: nothing to shed.
        assert!(feed(&vec![(8.9, 4, false); 15]).is_empty());
    }

    #[test]
    fn between_ninety_and_a_hundred_percent_nothing_happens() {
        assert!(feed(&vec![(9.5, 4, false); 40]).is_empty());
    }

    #[test]
    fn no_scale_in_during_a_deployment_and_min_holds() {
        let d = feed(&vec![(1.0, 4, true); 15]);
        assert!(
            matches!(d[0].1, Decision::Blocked { ref reason } if reason.contains("deployment")),
            "{d:?}"
        );
        let d = feed(&vec![(0.0, 4, false); 15]);
        assert!(
            matches!(d[0].1, Decision::ScaleIn { to: 1, .. }),
            "min is 1: {d:?}"
        );
    }

    #[test]
    fn scale_in_cooldown_spaces_scale_ins() {
        let d = feed(&vec![(2.0, 8, false); 30]);
        // minute 14: 8 → 2; minute 29: another 15 below, but 15 min after the last scale-in
        // (> 5 min cooldown), so allowed (tasks stay 8 in this feed: asks 2 again).
        assert!(
            matches!(d[0], (14, Decision::ScaleIn { to: 2, .. })),
            "{d:?}"
        );
        assert!(
            matches!(d[1], (29, Decision::ScaleIn { to: 2, .. })),
            "{d:?}"
        );
        let short = Policy {
            scale_in_cooldown: Duration::from_secs(60 * 20),
            ..POLICY
        };
        let mut tt = TargetTracking::default();
        let decisions: Vec<Decision> = (0..30)
            .map(|i| tt.datapoint(&short, minute(i), 2.0, 8, false))
            .filter(|d| *d != Decision::None)
            .collect();
        assert!(
            matches!(decisions[1], Decision::Blocked { ref reason } if reason.contains("cooldown")),
            "{decisions:?}"
        );
    }
}
