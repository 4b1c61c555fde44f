//! The drawing every chart shares: a time chart (series over run seconds, each fault's
//! window shaded and labelled, optional horizontal limit lines and vertical markers), drawn
//! with plotters' SVG backend into a `String`.
//!
//! Not for deciding what to plot: the chart functions in the sibling modules pick series
//! from the report and call [`time_chart`]. Text is emitted as SVG `<text>` with a generic
//! `font-family`, so no font file is read (plotters is built without `ttf`).

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::error::ReportError;
use crate::model::FaultRecord;

/// Width and height of every chart, in SVG user units (pixels).
pub const SIZE: (u32, u32) = (860, 300);

/// The series palette, in order; a chart's n-th series gets the n-th colour. No red: red is
/// for limits.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

/// Fill of a fault window (drawn with [`FAULT_OPACITY`]).
pub const FAULT_FILL: RGBColor = RGBColor(255, 165, 0);
pub const FAULT_OPACITY: f64 = 0.18;
/// Limit lines (gates, SLOs, the autoscaling target).
pub const LIMIT_COLOR: RGBColor = RGBColor(200, 0, 0);
/// Vertical markers (autoscaling decisions, the knee).
pub const MARKER_COLOR: RGBColor = RGBColor(90, 90, 90);

/// One line of a chart: its legend label and `(x, y)` points in x order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn thinner and lighter: the base run of a comparison.
    pub faint: bool,
    /// Each point also drawn as a dot: for sparse series (only the seconds that had a
    /// sample), where the line alone would suggest values between them.
    pub dots: bool,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points,
            faint: false,
            dots: false,
        }
    }

    /// The same series drawn with a dot at each point (see [`Series::dots`]).
    pub fn dotted(mut self) -> Self {
        self.dots = true;
        self
    }
}

/// A horizontal line at `value` (a gate threshold) or a vertical one at `at` (a decision).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub value: f64,
}

/// Everything a time chart shows.
#[derive(Debug, Clone, Default)]
pub struct TimeChart<'a> {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<Series>,
    pub faults: &'a [FaultRecord],
    pub limits: Vec<Line>,
    pub markers: Vec<Line>,
    /// A log y axis (latencies); non-positive values are left out of it.
    pub log_y: bool,
}

/// A fault's window label: `#1 deploy`; for a repeated fault `#3 kill ×100` on its first
/// repetition.
pub fn fault_label(index: usize, fault: &FaultRecord) -> String {
    match &fault.repeat {
        Some(r) => format!("#{} {} ×{}", index + 1, fault.action, r.times),
        None => format!("#{} {}", index + 1, fault.action),
    }
}

/// Draws `chart` into an SVG document. `None` when no series has a point: a chart with no
/// data is left out, never drawn empty.
pub fn time_chart(chart: &TimeChart<'_>) -> Result<Option<String>, ReportError> {
    let log_y = chart.log_y;
    let usable = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0);
    let series: Vec<Series> = chart
        .series
        .iter()
        .map(|s| Series {
            points: s.points.iter().copied().filter(usable).collect(),
            ..s.clone()
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if series.is_empty() {
        return Ok(None);
    }
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    // Fault windows and markers widen the x range, so a fault that began before the first
    // sample or ended after the last one is still drawn whole.
    let fault_xs = chart
        .faults
        .iter()
        .flat_map(|f| [Some(f.started_s), f.ended_s])
        .flatten();
    let (x0, x1) = bounds(
        xs.chain(chart.markers.iter().map(|m| m.value))
            .chain(fault_xs),
    );
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let ys: Vec<f64> = ys.chain(chart.limits.iter().map(|l| l.value)).collect();
    let (ymin, ymax) = bounds(ys.iter().copied().filter(|y| !log_y || *y > 0.0));
    let x = (x0.min(0.0))..(x1.max(x0 + 1.0));
    let mut svg = String::new();
    if log_y {
        let y = (ymin / 2.0)..(ymax * 2.0).max(ymin * 4.0);
        draw(&mut svg, chart, &series, x, y.clone().log_scale(), y)?;
    } else {
        let lo = ymin.min(0.0);
        let y = lo..(ymax * 1.15).max(lo + 1.0);
        draw(&mut svg, chart, &series, x, y.clone(), y)?;
    }
    Ok(Some(svg))
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

fn draw<Y>(
    out: &mut String,
    c: &TimeChart<'_>,
    series: &[Series],
    x: std::ops::Range<f64>,
    y: Y,
    y_span: std::ops::Range<f64>,
) -> Result<(), ReportError>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let (x_start, x_end, y_lo, y_hi) = (x.start, x.end, y_span.start, y_span.end);
    {
        let root = SVGBackend::with_string(out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err(&c.title))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(60)
            .build_cartesian_2d(x, y)
            .map_err(chart_err(&c.title))?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .label_style(("sans-serif", 14))
            .x_desc(c.x_desc.as_str())
            .y_desc(c.y_desc.as_str())
            .draw()
            .map_err(chart_err(&c.title))?;
        for (i, f) in c.faults.iter().enumerate() {
            let end = f.ended_s.unwrap_or(x_end).max(f.started_s);
            let band = Rectangle::new(
                [(f.started_s, y_lo), (end, y_hi)],
                FAULT_FILL.mix(FAULT_OPACITY).filled(),
            );
            let area = chart.plotting_area();
            area.draw(&band).map_err(chart_err(&c.title))?;
            // A repeated fault is labelled once, at its first repetition.
            if f.repeat.as_ref().is_none_or(|r| r.index == 0) {
                let label = Text::new(fault_label(i, f), (f.started_s, y_hi), ("sans-serif", 14));
                area.draw(&label).map_err(chart_err(&c.title))?;
            }
        }
        for l in &c.limits {
            let style = LIMIT_COLOR.stroke_width(1);
            chart
                .draw_series(LineSeries::new(
                    [(x_start, l.value), (x_end, l.value)],
                    style,
                ))
                .map_err(chart_err(&c.title))?
                .label(&l.label)
                .legend(move |(px, py)| PathElement::new([(px, py), (px + 16, py)], style));
        }
        for m in &c.markers {
            let line = PathElement::new([(m.value, y_lo), (m.value, y_hi)], MARKER_COLOR);
            let label = Text::new(m.label.clone(), (m.value, y_lo), ("sans-serif", 13));
            let area = chart.plotting_area();
            area.draw(&line).map_err(chart_err(&c.title))?;
            area.draw(&label).map_err(chart_err(&c.title))?;
        }
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let style = if s.faint {
                color.mix(0.55).stroke_width(1)
            } else {
                color.stroke_width(2)
            };
            chart
                .draw_series(
                    LineSeries::new(s.points.iter().copied(), style).point_size(if s.dots {
                        3
                    } else {
                        0
                    }),
                )
                .map_err(chart_err(&c.title))?
                .label(&s.label)
                .legend(move |(px, py)| PathElement::new([(px, py), (px + 16, py)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(chart_err(&c.title))?;
        root.present().map_err(chart_err(&c.title))?;
    }
    Ok(())
}

/// Maps a plotters error (only ever a formatting error with the string backend) to ours,
/// naming the chart.
pub fn chart_err<E: std::fmt::Display>(title: &str) -> impl Fn(E) -> ReportError + '_ {
    move |e| ReportError::Chart {
        chart: title.to_string(),
        message: e.to_string(),
    }
}
