//! `index.html`: the page a person opens after a run. Gate table first (the verdict), then
//! the charts as inline SVG, the drain account, the faults and latency tables, and links to
//! every other file of the run directory. One self-contained file: no network, no script.
//!
//! `report.md` stays the CI summary; this page is for reading a run as a story in time. It
//! formats only; the charts come from [`crate::charts`].

use std::io::{self, Write};

use super::html_page::{Row, artefacts, esc, figures, foot, head, table};
use crate::charts::{Chart, fault_label, report_charts};
use crate::error::ReportError;
use crate::gates::all_passed;
use crate::model::{FaultRecord, LatencySummary, Report};

/// Writes `index.html`. `artefacts` are the names of the files in the run directory (this
/// page's own name is skipped); each becomes a relative link.
pub fn render_html(
    report: &Report,
    artefacts: &[String],
    out: &mut impl Write,
) -> Result<(), ReportError> {
    let charts = report_charts(report)?;
    write_page(report, &charts, artefacts, out).map_err(|source| ReportError::Write {
        format: "html",
        source,
    })
}

fn write_page(
    r: &Report,
    charts: &[Chart],
    names: &[String],
    out: &mut impl Write,
) -> io::Result<()> {
    head(out, &format!("dropzero: {}", r.scenario.name))?;
    let passed = all_passed(r);
    let failed = r.gates.iter().filter(|g| !g.passed).count();
    let verdict = match &r.halted {
        Some(why) => format!("halted: {why}"),
        None if r.gates.is_empty() => "no gates were evaluated".into(),
        None if passed => format!("all {} gates passed", r.gates.len()),
        None => format!("{failed} of {} gates failed", r.gates.len()),
    };
    writeln!(out, "<h1>dropzero: {}</h1>", esc(&r.scenario.name))?;
    writeln!(
        out,
        "<p class=\"verdict {}\">{}</p>",
        if passed { "pass" } else { "fail" },
        esc(&verdict)
    )?;
    let gates = r.gates.iter().map(|g| Row {
        class: Some(if g.passed { "good" } else { "bad" }),
        cells: vec![
            if g.passed { "pass" } else { "FAIL" }.into(),
            g.name.clone(),
            super::markdown::value(g.threshold, &g.unit),
            g.observed
                .map_or("n/a".into(), |o| super::markdown::value(o, &g.unit)),
            g.message.clone(),
        ],
    });
    table(out, &["", "Gate", "Threshold", "Observed", "Detail"], gates)?;
    run_line(out, r)?;

    writeln!(out, "<h2 id=\"charts\">Charts</h2>")?;
    if charts.is_empty() {
        writeln!(out, "<p>The run recorded no data to chart.</p>")?;
    }
    figures(out, charts)?;

    sessions(out, r)?;
    drain_account(out, &r.faults)?;
    faults(out, &r.faults)?;
    latency(out, r)?;
    if !r.errors.is_empty() {
        writeln!(out, "<h2>Harness warnings</h2>\n<ul>")?;
        for e in &r.errors {
            writeln!(out, "<li>{}</li>", esc(e))?;
        }
        writeln!(out, "</ul>")?;
    }
    artefacts(out, names, "index.html")?;
    foot(out)
}

fn run_line(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let t = &r.target;
    writeln!(
        out,
        "<p>Run <code>{}</code> · target {} ({}, {} replicas) · {} load, {} s · seed {} · \
         time scale {} · {} → {} · dropzero {}</p>",
        esc(&r.run_id),
        esc(&t.kind),
        esc(t.mode.as_deref().unwrap_or("mode unknown")),
        t.replicas,
        esc(&r.load.model),
        r.load.duration_s,
        r.scenario.seed,
        r.scenario.time_scale,
        esc(&r.started_at),
        esc(&r.finished_at),
        esc(&r.tool_version)
    )?;
    if !r.scenario.description.is_empty() {
        writeln!(out, "<p><em>{}</em></p>", esc(&r.scenario.description))?;
    }
    Ok(())
}

fn sessions(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let s = &r.sessions;
    let e = &r.events;
    let k = &r.tokens;
    writeln!(out, "<h2 id=\"sessions\">Sessions, events, tokens</h2>")?;
    let row = [
        s.started,
        s.completed,
        s.resumed,
        s.dropped,
        s.failed,
        s.interrupted_streams,
        e.lost,
        e.duplicated,
        e.content_mismatches,
        k.wasted,
    ]
    .map(|n| n.to_string())
    .to_vec();
    let bad = s.dropped + e.lost + e.duplicated + e.content_mismatches > 0;
    let mut cells = row;
    cells.push(format!("${:.4}", k.wasted_cost_usd));
    table(
        out,
        &[
            "Started",
            "Completed",
            "Resumed",
            "Dropped",
            "Failed",
            "Interrupted streams",
            "Lost events",
            "Duplicated",
            "Content mismatches",
            "Wasted tokens",
            "Wasted cost",
        ],
        [Row {
            class: bad.then_some("bad"),
            cells,
        }],
    )?;
    for (title, reasons) in [
        ("Drop reasons", &r.drop_reasons),
        ("Interruption reasons", &r.interruption_reasons),
    ] {
        if !reasons.is_empty() {
            writeln!(out, "<h3>{title}</h3>")?;
            let rows = reasons
                .iter()
                .map(|x| Row::new(vec![x.reason.clone(), x.count.to_string()]));
            table(out, &["Reason", "Count"], rows)?;
        }
    }
    Ok(())
}

fn opt(v: Option<u64>) -> String {
    v.map_or("?".into(), |n| n.to_string())
}

/// One row per replica a fault stopped: what was in flight and what became of it.
fn drain_account(out: &mut impl Write, faults: &[FaultRecord]) -> io::Result<()> {
    let rows: Vec<Row> = faults
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.stops.iter().map(move |s| (i, f, s)))
        .map(|(i, f, s)| Row {
            class: (s.severed.unwrap_or(0) > 0).then_some("bad"),
            cells: vec![
                fault_label(i, f),
                s.replica.clone(),
                s.version.clone(),
                s.how.clone(),
                opt(s.in_flight_at_signal),
                opt(s.finished_during_drain),
                opt(s.handed_off),
                opt(s.severed),
                if s.sigkill { "yes" } else { "no" }.into(),
                s.exit.clone(),
                format!("{:.1} s", s.stop_s),
            ],
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2 id=\"drain\">Drain account</h2>")?;
    table(
        out,
        &[
            "Fault",
            "Replica",
            "Version",
            "How",
            "In flight",
            "Finished",
            "Handed off",
            "Severed",
            "SIGKILL",
            "Exit",
            "Stop",
        ],
        rows,
    )
}

fn faults(out: &mut impl Write, faults: &[FaultRecord]) -> io::Result<()> {
    writeln!(out, "<h2 id=\"faults\">Faults</h2>")?;
    if faults.is_empty() {
        return writeln!(out, "<p>No faults were injected.</p>");
    }
    let rows = faults.iter().enumerate().map(|(i, f)| Row {
        class: (f.dropped > 0).then_some("bad"),
        cells: vec![
            fault_label(i, f),
            format!("{:.1} s", f.started_s),
            f.ended_s
                .map_or("still running".into(), |e| format!("{e:.1} s")),
            f.interrupted.to_string(),
            f.resume_ms.as_ref().map_or(0, |s| s.count).to_string(),
            f.dropped.to_string(),
            format!("{} / {}", f.wasted_tokens, f.wasted_input_tokens),
            format!("${:.4}", f.wasted_cost_usd),
            f.resume_ms
                .as_ref()
                .map_or("–".into(), |s| format!("{:.0} ms", s.p99)),
            f.notes.join("; "),
        ],
    });
    table(
        out,
        &[
            "Fault",
            "Started",
            "Ended",
            "Interrupted",
            "Resumed",
            "Dropped",
            "Wasted output / input",
            "Wasted cost",
            "Resume p99",
            "Notes",
        ],
        rows,
    )
}

fn latency(out: &mut impl Write, r: &Report) -> io::Result<()> {
    writeln!(out, "<h2 id=\"latency\">Latency</h2>")?;
    let l = &r.latency;
    let row = |name: &str, s: &LatencySummary| {
        let mut cells = vec![name.to_string(), s.count.to_string()];
        if s.count == 0 {
            cells.extend(std::iter::repeat_n("–".to_string(), 5));
        } else {
            cells.extend([s.p50, s.p90, s.p99, s.max, s.mean].map(|v| format!("{v:.1}")));
        }
        Row::new(cells)
    };
    let rows = [
        ("TTFT (ms)", &l.ttft_ms),
        ("ITL (ms)", &l.itl_ms),
        ("Resume (ms)", &l.resume_ms),
        ("Takeover gap (ms)", &l.takeover_ms),
        ("Session (s)", &l.session_s),
        ("Create (ms)", &l.create_ms),
    ]
    .map(|(n, s)| row(n, s));
    table(
        out,
        &["", "Count", "p50", "p90", "p99", "Max", "Mean"],
        rows,
    )
}
