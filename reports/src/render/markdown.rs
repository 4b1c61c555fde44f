//! `report.md`: a human summary sized for a GitHub pull-request comment or a CI job summary.
//!
//! Order follows DESIGN §9: the verdict and gate table first (what a reviewer needs), then
//! sessions, drop and interruption reasons, events, tokens and cost, latency, faults, and a
//! few lines about the timeline (the full timeline belongs in plots, not in a comment).
//! Every string that came from outside (scenario names, reasons, notes) is escaped so it
//! cannot break a table or inject HTML.

use std::io::{self, Write};

use crate::error::ReportError;
use crate::gates::all_passed;
use crate::model::{
    AutoscalingReport, GooseInfo, LatencySummary, ReasonCount, Report, TimelinePoint,
};

/// Writes `report` as GitHub-flavoured Markdown.
pub fn render_markdown(report: &Report, out: &mut impl Write) -> Result<(), ReportError> {
    write_report(report, out).map_err(|source| ReportError::Write {
        format: "markdown",
        source,
    })
}

fn write_report(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let failed = r.gates.iter().filter(|g| !g.passed).count();
    let verdict = if let Some(why) = &r.halted {
        format!("🛑 halted: {}", cell(why))
    } else if all_passed(r) {
        format!("✅ all {} gates passed", r.gates.len())
    } else if r.gates.is_empty() {
        "❌ no gates were evaluated".to_string()
    } else {
        format!("❌ {failed} of {} gates failed", r.gates.len())
    };
    writeln!(out, "# dropzero: {} — {verdict}\n", cell(&r.scenario.name))?;

    let gates = r.gates.iter().map(|g| {
        vec![
            if g.passed { "✅" } else { "❌" }.to_string(),
            format!("`{}`", cell(&g.name)),
            value(g.threshold, &g.unit),
            g.observed.map_or("n/a".into(), |o| value(o, &g.unit)),
            cell(&g.message),
        ]
    });
    table(out, &["", "Gate", "Threshold", "Observed", "Detail"], gates)?;

    let t = &r.target;
    let l = &r.load;
    let load = match (l.peak_users, l.peak_rate_per_s) {
        (Some(u), _) => format!("{u} users"),
        (None, Some(rate)) => format!("{} sessions/s", num(rate)),
        (None, None) => "unknown size".into(),
    };
    writeln!(
        out,
        "\nRun `{}` · target {} ({}, {} replicas, journal {}) · {} load, {load}, {} s · \
         seed {} · time scale {} · {} → {} · dropzero {}",
        cell(&r.run_id),
        cell(&t.kind),
        cell(t.mode.as_deref().unwrap_or("mode unknown")),
        t.replicas,
        cell(t.journal.as_deref().unwrap_or("unknown")),
        cell(&l.model),
        num(l.duration_s),
        r.scenario.seed,
        r.scenario.time_scale,
        cell(&r.started_at),
        cell(&r.finished_at),
        cell(&r.tool_version),
    )?;
    if !r.scenario.description.is_empty() {
        writeln!(out, "\n> {}", cell(&r.scenario.description))?;
    }

    let s = &r.sessions;
    writeln!(out, "\n## Sessions\n")?;
    table(
        out,
        &[
            "Started",
            "Completed",
            "Resumed",
            "Dropped",
            "Failed",
            "Cancelled",
            "Over budget",
            "Not started",
            "Interrupted streams",
        ],
        [[
            s.started,
            s.completed,
            s.resumed,
            s.dropped,
            s.failed,
            s.cancelled,
            s.budget_exceeded,
            s.not_started,
            s.interrupted_streams,
        ]
        .map(|n| n.to_string())
        .to_vec()],
    )?;
    if r.load.late_starts > 0 {
        writeln!(
            out,
            "\n{} sessions started late: the load generator fell behind its arrival schedule.",
            r.load.late_starts
        )?;
    }
    if let Some(g) = &r.load.goose {
        goose(out, g)?;
    }
    reasons(out, "Drop reasons", &r.drop_reasons)?;
    reasons(out, "Interruption reasons", &r.interruption_reasons)?;

    let e = &r.events;
    writeln!(out, "\n## Events\n")?;
    table(
        out,
        &["Received", "Lost", "Duplicated", "Content mismatches"],
        [[e.received, e.lost, e.duplicated, e.content_mismatches]
            .map(|n| n.to_string())
            .to_vec()],
    )?;

    let k = &r.tokens;
    writeln!(out, "\n## Tokens and cost\n")?;
    table(
        out,
        &[
            "Billed input",
            "Billed output",
            "Delivered",
            "Wasted",
            "Wasted ratio",
            "Wasted input",
            "Cost",
            "Wasted cost",
        ],
        [vec![
            k.billed_input.to_string(),
            k.billed_output.to_string(),
            k.delivered.to_string(),
            k.wasted.to_string(),
            k.wasted_ratio.map_or("n/a".into(), |w| value(w, "ratio")),
            k.wasted_input.to_string(),
            usd(k.cost_usd),
            usd(k.wasted_cost_usd),
        ]],
    )?;
    if let Some(requests) = k.llm_requests {
        writeln!(
            out,
            "\nLLM calls: {requests}, of which refused or failed (429/529/5xx): {}, cut mid-stream: {}.",
            k.llm_errors.unwrap_or(0),
            k.llm_cut_responses.unwrap_or(0)
        )?;
    }
    if let Some(over) = k.budget_overshoot_max_usd {
        writeln!(
            out,
            "\nLargest overshoot past a session's cost budget: {}.",
            usd(over)
        )?;
    }
    if let Some(over) = k.budget_overshoot_max_tokens {
        writeln!(
            out,
            "\nLargest overshoot past a session's output-token budget: {over} tokens."
        )?;
    }

    let lat = &r.latency;
    writeln!(out, "\n## Latency\n")?;
    let rows = [
        ("TTFT (ms)", &lat.ttft_ms),
        ("ITL (ms)", &lat.itl_ms),
        ("Resume (ms)", &lat.resume_ms),
        ("Takeover gap (ms)", &lat.takeover_ms),
        ("Session (s)", &lat.session_s),
        ("Create (ms)", &lat.create_ms),
    ]
    .map(|(name, l)| latency_row(name, l));
    table(
        out,
        &["", "Count", "p50", "p90", "p99", "Max", "Mean"],
        rows,
    )?;
    writeln!(
        out,
        "\nHdrHistogram files beside this report: `latency.hlog` (interval log, one interval per \
         second, tags `ttft`, `itl`, `resume`, values in µs) and `ttft.hgrm`, `itl.hgrm`, \
         `resume.hgrm` (percentile distributions in ms, for HistogramLogAnalyzer or \
         hdrhistogram.github.io/HdrHistogram/plotFiles.html)."
    )?;

    super::markdown_faults::faults(out, r)?;
    super::markdown_faults::replicas(out, r)?;

    if let Some(a) = &r.autoscaling {
        autoscaling(out, a, r.scenario.time_scale)?;
    }
    if let Some(e) = &r.ecs {
        super::markdown_ecs::ecs(out, e)?;
    }

    writeln!(out, "\n## Timeline\n")?;
    timeline_summary(out, &r.timeline)?;

    if !r.errors.is_empty() {
        writeln!(out, "\n## Harness warnings\n")?;
        for e in &r.errors {
            writeln!(out, "- {}", cell(e))?;
        }
    }
    Ok(())
}

/// The closed users as goose saw them: its users and each session's HTTP requests.
fn goose(out: &mut impl Write, g: &GooseInfo) -> io::Result<()> {
    writeln!(
        out,
        "\n### Closed users (goose)\n\n{} users at most, {} launched, {} sessions.{}\n",
        g.maximum_users,
        g.total_users,
        g.sessions,
        g.html_report
            .as_deref()
            .map(|f| format!(" Goose's own report: [{}]({}).", cell(f), cell(f)))
            .unwrap_or_default()
    )?;
    let rows = g.requests.iter().map(|q| {
        let codes: Vec<String> = q
            .status_codes
            .iter()
            .map(|(code, n)| format!("{}: {n}", cell(code)))
            .collect();
        vec![
            format!("{} {}", cell(&q.method), cell(&q.name)),
            q.success.to_string(),
            q.fail.to_string(),
            format!("{:.1}", q.p50_ms),
            format!("{:.1}", q.p99_ms),
            format!("{:.1}", q.max_ms),
            if codes.is_empty() {
                "none".into()
            } else {
                codes.join(", ")
            },
        ]
    });
    table(
        out,
        &[
            "Request",
            "Succeeded",
            "Failed",
            "p50 ms",
            "p99 ms",
            "Max ms",
            "Status codes",
        ],
        rows,
    )
}

fn reasons(out: &mut impl Write, title: &str, reasons: &[ReasonCount]) -> io::Result<()> {
    writeln!(out, "\n### {title}\n")?;
    if reasons.is_empty() {
        return writeln!(out, "None.");
    }
    let rows = reasons
        .iter()
        .map(|r| vec![cell(&r.reason), r.count.to_string()]);
    table(out, &["Reason", "Count"], rows)
}

pub(super) fn latency_row(name: &str, l: &LatencySummary) -> Vec<String> {
    let mut row = vec![name.to_string(), l.count.to_string()];
    if l.count == 0 {
        row.extend(std::iter::repeat_n("–".to_string(), 5));
    } else {
        row.extend([l.p50, l.p90, l.p99, l.max, l.mean].map(|v| format!("{v:.1}")));
    }
    row
}

fn timeline_summary(out: &mut impl Write, points: &[TimelinePoint]) -> io::Result<()> {
    let Some(last) = points.last() else {
        return writeln!(out, "No timeline was recorded.");
    };
    let peak = |f: fn(&TimelinePoint) -> f64| {
        points
            .iter()
            .map(|p| (f(p), p.t_s))
            .fold((f64::MIN, 0.0), |a, b| if b.0 > a.0 { b } else { a })
    };
    let (active, active_t) = peak(|p| p.active_sessions as f64);
    let (tps, tps_t) = peak(|p| p.tokens_per_s);
    let min_ready = points.iter().map(|p| p.replicas_ready).min().unwrap_or(0);
    let max_draining = points
        .iter()
        .map(|p| p.replicas_draining)
        .max()
        .unwrap_or(0);
    let drop_seconds: Vec<String> = points
        .iter()
        .filter(|p| p.drops > 0)
        .map(|p| format!("{} s ({})", num(p.t_s), p.drops))
        .collect();
    writeln!(out, "- {} samples over {} s", points.len(), num(last.t_s))?;
    writeln!(
        out,
        "- peak {} active sessions at {} s; peak {} tokens/s at {} s",
        num(active),
        num(active_t),
        num(tps),
        num(tps_t)
    )?;
    writeln!(
        out,
        "- replicas ready never below {min_ready}; at most {max_draining} draining at once"
    )?;
    writeln!(
        out,
        "- {} stream interruptions, {} sessions completed",
        points.iter().map(|p| p.interruptions).sum::<u64>(),
        points.iter().map(|p| p.completed).sum::<u64>()
    )?;
    const SHOWN: usize = 10;
    match drop_seconds.len() {
        0 => writeln!(out, "- no drops"),
        n if n <= SHOWN => writeln!(out, "- drops at {}", drop_seconds.join(", ")),
        n => writeln!(
            out,
            "- drops at {} and {} more seconds",
            drop_seconds[..SHOWN].join(", "),
            n - SHOWN
        ),
    }
}

pub(super) fn table<R: AsRef<[String]>>(
    out: &mut impl Write,
    headers: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> io::Result<()> {
    writeln!(out, "| {} |", headers.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(headers.len()))?;
    for row in rows {
        writeln!(out, "| {} |", row.as_ref().join(" | "))?;
    }
    Ok(())
}

/// Escapes text for a table cell or a line of prose: no pipes, no line breaks, no HTML.
pub(super) fn cell(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => s.push_str("\\|"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '&' => s.push_str("&amp;"),
            '`' => s.push('\''),
            '\r' | '\n' => s.push(' '),
            c => s.push(c),
        }
    }
    s
}

/// A gate value in its unit: counts as integers, milliseconds with one decimal, ratios in %.
pub(super) fn value(v: f64, unit: &str) -> String {
    match unit {
        "ratio" => format!("{:.2}%", v * 100.0),
        "ms" => format!("{v:.1} ms"),
        "count" => num(v),
        other => format!("{} {}", num(v), cell(other)),
    }
}

pub(super) fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

pub(super) fn usd(v: f64) -> String {
    format!("${v:.4}")
}

/// The autoscaler: its settings, reactions (wall and real time), decisions, scale-ins.
fn autoscaling(out: &mut impl Write, a: &AutoscalingReport, time_scale: f64) -> io::Result<()> {
    writeln!(out, "\n## Autoscaling\n")?;
    let real = |wall: f64| {
        if time_scale > 0.0 {
            wall / time_scale
        } else {
            wall
        }
    };
    writeln!(
        out,
        "Target tracking on average {} per task: target {}, {}..={} tasks, one datapoint every {} s wall ({} s real). \
         Scale-ins: {}; samples with the scale-in held back by protection: {}; sessions cut by scale-in: {}. \
         Task-seconds over / under `ceil(active / target)`: {} / {} (wall).",
        cell(&a.metric),
        num(a.target_value),
        a.min,
        a.max,
        num(a.datapoint_s),
        num(real(a.datapoint_s)),
        a.scale_ins,
        a.scale_ins_blocked_by_protection,
        a.scale_in_cut_sessions,
        num(a.task_seconds_over),
        num(a.task_seconds_under),
    )?;
    if !a.reactions.is_empty() {
        writeln!(
            out,
            "\n### Scale-out reactions\n\nSeconds after the breach (the first datapoint above target); real-world seconds in parentheses.\n"
        )?;
        let span = |to: Option<f64>, from: f64| {
            to.map_or("never".to_string(), |t| {
                format!("{} s ({} s)", num(t - from), num(real(t - from)))
            })
        };
        let rows = a.reactions.iter().map(|x| {
            vec![
                format!("{} s", num(x.breach_s)),
                span(Some(x.decision_s), x.breach_s),
                span(x.ready_s, x.breach_s),
                span(x.slo_recovered_s, x.breach_s),
                x.seconds_over_slo_during_lag.to_string(),
            ]
        });
        table(
            out,
            &[
                "Breach at",
                "→ decision",
                "→ capacity ready",
                "→ SLO recovered",
                "Seconds over SLO in the lag",
            ],
            rows,
        )?;
    }
    if !a.decisions.is_empty() {
        writeln!(out, "\n### Decisions\n")?;
        const SHOWN: usize = 20;
        let shown = a.decisions.iter().take(SHOWN);
        let rows = shown.map(|d| {
            vec![
                format!("{} s", num(d.t_s)),
                format!("`{}`", cell(&d.action)),
                format!("{} → {}", d.from, d.to),
                num(d.metric),
                cell(&d.reason),
            ]
        });
        table(out, &["At", "Action", "Tasks", "Metric", "Reason"], rows)?;
        if a.decisions.len() > SHOWN {
            writeln!(out, "\n({} more in report.json)", a.decisions.len() - SHOWN)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_a_table() {
        assert_eq!(cell("a|b\nc<d>&`"), "a\\|b c&lt;d&gt;&amp;'");
    }

    #[test]
    fn values_carry_their_unit() {
        let cases = [
            (0.02, "ratio", "2.00%"),
            (5000.0, "ms", "5000.0 ms"),
            (3.0, "count", "3"),
        ];
        for (v, unit, expected) in cases {
            assert_eq!(value(v, unit), expected, "{v} {unit}");
        }
    }
}
