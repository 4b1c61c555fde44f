//! Child processes of the harness: the mock LLM and runtime replicas, started from the
//! harness's own executable so they are always the same version.
//!
//! Guarantee: no child outlives the harness. Three layers make that hold —
//! `kill_on_drop` for the normal path and panics, `PR_SET_PDEATHSIG(SIGKILL)` for a harness
//! that is itself SIGKILLed, and children staying in the harness's process group so a
//! terminal's Ctrl-C reaches them too. This module knows nothing about sessions or routing.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

/// Why a child could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{name}: cannot open log file {path}: {source}")]
    Log {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{name}: cannot start {exe}: {source}")]
    Spawn {
        name: String,
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("{name}: did not report a listening address within {timeout:?} (see {log})")]
    NotReady {
        name: String,
        timeout: Duration,
        log: PathBuf,
    },
    #[error("{name}: exited before listening ({status}); see {log}")]
    Exited {
        name: String,
        status: String,
        log: PathBuf,
    },
    #[error("{name}: bad listening line {line:?}")]
    BadListenLine { name: String, line: String },
}

/// What to start.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// Short name used in logs and errors, e.g. `replica-r2` or `mock-llm`.
    pub name: String,
    pub exe: PathBuf,
    pub args: Vec<OsString>,
    /// stderr (JSON logs) and any later stdout go here.
    pub log_path: PathBuf,
    /// Address-space limit in bytes (`RLIMIT_AS`), for the OOM fault.
    pub memory_limit: Option<u64>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// How to tell the child is ready.
    pub ready: Ready,
}

/// How [`spawn`] knows a child is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// It prints `{"listening":"addr"}` as its first stdout line (`dropzero` subcommands).
    ListeningLine,
    /// It accepts TCP connections on this address (third-party servers, e.g. redis-server).
    Accepts(SocketAddr),
}

/// A running child that reported its listening address. A reaper task owns the OS handle
/// and publishes the exit status, so any number of callers may wait for (or signal) the
/// child through `&self`. Dropping the handle SIGKILLs a child that is still running.
#[derive(Debug)]
pub struct ChildProcess {
    pub name: String,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
    pid: Pid,
    exited: watch::Receiver<Option<ExitStatus>>,
}

/// Start a child and wait (bounded) for its `{"listening":"addr"}` line on stdout.
pub async fn spawn(spec: SpawnSpec, ready_timeout: Duration) -> Result<ChildProcess, ProcessError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .map_err(|source| ProcessError::Log {
            name: spec.name.clone(),
            path: spec.log_path.clone(),
            source,
        })?;
    let mut cmd = Command::new(&spec.exe);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    die_with_parent(&mut cmd, spec.memory_limit);
    let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
        name: spec.name.clone(),
        exe: spec.exe.clone(),
        source,
    })?;
    let pid = Pid::from_raw(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .unwrap_or(0),
    );
    let Some(stdout) = child.stdout.take() else {
        return Err(ProcessError::NotReady {
            name: spec.name,
            timeout: ready_timeout,
            log: spec.log_path,
        });
    };
    let mut lines = BufReader::new(stdout).lines();
    if let Ready::Accepts(addr) = spec.ready {
        let accepting = async {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let exited = async {
            let status = child.wait().await;
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string())
        };
        tokio::select! {
            _ = tokio::time::sleep(ready_timeout) => {
                return Err(ProcessError::NotReady { name: spec.name, timeout: ready_timeout, log: spec.log_path });
            }
            status = exited => {
                return Err(ProcessError::Exited { name: spec.name, status, log: spec.log_path });
            }
            () = accepting => {}
        }
        return Ok(supervise(child, lines, spec.name, addr, spec.log_path, pid));
    }
    let first = tokio::time::timeout(ready_timeout, lines.next_line()).await;
    let line = match first {
        Ok(Ok(Some(line))) => line,
        Ok(_) => {
            let status = match child.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            };
            return Err(ProcessError::Exited {
                name: spec.name,
                status,
                log: spec.log_path,
            });
        }
        Err(_) => {
            return Err(ProcessError::NotReady {
                name: spec.name,
                timeout: ready_timeout,
                log: spec.log_path,
            });
        }
    };
    let addr = parse_listening(&line).ok_or_else(|| ProcessError::BadListenLine {
        name: spec.name.clone(),
        line: line.clone(),
    })?;
    Ok(supervise(child, lines, spec.name, addr, spec.log_path, pid))
}

/// Keep draining the child's stdout into its log, and reap it in a task that publishes its
/// exit status.
fn supervise(
    mut child: tokio::process::Child,
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    name: String,
    addr: SocketAddr,
    log_path: PathBuf,
    pid: Pid,
) -> ChildProcess {
    // Keep draining stdout into the log so a chatty child never blocks on a full pipe.
    let log = log_path.clone();
    tokio::spawn(async move {
        let Ok(mut file) = tokio::fs::OpenOptions::new().append(true).open(&log).await else {
            return;
        };
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
        }
    });
    let (tx, exited) = watch::channel(None);
    tokio::spawn(async move {
        // `child` lives here until it exits; if the runtime drops this task first,
        // `kill_on_drop` ends the child.
        if let Ok(status) = child.wait().await {
            tx.send_replace(Some(status));
        }
    });
    ChildProcess {
        name,
        addr,
        log_path,
        pid,
        exited,
    }
}

fn parse_listening(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("listening")?.as_str()?.parse().ok()
}

/// Arrange for the child to receive SIGKILL when the harness dies, however it dies, and
/// apply the optional memory limit.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command, memory_limit: Option<u64>) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid, setrlimit, _exit); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The parent may have died before prctl took effect.
            if nix::unistd::getppid() != parent {
                nix::libc::_exit(1);
            }
            if let Some(bytes) = memory_limit {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_AS,
                    bytes,
                    bytes,
                )
                .map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
}

impl ChildProcess {
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Send a signal; a child that already exited is not an error (and is not signalled:
    /// its pid may have been reused).
    pub fn signal(&self, sig: Signal) {
        if self.pid.as_raw() > 0 && self.exit_status().is_none() {
            let _ = signal::kill(self.pid, sig);
        }
    }

    /// The exit status, once the child has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exited.borrow()
    }

    /// Wait for exit, at most `timeout`.
    pub async fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let mut rx = self.exited.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(status)) => *status,
            _ => self.exit_status(),
        }
    }

    /// ECS-style stop: SIGTERM, then SIGKILL after `stop_timeout`. Returns the exit status
    /// and whether SIGKILL was needed.
    pub async fn stop(&self, stop_timeout: Duration) -> (Option<ExitStatus>, bool) {
        self.signal(Signal::SIGTERM);
        if let Some(status) = self.wait_timeout(stop_timeout).await {
            return (Some(status), false);
        }
        self.signal(Signal::SIGKILL);
        (self.wait_timeout(Duration::from_secs(5)).await, true)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// `exit 0`, `signal 9 (SIGKILL)`, … for reports.
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "still running".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => match Signal::try_from(sig) {
                Ok(name) => format!("signal {sig} ({name})"),
                Err(_) => format!("signal {sig}"),
            },
            (None, None) => s.to_string(),
        },
    }
}
