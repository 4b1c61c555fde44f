//! `compare.md`, `compare.json` and `compare.html`: a [`Comparison`] as a table a reviewer
//! reads in a PR comment, as JSON for tools, and as a page with the two runs' load and
//! latency overlaid. Formatting only; the verdicts are [`crate::compare`]'s.

use std::io::{self, Write};

use super::html_page::{Row, esc, figures, foot, head, table};
use super::markdown::{cell, table as md_table};
use crate::charts::overlay_charts;
use crate::compare::{Comparison, Direction, GateChange, MetricChange, RunRef, Verdict};
use crate::error::ReportError;
use crate::model::Report;

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) if v.abs() >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.4}"),
    }
}

fn signed(v: Option<f64>, suffix: &str) -> String {
    v.map_or("–".into(), |v| {
        format!("{}{}{suffix}", if v > 0.0 { "+" } else { "" }, fmt(Some(v)))
    })
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:+.1}%"))
}

fn passed(p: Option<bool>) -> &'static str {
    match p {
        Some(true) => "pass",
        Some(false) => "fail",
        None => "–",
    }
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::HigherIsBetter => "↑",
        Direction::LowerIsBetter => "↓",
    }
}

fn headline(c: &Comparison) -> String {
    let worse = c
        .metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Worse)
        .count();
    let better = c
        .metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Better)
        .count();
    match c.regressions {
        0 => format!("no regression ({worse} worse, {better} better)"),
        n => format!("{n} regressions ({worse} more metrics worse, {better} better)"),
    }
}

fn run_line(label: &str, r: &RunRef) -> String {
    format!(
        "{label}: run {} of {} ({} target{}, seed {}, started {}) from {}",
        r.run_id,
        r.scenario,
        r.target_kind,
        r.mode
            .as_deref()
            .map_or(String::new(), |m| format!(", {m}")),
        r.seed,
        r.started_at,
        r.source
    )
}

fn metric_cells(m: &MetricChange) -> Vec<String> {
    vec![
        m.name.clone(),
        direction(m.direction).into(),
        fmt(m.base),
        fmt(m.candidate),
        signed(m.delta, ""),
        pct(m.delta_pct),
        format!("±{}", fmt(Some(m.noise))),
        m.verdict.as_str().into(),
    ]
}

fn gate_cells(g: &GateChange) -> Vec<String> {
    vec![
        g.name.clone(),
        passed(g.base_passed).into(),
        passed(g.candidate_passed).into(),
        g.verdict.as_str().into(),
    ]
}

const METRIC_HEADERS: [&str; 8] = [
    "Metric",
    "Better",
    "Base",
    "Candidate",
    "Δ",
    "Δ%",
    "Noise",
    "Verdict",
];
const GATE_HEADERS: [&str; 4] = ["Gate", "Base", "Candidate", "Verdict"];

/// Writes `compare.md` (also what `dropzero compare` prints).
pub fn render_compare_markdown(c: &Comparison, out: &mut impl Write) -> Result<(), ReportError> {
    write_markdown(c, out).map_err(|source| ReportError::Write {
        format: "markdown",
        source,
    })
}

fn write_markdown(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    let mark = if c.regressions == 0 { "✅" } else { "❌" };
    writeln!(
        out,
        "# dropzero compare: {} — {mark} {}\n",
        cell(&c.candidate.scenario),
        headline(c)
    )?;
    writeln!(out, "- {}", cell(&run_line("Base", &c.base)))?;
    writeln!(out, "- {}", cell(&run_line("Candidate", &c.candidate)))?;
    if !c.mismatches.is_empty() {
        writeln!(
            out,
            "\n**Forced comparison of runs that are not comparable:** {}.",
            cell(&c.mismatches.join("; "))
        )?;
    }
    if let Some(n) = c.noise_pct {
        writeln!(out, "\nRelative noise threshold overridden: {n}%.")?;
    }
    if !c.gates.is_empty() {
        writeln!(out, "\n## Gates\n")?;
        let rows = c
            .gates
            .iter()
            .map(|g| gate_cells(g).iter().map(|s| cell(s)).collect::<Vec<_>>());
        md_table(out, &GATE_HEADERS, rows)?;
    }
    writeln!(out, "\n## Metrics\n")?;
    let rows = c
        .metrics
        .iter()
        .map(|m| metric_cells(m).iter().map(|s| cell(s)).collect::<Vec<_>>());
    md_table(out, &METRIC_HEADERS, rows)
}

/// Writes `compare.json` (pretty, trailing newline).
pub fn render_compare_json(c: &Comparison, out: &mut impl Write) -> Result<(), ReportError> {
    super::json::write_pretty(c, &c.candidate.run_id, out)
}

/// Writes `compare.html`: the verdict, the gate and metric tables, and the load and latency
/// time series of both runs overlaid (base faint, candidate solid).
pub fn render_compare_html(
    c: &Comparison,
    base: &Report,
    candidate: &Report,
    out: &mut impl Write,
) -> Result<(), ReportError> {
    let charts = overlay_charts(base, candidate)?;
    write_html(c, &charts, out).map_err(|source| ReportError::Write {
        format: "html",
        source,
    })
}

fn write_html(
    c: &Comparison,
    charts: &[crate::charts::Chart],
    out: &mut impl Write,
) -> io::Result<()> {
    head(out, &format!("dropzero compare: {}", c.candidate.scenario))?;
    writeln!(
        out,
        "<h1>dropzero compare: {}</h1>",
        esc(&c.candidate.scenario)
    )?;
    let class = if c.regressions == 0 { "pass" } else { "fail" };
    writeln!(
        out,
        "<p class=\"verdict {class}\">{}</p>",
        esc(&headline(c))
    )?;
    writeln!(out, "<ul>")?;
    for (label, r) in [("Base", &c.base), ("Candidate", &c.candidate)] {
        writeln!(out, "<li>{}</li>", esc(&run_line(label, r)))?;
    }
    writeln!(out, "</ul>")?;
    if !c.mismatches.is_empty() {
        writeln!(
            out,
            "<p class=\"verdict fail\">Forced comparison of runs that are not comparable: {}</p>",
            esc(&c.mismatches.join("; "))
        )?;
    }
    let class = |v: Verdict| match v {
        Verdict::Regression | Verdict::Worse => Some("bad"),
        Verdict::Better => Some("good"),
        Verdict::Same => None,
    };
    if !c.gates.is_empty() {
        writeln!(out, "<h2 id=\"gates\">Gates</h2>")?;
        let rows = c.gates.iter().map(|g| Row {
            class: class(g.verdict),
            cells: gate_cells(g),
        });
        table(out, &GATE_HEADERS, rows)?;
    }
    writeln!(out, "<h2 id=\"metrics\">Metrics</h2>")?;
    let rows = c.metrics.iter().map(|m| Row {
        class: class(m.verdict),
        cells: metric_cells(m),
    });
    table(out, &METRIC_HEADERS, rows)?;
    writeln!(out, "<h2 id=\"charts\">Base vs candidate</h2>")?;
    figures(out, charts)?;
    foot(out)
}
