//! A throwaway single-member etcd server for tests and local experiments.
//!
//! [`LocalEtcd::start`] runs the `etcd` binary (Debian's `etcd-server` package installs it as
//! `/usr/bin/etcd`; `BERTH_ETCD_BIN` names another one) on two free loopback ports with its data
//! in a new temporary directory, waits until it answers `/health`, and kills it (SIGKILL) and
//! removes the directory when dropped. It runs with the limits Berth recommends for production
//! ([`RECOMMENDED_FLAGS`]). When no etcd binary is found, `start` fails with a message that says
//! how to install one: tests that need etcd fail rather than pass without it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that names the etcd binary to run instead of `etcd` on `PATH`.
pub const BINARY_ENV: &str = "BERTH_ETCD_BIN";

/// etcd flags Berth needs beyond the defaults: one server's group commit can put more than
/// etcd's default 128 operations, and more than its default 1.5 MiB, into one transaction.
pub const RECOMMENDED_FLAGS: &[&str] = &["--max-txn-ops=10000", "--max-request-bytes=16777216"];

/// How long etcd may take to answer its health check after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd server; see the [module docs](self).
#[derive(Debug)]
pub struct LocalEtcd {
    binary: PathBuf,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl LocalEtcd {
    /// Starts a fresh etcd server (revision 1, no keys) and waits until it is healthy.
    pub fn start() -> Result<LocalEtcd, String> {
        let binary = find_binary()?;
        let mut last_error = String::new();
        // Another process may take a port between picking it and etcd binding it: try again
        // with other ports.
        for _ in 0..3 {
            let dir = fresh_dir()?;
            let (client_port, peer_port) = free_ports()?;
            let mut etcd = LocalEtcd {
                binary: binary.clone(),
                dir,
                client_port,
                peer_port,
                child: None,
            };
            match etcd.spawn() {
                Ok(()) => return Ok(etcd),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// `127.0.0.1:PORT`, the address clients connect to.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The directory that holds etcd's data and its log (`etcd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server with SIGKILL, keeping its data for [`LocalEtcd::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and data (after [`LocalEtcd::kill`]).
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("cannot create {}: {e}", self.log_path().display()))?;
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut child = Command::new(&self.binary)
            .arg("--name=berth-test")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=berth-test={peer}"))
            .args(["--logger=zap", "--log-level=warn"])
            .args(RECOMMENDED_FLAGS)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if healthy(self.client_port) {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "etcd exited with {status} before it was healthy; its log:\n{}",
                    self.log_tail()
                ));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "etcd was not healthy within {START_TIMEOUT:?}; its log:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_binary() -> Result<PathBuf, String> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/bin"));
    locate(std::env::var_os(BINARY_ENV).map(PathBuf::from), &dirs)
}

/// The etcd binary: the one `named` (by [`BINARY_ENV`]), else `etcd` in the first of `dirs`
/// that has it.
fn locate(named: Option<PathBuf>, dirs: &[PathBuf]) -> Result<PathBuf, String> {
    if let Some(path) = named {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{BINARY_ENV} names {}, which is not a file",
                path.display()
            ))
        };
    }
    dirs.iter()
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!(
                "etcd is not installed, and these tests run a real etcd server: install it with \
                 `apt-get install -y etcd-server` (Debian; binary /usr/bin/etcd), or set \
                 {BINARY_ENV} to an etcd binary"
            )
        })
}

fn fresh_dir() -> Result<PathBuf, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "berth-etcd-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Two distinct ports that were free a moment ago.
fn free_ports() -> Result<(u16, u16), String> {
    let bind = || {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| Ok((l.local_addr()?.port(), l)))
            .map_err(|e| format!("cannot find a free port: {e}"))
    };
    let (a, _first) = bind()?;
    let (b, _second) = bind()?;
    Ok((a, b))
}

/// Whether etcd's `/health` answers `"health":"true"`.
fn healthy(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_an_error_that_says_how_to_install_it() {
        let empty = std::env::temp_dir().join(format!("berth-no-etcd-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let err = locate(None, std::slice::from_ref(&empty)).unwrap_err();
        assert!(err.contains("apt-get install -y etcd-server"), "{err}");
        let err = locate(Some(empty.join("etcd")), &[]).unwrap_err();
        assert!(err.contains(BINARY_ENV), "{err}");
        std::fs::write(empty.join("etcd"), "").unwrap();
        assert_eq!(
            locate(None, std::slice::from_ref(&empty)).unwrap(),
            empty.join("etcd")
        );
        std::fs::remove_dir_all(&empty).unwrap();
    }
}
