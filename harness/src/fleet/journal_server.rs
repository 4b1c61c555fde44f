//! The run's own journal server, for `journal = "redis"`: a `redis-server` child with the
//! scenario's `journal_persistence`, and (when the timeline has a `journal_outage`) a TCP
//! gate in front of it that the replicas connect through.
//!
//! The journal faults act here: `journal_kill` SIGKILLs the server and starts it again on the
//! same port, in the same directory, so it loads whatever its persistence kept (the AOF, or
//! the last RDB snapshot); `journal_outage` closes the gate, so every connection to the
//! journal is cut and new ones are refused, while the server and its data stay intact.
//!
//! Not for what the runtime does about either (see `runtime/src/journal/redis/`), nor for
//! when faults happen (see `faults/driver.rs`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::TargetError;
use super::process::{self, ChildProcess, SpawnSpec};

/// What a harness-run `redis-server` keeps on disk, i.e. what survives a `journal_kill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisPersistence {
    /// Append-only file, fsynced before every reply (`appendfsync always`): an
    /// acknowledged write survives the process and the machine.
    AofAlways,
    /// Append-only file written before every reply, fsynced once a second (`everysec`):
    /// survives a killed process (the kernel holds the written file), not a power cut.
    AofEverysec,
    /// No AOF; an RDB snapshot at most every second (`save 1 1`): a killed process loses
    /// every write since the last snapshot, acknowledged or not.
    Snapshot,
}

impl RedisPersistence {
    /// The `redis-server` arguments for this setting.
    fn args(self) -> &'static [&'static str] {
        match self {
            RedisPersistence::AofAlways => &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            RedisPersistence::AofEverysec => &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
            ],
            RedisPersistence::Snapshot => &["--save", "1 1", "--appendonly", "no"],
        }
    }
}

/// How to start the run's `redis-server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisServerConfig {
    pub persistence: RedisPersistence,
    /// Put the TCP gate in front (for `journal_outage`).
    pub gate: bool,
}

/// The running server (and gate). Every method takes `&self`: faults and shutdown share it.
pub struct JournalServer {
    spec: SpawnSpec,
    ready_timeout: Duration,
    child: Mutex<Option<ChildProcess>>,
    /// Where replicas connect: the gate when there is one, else the server.
    addr: SocketAddr,
    /// `true` while the gate lets connections through.
    open: watch::Sender<bool>,
    gated: bool,
    shutdown: CancellationToken,
}

impl JournalServer {
    /// Start `redis-server` on a free loopback port with its files in `run_dir`.
    pub async fn start(
        run_dir: &Path,
        cfg: RedisServerConfig,
        ready_timeout: Duration,
    ) -> Result<JournalServer, TargetError> {
        let port = free_port("redis-server")?;
        let server = SocketAddr::from(([127, 0, 0, 1], port));
        let mut args: Vec<OsString> = ["--port", &port.to_string(), "--bind", "127.0.0.1"]
            .iter()
            .map(OsString::from)
            .collect();
        args.extend(cfg.persistence.args().iter().map(OsString::from));
        args.extend(["--dir".into(), run_dir.as_os_str().to_owned()]);
        let spec = SpawnSpec {
            name: "redis-server".into(),
            exe: "redis-server".into(),
            args,
            log_path: run_dir.join("logs/redis-server.log"),
            memory_limit: None,
            env: Vec::new(),
            ready: process::Ready::Accepts(server),
        };
        let child = spawn_redis(spec.clone(), ready_timeout).await?;
        let (open, _) = watch::channel(true);
        let shutdown = CancellationToken::new();
        let addr = if cfg.gate {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| TargetError::Io(format!("binding the journal gate: {e}")))?;
            let addr = listener
                .local_addr()
                .map_err(|e| TargetError::Io(format!("the journal gate's address: {e}")))?;
            tokio::spawn(gate(listener, server, open.subscribe(), shutdown.clone()));
            addr
        } else {
            server
        };
        Ok(JournalServer {
            spec,
            ready_timeout,
            child: Mutex::new(Some(child)),
            addr,
            open,
            gated: cfg.gate,
            shutdown,
        })
    }

    /// The `--journal` URL replicas use.
    pub fn url(&self) -> String {
        format!("redis://{}/0?prefix=dropzero", self.addr)
    }

    /// SIGKILL the server and wait for it to exit; returns its pid.
    pub async fn kill(&self) -> Result<i32, String> {
        let child = lock(&self.child)
            .take()
            .ok_or("redis-server is not running")?;
        let pid = child.pid();
        child.signal(nix::sys::signal::Signal::SIGKILL);
        match child.wait_timeout(Duration::from_secs(5)).await {
            Some(_) => Ok(pid),
            None => Err(format!(
                "redis-server (pid {pid}) did not exit after SIGKILL"
            )),
        }
    }

    /// Start the server again on the same port and directory (it loads what it persisted);
    /// returns the new pid once it accepts connections.
    pub async fn restart(&self) -> Result<i32, String> {
        let child = spawn_redis(self.spec.clone(), self.ready_timeout)
            .await
            .map_err(|e| format!("restarting redis-server: {e}"))?;
        let pid = child.pid();
        *lock(&self.child) = Some(child);
        Ok(pid)
    }

    /// Open or close the gate; closing cuts every connection through it. `Err` without a gate.
    pub fn set_reachable(&self, reachable: bool) -> Result<(), String> {
        if !self.gated {
            return Err(
                "the journal has no gate (the run starts one only for journal_outage)".into(),
            );
        }
        self.open.send_replace(reachable);
        Ok(())
    }

    /// Stop the gate and SIGKILL the server.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let child = lock(&self.child).take();
        if let Some(child) = child {
            child.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait_timeout(Duration::from_secs(5)).await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port(what: &str) -> Result<u16, TargetError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| TargetError::Io(format!("finding a free port for {what}: {e}")))
}

async fn spawn_redis(
    spec: SpawnSpec,
    ready_timeout: Duration,
) -> Result<ChildProcess, TargetError> {
    process::spawn(spec, ready_timeout).await.map_err(|e| match e {
        process::ProcessError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            TargetError::Io(
                "journal = \"redis\" needs redis-server on PATH (Debian: apt-get install redis-server), or give a redis://host:port URL".into(),
            )
        }
        other => other.into(),
    })
}

/// The gate: while open, pipe each accepted connection to `server`; while closed, no
/// listener at all (connections are refused) and every piped connection is cut. The port is
/// bound again when the gate opens (the listener's address is reused).
async fn gate(
    listener: TcpListener,
    server: SocketAddr,
    mut open: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let mut listener = Some(listener);
    loop {
        let Some(l) = &listener else {
            // Closed: wait for the gate to open, then listen again on the same port.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = open.wait_for(|o| *o) => if changed.is_err() { return },
            }
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::error!(error = %e, %addr, "journal gate cannot listen again");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            continue;
        };
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            closed = open.wait_for(|o| !*o) => Err(closed.is_err()),
            accepted = l.accept() => Ok(accepted),
        };
        match event {
            Ok(Ok((client, _))) => {
                tokio::spawn(pipe(client, server, open.clone(), shutdown.clone()));
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "journal gate: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Closing drops the listener: new connections are refused from here on.
            Err(false) => listener = None,
            Err(true) => return,
        }
    }
}

/// One connection through the gate, cut when the gate closes.
async fn pipe(
    mut client: TcpStream,
    server: SocketAddr,
    mut open: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let Ok(mut upstream) = TcpStream::connect(server).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = open.wait_for(|o| !*o) => {}
        _ = shutdown.cancelled() => {}
    }
}
