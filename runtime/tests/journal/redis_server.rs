//! A throwaway `redis-server` for tests: its own free port, its own directory, no
//! persistence (`--save '' --appendonly no`), killed when dropped. Not a mock: the Redis
//! journal is tested against the real server. [`RedisServer::start_tls`] adds a TLS port
//! with a certificate from a throwaway CA (made with the `openssl` CLI) and an auth token,
//! like ElastiCache with in-transit encryption.

#![allow(dead_code)] // each test binary that includes this module uses part of it

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    tls: Option<Tls>,
}

/// The TLS side of a server from [`RedisServer::start_tls`].
struct Tls {
    port: u16,
    password: String,
    ca_pem: Vec<u8>,
}

/// The auth token of TLS servers (`--requirepass`).
pub const TLS_PASSWORD: &str = "tls-test-token-0123456789";

impl RedisServer {
    /// Start a server on a free port; panics with a clear message if `redis-server` is missing.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// Start a server that also listens with TLS on a second free port (certificate for
    /// `127.0.0.1` and `localhost`, signed by a fresh CA: [`RedisServer::ca_pem`]) and
    /// requires [`TLS_PASSWORD`]. The plain port stays open only for the readiness check.
    pub fn start_tls() -> RedisServer {
        RedisServer::start_with(true)
    }

    fn start_with(tls: bool) -> RedisServer {
        // Another process may take the free port between our probe and redis-server's bind:
        // then the server exits at once, and we try another port.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
            let tls = tls.then(|| Tls {
                port: free_port(),
                password: TLS_PASSWORD.into(),
                ca_pem: make_certificates(dir.path()),
            });
            let mut server = RedisServer {
                child: None,
                port: free_port(),
                dir,
                tls,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `rediss://:TOKEN@127.0.0.1:TLS_PORT/0` (a server from [`RedisServer::start_tls`]).
    pub fn tls_url(&self) -> String {
        let tls = self.tls.as_ref().expect("a server started with start_tls");
        format!("rediss://:{}@127.0.0.1:{}/0", tls.password, tls.port)
    }

    /// PEM of the CA that signed the TLS port's certificate.
    pub fn ca_pem(&self) -> Vec<u8> {
        let tls = self.tls.as_ref().expect("a server started with start_tls");
        tls.ca_pem.clone()
    }

    /// SIGKILL the server, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start a fresh, empty server on the same port (after [`RedisServer::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}: {}",
            self.port,
            self.log()
        );
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Spawn on `self.port` and wait until it answers PING; false if it exited instead.
    fn spawn(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        if let Some(tls) = &self.tls {
            let file = |name: &str| self.dir.path().join(name);
            command
                .args(["--tls-port", &tls.port.to_string()])
                .arg("--tls-cert-file")
                .arg(file("server.crt"))
                .arg("--tls-key-file")
                .arg(file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(file("ca.crt"))
                .args(["--tls-auth-clients", "no"])
                .args(["--requirepass", &tls.password]);
        }
        let spawned = command
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`redis-server` is not installed (or not on PATH); the Redis journal tests \
                 run a real server: `apt-get install -y redis-server`"
            ),
            Err(e) => panic!("spawning redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let password = self.tls.as_ref().map(|tls| tls.password.as_str());
        while Instant::now() < deadline {
            if ping(self.port, password) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some();
            if exited {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} never answered PING: {}",
            self.port,
            self.log()
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a probe port");
    listener.local_addr().expect("probe address").port()
}

fn ping(port: u16, password: Option<&str>) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let (request, expected) = match password {
        None => ("PING\r\n".to_string(), &b"+PONG\r\n"[..]),
        Some(password) => (
            format!("AUTH {password}\r\nPING\r\n"),
            &b"+OK\r\n+PONG\r\n"[..],
        ),
    };
    let mut reply = vec![0u8; expected.len()];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && reply == expected
}

/// A CA and a server certificate for `127.0.0.1`/`localhost` signed by it, written into
/// `dir` (`ca.crt`, `server.crt`, `server.key`); returns the CA's PEM. P-256 keys, one day.
fn make_certificates(dir: &Path) -> Vec<u8> {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output();
        match output {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`openssl` is not installed; the TLS journal tests make their certificates \
                 with it: `apt-get install -y openssl`"
            ),
            Err(e) => panic!("spawning openssl: {e}"),
        }
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &key,
            &["-keyout", "ca.key", "-out", "ca.crt", "-days", "1"],
            &["-subj", "/CN=dropzero test CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &key,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("writing server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "server.ext",
    ]);
    std::fs::read(dir.join("ca.crt")).expect("reading ca.crt")
}
