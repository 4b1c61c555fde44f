//! Just enough of the Prometheus text exposition format to read the gauges and counters the
//! sampler needs from a replica's `/metrics`. Not a general parser: histograms and label
//! escapes beyond `\"` are read as plain samples or skipped.

/// Sum of every sample of `name` (all label sets), or `None` when the metric is absent.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // The name must end here: `foo` must not match `foo_total`.
        let rest = match rest.chars().next() {
            Some('{') => match rest.find('}') {
                Some(i) => &rest[i + 1..],
                None => continue,
            },
            Some(' ') | Some('\t') => rest,
            _ => continue,
        };
        if let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::sum;

    fn check(text: &str, name: &str, expected: Option<f64>) {
        assert_eq!(sum(text, name), expected, "{name} in {text:?}");
    }

    #[test]
    fn reads_gauges_and_labelled_counters() {
        let text = "# HELP x\n# TYPE dropzero_active_sessions gauge\ndropzero_active_sessions 12\n\
                    dropzero_sessions_total{outcome=\"completed\"} 3\n\
                    dropzero_sessions_total{outcome=\"failed\"} 1\n\
                    dropzero_active_sessions_extra 99\n";
        check(text, "dropzero_active_sessions", Some(12.0));
        check(text, "dropzero_sessions_total", Some(4.0));
        check(text, "dropzero_draining", None);
        check(
            "dropzero_draining{replica=\"a}b\"} 1",
            "dropzero_draining",
            None,
        );
    }
}
