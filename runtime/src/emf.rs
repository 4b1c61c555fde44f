//! The autoscaling signal for CloudWatch: every `interval`, one CloudWatch Embedded Metric
//! Format (EMF) line on stderr with this replica's active sessions (and open streams). On
//! ECS the awslogs driver ships stderr to CloudWatch Logs, which extracts the metrics from
//! the line, so the task needs no `cloudwatch:PutMetricData` permission and there is no
//! agent or sidecar. Off unless `--emf-namespace` is given.
//!
//! A line (pretty-printed here; it is one line on stderr):
//! ```json
//! {"_aws": {"Timestamp": 1733097600000,
//!           "CloudWatchMetrics": [{"Namespace": "dropzero",
//!                                  "Dimensions": [["ClusterName", "ServiceName"]],
//!                                  "Metrics": [{"Name": "ActiveSessions", "Unit": "Count"},
//!                                              {"Name": "OpenStreams", "Unit": "Count"}]}]},
//!  "ClusterName": "agents", "ServiceName": "agents",
//!  "ActiveSessions": 12, "OpenStreams": 14,
//!  "ReplicaId": "0f1e2d3c4b5a49688796a1b2c3d4e5f6", "Mode": "resilient", "Version": "v1"}
//! ```
//! Every task of a service emits the same dimensions at the same interval, so the metric's
//! `Average` over a minute is the mean active sessions per task: what target tracking
//! needs. `ReplicaId` is a property, not a dimension: searchable in Logs Insights without
//! creating one custom metric per task.
//!
//! Not for Prometheus (`metrics`); stdout stays reserved for the `{"listening":…}` line.

use std::{
    io::Write,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// Name of the open-streams metric emitted next to the active-sessions metric.
pub const OPEN_STREAMS: &str = "OpenStreams";
/// EMF allows at most 30 dimensions in a dimension set.
const MAX_DIMENSIONS: usize = 30;
/// Top-level members every line carries besides the dimensions and metrics.
const PROPERTIES: [&str; 3] = ["ReplicaId", "Mode", "Version"];

/// What to emit, resolved from the flags.
#[derive(Debug, Clone, PartialEq)]
pub struct EmfConfig {
    pub namespace: String,
    /// Name of the active-sessions metric (the autoscaling policy's `metric_name`).
    pub metric_name: String,
    pub interval: Duration,
    /// `(name, value)` pairs: the one dimension set, in the order given.
    pub dimensions: Vec<(String, String)>,
}

impl EmfConfig {
    /// Check names against what CloudWatch accepts, so a typo fails at start-up instead of
    /// silently producing lines CloudWatch ignores.
    pub fn new(
        namespace: String,
        metric_name: String,
        interval: Duration,
        dimensions: Vec<(String, String)>,
    ) -> Result<EmfConfig, String> {
        let name_ok = |s: &str| !s.is_empty() && s.len() <= 255 && !s.starts_with(':');
        if !name_ok(&namespace) || namespace.contains(':') || namespace.starts_with("AWS/") {
            return Err(format!(
                "--emf-namespace {namespace:?}: 1-255 characters, no ':', not under AWS/"
            ));
        }
        if !name_ok(&metric_name) || metric_name == OPEN_STREAMS {
            return Err(format!(
                "--emf-metric-name {metric_name:?}: 1-255 characters, not {OPEN_STREAMS:?}"
            ));
        }
        if interval < Duration::from_secs(1) {
            return Err("--emf-interval must be at least 1s".into());
        }
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(format!(
                "at most {MAX_DIMENSIONS} --emf-dimension (EMF's limit)"
            ));
        }
        for (i, (name, value)) in dimensions.iter().enumerate() {
            let taken = name == "_aws"
                || *name == metric_name
                || name == OPEN_STREAMS
                || PROPERTIES.contains(&name.as_str())
                || dimensions[..i].iter().any(|(n, _)| n == name);
            if !name_ok(name) || !name.is_ascii() || taken || value.is_empty() {
                return Err(format!(
                    "--emf-dimension {name}={value}: a unique ASCII name (1-255 characters, not \
                     a metric or property name) and a non-empty value"
                ));
            }
        }
        Ok(EmfConfig {
            namespace,
            metric_name,
            interval,
            dimensions,
        })
    }
}

/// Parse one `--emf-dimension NAME=VALUE`.
pub fn parse_dimension(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{s:?}: expected NAME=VALUE")),
    }
}

/// One reading of the gauges a line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub active_sessions: usize,
    pub open_streams: u64,
}

/// Who is reporting: the properties of every line.
#[derive(Debug, Clone)]
pub struct Reporter {
    pub replica_id: String,
    pub mode: &'static str,
    pub version: String,
}

/// One EMF line (no trailing newline) for `sample` taken at `timestamp_ms` (Unix ms).
pub fn line(config: &EmfConfig, reporter: &Reporter, timestamp_ms: u64, sample: Sample) -> String {
    let names: Vec<&str> = config.dimensions.iter().map(|(n, _)| n.as_str()).collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": config.namespace,
                "Dimensions": [names],
                "Metrics": [
                    {"Name": config.metric_name, "Unit": "Count"},
                    {"Name": OPEN_STREAMS, "Unit": "Count"},
                ],
            }],
        }),
    );
    for (name, value) in &config.dimensions {
        root.insert(name.clone(), Value::String(value.clone()));
    }
    root.insert(config.metric_name.clone(), json!(sample.active_sessions));
    root.insert(OPEN_STREAMS.into(), json!(sample.open_streams));
    root.insert("ReplicaId".into(), json!(&reporter.replica_id));
    root.insert("Mode".into(), json!(reporter.mode));
    root.insert("Version".into(), json!(&reporter.version));
    Value::Object(root).to_string()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Write a line to `out` every `config.interval` (the first at once) until `stop`, reading
/// the gauges with `sample` each time. A failed write is logged and the loop goes on: a
/// missing datapoint is better than a runtime that stops over its metrics.
pub async fn run<W: Write>(
    config: EmfConfig,
    reporter: Reporter,
    sample: impl Fn() -> Sample,
    mut out: W,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // One write of the whole line, so it never interleaves with a log line.
        let mut text = line(&config, &reporter, now_ms(), sample());
        text.push('\n');
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "writing the EMF metric line failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn config(dimensions: &[(&str, &str)]) -> EmfConfig {
        EmfConfig::new(
            "dropzero".into(),
            "ActiveSessions".into(),
            Duration::from_secs(10),
            dimensions
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn reporter() -> Reporter {
        Reporter {
            replica_id: "0f1e2d3c".into(),
            mode: "resilient",
            version: "v1".into(),
        }
    }

    /// The line against the EMF specification: `_aws.Timestamp` in epoch milliseconds,
    /// `_aws.CloudWatchMetrics[]` with `Namespace`, `Dimensions` (arrays of names, each a
    /// top-level string member) and `Metrics` (`Name`, `Unit`; each a top-level number).
    #[test]
    fn line_follows_the_emf_specification() {
        let config = config(&[("ClusterName", "agents"), ("ServiceName", "svc")]);
        let sample = Sample {
            active_sessions: 12,
            open_streams: 14,
        };
        let text = line(&config, &reporter(), 1_733_097_600_123, sample);
        assert!(!text.contains('\n'), "one line: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let aws = &v["_aws"];
        assert_eq!(aws["Timestamp"], json!(1_733_097_600_123u64));
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let d = &directives[0];
        assert_eq!(d["Namespace"], "dropzero");
        assert_eq!(d["Dimensions"], json!([["ClusterName", "ServiceName"]]));
        assert_eq!(
            d["Metrics"],
            json!([
                {"Name": "ActiveSessions", "Unit": "Count"},
                {"Name": "OpenStreams", "Unit": "Count"},
            ])
        );
        for set in d["Dimensions"].as_array().unwrap() {
            for name in set.as_array().unwrap() {
                assert!(
                    v[name.as_str().unwrap()].is_string(),
                    "dimension {name} is a string member"
                );
            }
        }
        for metric in d["Metrics"].as_array().unwrap() {
            assert!(
                v[metric["Name"].as_str().unwrap()].is_number(),
                "metric {metric} is a number member"
            );
        }
        assert_eq!(v["ActiveSessions"], 12);
        assert_eq!(v["OpenStreams"], 14);
        assert_eq!(v["ClusterName"], "agents");
        assert_eq!(v["ReplicaId"], "0f1e2d3c");
    }

    #[test]
    fn no_dimensions_is_one_empty_set() {
        let text = line(
            &config(&[]),
            &reporter(),
            1,
            Sample {
                active_sessions: 0,
                open_streams: 0,
            },
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    }

    #[test]
    fn names_are_checked() {
        let check = |ns: &str, metric: &str, dims: &[(&str, &str)]| {
            EmfConfig::new(
                ns.into(),
                metric.into(),
                Duration::from_secs(10),
                dims.iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            )
            .is_ok()
        };
        assert!(check("dropzero", "ActiveSessions", &[("ServiceName", "s")]));
        assert!(!check("", "ActiveSessions", &[]));
        assert!(!check("AWS/ECS", "ActiveSessions", &[]));
        assert!(!check("a:b", "ActiveSessions", &[]));
        assert!(!check("dropzero", "", &[]));
        assert!(!check("dropzero", "OpenStreams", &[]));
        assert!(!check(
            "dropzero",
            "ActiveSessions",
            &[("ActiveSessions", "x")]
        ));
        assert!(!check("dropzero", "ActiveSessions", &[("ReplicaId", "x")]));
        assert!(!check(
            "dropzero",
            "ActiveSessions",
            &[("A", "1"), ("A", "2")]
        ));
        assert!(!check("dropzero", "ActiveSessions", &[("A", "")]));
        assert_eq!(
            parse_dimension("ServiceName=a=b").unwrap(),
            ("ServiceName".into(), "a=b".into())
        );
        assert!(parse_dimension("=x").is_err());
        assert!(parse_dimension("novalue").is_err());
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_line_per_interval_until_stopped() {
        let out = Shared::default();
        let stop = CancellationToken::new();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let task = tokio::spawn({
            let (out, stop, count) = (out.clone(), stop.clone(), count.clone());
            async move {
                let sample = || Sample {
                    active_sessions: count.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    open_streams: 0,
                };
                run(config(&[]), reporter(), sample, out, stop).await;
            }
        });
        // First line at once, then one per 10 s: t = 0, 10, 20, 30.
        tokio::time::sleep(Duration::from_secs(35)).await;
        stop.cancel();
        task.await.unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let active: Vec<u64> = lines
            .iter()
            .map(|v| v["ActiveSessions"].as_u64().unwrap())
            .collect();
        assert_eq!(active, [0, 1, 2, 3]);
    }
}
