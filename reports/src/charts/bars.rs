//! Charts over categories rather than time: what each fault cost (grouped bars), and the
//! latency percentile spectrum of the run.
//!
//! The spectrum is each histogram's own percentile spectrum (`LatencySummary::spectrum`) on
//! HdrHistogram's usual axis, `-log10(1 - percentile)` (90 %, 99 %, 99.9 %, … equally
//! spaced); a report without spectra (written before they existed) gets p50 / p90 / p99 /
//! max as categories instead.

use plotters::prelude::*;

use super::frame::{PALETTE, SIZE, chart_err, fault_label};
use crate::error::ReportError;
use crate::model::{LatencySummary, Report, SpectrumPoint};

/// Names a category position on the x axis; positions between categories get no label.
fn category(names: &[String]) -> impl Fn(&f64) -> String + '_ {
    |v| {
        let i = v.round();
        if (v - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        names.get(i as usize).cloned().unwrap_or_default()
    }
}

/// Per fault: streams interrupted, resumed, sessions dropped (left), wasted dollars
/// (right). `None` when the run had no faults.
pub fn faults(r: &Report) -> Result<Option<String>, ReportError> {
    if r.faults.is_empty() {
        return Ok(None);
    }
    let title = "Cost of each fault";
    // One group per fault, except that a repeated `[[faults]]` entry is one group for the
    // whole series (a hundred kills are one bar, not a hundred unreadable ones).
    let mut groups: Vec<(String, [f64; 4])> = r
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.repeat.is_none())
        .map(|(i, f)| {
            let resumed = f.resume_ms.as_ref().map_or(0.0, |s| s.count as f64);
            let values = [
                f.interrupted as f64,
                resumed,
                f.dropped as f64,
                f.wasted_cost_usd,
            ];
            (fault_label(i, f), values)
        })
        .collect();
    groups.extend(r.fault_series.iter().map(|s| {
        let resumed = s.resume_ms.as_ref().map_or(0.0, |l| l.count as f64);
        let values = [
            s.interrupted as f64,
            resumed,
            s.dropped as f64,
            s.wasted_cost_usd,
        ];
        (format!("{} ×{}", s.action, s.ran), values)
    }));
    let names: Vec<String> = groups.iter().map(|(n, _)| n.clone()).collect();
    let column = |k: usize| groups.iter().map(|(_, v)| v[k]).collect::<Vec<f64>>();
    let counts: Vec<(&str, Vec<f64>)> = vec![
        ("interrupted", column(0)),
        ("resumed", column(1)),
        ("dropped", column(2)),
    ];
    let dollars = vec![("wasted USD", column(3))];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err(title))?;
        let root = root
            .titled(title, ("sans-serif", 20))
            .map_err(chart_err(title))?;
        let (left, right) = root.split_horizontally(SIZE.0 * 3 / 5);
        grouped(&left, title, &names, &counts, "count", 0)?;
        grouped(&right, title, &names, &dollars, "USD", counts.len())?;
        root.present().map_err(chart_err(title))?;
    }
    Ok(Some(svg))
}

type Area<'a, 'b> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Grouped bars: one group per category, one bar per `(label, values)` entry.
fn grouped(
    area: &Area<'_, '_>,
    title: &str,
    names: &[String],
    groups: &[(&str, Vec<f64>)],
    y_desc: &str,
    first_color: usize,
) -> Result<(), ReportError> {
    let top = groups
        .iter()
        .flat_map(|g| g.1.iter().copied())
        .fold(0.0_f64, f64::max);
    let n = names.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..(top * 1.2).max(1e-9))
        .map_err(chart_err(title))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(0)
        .label_style(("sans-serif", 14))
        .x_labels(names.len() * 2 + 1)
        .x_label_formatter(&category(names))
        .y_desc(y_desc)
        .draw()
        .map_err(chart_err(title))?;
    let width = 0.8 / groups.len() as f64;
    for (g, (label, values)) in groups.iter().enumerate() {
        let color = PALETTE[(first_color + g) % PALETTE.len()];
        let bars = values.iter().enumerate().map(move |(i, v)| {
            let x0 = i as f64 - 0.4 + g as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width * 0.9, *v)], color.filled())
        });
        chart
            .draw_series(bars)
            .map_err(chart_err(title))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 10, y + 4)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(chart_err(title))
}

/// The percentile points of a summary, in x order (p50, p90, p99, max).
fn spectrum_points(s: &LatencySummary) -> Vec<(f64, f64)> {
    [s.p50, s.p90, s.p99, s.max]
        .into_iter()
        .enumerate()
        .filter(|(_, v)| *v > 0.0 && v.is_finite())
        .map(|(i, v)| (i as f64, v))
        .collect()
}

/// The x range, title and tick labels of the spectrum chart.
type XAxis<'a> = (std::ops::Range<f64>, &'a str, &'a dyn Fn(&f64) -> String);

/// The spectrum's x for a percentile: `-log10(1 - p)`, capped at six nines (100 % itself
/// would be infinitely far right).
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).max(1e-6).log10()
}

/// The label of a whole number of nines: 0 → `0%`, 1 → `90%`, 2 → `99%`, 3 → `99.9%`.
fn nines_label(x: &f64) -> String {
    let k = x.round();
    if (x - k).abs() > 1e-6 || k < 0.0 {
        return String::new();
    }
    match k as u32 {
        0 => "0%".into(),
        1 => "90%".into(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)).replace("99.%", "99%"),
    }
}

fn spectrum_line(points: &[SpectrumPoint]) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.value > 0.0 && p.value.is_finite() && p.percentile.is_finite())
        .map(|p| (nines(p.percentile), p.value))
        .collect()
}

/// TTFT, ITL, resume and takeover latency: the percentile spectrum of each, log axis.
/// `None` when no latency has a sample.
pub fn spectrum(r: &Report) -> Result<Option<String>, ReportError> {
    let l = &r.latency;
    let metrics = [
        ("TTFT", &l.ttft_ms),
        ("ITL", &l.itl_ms),
        ("resume", &l.resume_ms),
        ("takeover", &l.takeover_ms),
    ];
    let full = metrics
        .iter()
        .any(|(_, s)| s.count > 0 && !s.spectrum.is_empty());
    let lines: Vec<(&str, Vec<(f64, f64)>)> = metrics
        .into_iter()
        .filter(|(_, s)| s.count > 0)
        .map(|(name, s)| {
            let points = if full {
                spectrum_line(&s.spectrum)
            } else {
                spectrum_points(s)
            };
            (name, points)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    let title = "Latency percentiles";
    let names: Vec<String> = ["p50", "p90", "p99", "max"].map(String::from).to_vec();
    let categories = category(&names);
    let (x_range, x_desc, x_labels): XAxis<'_> = if full {
        let right = lines
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.0))
            .fold(1.0_f64, f64::max);
        (0.0..right.ceil().max(2.0), "percentile", &nines_label)
    } else {
        (-0.2..3.2, "", &categories)
    };
    let ys = lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0_f64), |(a, b), v| (a.min(v), b.max(v)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err(title))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range.clone(), ((lo / 2.0)..(hi * 2.0)).log_scale())
            .map_err(chart_err(title))?;
        let ticks = ((x_range.end - x_range.start) * 2.0).round() as usize + 1;
        chart
            .configure_mesh()
            .x_labels(ticks)
            .max_light_lines(0)
            .label_style(("sans-serif", 14))
            .x_label_formatter(x_labels)
            .x_desc(x_desc)
            .y_desc("ms (log)")
            .draw()
            .map_err(chart_err(title))?;
        for (i, (name, points)) in lines.iter().enumerate() {
            let style = PALETTE[i % PALETTE.len()].stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(chart_err(title))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(chart_err(title))?;
        root.present().map_err(chart_err(title))?;
    }
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_put_90_99_and_99_9_percent_one_apart() {
        for (p, x) in [
            (0.0, 0.0),
            (90.0, 1.0),
            (99.0, 2.0),
            (99.9, 3.0),
            (100.0, 6.0),
        ] {
            assert!((nines(p) - x).abs() < 1e-9, "{p}% → {}", nines(p));
        }
        let labels: Vec<String> = [0.0, 0.5, 1.0, 2.0, 3.0, 4.0]
            .iter()
            .map(nines_label)
            .collect();
        assert_eq!(labels, ["0%", "", "90%", "99%", "99.9%", "99.99%"]);
    }
}
