//! HdrHistogram files other tools read: `latency.hlog`, an interval log (format V1.3 with
//! V2 + DEFLATE compressed histograms, one `Tag=` per metric, one interval per timeline
//! second), and one percentile distribution file per metric (`<metric>.hgrm`, the layout of
//! Java's `outputPercentileDistribution`, as HistogramLogAnalyzer and hdrhistogram.github.io
//! plot it). Values are microseconds of wall-clock time; the `.hgrm` files and the log's
//! interval max column are in milliseconds (value unit ratio 1000), like report.json.
//!
//! Intervals are compressed as they arrive, so a long run keeps a few hundred bytes per
//! second, not a histogram per second; the log is written once, at the end.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Microseconds per millisecond: the unit the `.hgrm` values and the log's max column use.
const VALUE_UNIT_RATIO: f64 = 1000.0;

/// The metrics the interval log carries, by tag.
pub const TAGS: [&str; 3] = ["ttft", "itl", "resume"];

struct Interval {
    tag: &'static str,
    start: Duration,
    length: Duration,
    compressed: Vec<u8>,
}

/// The interval log of a run, held compressed until [`IntervalLog::write`].
#[derive(Default)]
pub struct IntervalLog {
    intervals: Vec<Interval>,
    serializer: V2DeflateSerializer,
}

impl IntervalLog {
    /// Add the samples of `[start, start + length)` (since the run's start) under `tag`.
    pub fn push(
        &mut self,
        tag: &'static str,
        start: Duration,
        length: Duration,
        h: &Histogram<u64>,
    ) -> io::Result<()> {
        let mut compressed = Vec::new();
        self.serializer
            .serialize(h, &mut compressed)
            .map_err(|e| io::Error::other(format!("compressing the {tag} interval: {e:?}")))?;
        self.intervals.push(Interval {
            tag,
            start,
            length,
            compressed,
        });
        Ok(())
    }

    /// Write the whole log; `started` is the wall-clock time of the run's time zero.
    pub fn write(&self, out: &mut impl Write, started: SystemTime) -> io::Result<()> {
        let mut serializer = V2DeflateSerializer::new();
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment("dropzero latency interval log: one interval per second per tag")
            .add_comment(
                "tags: ttft (intended start to first token), itl, resume; values in microseconds",
            )
            .with_start_time(started)
            .with_base_time(started)
            .with_max_value_divisor(VALUE_UNIT_RATIO);
        let mut writer = builder.begin_log_with(out, &mut serializer)?;
        let mut deserializer = Deserializer::new();
        for i in &self.intervals {
            let h: Histogram<u64> = deserializer
                .deserialize(&mut &i.compressed[..])
                .map_err(|e| io::Error::other(format!("reading back an interval: {e:?}")))?;
            writer
                .write_histogram(&h, i.start, i.length, Tag::new(i.tag))
                .map_err(|e| io::Error::other(format!("writing the {} interval: {e:?}", i.tag)))?;
        }
        Ok(())
    }
}

/// The percentile distribution of `h` in Java HdrHistogram's `.hgrm` layout, in ms.
pub fn write_hgrm(h: &Histogram<u64>, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    if !h.is_empty() {
        let mut count = 0;
        for v in h.iter_quantiles(5) {
            let value = v.value_iterated_to() as f64 / VALUE_UNIT_RATIO;
            let q = v.quantile_iterated_to();
            count += v.count_since_last_iteration();
            if q < 1.0 {
                writeln!(
                    out,
                    "{value:12.3} {q:2.12} {count:10} {:14.2}",
                    1.0 / (1.0 - q)
                )?;
            } else {
                writeln!(out, "{value:12.3} {q:2.12} {count:10}")?;
            }
        }
    }
    let ratio = VALUE_UNIT_RATIO;
    writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / ratio,
        h.stdev() / ratio
    )?;
    writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / ratio,
        h.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    )
}

/// Write `<dir>/<name>.hgrm` for each `(name, histogram)`.
pub fn write_hgrms(dir: &Path, histograms: &[(&str, &Histogram<u64>)]) -> io::Result<()> {
    for (name, h) in histograms {
        let path = dir.join(format!("{name}.hgrm"));
        let mut f = io::BufWriter::new(std::fs::File::create(&path)?);
        write_hgrm(h, &mut f)?;
        f.flush()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    use super::*;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("test");
        for v in values {
            h.record(*v).expect("test");
        }
        h
    }

    #[test]
    fn the_log_reads_back_with_tags_times_and_counts() {
        let mut log = IntervalLog::default();
        let second = Duration::from_secs(1);
        log.push(
            "ttft",
            Duration::ZERO,
            second,
            &histogram(&[700_000, 900_000]),
        )
        .expect("test");
        log.push("itl", Duration::ZERO, second, &histogram(&[33_000; 30]))
            .expect("test");
        log.push("ttft", second, second, &histogram(&[2_500_000]))
            .expect("test");
        let mut bytes = Vec::new();
        log.write(
            &mut bytes,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .expect("test");
        let mut seen = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(i) = entry.expect("test") {
                let tag = i.tag().map(|t| t.as_str().to_string());
                // The max column is in ms (µs / 1000), rounded by the writer's format.
                seen.push((tag, i.start_timestamp(), i.max().round() as u64));
            }
        }
        assert_eq!(
            seen,
            vec![
                (Some("ttft".into()), Duration::ZERO, 900),
                (Some("itl".into()), Duration::ZERO, 33),
                // The max is the top of its 3-significant-figure bucket: 2.5 s reads 2501 ms.
                (Some("ttft".into()), second, 2501),
            ]
        );
    }

    #[test]
    fn hgrm_ends_at_the_max_with_the_total_count() {
        let h = histogram(&(1..=1000).map(|i| i * 1000).collect::<Vec<_>>());
        let mut out = Vec::new();
        write_hgrm(&h, &mut out).expect("test");
        let text = String::from_utf8(out).expect("test");
        let last_row = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
            .expect("test");
        let cols: Vec<&str> = last_row.split_whitespace().collect();
        assert_eq!(
            cols.len(),
            3,
            "the 100th percentile row has no 1/(1-p): {last_row}"
        );
        let max_ms: f64 = cols[0].parse().expect("test");
        assert!((max_ms - 1000.0).abs() < 1.0, "{last_row}");
        assert_eq!(cols[2], "1000");
        assert!(text.contains("Total count    =         1000]"), "{text}");
    }
}
