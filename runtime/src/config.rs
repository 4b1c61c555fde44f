//! Command-line flags of `dropzero runtime` and the resolved [`Config`] the rest of the
//! runtime reads. Parsing and validation happen here, once; no other module looks at flags.
//! Not for per-session settings (those arrive in the request body, see `api::sessions`).

use std::{net::IpAddr, path::PathBuf, time::Duration};

use anyhow::Context;

use crate::{
    emf::EmfConfig,
    server::{ConnectionLimits, MIN_HEADER_BYTES},
};

/// Command-line arguments of `dropzero runtime`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Port to listen on (0 = ephemeral; the bound address is printed on stdout).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to listen on: loopback for a local fleet, `0.0.0.0` in a container behind a
    /// load balancer.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Base URL of an Anthropic Messages API (the mock LLM, or the real thing).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub llm_url: String,
    /// How LLM streams are read: `lean` reads a plain `http://` LLM URL with the workspace's
    /// lean HTTP/1.1 client (one connection per call, ~4 KiB per open stream instead of
    /// hyper's ~29 KB) and anything else with reqwest; `reqwest` reads every URL with reqwest
    /// (pooled connections).
    #[arg(long, value_enum, default_value_t = LlmClientKind::Lean)]
    pub llm_client: LlmClientKind,
    /// `naive` (in memory, no resume, no drain) or `resilient` (journal, resume, drain).
    #[arg(long, value_enum, default_value_t = Mode::Resilient)]
    pub mode: Mode,
    /// `memory`, `sqlite:PATH` (one file shared by replicas on one host) or
    /// `redis://HOST:PORT[/DB][?prefix=NAME]` (Redis Streams; keys under `NAME:`, default
    /// `dropzero`; use one prefix per run); `rediss://` for Redis over TLS (ElastiCache with
    /// in-transit encryption), `rediss://:TOKEN@HOST:PORT/...` with an auth token.
    #[arg(
        long,
        env = "DROPZERO_JOURNAL",
        hide_env_values = true,
        default_value = "memory"
    )]
    pub journal: String,
    /// PEM file of the CA certificates a `rediss://` journal's server certificate must chain
    /// to, instead of the system's trust store (for a self-managed Redis with a private CA).
    #[arg(long, env = "DROPZERO_JOURNAL_CA_FILE")]
    pub journal_ca_file: Option<PathBuf>,
    /// This replica's id (default: the ECS task id when `$ECS_CONTAINER_METADATA_URI_V4` is
    /// set, else random).
    #[arg(long)]
    pub replica_id: Option<String>,
    /// The ECS task metadata endpoint v4, set by ECS in every container; without
    /// `--replica-id` the replica names itself by its task id from `{uri}/task`.
    #[arg(long, env = "ECS_CONTAINER_METADATA_URI_V4", hide_env_values = true)]
    pub ecs_container_metadata_uri: Option<String>,
    /// CloudWatch EMF metric lines (boxed: keeps this struct small inside the CLI's enum).
    #[command(flatten)]
    pub emf: Box<EmfArgs>,
    /// Version label reported in metrics (a deploy changes it).
    #[arg(long, default_value = "v1")]
    pub version_label: String,
    /// API key required on `POST /v1/sessions` (repeatable; none = open).
    #[arg(long = "api-key")]
    pub api_keys: Vec<String>,
    /// Origin allowed to call the API from a browser (repeatable); `*` allows any origin.
    #[arg(long = "cors-origin")]
    pub cors_origins: Vec<String>,
    /// Largest accepted request body in bytes (`413` beyond).
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_body: usize,
    /// Connection and stream limits (boxed like `emf`: keeps the CLI's enum small).
    #[command(flatten)]
    pub limits: Box<LimitArgs>,
    /// Longest silence on an open stream before a `: keepalive` comment.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub keepalive: Duration,
    /// How long in-flight sessions may keep streaming after SIGTERM.
    #[arg(long, default_value = "25s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Model name sent to the LLM.
    #[arg(long, default_value = "claude-sonnet-4-5")]
    pub model: String,
    /// Input price, USD per million tokens.
    #[arg(long, default_value_t = 3.0)]
    pub price_input_per_mtok: f64,
    /// Output price, USD per million tokens.
    #[arg(long, default_value_t = 15.0)]
    pub price_output_per_mtok: f64,
    /// Longest one LLM call may take (each attempt); a call over it is retried like a cut.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub step_timeout: Duration,
    /// Retries of one LLM call after 429/529/5xx/connection errors/cut streams.
    #[arg(long, default_value_t = 4)]
    pub max_retries: u32,
    /// How long an LLM call keeps retrying (with backoff, not counted in `--max-retries`)
    /// while the LLM cannot be connected to at all (an outage: connection refused); the
    /// session's own budget still applies. Beyond it the call fails for good.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub llm_outage_wait: Duration,
    /// Resilient mode: how long a replica's claim on a session holds without a heartbeat.
    /// Heartbeats go out every ttl/3; after a crash another replica takes the session over
    /// once the lease expired: within about ttl when a client reconnects, at the next orphan
    /// sweep otherwise.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,
    /// Resilient mode: how often to look for orphaned sessions (released or lease expired)
    /// to take over; each pause is jittered ±25% [default: lease-ttl / 2].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub takeover_sweep: Option<Duration>,
    /// Serve fault-injection endpoints (`POST /admin/oom`); off = 404. For chaos tests only.
    #[arg(long)]
    pub fault_endpoints: bool,
    /// Resilient mode: the ECS agent's URI, set by ECS in every task; when present the
    /// replica turns ECS task scale-in protection on while it runs sessions.
    #[arg(long, env = "ECS_AGENT_URI", hide_env_values = true)]
    pub ecs_agent_uri: Option<String>,
}

/// Connection and stream limits (docs/security.md).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Largest request head (request line and headers) in bytes, at least 8192; beyond it
    /// the connection gets `431` and is closed.
    #[arg(long, default_value_t = 32 * 1024)]
    pub max_header_bytes: usize,
    /// Longest a client may take to send a request's head (slow clients are cut off). Also
    /// how long an idle keep-alive connection stays open: behind a load balancer, set it
    /// above the balancer's idle timeout.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// Most streams one session may have open on this replica at once (`429` beyond).
    #[arg(long, default_value_t = 8)]
    pub max_streams_per_session: usize,
}

/// Flags of the CloudWatch Embedded Metric Format lines (`emf`).
#[derive(Debug, Clone, clap::Args)]
pub struct EmfArgs {
    /// Print CloudWatch Embedded Metric Format lines (active sessions, open streams) to
    /// stderr under this namespace, for autoscaling without PutMetricData (off by default).
    #[arg(long)]
    pub emf_namespace: Option<String>,
    /// Name of the active-sessions metric in the EMF lines.
    #[arg(long, default_value = "ActiveSessions", requires = "emf_namespace")]
    pub emf_metric_name: String,
    /// How often an EMF line is printed.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "emf_namespace")]
    pub emf_interval: Duration,
    /// A dimension of the EMF metrics, `NAME=VALUE` (repeatable; e.g. `ServiceName=agents`).
    #[arg(long = "emf-dimension", value_parser = crate::emf::parse_dimension, requires = "emf_namespace")]
    pub emf_dimensions: Vec<(String, String)>,
}

/// How the runtime keeps sessions (docs/protocol.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Naive,
    Resilient,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Naive => "naive",
            Mode::Resilient => "resilient",
        }
    }
}

/// Where the journal lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalSpec {
    Memory,
    Sqlite(PathBuf),
    Redis(RedisSpec),
}

const JOURNAL_FORMS: &str = "`memory`, `sqlite:PATH` or `redis://HOST:PORT[/DB][?prefix=NAME]`";

impl std::str::FromStr for JournalSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        if s == "memory" {
            return Ok(JournalSpec::Memory);
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            anyhow::ensure!(
                !path.is_empty(),
                "--journal {s:?}: expected {JOURNAL_FORMS}"
            );
            return Ok(JournalSpec::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("redis://") || s.starts_with("rediss://") {
            return RedisSpec::parse(s).map(JournalSpec::Redis);
        }
        anyhow::bail!("--journal {s:?}: expected {JOURNAL_FORMS}")
    }
}

/// A Redis journal: the server's URL (without our `prefix` parameter), the key prefix and,
/// for TLS, the CA certificates to trust instead of the system's. `Debug` and `Display`
/// hide the password a URL may carry.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSpec {
    pub url: String,
    pub prefix: String,
    /// PEM of the CAs a `rediss://` server must chain to (`--journal-ca-file`); `None` = the
    /// system's trust store.
    pub ca_pem: Option<Vec<u8>>,
}

impl RedisSpec {
    /// Parse `redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME]`.
    fn parse(s: &str) -> anyhow::Result<RedisSpec> {
        let fail = |why: &str| anyhow::anyhow!("--journal {}: {why}", redact(s));
        let mut url = url::Url::parse(s).map_err(|e| fail(&e.to_string()))?;
        if url.scheme() != "redis" && url.scheme() != "rediss" {
            return Err(fail("expected `redis://` or `rediss://` (TLS)"));
        }
        let mut prefix = None;
        for (name, value) in url.query_pairs() {
            match &*name {
                "prefix" => prefix = Some(value.into_owned()),
                other => {
                    return Err(fail(&format!(
                        "unknown parameter `{other}` (only `prefix`)"
                    )));
                }
            }
        }
        url.set_query(None);
        let prefix = prefix.unwrap_or_else(|| crate::journal::redis::DEFAULT_PREFIX.into());
        let prefix_ok = !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !prefix_ok {
            return Err(fail(
                "`prefix` must be non-empty ASCII letters, digits, `-_.:`",
            ));
        }
        // The client's own parser checks host, port and database number (no I/O).
        redis::Client::open(url.as_str()).map_err(|e| fail(&e.to_string()))?;
        Ok(RedisSpec {
            url: url.to_string(),
            prefix,
            ca_pem: None,
        })
    }
}

/// `s` with any password replaced by `***`.
fn redact(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => s.to_string(),
        Err(_) => "<unparseable URL>".to_string(),
    }
}

impl std::fmt::Display for RedisSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}?prefix={}", redact(&self.url), self.prefix)
    }
}

impl std::fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisSpec({self})")
    }
}

/// Token prices used for `cost_usd` and the cost budget.
#[derive(Debug, Clone, Copy)]
pub struct Prices {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Prices {
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_mtok + output_tokens as f64 * self.output_per_mtok)
            / 1e6
    }
}

/// Retry policy for LLM calls (see `agent::retry`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    /// How long retries go on, uncounted, while the LLM refuses connections.
    pub outage_wait: Duration,
    pub base: Duration,
    pub max: Duration,
}

/// Lease timing in resilient mode (see `lease`).
#[derive(Debug, Clone, Copy)]
pub struct LeaseConfig {
    pub ttl: Duration,
    pub heartbeat: Duration,
    pub sweep: Duration,
}

impl LeaseConfig {
    /// Heartbeat every ttl/3 (two may be lost before the lease lapses), sweep every `sweep`
    /// or ttl/2.
    pub fn new(ttl: Duration, sweep: Option<Duration>) -> LeaseConfig {
        LeaseConfig {
            ttl,
            heartbeat: ttl / 3,
            sweep: sweep.unwrap_or(ttl / 2),
        }
    }
}

/// The ECS task scale-in protection endpoint and how it is driven (see `protection`).
#[derive(Debug, Clone)]
pub struct ProtectionConfig {
    /// `$ECS_AGENT_URI` (set by the ECS agent in every task); `None` = not on ECS, no calls.
    pub ecs_agent_uri: Option<String>,
    /// How long the replica must stay idle before protection is turned off.
    pub debounce: Duration,
    /// `ExpiresInMinutes` sent with each enable; re-sent before it lapses.
    pub expires_in_minutes: u32,
}

/// Which HTTP client reads LLM streams (see `llm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LlmClientKind {
    /// The lean HTTP/1.1 client where it can read the URL (plain `http://`, no proxy), else reqwest.
    Lean,
    /// reqwest for every URL.
    Reqwest,
}

/// The resolved configuration every part of the runtime reads.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub llm_url: String,
    pub llm_client: LlmClientKind,
    pub model: String,
    pub replica_id: String,
    pub version_label: String,
    pub api_keys: Vec<String>,
    pub cors_origins: Vec<String>,
    pub max_body: usize,
    /// Per-connection limits applied before the router (see `server`).
    pub connection: ConnectionLimits,
    pub max_streams_per_session: usize,
    pub keepalive: Duration,
    pub drain_timeout: Duration,
    pub prices: Prices,
    pub step_timeout: Duration,
    pub retry: RetryPolicy,
    /// Simulated latency of every tool call.
    pub tool_latency: Duration,
    /// How often a stream polls the journal for a session another process owns.
    pub remote_poll: Duration,
    pub lease: LeaseConfig,
    pub protection: ProtectionConfig,
    /// Whether `POST /admin/oom` is served.
    pub fault_endpoints: bool,
    /// CloudWatch EMF metric lines on stderr (`emf`); `None` = off.
    pub emf: Option<EmfConfig>,
}

impl Config {
    /// Defaults suited to tests: talks to `llm_url`, resilient mode, fast retries.
    pub fn new(llm_url: impl Into<String>) -> Config {
        Config {
            mode: Mode::Resilient,
            llm_url: llm_url.into(),
            llm_client: LlmClientKind::Lean,
            model: "claude-sonnet-4-5".into(),
            replica_id: random_replica_id(),
            version_label: "v1".into(),
            api_keys: Vec::new(),
            cors_origins: Vec::new(),
            max_body: 64 * 1024,
            connection: ConnectionLimits {
                header_read_timeout: Duration::from_secs(30),
                max_header_bytes: 32 * 1024,
            },
            max_streams_per_session: 8,
            keepalive: Duration::from_secs(15),
            drain_timeout: Duration::from_secs(25),
            prices: Prices {
                input_per_mtok: 3.0,
                output_per_mtok: 15.0,
            },
            step_timeout: Duration::from_secs(120),
            retry: RetryPolicy {
                max_retries: 4,
                outage_wait: Duration::from_secs(60),
                base: Duration::from_millis(10),
                max: Duration::from_millis(200),
            },
            tool_latency: Duration::from_millis(5),
            remote_poll: Duration::from_millis(25),
            lease: LeaseConfig::new(Duration::from_secs(5), None),
            protection: ProtectionConfig {
                ecs_agent_uri: None,
                debounce: Duration::from_secs(1),
                expires_in_minutes: 120,
            },
            fault_endpoints: false,
            emf: None,
        }
    }

    /// Resolve the command line; the journal spec is returned alongside because opening it
    /// is I/O and belongs to `run` (reading `--journal-ca-file` is the one exception: a
    /// missing file should fail like a bad flag). The replica id may still be replaced by
    /// the ECS task id in `run` (see `ecs`).
    pub fn from_args(args: &RuntimeArgs) -> anyhow::Result<(Config, JournalSpec)> {
        let mut journal: JournalSpec = args.journal.parse()?;
        if args.mode == Mode::Naive && journal != JournalSpec::Memory {
            // Naive mode exists to show the fragile design; it never uses a durable journal.
            tracing::warn!(journal = %args.journal, "--mode naive keeps sessions in memory; ignoring --journal");
            journal = JournalSpec::Memory;
        }
        if args.keepalive.is_zero() {
            anyhow::bail!("--keepalive must be positive");
        }
        if args.lease_ttl < Duration::from_millis(30) {
            anyhow::bail!("--lease-ttl must be at least 30ms (heartbeats go out every ttl/3)");
        }
        if args.limits.header_read_timeout.is_zero() {
            anyhow::bail!("--header-read-timeout must be positive");
        }
        if args.limits.max_header_bytes < MIN_HEADER_BYTES {
            anyhow::bail!("--max-header-bytes must be at least {MIN_HEADER_BYTES}");
        }
        if args.limits.max_streams_per_session == 0 {
            anyhow::bail!("--max-streams-per-session must be at least 1");
        }
        if args.takeover_sweep.is_some_and(|d| d.is_zero()) {
            anyhow::bail!("--takeover-sweep must be positive");
        }
        let mut config = Config::new(args.llm_url.trim_end_matches('/'));
        config.mode = args.mode;
        config.llm_client = args.llm_client;
        config.model = args.model.clone();
        if let Some(id) = &args.replica_id {
            config.replica_id = id.clone();
        }
        config.version_label = args.version_label.clone();
        config.api_keys = args.api_keys.clone();
        config.cors_origins = args.cors_origins.clone();
        config.max_body = args.max_body;
        config.connection = ConnectionLimits {
            header_read_timeout: args.limits.header_read_timeout,
            max_header_bytes: args.limits.max_header_bytes,
        };
        config.max_streams_per_session = args.limits.max_streams_per_session;
        config.keepalive = args.keepalive;
        config.drain_timeout = args.drain_timeout;
        config.prices = Prices {
            input_per_mtok: args.price_input_per_mtok,
            output_per_mtok: args.price_output_per_mtok,
        };
        config.step_timeout = args.step_timeout;
        config.retry = RetryPolicy {
            max_retries: args.max_retries,
            outage_wait: args.llm_outage_wait,
            base: std::time::Duration::from_millis(200),
            max: std::time::Duration::from_secs(5),
        };
        config.tool_latency = Duration::from_millis(50);
        config.lease = LeaseConfig::new(args.lease_ttl, args.takeover_sweep);
        config.protection.ecs_agent_uri = args
            .ecs_agent_uri
            .as_deref()
            .filter(|uri| !uri.is_empty())
            .map(|uri| uri.trim_end_matches('/').to_string());
        config.fault_endpoints = args.fault_endpoints;
        config.emf = args
            .emf
            .emf_namespace
            .clone()
            .map(|namespace| {
                EmfConfig::new(
                    namespace,
                    args.emf.emf_metric_name.clone(),
                    args.emf.emf_interval,
                    args.emf.emf_dimensions.clone(),
                )
            })
            .transpose()
            .map_err(anyhow::Error::msg)?;
        match (&mut journal, &args.journal_ca_file) {
            (JournalSpec::Redis(redis), Some(path)) if redis.url.starts_with("rediss://") => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading --journal-ca-file {}", path.display()))?;
                redis.ca_pem = Some(pem);
            }
            (_, Some(path)) => anyhow::bail!(
                "--journal-ca-file {} is only for a `rediss://` journal",
                path.display()
            ),
            (_, None) => {}
        }
        Ok((config, journal))
    }
}

fn random_replica_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("r_{}", &id[..8])
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: RuntimeArgs,
    }

    fn resolve(flags: &[&str]) -> anyhow::Result<(Config, JournalSpec)> {
        let cli = Cli::try_parse_from(std::iter::once("runtime").chain(flags.iter().copied()))?;
        Config::from_args(&cli.args)
    }

    #[test]
    fn journal_specs() {
        for (spec, expected) in [
            ("memory", Some(JournalSpec::Memory)),
            (
                "sqlite:/tmp/j.db",
                Some(JournalSpec::Sqlite("/tmp/j.db".into())),
            ),
            ("sqlite:", None),
            (
                "redis://localhost:6379",
                Some(redis("redis://localhost:6379", "dropzero")),
            ),
            (
                "redis://127.0.0.1:6390/2?prefix=dz-run1",
                Some(redis("redis://127.0.0.1:6390/2", "dz-run1")),
            ),
            (
                "redis://:secret@h:1/0?prefix=a.b",
                Some(redis("redis://:secret@h:1/0", "a.b")),
            ),
            ("redis://h:1/0?prefix=", None),
            ("redis://h:1/0?prefix=a%20b", None),
            ("redis://h:1/0?db=3", None),
            ("redis://h:1/notanumber", None),
            (
                "rediss://:tok@h.cache.amazonaws.com:6379/0?prefix=p",
                Some(redis("rediss://:tok@h.cache.amazonaws.com:6379/0", "p")),
            ),
            ("http://h:1", None),
            ("redis://", None),
            ("postgres://h", None),
        ] {
            assert_eq!(spec.parse::<JournalSpec>().ok(), expected, "{spec}");
        }
    }

    fn redis(url: &str, prefix: &str) -> JournalSpec {
        JournalSpec::Redis(RedisSpec {
            url: url.into(),
            prefix: prefix.into(),
            ca_pem: None,
        })
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn redis_passwords_stay_out_of_logs_and_errors() {
        let spec: JournalSpec = "redis://user:hunter2@h:1/0?prefix=p".parse().unwrap();
        let shown = format!("{spec:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("***"),
            "{shown}"
        );
        let err = "redis://user:hunter2@h:1/0?bogus=1"
            .parse::<JournalSpec>()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn journal_ca_file_only_for_tls() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n")?;
        let ca = ca.to_str().expect("a UTF-8 temp path");
        let (_, journal) = resolve(&["--journal", "rediss://h:6379/0", "--journal-ca-file", ca])?;
        let JournalSpec::Redis(redis) = journal else {
            anyhow::bail!("expected a Redis journal");
        };
        assert_eq!(
            redis.ca_pem.as_deref(),
            Some(&b"-----BEGIN CERTIFICATE-----\n"[..])
        );
        let plain = resolve(&["--journal", "redis://h:6379/0", "--journal-ca-file", ca]);
        assert!(
            plain
                .expect_err("a CA file on a plain redis:// journal")
                .to_string()
                .contains("only for a `rediss://` journal")
        );
        let missing = resolve(&[
            "--journal",
            "rediss://h:1",
            "--journal-ca-file",
            "/nonexistent/ca.pem",
        ]);
        assert!(
            format!("{:#}", missing.expect_err("a missing CA file"))
                .contains("/nonexistent/ca.pem")
        );
        Ok(())
    }

    #[test]
    fn emf_flags_resolve() -> anyhow::Result<()> {
        let (off, _) = resolve(&[])?;
        assert_eq!(off.emf, None, "off by default");
        let (on, _) = resolve(&[
            "--emf-namespace",
            "dropzero",
            "--emf-interval",
            "10s",
            "--emf-dimension",
            "ClusterName=agents",
            "--emf-dimension",
            "ServiceName=agents",
        ])?;
        let emf = on.emf.expect("EMF on");
        assert_eq!(emf.metric_name, "ActiveSessions");
        assert_eq!(emf.interval, Duration::from_secs(10));
        assert_eq!(
            emf.dimensions,
            [
                ("ClusterName".to_string(), "agents".to_string()),
                ("ServiceName".to_string(), "agents".to_string())
            ]
        );
        // The other EMF flags mean nothing without a namespace, and bad names fail early.
        assert!(resolve(&["--emf-dimension", "A=b"]).is_err());
        assert!(resolve(&["--emf-namespace", "AWS/ECS"]).is_err());
        assert!(resolve(&["--emf-namespace", "d", "--emf-dimension", "novalue"]).is_err());
        Ok(())
    }

    #[test]
    fn bind_address() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from(["runtime"])?;
        assert_eq!(
            cli.args.bind.to_string(),
            "127.0.0.1",
            "loopback unless asked"
        );
        let cli = Cli::try_parse_from(["runtime", "--bind", "0.0.0.0"])?;
        assert_eq!(cli.args.bind.to_string(), "0.0.0.0");
        assert!(Cli::try_parse_from(["runtime", "--bind", "localhost"]).is_err());
        Ok(())
    }

    #[test]
    fn flags_resolve() -> anyhow::Result<()> {
        let (config, journal) = resolve(&[
            "--mode",
            "resilient",
            "--journal",
            "sqlite:/tmp/x.db",
            "--replica-id",
            "r7",
            "--keepalive",
            "150ms",
            "--drain-timeout",
            "2s",
            "--api-key",
            "a",
            "--api-key",
            "b",
            "--price-output-per-mtok",
            "10",
            "--lease-ttl",
            "3s",
            "--fault-endpoints",
        ])?;
        assert_eq!(config.lease.ttl, Duration::from_secs(3));
        assert_eq!(config.lease.heartbeat, Duration::from_secs(1));
        assert_eq!(config.lease.sweep, Duration::from_millis(1500));
        assert!(config.fault_endpoints);
        let (defaults, _) = resolve(&["--takeover-sweep", "200ms"])?;
        assert_eq!(defaults.lease.ttl, Duration::from_secs(5), "default ttl");
        assert_eq!(defaults.lease.sweep, Duration::from_millis(200));
        assert!(!defaults.fault_endpoints, "off by default");
        assert_eq!(defaults.protection.ecs_agent_uri, None);
        let (ecs, _) = resolve(&["--ecs-agent-uri", "http://169.254.170.2/api/x/"])?;
        assert_eq!(
            ecs.protection.ecs_agent_uri.as_deref(),
            Some("http://169.254.170.2/api/x")
        );
        assert!(resolve(&["--lease-ttl", "1ms"]).is_err());
        assert!(resolve(&["--takeover-sweep", "0s"]).is_err());
        assert_eq!(journal, JournalSpec::Sqlite("/tmp/x.db".into()));
        assert_eq!(config.replica_id, "r7");
        assert_eq!(config.keepalive, Duration::from_millis(150));
        assert_eq!(config.drain_timeout, Duration::from_secs(2));
        assert_eq!(config.api_keys, ["a", "b"]);
        assert_eq!(config.prices.output_per_mtok, 10.0);
        let (naive, journal) = resolve(&["--mode", "naive", "--journal", "sqlite:/tmp/x.db"])?;
        assert_eq!((naive.mode, journal), (Mode::Naive, JournalSpec::Memory));
        assert!(resolve(&["--keepalive", "0s"]).is_err());
        assert!(resolve(&["--header-read-timeout", "0s"]).is_err());
        assert!(resolve(&["--max-header-bytes", "4096"]).is_err());
        assert!(resolve(&["--max-streams-per-session", "0"]).is_err());
        let (limits, _) = resolve(&[
            "--header-read-timeout",
            "2s",
            "--max-header-bytes",
            "9000",
            "--max-streams-per-session",
            "3",
        ])?;
        assert_eq!(
            limits.connection.header_read_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(limits.connection.max_header_bytes, 9000);
        assert_eq!(limits.max_streams_per_session, 3);
        let (outage, _) = resolve(&["--llm-outage-wait", "5s"])?;
        assert_eq!(outage.retry.outage_wait, Duration::from_secs(5));
        assert_eq!(limits.retry.outage_wait, Duration::from_secs(60), "default");
        assert!(resolve(&["--journal", "postgres"]).is_err());
        Ok(())
    }
}
