//! Where the harness's own logs go. `dropzero run` (and `capacity`, `ecs-emulator`) keep
//! the terminal for the progress line and the summary: every log record goes, as one JSON
//! object per line, to `dropzero.log.jsonl` in the run directory once the run knows it
//! ([`attach`]); records written before that are held in memory (bounded) and written first.
//! `-v` (info), `-vv` (debug) or `RUST_LOG` also show them live on stderr, human-readable.
//! Child processes (replicas, the mock LLM) log to their own files in the run directory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The log file's name inside the run directory.
pub const FILE_NAME: &str = "dropzero.log.jsonl";

/// Records held before the run directory exists; beyond this, the oldest are kept and
/// later ones counted as dropped (a run logs little before its directory is made).
const EARLY_LIMIT: usize = 256 * 1024;

enum Sink {
    Early { buf: Vec<u8>, dropped: u64 },
    File(BufWriter<File>),
}

fn sink() -> &'static Mutex<Sink> {
    static SINK: OnceLock<Mutex<Sink>> = OnceLock::new();
    SINK.get_or_init(|| {
        Mutex::new(Sink::Early {
            buf: Vec::new(),
            dropped: 0,
        })
    })
}

/// Start writing the log to `dir/dropzero.log.jsonl`, beginning with what was held.
/// A second call (the capacity sweep's steps) keeps the first file.
pub fn attach(dir: &Path) -> std::io::Result<()> {
    let mut sink = sink().lock().unwrap_or_else(|p| p.into_inner());
    if let Sink::Early { buf, dropped } = &mut *sink {
        let mut file = BufWriter::new(File::create(dir.join(FILE_NAME))?);
        file.write_all(buf)?;
        if *dropped > 0 {
            writeln!(
                file,
                r#"{{"level":"WARN","fields":{{"message":"{dropped} early log records dropped"}}}}"#
            )?;
        }
        *sink = Sink::File(file);
    }
    Ok(())
}

/// Write buffered records out (each progress tick and at the end of a command).
pub fn flush() {
    if let Sink::File(f) = &mut *sink().lock().unwrap_or_else(|p| p.into_inner()) {
        let _ = f.flush();
    }
}

struct SinkWriter;

impl Write for SinkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match &mut *sink().lock().unwrap_or_else(|p| p.into_inner()) {
            Sink::Early { buf, dropped } => {
                if buf.len() + bytes.len() <= EARLY_LIMIT {
                    buf.extend_from_slice(bytes);
                } else {
                    *dropped += 1;
                }
            }
            Sink::File(f) => f.write_all(bytes)?,
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        flush();
        Ok(())
    }
}

/// Warnings and errors logged so far (the summary points at the file when there are any).
static WARNINGS: AtomicU64 = AtomicU64::new(0);

pub fn warnings() -> u64 {
    WARNINGS.load(Ordering::Relaxed)
}

/// Counts WARN and ERROR records, whatever the filters show.
struct CountWarnings;

impl<S: tracing::Subscriber> Layer<S> for CountWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            WARNINGS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The file layer's level unless `RUST_LOG` says otherwise. Goose (closed users) logs two
/// lines per user at info; its warnings are kept.
const FILE_LEVEL: &str = "info,goose=warn";

/// Logs for a command that has a run directory: JSON to the file (`RUST_LOG` or info), and
/// live on stderr only when asked (`verbose` ≥ 1, or `RUST_LOG` set).
pub fn init_run_logs(verbose: u8) {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let file_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(FILE_LEVEL));
    let file = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(|| SinkWriter)
        .with_filter(file_filter);
    let live_level = match verbose {
        0 if from_env => None,
        0 => Some("off"),
        1 => Some("info,goose=warn"),
        2 => Some("debug"),
        _ => Some("trace"),
    };
    let live_filter = match live_level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::from_default_env(),
    };
    let live = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(live_filter);
    let _ = tracing_subscriber::registry()
        .with(CountWarnings.with_filter(tracing_subscriber::filter::LevelFilter::WARN))
        .with(file)
        .with(live)
        .try_init();
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn records_before_attach_are_written_first_then_the_rest() {
        // One process-wide sink: this is the only test that touches it.
        SinkWriter.write_all(b"{\"early\":1}\n").expect("test");
        let dir = tempfile::tempdir().expect("test");
        attach(dir.path()).expect("test");
        SinkWriter.write_all(b"{\"late\":2}\n").expect("test");
        let other = tempfile::tempdir().expect("test");
        attach(other.path()).expect("test");
        flush();
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).expect("test");
        assert_eq!(text, "{\"early\":1}\n{\"late\":2}\n");
        assert!(
            !other.path().join(FILE_NAME).exists(),
            "the first file is kept"
        );
    }
}
