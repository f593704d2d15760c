//! Shared fixture of the black-box tests: the real `berth` binary started on a free port in a
//! temporary data directory, the real AWS CLI pointed at it, and raw signed HTTP requests.
#![allow(dead_code)]

pub mod images;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const ACCESS_KEY: &str = "AKIABERTHTEST0000001";
pub const SECRET_KEY: &str = "berthTestSecretKey0000000000000000000000";
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `berth server`, stopped with SIGTERM when dropped.
pub struct Berth {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    pub endpoint: String,
    /// Pass `--root-access-key`/`--root-secret-key` on start.
    pub give_root_key: bool,
    /// `server` (the default) or `up` (with the in-process agent).
    pub subcommand: &'static str,
    /// Extra arguments for the subcommand.
    pub extra_args: Vec<String>,
    /// Every line the current process printed on stdout.
    pub stdout_lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The thread that reads the current process's stdout.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Berth {
    /// Starts a server with the test root key.
    pub fn start() -> Berth {
        Self::start_with(Vec::new())
    }

    pub fn start_with(extra_args: Vec<String>) -> Berth {
        Self::start_command("server", extra_args)
    }

    /// Starts `berth up` (server and agent in one process) with the test root key.
    pub fn start_up(extra_args: Vec<String>) -> Berth {
        Self::start_command("up", extra_args)
    }

    fn start_command(subcommand: &'static str, extra_args: Vec<String>) -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("aws-config"), "").unwrap();
        std::fs::write(dir.path().join("aws-credentials"), "").unwrap();
        let mut berth = Berth {
            child: None,
            dir,
            port: 0,
            endpoint: String::new(),
            give_root_key: true,
            subcommand,
            extra_args,
            stdout_lines: Default::default(),
            reader: None,
        };
        berth.spawn();
        berth
    }

    /// The value of a line of the start banner, e.g. `banner("server pin")` for
    /// `  server pin     : sha256:…`.
    pub fn banner(&self, label: &str) -> String {
        let lines = self.stdout_lines.lock().unwrap();
        lines
            .iter()
            .find_map(|line| {
                let (name, value) = line.split_once(" : ")?;
                (name.trim() == label).then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no '{label}' in the banner: {lines:?}"))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("berth.stderr.log")
    }

    /// Everything the server processes of this fixture wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        self.endpoint.clear();
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg(self.subcommand)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir());
        if self.give_root_key {
            cmd.args([
                "--root-access-key",
                ACCESS_KEY,
                "--root-secret-key",
                SECRET_KEY,
            ]);
        }
        cmd.args(&self.extra_args);
        for (k, _) in std::env::vars() {
            if k.starts_with("BERTH_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.dir.path()).env("BERTH_LOG", "info");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().expect("could not start the berth binary");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        self.stdout_lines = lines.clone();
        // Keep reading stdout to its end so the server never writes into a closed pipe.
        self.reader = Some(std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        }));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(endpoint) = line.strip_prefix("Berth is listening on ") {
                        let endpoint = endpoint.trim().to_string();
                        self.port = endpoint
                            .rsplit(':')
                            .next()
                            .and_then(|p| p.parse().ok())
                            .unwrap_or_else(|| panic!("no port in '{line}'"));
                        self.endpoint = endpoint;
                    }
                    // The banner ends with the "Try:" hint: once it is read, so is the key.
                    if line.starts_with("Try:") && !self.endpoint.is_empty() {
                        self.child = Some(child);
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    panic!(
                        "berth exited before listening (status {status:?}); stderr:\n{}",
                        self.stderr()
                    );
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "berth exited before listening (status {status}); stderr:\n{}",
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "berth did not print its listening line within {START_TIMEOUT:?}; stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Sends SIGTERM and waits for the process to exit; panics if it takes longer than 10 s.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is running");
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM {} failed", child.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                // Its last lines (e.g. "Berth stopped") are read once the pipe closes.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "berth did not exit within {STOP_TIMEOUT:?} of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("server is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
    }

    /// Stops the server (SIGTERM, must exit 0) and starts it again on the same data directory.
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(
            status.success(),
            "berth exited with {status} on SIGTERM; stderr:\n{}",
            self.stderr()
        );
        self.spawn();
    }

    /// Starts the server again (after `stop` or `kill9`).
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Runs `aws <args> --endpoint-url ... --output json` with the root key.
    pub fn aws(&self, args: &[&str]) -> Aws {
        self.aws_env(args, &[])
    }

    /// Like `aws`, with environment overrides (e.g. a wrong secret key).
    pub fn aws_env(&self, args: &[&str], env: &[(&str, &str)]) -> Aws {
        self.aws_at(&self.endpoint, args, env)
    }

    /// Like `aws_env`, at another endpoint of this server (e.g. its https:// one).
    pub fn aws_at(&self, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Aws {
        let mut cmd = Command::new("aws");
        cmd.args(args)
            .args(["--endpoint-url", endpoint, "--output", "json"]);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_CONFIG_FILE", self.dir.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_PAGER", "")
            .current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!(
                    "the AWS CLI (`aws`) is not on PATH: run these tests with scripts/test, which puts a virtualenv with awscli first on PATH"
                )
            }
            Err(e) => panic!("could not run the AWS CLI: {e}"),
        };
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let json = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or(Value::String(stdout.clone()))
        };
        Aws {
            args: args.iter().map(|s| s.to_string()).collect(),
            status: out.status.code().unwrap_or(-1),
            json,
            stderr,
        }
    }

    /// Writes a file into the fixture's work directory and returns its `file://` URL.
    pub fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        format!("file://{}", path.display())
    }

    /// A raw ECS JSON 1.1 request, signed as `signing` says.
    pub fn post(&self, operation: &str, body: &[u8], signing: Signing) -> HttpResponse {
        let target = format!("AmazonEC2ContainerServiceV20141113.{operation}");
        raw_request(self.port, Some(&target), body, signing)
    }

    /// Whether the server still answers a well-signed ListClusters.
    pub fn answers(&self) -> bool {
        self.post("ListClusters", b"{}", Signing::root()).status == 200
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The outcome of one AWS CLI run.
#[derive(Debug)]
pub struct Aws {
    pub args: Vec<String>,
    pub status: i32,
    pub json: Value,
    pub stderr: String,
}

impl Aws {
    /// The output of a command that must have succeeded.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(
            self.status, 0,
            "aws {:?} failed:\n{}",
            self.args, self.stderr
        );
        self.json
    }

    /// The stderr of a command that must have failed with `code` in it.
    #[track_caller]
    pub fn fails_with(self, code: &str) -> String {
        assert_ne!(
            self.status, 0,
            "aws {:?} succeeded but should fail with {code}: {}",
            self.args, self.json
        );
        assert!(
            self.stderr.contains(code),
            "aws {:?} failed, but not with {code}:\n{}",
            self.args,
            self.stderr
        );
        self.stderr
    }
}

/// How to sign a raw request.
#[derive(Debug, Clone)]
pub enum Signing {
    None,
    Key {
        access_key: String,
        secret: String,
        region: String,
        age: Duration,
    },
}

impl Signing {
    pub fn root() -> Signing {
        Signing::Key {
            access_key: ACCESS_KEY.into(),
            secret: SECRET_KEY.into(),
            region: REGION.into(),
            age: Duration::ZERO,
        }
    }
    pub fn with_secret(secret: &str) -> Signing {
        Signing::Key {
            access_key: ACCESS_KEY.into(),
            secret: secret.into(),
            region: REGION.into(),
            age: Duration::ZERO,
        }
    }
    pub fn with_key(access_key: &str, secret: &str) -> Signing {
        Signing::Key {
            access_key: access_key.into(),
            secret: secret.into(),
            region: REGION.into(),
            age: Duration::ZERO,
        }
    }
    pub fn aged(age: Duration) -> Signing {
        Signing::Key {
            access_key: ACCESS_KEY.into(),
            secret: SECRET_KEY.into(),
            region: REGION.into(),
            age,
        }
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    /// The `__type` of a JSON 1.1 error.
    pub fn error_type(&self) -> String {
        self.json()["__type"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    pub fn message(&self) -> String {
        let v = self.json();
        v["message"]
            .as_str()
            .or(v["Message"].as_str())
            .unwrap_or_default()
            .to_string()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time.
pub fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Sends one HTTP/1.1 `POST /` to the server and reads the whole answer. The body is written
/// from another thread so that an early answer (413) is read while the body is still going out.
pub fn raw_request(port: u16, target: Option<&str>, body: &[u8], signing: Signing) -> HttpResponse {
    let host = format!("127.0.0.1:{port}");
    let content_type = "application/x-amz-json-1.1";
    let mut headers: Vec<(String, String)> = vec![
        ("content-type".into(), content_type.into()),
        ("host".into(), host.clone()),
    ];
    if let Some(target) = target {
        headers.push(("x-amz-target".into(), target.into()));
    }
    if let Signing::Key {
        access_key,
        secret,
        region,
        age,
    } = &signing
    {
        let date = amz_date(SystemTime::now() - *age);
        headers.push(("x-amz-date".into(), date.clone()));
        headers.sort();
        let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        let signed = signed.join(";");
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let payload_hash = hex::encode(Sha256::digest(body));
        let canonical = format!("POST\n/\n\n{canonical_headers}\n{signed}\n{payload_hash}");
        let scope = format!("{}/{region}/ecs/aws4_request", &date[..8]);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), &date.as_bytes()[..8]);
        for part in [region.as_str(), "ecs", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
        headers.push(("authorization".into(), format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}")));
    }
    let mut head = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let stream =
        TcpStream::connect(&host).unwrap_or_else(|e| panic!("could not connect to {host}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let payload = [head.as_bytes(), body].concat();
    let sender = std::thread::spawn(move || {
        // The server may answer and close before it has read everything; that is fine here.
        let _ = writer.write_all(&payload);
        let _ = writer.flush();
    });
    let mut raw = Vec::new();
    let mut reader = stream;
    let mut buf = [0u8; 65536];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => panic!("no answer from {host}: {e}"),
            Err(_) => break,
        }
    }
    let _ = sender.join();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in answer: {}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line '{status_line}'"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some((_, len)) = headers.iter().find(|(k, _)| k == "content-length")
        && let Ok(len) = len.parse::<usize>()
    {
        body.truncate(len);
    } else if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..pos])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = &data[(end + 2).min(data.len())..];
    }
    out
}

/// Reads a file of the fixture (e.g. for debugging).
pub fn read(path: &Path) -> String {
    let mut s = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .unwrap_or_default();
    s
}

/// Whether `needle` occurs in any file under `dir`.
pub fn occurs_in_files(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            return occurs_in_files(&path, needle);
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

/// The one element of a JSON array at `v[key]`, asserting there is exactly one.
#[track_caller]
pub fn only<'a>(v: &'a Value, key: &str) -> &'a Value {
    let arr = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array '{key}' in {v}"));
    assert_eq!(arr.len(), 1, "expected one '{key}' in {v}");
    &arr[0]
}

/// The strings of a JSON array.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON string's value; panics (naming the value) on anything else.
pub fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
