//! `capacity.md` and the capacity `junit.xml`: the verdict first (knee, target value, the
//! Terraform line), then the curve; in JUnit one testcase per level, failed when the level
//! is outside the SLO. Formatting only: every number is already in the [`CapacityReport`].

use std::io::{self, Write};

use crate::capacity::CapacityReport;
use crate::error::ReportError;
use crate::render::junit::{escape, suite_header};

/// Writes `capacity.md`.
pub fn render_capacity_markdown(
    report: &CapacityReport,
    out: &mut impl Write,
) -> Result<(), ReportError> {
    write_markdown(report, out).map_err(|source| ReportError::Write {
        format: "markdown",
        source,
    })
}

fn write_markdown(r: &CapacityReport, out: &mut impl Write) -> io::Result<()> {
    match (r.knee, &r.recommendation) {
        (Some(knee), Some(rec)) => {
            writeln!(
                out,
                "# dropzero capacity: {} — ✅ knee at {knee} concurrent sessions per task",
                r.scenario
            )?;
            writeln!(out)?;
            writeln!(
                out,
                "**Recommended autoscaling target: {} active sessions per task** \
                 (floor({knee} × headroom {})).",
                rec.target_value, rec.headroom
            )?;
            writeln!(out)?;
            writeln!(
                out,
                "Target tracking on average active sessions per task, in \
                 `aws_appautoscaling_policy.target_tracking_scaling_policy_configuration`:"
            )?;
            writeln!(out)?;
            writeln!(out, "```hcl")?;
            writeln!(out, "target_value = {}", rec.target_value)?;
            writeln!(out, "```")?;
            if let Some(p) = &rec.peak {
                writeln!(out)?;
                writeln!(
                    out,
                    "At a peak of {} sessions/s × {:.1} s mean session = {:.1} concurrent \
                     sessions: **{} tasks** at the target value.",
                    p.peak_rate_per_s,
                    r.mean_session_s,
                    p.concurrent_sessions_at_peak,
                    p.tasks_at_peak
                )?;
                match p.tasks_ahead_of_jump {
                    Some(n) => writeln!(
                        out,
                        "For a jump from {} to {} sessions/s with a {:.0} s scale-out lag: \
                         **{n} tasks** must already run (set `min_capacity` to at least this).",
                        p.base_rate_per_s, p.peak_rate_per_s, rec.scale_out_lag_s
                    )?,
                    None => writeln!(
                        out,
                        "No headroom (headroom 1.0): a jump cannot be absorbed while scaling out."
                    )?,
                }
            }
        }
        _ => {
            writeln!(
                out,
                "# dropzero capacity: {} — ❌ no level within the SLO",
                r.scenario
            )?;
            writeln!(out)?;
            writeln!(
                out,
                "Even the lowest level broke the SLO: one task cannot serve this mix; no target value."
            )?;
        }
    }
    writeln!(out)?;
    let slo =
        |v: Option<f64>, unit: &str| v.map_or("—".to_string(), |v| format!("{v:.0} {unit}"));
    writeln!(
        out,
        "SLO: TTFT p99 ≤ {}, ITL p99 ≤ {}, peak RSS ≤ {}; no drops, no failures. \
         One `{}` replica, open arrivals (Little's law: rate = level / {:.1} s), \
         steps of {:.0} s at time_scale {}.",
        slo(r.slo.ttft_p99_ms, "ms"),
        slo(r.slo.itl_p99_ms, "ms"),
        r.slo
            .max_rss_mb
            .map_or("—".to_string(), |m| format!("{m} MB")),
        r.mode,
        r.mean_session_s,
        r.step_duration_s,
        r.time_scale
    )?;
    if r.interrupted {
        writeln!(out)?;
        writeln!(
            out,
            "⚠️ interrupted (Ctrl-C): the curve covers the steps that ran."
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "| Level | Achieved | Rate /s | Sessions | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 | Dropped | Failed | Peak RSS | Within SLO |"
    )?;
    writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )?;
    for l in &r.levels {
        writeln!(
            out,
            "| {} | {:.1} | {:.3} | {} | {:.0} ms | {:.0} ms | {:.1} ms | {:.1} ms | {} | {} | {} | {} |",
            l.level,
            l.achieved_concurrency,
            l.arrival_rate_per_s,
            l.sessions,
            l.ttft_p50_ms,
            l.ttft_p99_ms,
            l.itl_p50_ms,
            l.itl_p99_ms,
            l.dropped,
            l.failed,
            l.peak_rss_mb.map_or("—".to_string(), |m| format!("{m} MB")),
            if l.within_slo {
                "✅ yes".to_string()
            } else {
                format!("❌ {}", l.violations.join("; "))
            }
        )?;
    }
    if !r.errors.is_empty() {
        writeln!(out)?;
        writeln!(out, "## Harness warnings")?;
        for e in &r.errors {
            writeln!(out, "- {e}")?;
        }
    }
    Ok(())
}

/// Writes the sweep as JUnit XML: one testcase per level.
pub fn render_capacity_junit(
    report: &CapacityReport,
    out: &mut impl Write,
) -> Result<(), ReportError> {
    write_junit(report, out).map_err(|source| ReportError::Write {
        format: "junit",
        source,
    })
}

fn write_junit(r: &CapacityReport, out: &mut impl Write) -> io::Result<()> {
    let suite = escape(&format!("dropzero.capacity.{}", r.scenario));
    let tests = r.levels.len();
    let failures = r.levels.iter().filter(|l| !l.within_slo).count();
    suite_header(out, &suite, tests, failures, &r.started_at)?;
    let knee = r.knee.map_or("none".to_string(), |k| k.to_string());
    let target = r
        .recommendation
        .as_ref()
        .map_or("none".to_string(), |t| t.target_value.to_string());
    for (name, value) in [
        ("run_id", r.run_id.clone()),
        ("knee", knee),
        ("target_value", target),
        ("time_scale", r.time_scale.to_string()),
        ("tool_version", r.tool_version.clone()),
    ] {
        writeln!(
            out,
            r#"      <property name="{name}" value="{}"/>"#,
            escape(&value)
        )?;
    }
    writeln!(out, "    </properties>")?;
    for l in &r.levels {
        let name = format!("level {} sessions", l.level);
        if l.within_slo {
            writeln!(out, r#"    <testcase name="{name}" classname="{suite}"/>"#)?;
            continue;
        }
        writeln!(out, r#"    <testcase name="{name}" classname="{suite}">"#)?;
        writeln!(
            out,
            r#"      <failure message="{}" type="slo">TTFT p99 {:.0} ms, ITL p99 {:.1} ms, dropped {}, failed {}</failure>"#,
            escape(&l.violations.join("; ")),
            l.ttft_p99_ms,
            l.itl_p99_ms,
            l.dropped,
            l.failed
        )?;
        writeln!(out, "    </testcase>")?;
    }
    if !r.errors.is_empty() {
        writeln!(
            out,
            "    <system-err>{}</system-err>",
            escape(&r.errors.join("\n"))
        )?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}
