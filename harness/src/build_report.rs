//! From what a run measured to a [`Report`], and from a report to its files. The numbers
//! follow MISSION.md's definitions; where one needs a choice, the choice is documented on
//! the function that makes it.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::Context;
use dropzero_reports as r;
use hdrhistogram::Histogram;

use crate::fleet::Target;
use crate::measure::Counters;
use crate::run::Measured;
use crate::scenario::{self, ScenarioPlan};
use crate::target_setup::AnyTarget;

pub struct Inputs<'a> {
    pub plan: &'a ScenarioPlan,
    pub run_id: String,
    pub started_at: String,
    pub measured: &'a Measured,
    pub ledger: Option<&'a serde_json::Value>,
    pub target: &'a AnyTarget,
}

pub fn build(i: Inputs<'_>) -> r::Report {
    let plan = i.plan;
    let m = i.measured;
    let c = &m.collector.counters;
    let h = m.collector.merged();
    let reasons = |map: &std::sync::Mutex<std::collections::BTreeMap<String, u64>>| {
        let guard = match map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard
            .iter()
            .map(|(reason, &count)| r::ReasonCount {
                reason: reason.clone(),
                count,
            })
            .collect()
    };
    let mut errors = m.errors.clone();
    let mut tokens = token_totals(plan, m, i.ledger, &mut errors);
    tokens.budget_overshoot_max_tokens = match m.collector.budget_overshoot_max.lock() {
        Ok(g) => *g,
        Err(p) => *p.into_inner(),
    };
    tokens.budget_overshoot_max_usd = match m.collector.budget_overshoot_max_usd.lock() {
        Ok(g) => *g,
        Err(p) => *p.into_inner(),
    };
    let (model, peak_users, peak_rate) = match &plan.load {
        scenario::LoadPlan::Closed(cl) => (
            "closed",
            cl.stages.iter().map(|s| u64::from(s.users)).max(),
            None,
        ),
        scenario::LoadPlan::Open(o) => (
            "open",
            None,
            o.stages.iter().map(|s| s.rate).reduce(f64::max),
        ),
    };
    // The local fleet's settings: the local target's, or the fleet under the ECS emulator.
    let local = match &plan.target {
        scenario::TargetPlan::Local(l) => Some(l),
        scenario::TargetPlan::Ecs(e) => e.emulator.as_ref().map(|em| &em.fleet),
        scenario::TargetPlan::Url(_) => None,
    };
    let (mode, replicas, journal) = match local {
        Some(l) => (
            Some(format!("{:?}", l.mode).to_lowercase()),
            l.replicas,
            Some(match &l.journal {
                scenario::Journal::Memory => "memory".to_string(),
                scenario::Journal::Sqlite => "sqlite".to_string(),
                scenario::Journal::Redis { .. } => "redis".to_string(),
            }),
        ),
        _ => (None, 0, None),
    };
    let prices = (
        plan.llm.price.input_per_mtok,
        plan.llm.price.output_per_mtok,
    );
    let mut report = r::Report {
        schema_version: r::SchemaVersion,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: i.run_id,
        started_at: i.started_at,
        finished_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        scenario: r::ScenarioInfo {
            name: plan.name.clone(),
            description: plan.description.clone(),
            seed: plan.seed,
            time_scale: plan.time_scale,
            file: plan.file.display().to_string(),
        },
        target: r::TargetInfo {
            kind: i.target.kind().to_string(),
            mode,
            replicas,
            journal,
        },
        load: r::LoadInfo {
            model: model.to_string(),
            peak_users,
            peak_rate_per_s: peak_rate,
            duration_s: plan.duration.as_secs_f64(),
            late_starts: m.load.late_starts,
            goose: m.load.goose.as_ref().map(goose_info),
        },
        gates: Vec::new(),
        sessions: session_counts(c),
        drop_reasons: reasons(&m.collector.drop_reasons),
        interruption_reasons: reasons(&m.collector.interruption_reasons),
        events: r::EventCounts {
            received: Counters::get(&c.events),
            lost: Counters::get(&c.lost_events),
            duplicated: Counters::get(&c.duplicated_events),
            content_mismatches: Counters::get(&c.content_mismatches),
        },
        tokens,
        latency: r::Latencies {
            ttft_ms: summary(&h.ttft, 1e-3),
            itl_ms: summary(&h.itl, 1e-3),
            resume_ms: summary(&h.resume, 1e-3),
            takeover_ms: summary(&h.takeover, 1e-3),
            session_s: summary(&h.session, 1e-6),
            create_ms: summary(&h.create, 1e-3),
        },
        faults: m.faults.records(prices),
        fault_series: m.faults.series(prices),
        replicas: replica_records(i.target, m.start),
        replica_peak_rss_mb: None,
        survivor_peak_rss_mb: None,
        autoscaling: match (i.target, &plan.autoscaling) {
            (AnyTarget::Ecs(t, _), Some(a)) => {
                let activities: Vec<_> = t.observed().activities.into_values().collect();
                let observed = crate::fleet::ecs::scaling::report(
                    a,
                    plan.time_scale,
                    &activities,
                    &m.timeline.points,
                    m.started_wall,
                );
                Some(autoscaling_report(plan, observed, &m.timeline.points))
            }
            _ => m
                .autoscale
                .as_ref()
                .map(|log| autoscaling_report(plan, log.report(), &m.timeline.points)),
        },
        ecs: match i.target {
            AnyTarget::Ecs(t, _) => {
                let run_start = std::time::SystemTime::now() - m.start.elapsed();
                let endpoint = match &plan.target {
                    scenario::TargetPlan::Ecs(e) if e.emulator.is_some() => "emulator".to_string(),
                    scenario::TargetPlan::Ecs(e) => {
                        e.endpoint_url.clone().unwrap_or_else(|| "aws".into())
                    }
                    _ => String::new(),
                };
                if let Some(last) = t.observed().last_error {
                    errors.push(format!("ECS observation: last failed poll: {last}"));
                }
                Some(crate::fleet::ecs::report::section(t, &endpoint, run_start))
            }
            _ => None,
        },
        halted: m.halted.clone(),
        timeline: m.timeline.points.clone(),
        errors,
    };
    (report.replica_peak_rss_mb, report.survivor_peak_rss_mb) = peak_rss(&report.replicas);
    let mut specs: Vec<r::GateSpec> = r::default_gates().to_vec();
    specs.extend(plan.gates.iter().filter_map(gate_spec));
    report.gates = r::evaluate(&specs, &report);
    report
}

/// Outcome counts as the report defines them: every started session has exactly one outcome,
/// and `resumed` is a subset of `completed` (the collector counts the two apart).
fn session_counts(c: &Counters) -> r::SessionCounts {
    r::SessionCounts {
        started: Counters::get(&c.started) - Counters::get(&c.not_started),
        completed: Counters::get(&c.completed) + Counters::get(&c.resumed),
        resumed: Counters::get(&c.resumed),
        dropped: Counters::get(&c.dropped),
        failed: Counters::get(&c.failed),
        cancelled: Counters::get(&c.cancelled),
        budget_exceeded: Counters::get(&c.budget_exceeded),
        not_started: Counters::get(&c.not_started),
        interrupted_streams: Counters::get(&c.interruptions),
    }
}

/// Scenario gates → report gate specs. Data-loss gates are always evaluated with limit 0 by
/// `default_gates` (MISSION: data loss always fails), so the scenario's copies are skipped.
fn gate_spec(g: &scenario::Gate) -> Option<r::GateSpec> {
    use scenario::Gate as G;
    Some(match g {
        G::DroppedSessions(max) => r::GateSpec::DroppedSessions { max: *max },
        G::LostEvents(_) | G::DuplicatedEvents(_) | G::ContentMismatches(_) => return None,
        G::TtftP99(d) => r::GateSpec::TtftP99 { max: *d },
        G::ItlP99(d) => r::GateSpec::ItlP99 { max: *d },
        G::ResumeP99(d) => r::GateSpec::ResumeP99 { max: *d },
        G::WastedTokenRatio(f) => r::GateSpec::WastedTokenRatio {
            max: r::Fraction::new(*f).ok()?,
        },
        G::ErrorRate(f) => r::GateSpec::ErrorRate {
            max: r::Fraction::new(*f).ok()?,
        },
        G::ScaleOutReaction(d) => r::GateSpec::ScaleOutReaction { max: *d },
        G::SloRecovery(d) => r::GateSpec::SloRecovery { max: *d },
        G::FailedDeployments(n) => r::GateSpec::FailedDeployments { max: *n },
        G::ReplicaPeakRssMb(mb) => r::GateSpec::ReplicaPeakRssMb { max_mb: *mb },
    })
}

/// Histogram (recorded in µs) → summary in the unit `scale` converts to.
fn summary(h: &Histogram<u64>, scale: f64) -> r::LatencySummary {
    if h.is_empty() {
        return r::LatencySummary {
            count: 0,
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            max: 0.0,
            mean: 0.0,
            spectrum: Vec::new(),
        };
    }
    let q = |q: f64| h.value_at_quantile(q) as f64 * scale;
    r::LatencySummary {
        count: h.len(),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: h.max() as f64 * scale,
        mean: h.mean() * scale,
        spectrum: spectrum(h, scale),
    }
}

/// The percentile spectrum as HdrHistogram's percentile output walks it, at 2 ticks per
/// half distance (the `.hgrm` files use 5): about 4 points per doubling of the sample count
/// in the tail, so a run of a million samples adds some 80 points per metric.
fn spectrum(h: &Histogram<u64>, scale: f64) -> Vec<r::SpectrumPoint> {
    let mut points: Vec<r::SpectrumPoint> = Vec::new();
    for v in h.iter_quantiles(2) {
        let point = r::SpectrumPoint {
            percentile: v.quantile_iterated_to() * 100.0,
            value: v.value_iterated_to() as f64 * scale,
        };
        // The walk can repeat a percentile at the end; keep the last value of each.
        match points.last_mut() {
            Some(last) if last.percentile >= point.percentile => last.value = point.value,
            _ => points.push(point),
        }
    }
    points.retain(|p| p.percentile > 0.0);
    points
}

/// Billed tokens come from the mock LLM's ledger (the provider's truth). Delivered tokens
/// are the token events clients received in sessions that completed. Wasted output, per
/// session in the ledger: everything billed for a session that did not complete, and, for a
/// completed one, what was billed beyond the output the runtime accounted for in `done`
/// (tokens generated again after a crash). Without a ledger, billed and wasted are zero and
/// an error line says why.
fn token_totals(
    plan: &ScenarioPlan,
    m: &Measured,
    ledger: Option<&serde_json::Value>,
    errors: &mut Vec<String>,
) -> r::TokenTotals {
    let sessions = match m.collector.session_tokens.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let delivered: u64 = sessions
        .iter()
        .filter(|s| s.completed)
        .map(|s| s.delivered)
        .sum();
    let Some(ledger) = ledger else {
        errors.push(
            "no billing ledger (target has no mock LLM): billed and wasted tokens are unknown"
                .into(),
        );
        return r::TokenTotals {
            billed_input: 0,
            billed_output: 0,
            delivered,
            wasted: 0,
            wasted_input: 0,
            wasted_ratio: None,
            cost_usd: 0.0,
            wasted_cost_usd: 0.0,
            budget_overshoot_max_tokens: None,
            budget_overshoot_max_usd: None,
            llm_requests: None,
            llm_errors: None,
            llm_cut_responses: None,
        };
    };
    let u =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let total = &ledger["total"];
    let by_id: HashMap<&str, &crate::measure::recorder::SessionTokens> = sessions
        .iter()
        .map(|s| (s.session_id.as_str(), s))
        .collect();
    let mut wasted = 0;
    let mut wasted_input = 0;
    if let Some(per_session) = ledger
        .get("sessions")
        .and_then(serde_json::Value::as_object)
    {
        for (id, entry) in per_session {
            let billed = u(entry, "output_tokens");
            let session = by_id.get(id.as_str());
            let billed_in = u(entry, "input_tokens");
            let (waste, waste_in) = match session {
                Some(s) if s.completed => (
                    billed.saturating_sub(s.usage_output),
                    s.usage_input
                        .map_or(0, |used| billed_in.saturating_sub(used)),
                ),
                _ => (billed, billed_in),
            };
            wasted += waste;
            wasted_input += waste_in;
            if let Some(fault) = session.and_then(|s| s.fault) {
                m.faults
                    .add_waste(crate::faults::FaultId(fault), waste, waste_in);
            }
        }
    }
    let billed_output = u(total, "output_tokens");
    r::TokenTotals {
        billed_input: u(total, "input_tokens"),
        billed_output,
        delivered,
        wasted,
        wasted_ratio: r::TokenTotals::ratio(wasted, billed_output),
        cost_usd: total
            .get("cost_usd")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0),
        wasted_cost_usd: (wasted as f64 * plan.llm.price.output_per_mtok
            + wasted_input as f64 * plan.llm.price.input_per_mtok)
            / 1e6,
        wasted_input,
        budget_overshoot_max_tokens: None,
        budget_overshoot_max_usd: None,
        llm_requests: Some(u(total, "requests")),
        llm_errors: Some(u(total, "errors")),
        llm_cut_responses: Some(u(total, "cut_responses")),
    }
}

/// The autoscaler's record, completed from the timeline: per reaction the SLO recovery and
/// the seconds over the SLO while capacity was not ready; task-seconds over and under
/// `ceil(active sessions / target)`.
fn autoscaling_report(
    plan: &ScenarioPlan,
    mut report: r::AutoscalingReport,
    points: &[r::TimelinePoint],
) -> r::AutoscalingReport {
    let gate = |want: fn(&scenario::Gate) -> Option<std::time::Duration>| {
        plan.gates
            .iter()
            .find_map(want)
            .map(|d| d.as_secs_f64() * 1e3)
    };
    let ttft_gate = gate(|g| match g {
        scenario::Gate::TtftP99(d) => Some(*d),
        _ => None,
    });
    let itl_gate = gate(|g| match g {
        scenario::Gate::ItlP99(d) => Some(*d),
        _ => None,
    });
    let over = |p: &r::TimelinePoint| {
        let bad = |v: Option<f64>, g: Option<f64>| matches!((v, g), (Some(v), Some(g)) if v > g);
        bad(p.ttft_p99_ms, ttft_gate) || bad(p.itl_p99_ms, itl_gate)
    };
    const HOLD: usize = 5;
    for reaction in &mut report.reactions {
        let after: Vec<&r::TimelinePoint> = points
            .iter()
            .filter(|p| p.t_s >= reaction.breach_s)
            .collect();
        if ttft_gate.is_some() || itl_gate.is_some() {
            reaction.slo_recovered_s = (0..after.len())
                .find(|&i| after[i..].iter().take(HOLD).all(|p| !over(p)))
                .map(|i| after[i].t_s);
        }
        let lag_end = reaction.ready_s.unwrap_or(f64::INFINITY);
        reaction.seconds_over_slo_during_lag =
            after.iter().filter(|p| p.t_s <= lag_end && over(p)).count() as u64;
    }
    let target = plan.autoscaling.map_or(1.0, |a| a.target_value);
    for p in points {
        let (Some(running), Some(_)) = (p.running_tasks, p.desired_tasks) else {
            continue;
        };
        let needed = ((p.active_sessions as f64 / target).ceil()).max(1.0);
        let running = f64::from(running);
        report.task_seconds_over += (running - needed).max(0.0);
        report.task_seconds_under += (needed - running).max(0.0);
    }
    report
}

/// The largest peak RSS over every replica, and over those still running at the end (no
/// `stopped_s`: the harness stopped them only after the run).
fn peak_rss(replicas: &[r::ReplicaRecord]) -> (Option<u64>, Option<u64>) {
    let all = replicas.iter().filter_map(|x| x.peak_rss_mb).max();
    let survivors = replicas
        .iter()
        .filter(|x| x.stopped_s.is_none())
        .filter_map(|x| x.peak_rss_mb)
        .max();
    (all, survivors)
}

/// Every replica a local target ran, with its version and how it ended.
fn replica_records(target: &AnyTarget, start: tokio::time::Instant) -> Vec<r::ReplicaRecord> {
    let AnyTarget::Local(fleet) = target else {
        return Vec::new();
    };
    let start = start.into_std();
    let secs = |t: std::time::Instant| t.saturating_duration_since(start).as_secs_f64();
    fleet
        .all_replicas()
        .iter()
        .map(|x| {
            // `stopped_at` is set by faults and for replicas that died by themselves, not for
            // those the harness stopped at the end of the run (they were still serving).
            let stopped = x.stopped_at();
            r::ReplicaRecord {
                id: x.id.clone(),
                version: x.version.clone(),
                started_s: secs(x.started_at.into_std()),
                stopped_s: stopped.map(|t| secs(t.into_std())),
                exit: stopped.and(
                    x.child
                        .exit_status()
                        .map(|s| crate::fleet::process::describe_exit(Some(s))),
                ),
                peak_rss_mb: x.peak_rss_mb(),
            }
        })
        .collect()
}

/// `report.json`, `report.md`, `junit.xml`, then `index.html` into `dir`.
pub fn write_all(report: &r::Report, dir: &Path) -> anyhow::Result<()> {
    let open = |name: &str| -> anyhow::Result<BufWriter<File>> {
        let path = dir.join(name);
        Ok(BufWriter::new(
            File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    r::render_json(report, &mut open("report.json")?).context("writing report.json")?;
    r::render_markdown(report, &mut open("report.md")?).context("writing report.md")?;
    r::render_junit(report, &mut open("junit.xml")?).context("writing junit.xml")?;
    write_index(report, dir)
}

/// `index.html`, written last so it can link every other file of the run directory. Also
/// used by `dropzero report` when it re-renders a report.json.
pub fn write_index(report: &r::Report, dir: &Path) -> anyhow::Result<()> {
    let names = crate::artefacts::list(dir)?;
    let path = dir.join("index.html");
    let mut out = BufWriter::new(
        File::create(&path).with_context(|| format!("creating {}", path.display()))?,
    );
    r::render_html(report, &names, &mut out).context("writing index.html")?;
    std::io::Write::flush(&mut out).with_context(|| format!("writing {}", path.display()))
}

/// Write `latency.hlog` and `ttft.hgrm`, `itl.hgrm`, `resume.hgrm` (whole run) into `dir`.
pub fn write_histograms(measured: &crate::run::Measured, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("latency.hlog");
    let mut out = BufWriter::new(
        File::create(&path).with_context(|| format!("creating {}", path.display()))?,
    );
    measured
        .hlog
        .write(&mut out, measured.started_wall)
        .and_then(|()| std::io::Write::flush(&mut out))
        .with_context(|| format!("writing {}", path.display()))?;
    let h = measured.collector.merged();
    crate::measure::hlog::write_hgrms(
        dir,
        &[("ttft", &h.ttft), ("itl", &h.itl), ("resume", &h.resume)],
    )
    .with_context(|| format!("writing the .hgrm files in {}", dir.display()))
}

/// Goose's summary as the report carries it, rows sorted by name.
fn goose_info(g: &crate::load::goose::GooseSummary) -> r::GooseInfo {
    let mut requests: Vec<r::GooseRequestRow> = g
        .requests
        .iter()
        .map(|q| r::GooseRequestRow {
            method: q.method.clone(),
            name: q.name.clone(),
            success: q.success,
            fail: q.fail,
            mean_ms: q.mean_ms,
            p50_ms: q.p50_ms,
            p99_ms: q.p99_ms,
            max_ms: q.max_ms,
            status_codes: q
                .status_codes
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect(),
        })
        .collect();
    requests.sort_by(|a, b| a.name.cmp(&b.name));
    r::GooseInfo {
        maximum_users: g.maximum_users,
        total_users: g.total_users,
        sessions: g.sessions,
        html_report: g.html_report.clone(),
        requests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_sum_to_started_and_resumed_sessions_count_as_completed() {
        let c = Counters::default();
        // 10 created: 4 completed cleanly, 3 resumed, 1 dropped, 1 failed, 1 over budget,
        // and 2 more that never started.
        for (counter, n) in [
            (&c.started, 12),
            (&c.not_started, 2),
            (&c.completed, 4),
            (&c.resumed, 3),
            (&c.dropped, 1),
            (&c.failed, 1),
            (&c.budget_exceeded, 1),
        ] {
            Counters::add(counter, n);
        }
        let s = session_counts(&c);
        assert_eq!((s.started, s.completed, s.resumed), (10, 7, 3));
        assert_eq!(
            s.completed + s.dropped + s.failed + s.cancelled + s.budget_exceeded,
            s.started
        );
    }
}
