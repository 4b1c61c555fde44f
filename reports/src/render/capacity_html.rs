//! The `index.html` of a `dropzero capacity` sweep: the verdict (knee, target value), the
//! latency-against-concurrency chart with the SLO and the knee, the per-level table, and
//! links to the sweep's other files. Self-contained like the run page.

use std::io::{self, Write};

use super::html_page::{Row, artefacts, esc, figures, foot, head, table};
use crate::capacity::CapacityReport;
use crate::charts::{Chart, capacity};
use crate::error::ReportError;

/// Writes the sweep's `index.html`; `artefacts` are the names of the files in its directory.
pub fn render_capacity_html(
    report: &CapacityReport,
    artefacts: &[String],
    out: &mut impl Write,
) -> Result<(), ReportError> {
    let chart = capacity(report)?.map(|svg| Chart {
        id: "capacity",
        title: "Latency p99 against concurrency",
        svg,
    });
    write_page(report, chart.as_slice(), artefacts, out).map_err(|source| ReportError::Write {
        format: "html",
        source,
    })
}

fn write_page(
    r: &CapacityReport,
    charts: &[Chart],
    names: &[String],
    out: &mut impl Write,
) -> io::Result<()> {
    head(out, &format!("dropzero capacity: {}", r.scenario))?;
    writeln!(out, "<h1>dropzero capacity: {}</h1>", esc(&r.scenario))?;
    let verdict = match (r.knee, &r.recommendation) {
        (Some(knee), Some(rec)) => format!(
            "knee at {knee} concurrent sessions per task; recommended target_value = {}",
            rec.target_value
        ),
        (Some(knee), None) => format!("knee at {knee} concurrent sessions per task"),
        _ => "no level within the SLO".to_string(),
    };
    let class = if r.knee.is_some() { "pass" } else { "fail" };
    writeln!(out, "<p class=\"verdict {class}\">{}</p>", esc(&verdict))?;
    writeln!(
        out,
        "<p>Run <code>{}</code> · mode {} · seed {} · time scale {} · steps of {} s</p>",
        esc(&r.run_id),
        esc(&r.mode),
        r.seed,
        r.time_scale,
        r.step_duration_s
    )?;
    figures(out, charts)?;
    writeln!(out, "<h2 id=\"levels\">Levels</h2>")?;
    let rows = r.levels.iter().map(|l| Row {
        class: Some(if l.within_slo { "good" } else { "bad" }),
        cells: vec![
            l.level.to_string(),
            format!("{:.1}", l.achieved_concurrency),
            l.sessions.to_string(),
            l.dropped.to_string(),
            format!("{:.0}", l.ttft_p99_ms),
            format!("{:.0}", l.itl_p99_ms),
            l.peak_rss_mb.map_or("?".into(), |m| m.to_string()),
            l.violations.join("; "),
        ],
    });
    table(
        out,
        &[
            "Level",
            "Achieved",
            "Sessions",
            "Dropped",
            "TTFT p99 ms",
            "ITL p99 ms",
            "Peak RSS MB",
            "Violations",
        ],
        rows,
    )?;
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
