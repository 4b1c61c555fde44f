//! The Markdown sections about faults and replicas: the fault table, the drain account, the
//! resume and takeover latency per fault, and the replicas with their peak memory.
//!
//! A repeated `[[faults]]` entry (`every`, `times`) is one row per section, from its
//! [`FaultSeries`], not one per repetition: a soak's hundred kills would otherwise bury the
//! page under three hundred near-identical rows, and a summary reads the way the scenario
//! was written. Every repetition stays in `report.json` and `index.html`. For the same
//! reason a run with many replicas lists only those still running at the end, and sums up
//! the stopped ones in a line.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::markdown::{cell, latency_row, num, table, usd};
use crate::model::{FaultRecord, FaultSeries, Report};

/// Up to this many replicas are listed one per row; beyond it, only the survivors are.
const MAX_REPLICA_ROWS: usize = 12;

pub(super) fn faults(out: &mut impl Write, r: &Report) -> io::Result<()> {
    writeln!(out, "\n## Faults\n")?;
    if r.faults.is_empty() {
        return writeln!(out, "No faults were injected.");
    }
    let single: Vec<(usize, &FaultRecord)> = r
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.repeat.is_none())
        .collect();
    let mut rows: Vec<(f64, Vec<String>)> = single
        .iter()
        .map(|(_, f)| {
            let row = vec![
                format!("`{}`", cell(&f.action)),
                format!("{} s", num(f.at_s)),
                format!("{} s", num(f.started_s)),
                f.ended_s
                    .map_or("still running".into(), |e| format!("{} s", num(e))),
                f.interrupted.to_string(),
                f.dropped.to_string(),
                format!("{} / {}", f.wasted_tokens, f.wasted_input_tokens),
                usd(f.wasted_cost_usd),
                cell(&f.notes.join("; ")),
            ];
            (f.at_s, row)
        })
        .collect();
    for s in &r.fault_series {
        let mut notes = vec![format!("{} of {} ran", s.ran, s.times)];
        if s.incomplete > 0 {
            notes.push(format!(
                "{} did not complete (notes in report.json)",
                s.incomplete
            ));
        }
        let row = vec![
            series_name(s),
            format!("{} s … {} s", num(s.first_at_s), num(s.last_at_s)),
            format!("every {} s", num(s.every_s)),
            s.last_ended_s
                .map_or("none completed".into(), |e| format!("last at {} s", num(e))),
            s.interrupted.to_string(),
            s.dropped.to_string(),
            format!("{} / {}", s.wasted_tokens, s.wasted_input_tokens),
            usd(s.wasted_cost_usd),
            notes.join("; "),
        ];
        rows.push((s.first_at_s, row));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    table(
        out,
        &[
            "Action",
            "At",
            "Started",
            "Ended",
            "Interrupted",
            "Dropped",
            "Wasted output / input",
            "Wasted cost",
            "Notes",
        ],
        rows.into_iter().map(|(_, row)| row),
    )?;
    if !r.fault_series.is_empty() {
        writeln!(
            out,
            "\nA repeated fault (`every`, `times`) is one row summed over its repetitions (\"At\" is when the first and last started, \"Ended\" when the last that completed ended); each repetition is in report.json and index.html."
        )?;
    }
    drain_account(out, &single, &r.fault_series)?;
    fault_resume(out, &single, &r.fault_series)
}

/// `` `kill` ×100 `` for a series.
fn series_name(s: &FaultSeries) -> String {
    format!("`{}` ×{}", cell(&s.action), s.ran)
}

/// Per replica a fault stopped: sessions in flight at the signal and where they went; one
/// summed row per repeated fault.
fn drain_account(
    out: &mut impl Write,
    single: &[(usize, &FaultRecord)],
    series: &[FaultSeries],
) -> io::Result<()> {
    let stops: Vec<_> = single
        .iter()
        .flat_map(|&(i, f)| f.stops.iter().map(move |s| (i, f, s)))
        .collect();
    let series: Vec<&FaultSeries> = series.iter().filter(|s| s.stopped_replicas > 0).collect();
    if stops.is_empty() && series.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n### Drain account\n")?;
    let opt = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    let mut rows: Vec<Vec<String>> = stops
        .into_iter()
        .map(|(i, f, s)| {
            vec![
                format!("{} `{}`", i + 1, cell(&f.action)),
                format!("`{}` ({})", cell(&s.replica), cell(&s.version)),
                cell(&s.how),
                s.deregistration_wait_s
                    .map_or("-".into(), |w| format!("{} s", num(w))),
                opt(s.in_flight_at_signal),
                opt(s.finished_during_drain),
                opt(s.handed_off),
                opt(s.severed),
                if s.sigkill { "yes" } else { "no" }.into(),
                cell(&s.exit),
            ]
        })
        .collect();
    for s in series {
        rows.push(vec![
            series_name(s),
            format!("{} replicas", s.stopped_replicas),
            cell(&s.how.join(", ")),
            "-".into(),
            s.in_flight_at_signal.to_string(),
            s.finished_during_drain.to_string(),
            s.handed_off.to_string(),
            s.severed.to_string(),
            format!("{} of {}", s.sigkilled, s.stopped_replicas),
            format!("{} replacements started", s.started_replicas),
        ]);
    }
    table(
        out,
        &[
            "Fault",
            "Replica",
            "How",
            "Drain wait",
            "In flight",
            "Finished",
            "Handed off",
            "Severed",
            "SIGKILL",
            "Exit",
        ],
        rows,
    )
}

/// Resume latency of the streams each fault interrupted; a repeated fault's row is of its
/// merged histograms.
fn fault_resume(
    out: &mut impl Write,
    single: &[(usize, &FaultRecord)],
    series: &[FaultSeries],
) -> io::Result<()> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut push = |name: String, resume: &Option<_>, takeover: &Option<_>| {
        if let Some(l) = resume {
            rows.push(latency_row(&format!("{name} resume"), l));
        }
        if let Some(l) = takeover {
            rows.push(latency_row(&format!("{name} takeover gap"), l));
        }
    };
    for (i, f) in single {
        push(
            format!("{} `{}`", i + 1, cell(&f.action)),
            &f.resume_ms,
            &f.takeover_ms,
        );
    }
    for s in series {
        push(series_name(s), &s.resume_ms, &s.takeover_ms);
    }
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n### Resume and takeover per fault (ms)\n\nResume: a broken stream noticed → first event after reconnecting. Takeover gap: the silence a client saw before another replica took its session over (lease expiry after a crash, or pick-up after a hand-off).\n"
    )?;
    table(
        out,
        &["Fault", "Count", "p50", "p90", "p99", "Max", "Mean"],
        rows,
    )
}

/// Every replica (or, past [`MAX_REPLICA_ROWS`], the survivors and a line for the rest),
/// with its peak RSS.
pub(super) fn replicas(out: &mut impl Write, r: &Report) -> io::Result<()> {
    if r.replicas.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n### Replicas\n")?;
    let mb = |v: Option<u64>| v.map_or("?".to_string(), |v| format!("{v} MiB"));
    let many = r.replicas.len() > MAX_REPLICA_ROWS;
    let rows = r
        .replicas
        .iter()
        .filter(|x| !many || x.stopped_s.is_none())
        .map(|x| {
            vec![
                format!("`{}`", cell(&x.id)),
                cell(&x.version),
                format!("{} s", num(x.started_s)),
                x.stopped_s
                    .map_or("running at the end".into(), |s| format!("{} s", num(s))),
                cell(x.exit.as_deref().unwrap_or("")),
                mb(x.peak_rss_mb),
            ]
        });
    table(
        out,
        &[
            "Replica", "Version", "Started", "Stopped", "Exit", "Peak RSS",
        ],
        rows,
    )?;
    if many {
        let stopped: Vec<_> = r
            .replicas
            .iter()
            .filter(|x| x.stopped_s.is_some())
            .collect();
        let mut exits: BTreeMap<&str, usize> = BTreeMap::new();
        for x in &stopped {
            *exits
                .entry(x.exit.as_deref().unwrap_or("unknown"))
                .or_default() += 1;
        }
        let exits: Vec<String> = exits
            .into_iter()
            .map(|(exit, n)| format!("{n} × {}", cell(exit)))
            .collect();
        let peak = stopped.iter().filter_map(|x| x.peak_rss_mb).max();
        writeln!(
            out,
            "\nAnd {} replicas stopped during the run ({}), peak RSS up to {} (each in report.json).",
            stopped.len(),
            exits.join(", "),
            mb(peak)
        )?;
    }
    if let Some(all) = r.replica_peak_rss_mb {
        writeln!(
            out,
            "\nPeak RSS (max of `VmHWM` and `VmRSS`, read once a second and before each stop): {all} MiB over all {} replicas; {} over the replicas running at the end.",
            r.replicas.len(),
            mb(r.survivor_peak_rss_mb)
        )?;
    }
    Ok(())
}
