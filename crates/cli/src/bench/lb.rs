//! `berth bench lb`: the load balancer data plane beside nginx. wrk drives the same load, in
//! the same run, through Berth's listener (a `berth lb` child configured through the ELBv2 API
//! of a throwaway `berth server`) and through an nginx reverse proxy (one process, upstream
//! keep-alive), both forwarding to the same backend: a second nginx serving a small static
//! file. Each is measured with keep-alive connections and with a new connection per request
//! (`Connection: close`), and the table shows requests/s, p50/p99 latency (wrk's `--latency`),
//! the proxy's CPU time per request and Berth's ratio to nginx.
//!
//! When more than one CPU is allowed, the two proxies are pinned (taskset) to the same CPU(s)
//! and wrk and the backend to the others, so each proxy gets the same cores and competes with
//! nothing but the load. Every child process and the temporary directory are removed when it
//! ends, however it ends. This is a benchmark, not a test: it asserts nothing about speed.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use berth_client::Credentials;
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::server_process::ServerProcess;

#[derive(Args)]
pub struct LbArgs {
    /// wrk threads (`-t`).
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// wrk connections (`-c`).
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// How long each measurement lasts, in seconds (`-d`).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// A run of this many seconds before each measurement, not counted.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// How many times every measurement is made (the table shows each).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// CPUs the proxies run on, as taskset takes them (default: the last allowed CPU).
    #[arg(long)]
    proxy_cpus: Option<String>,
    /// CPUs wrk and the backend run on (default: the other allowed CPUs).
    #[arg(long)]
    load_cpus: Option<String>,
    /// Pin nothing.
    #[arg(long, conflicts_with_all = ["proxy_cpus", "load_cpus"])]
    no_pin: bool,
}

/// The static file the backend serves.
const BACKEND_BODY: &str = "hello from the benchmark backend\n";
const REGION: &str = "us-east-1";

pub async fn run(args: LbArgs) -> anyhow::Result<()> {
    // Ctrl-C drops the run, and with it every child process and the temporary directory.
    tokio::select! {
        result = measure(args) => result,
        interrupted = tokio::signal::ctrl_c() => {
            interrupted.context("could not wait for Ctrl-C")?;
            bail!("interrupted")
        }
    }
}

async fn measure(args: LbArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.threads > 0 && args.connections >= args.threads,
        "--connections must be at least --threads, and --threads at least 1"
    );
    anyhow::ensure!(args.seconds > 0, "--seconds must be at least 1");
    let nginx = NginxBuild::probe()?;
    let wrk_ok = Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    anyhow::ensure!(
        wrk_ok,
        "wrk is not installed (Debian: apt-get install wrk nginx-light)"
    );
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for figures worth quoting");
    }
    let pins = Pins::plan(&args)?;
    let dir = TempDir::create()?;

    let backend_port = free_port()?;
    let nginx_port = free_port()?;
    let berth_port = free_port()?;
    let backend = nginx.start(
        &dir.0,
        "backend",
        &backend_config(&dir.0, backend_port)?,
        &pins.load,
    )?;
    wait_for_body(backend_port, Duration::from_secs(10)).await?;
    let _backend = backend;
    let proxy = nginx.start(
        &dir.0,
        "proxy",
        &proxy_config(backend_port, nginx_port, args.connections),
        &pins.proxy,
    )?;
    wait_for_body(nginx_port, Duration::from_secs(10)).await?;

    eprintln!("starting a throwaway berth server and `berth lb`");
    let server = ServerProcess::start()?;
    if let Some(cpus) = &pins.load {
        pin_running(server.pid(), cpus);
    }
    let lb = start_lb(&server, &pins.proxy)?;
    let elb = Elbv2 {
        endpoint: server
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned(),
        credentials: server.credentials.clone(),
    };
    configure(&elb, backend_port, berth_port).await?;
    wait_for_body(berth_port, Duration::from_secs(30))
        .await
        .context("Berth's listener never answered with the backend's page")?;

    let wrk = Wrk {
        threads: args.threads,
        connections: args.connections,
        cpus: pins.load.clone(),
    };
    let mut rows = Vec::new();
    let mut direct = Vec::new();
    for round in 0..args.rounds {
        for variant in [Variant::KeepAlive, Variant::Close] {
            let mut proxies = [
                (Proxy::Berth, berth_port, lb.0.id()),
                (Proxy::Nginx, nginx_port, proxy.0.id()),
            ];
            // Each goes first every other round, so neither always runs on a warmer machine.
            if round % 2 == 1 {
                proxies.reverse();
            }
            for (which, port, pid) in proxies {
                eprintln!(
                    "round {}: {} through {} for {}s",
                    round + 1,
                    variant.label(),
                    which.label(),
                    args.seconds
                );
                if args.warmup > 0 {
                    wrk.run(port, variant, args.warmup).await?;
                }
                let before = cpu_time(pid);
                let started = Instant::now();
                let result = wrk.run(port, variant, args.seconds).await?;
                let wall = started.elapsed();
                let cpu = before.zip(cpu_time(pid)).map(|(b, a)| a.saturating_sub(b));
                rows.push(Measured {
                    variant,
                    proxy: which,
                    result,
                    cpu,
                    wall,
                });
            }
        }
    }
    for variant in [Variant::KeepAlive, Variant::Close] {
        eprintln!("the backend alone: {}", variant.label());
        direct.push((variant, wrk.run(backend_port, variant, args.seconds).await?));
    }
    drop(lb);
    drop(server);
    drop(proxy);

    println!();
    println!(
        "Berth's load balancer and nginx {} (one process, upstream keep-alive) in front of one nginx static backend",
        nginx.version
    );
    println!(
        "wrk -t{} -c{} -d{}s --latency (warm-up {}s); {}",
        args.threads,
        args.connections,
        args.seconds,
        args.warmup,
        pins.describe()
    );
    if args.rounds > 1 {
        println!("each round:");
        print!("{}", table(&rows));
        println!("median of {} rounds:", args.rounds);
    }
    print!("{}", table(&medians(&rows)));
    for (variant, r) in &direct {
        println!(
            "backend alone, {}: {:.0} req/s, p99 {} ms",
            variant.label(),
            r.per_second,
            ms(r.p99)
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    KeepAlive,
    Close,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::KeepAlive => "keep-alive",
            Variant::Close => "connection: close",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proxy {
    Berth,
    Nginx,
}

impl Proxy {
    fn label(self) -> &'static str {
        match self {
            Proxy::Berth => "berth",
            Proxy::Nginx => "nginx",
        }
    }
}

/// Where the proxies and the load run; `None`: anywhere.
struct Pins {
    proxy: Option<String>,
    load: Option<String>,
}

impl Pins {
    fn plan(args: &LbArgs) -> anyhow::Result<Pins> {
        if args.no_pin {
            return Ok(Pins {
                proxy: None,
                load: None,
            });
        }
        let allowed = allowed_cpus().unwrap_or_default();
        let taskset = Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        let explicit = args.proxy_cpus.is_some() || args.load_cpus.is_some();
        if !taskset {
            anyhow::ensure!(!explicit, "taskset is not installed (util-linux)");
            eprintln!("warning: taskset is not installed; nothing is pinned");
            return Ok(Pins {
                proxy: None,
                load: None,
            });
        }
        let (proxy, load) = match allowed.split_last() {
            Some((last, rest)) if !rest.is_empty() => (
                Some(last.to_string()),
                Some(
                    rest.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ),
            _ => (None, None),
        };
        Ok(Pins {
            proxy: args.proxy_cpus.clone().or(proxy),
            load: args.load_cpus.clone().or(load),
        })
    }

    fn describe(&self) -> String {
        match (&self.proxy, &self.load) {
            (None, None) => "nothing pinned".into(),
            (p, l) => format!(
                "proxies pinned to CPU {}, wrk and the backend to CPU {}",
                p.as_deref().unwrap_or("(any)"),
                l.as_deref().unwrap_or("(any)")
            ),
        }
    }
}

/// The CPUs this process may run on (`Cpus_allowed_list` of /proc/self/status).
fn allowed_cpus() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.trim().parse::<usize>().ok()?..=b.trim().parse().ok()?),
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    Some(cpus)
}

/// `program`, run under `taskset -c cpus` when pinned.
fn pinned(cpus: &Option<String>, program: impl AsRef<OsStr>) -> Command {
    match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Moves every thread of a running process onto `cpus`.
fn pin_running(pid: u32, cpus: &str) {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("warning: could not pin process {pid} to CPU {cpus}");
    }
}

/// CPU time a process (every thread of it) has run, from /proc/PID/task/*/schedstat.
fn cpu_time(pid: u32) -> Option<Duration> {
    let mut total: u64 = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        total += text
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(Duration::from_nanos(total))
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("berth-bench-lb-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("could not create {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = StdListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The installed nginx: its version and the temporary paths it was built with.
struct NginxBuild {
    version: String,
    temp_paths: Vec<&'static str>,
}

impl NginxBuild {
    fn probe() -> anyhow::Result<NginxBuild> {
        let out = Command::new("nginx")
            .arg("-V")
            .output()
            .context("nginx is not installed (Debian: apt-get install wrk nginx-light)")?;
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("nginx version: nginx/"))
            .unwrap_or("(unknown version)")
            .trim()
            .to_owned();
        // Every temporary path the build has is pointed into the run's directory, so nginx
        // needs no system directory.
        let temp_paths = [
            ("client-body", "client_body_temp_path"),
            ("proxy", "proxy_temp_path"),
            ("fastcgi", "fastcgi_temp_path"),
            ("uwsgi", "uwsgi_temp_path"),
            ("scgi", "scgi_temp_path"),
        ]
        .into_iter()
        .filter(|(flag, _)| {
            text.contains(&format!("--http-{flag}-temp-path"))
                && !text.contains(&format!("--without-http_{flag}_module"))
        })
        .map(|(_, directive)| directive)
        .collect();
        Ok(NginxBuild {
            version,
            temp_paths,
        })
    }

    /// Starts nginx as one process in the foreground with `http` as its `http { }` block.
    fn start(
        &self,
        dir: &Path,
        name: &str,
        http: &str,
        cpus: &Option<String>,
    ) -> anyhow::Result<Proc> {
        let own = dir.join(name);
        std::fs::create_dir_all(&own)?;
        let mut conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\nerror_log {log} warn;\n\
             worker_rlimit_nofile 65536;\nevents {{ worker_connections 16384; }}\nhttp {{\n\
             access_log off;\n",
            pid = own.join("nginx.pid").display(),
            log = own.join("error.log").display(),
        );
        for directive in &self.temp_paths {
            let _ = writeln!(conf, "{directive} {};", own.join(directive).display());
        }
        conf.push_str(http);
        conf.push_str("}\n");
        let path = own.join("nginx.conf");
        std::fs::write(&path, conf)?;
        let child = pinned(cpus, "nginx")
            .arg("-e")
            .arg(own.join("error.log"))
            .arg("-p")
            .arg(&own)
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("could not start nginx ({name})"))?;
        Ok(Proc(child))
    }
}

fn backend_config(dir: &Path, port: u16) -> anyhow::Result<String> {
    let root = dir.join("www");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.html"), BACKEND_BODY)?;
    Ok(format!(
        "keepalive_requests 1000000;\nopen_file_cache max=16;\n\
         server {{\n listen 127.0.0.1:{port} backlog=4096;\n root {root};\n\
         location / {{ index index.html; }}\n}}\n",
        root = root.display()
    ))
}

/// Forwards as Berth does: the client's `Host`, `X-Forwarded-For/-Proto/-Port`, hop-by-hop
/// headers dropped, over kept-alive upstream connections.
fn proxy_config(backend: u16, port: u16, connections: u32) -> String {
    format!(
        "keepalive_requests 1000000;\n\
         upstream backend {{\n server 127.0.0.1:{backend};\n keepalive {connections};\n \
         keepalive_requests 1000000;\n}}\n\
         server {{\n listen 127.0.0.1:{port} backlog=4096;\n location / {{\n  \
         proxy_pass http://backend;\n  proxy_http_version 1.1;\n  \
         proxy_set_header Connection \"\";\n  proxy_set_header Host $http_host;\n  \
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n  \
         proxy_set_header X-Forwarded-Proto $scheme;\n  \
         proxy_set_header X-Forwarded-Port $server_port;\n }}\n}}\n"
    )
}

/// `berth lb` against `server`, listening on 127.0.0.1, pinned to `cpus` from its start (its
/// runtime sizes itself to the CPUs it may use).
fn start_lb(server: &ServerProcess, cpus: &Option<String>) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe().context("could not find the berth binary")?;
    let child = pinned(cpus, exe)
        .args(["lb", "--server", &server.endpoint, "--bind", "127.0.0.1"])
        .env("AWS_ACCESS_KEY_ID", &server.credentials.access_key_id)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            &server.credentials.secret_access_key,
        )
        .env("AWS_DEFAULT_REGION", REGION)
        .env("BERTH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("could not start `berth lb`")?;
    Ok(Proc(child))
}

/// A signed ELBv2 (query protocol) caller over one short connection per call.
struct Elbv2 {
    /// `HOST:PORT`.
    endpoint: String,
    credentials: Credentials,
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The text of the first `<tag>` element of `xml`.
fn element<'x>(xml: &'x str, tag: &str) -> Option<&'x str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + end])
}

impl Elbv2 {
    /// Calls `action`; the XML answer, or an error with the server's.
    async fn call(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut body = format!("Action={action}&Version=2015-12-01");
        for (k, v) in params {
            let _ = write!(body, "&{}={}", form_encode(k), form_encode(v));
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, self.endpoint.parse()?);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        berth_sigv4::sign(
            &berth_sigv4::SigningParams {
                access_key_id: &self.credentials.access_key_id,
                secret_access_key: &self.credentials.secret_access_key,
                region: REGION,
                service: "elasticloadbalancing",
                time: SystemTime::now(),
            },
            &berth_sigv4::Unsigned {
                method: "POST",
                path: "/",
                query: "",
                body: body.as_bytes(),
            },
            &mut headers,
        );
        let mut request = String::from("POST / HTTP/1.1\r\n");
        for (name, value) in &headers {
            let _ = write!(request, "{name}: {}\r\n", value.to_str()?);
        }
        let _ = write!(
            request,
            "content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, answer) = exchange(&self.endpoint, request.as_bytes()).await?;
        if status != 200 {
            bail!("{action} failed (HTTP {status}): {answer}");
        }
        Ok(answer)
    }
}

/// Sends `request` on a new connection and reads the answer to its end: status and body.
async fn exchange(address: &str, request: &[u8]) -> anyhow::Result<(u16, String)> {
    let io = async {
        let mut stream = TcpStream::connect(address).await?;
        stream.write_all(request).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .with_context(|| format!("{address} did not answer within 10s"))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Waits until `GET /` on the port answers 200 with the backend's page.
async fn wait_for_body(port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let request = b"GET / HTTP/1.1\r\nhost: bench.example\r\nconnection: close\r\n\r\n";
    loop {
        let last = match exchange(&format!("127.0.0.1:{port}"), request).await {
            Ok((200, body)) if body == BACKEND_BODY => return Ok(()),
            Ok((status, body)) => format!("HTTP {status}: {body}"),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!("127.0.0.1:{port} did not serve the backend's page within {within:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates the load balancer, its target group with the backend registered, and a listener on
/// `port`; returns once the data plane's health check found the backend healthy.
async fn configure(elb: &Elbv2, backend_port: u16, port: u16) -> anyhow::Result<()> {
    let lb = elb
        .call(
            "CreateLoadBalancer",
            &[("Name", "bench"), ("Subnets.member.1", "subnet-bench")],
        )
        .await?;
    let lb_arn = element(&lb, "LoadBalancerArn")
        .context("CreateLoadBalancer named no LoadBalancerArn")?
        .to_owned();
    let backend_port = backend_port.to_string();
    let tg = elb
        .call(
            "CreateTargetGroup",
            &[
                ("Name", "bench"),
                ("Protocol", "HTTP"),
                ("Port", &backend_port),
                ("VpcId", "vpc-bench"),
                ("TargetType", "ip"),
                ("HealthCheckPath", "/"),
            ],
        )
        .await?;
    let tg_arn = element(&tg, "TargetGroupArn")
        .context("CreateTargetGroup named no TargetGroupArn")?
        .to_owned();
    elb.call(
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg_arn),
            ("Targets.member.1.Id", "127.0.0.1"),
            ("Targets.member.1.Port", &backend_port),
        ],
    )
    .await?;
    elb.call(
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb_arn),
            ("Protocol", "HTTP"),
            ("Port", &port.to_string()),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tg_arn),
        ],
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = elb
            .call("DescribeTargetHealth", &[("TargetGroupArn", &tg_arn)])
            .await?;
        let state = element(&health, "State").unwrap_or("").to_owned();
        if state == "healthy" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the backend target is still '{state}' after 30s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How wrk is run.
struct Wrk {
    threads: u32,
    connections: u32,
    cpus: Option<String>,
}

/// What one wrk run reported.
#[derive(Debug, Clone, PartialEq)]
struct WrkResult {
    requests: u64,
    per_second: f64,
    p50: Option<Duration>,
    p99: Option<Duration>,
    /// Socket errors of every kind plus answers that were not 2xx/3xx.
    errors: u64,
}

impl Wrk {
    async fn run(&self, port: u16, variant: Variant, seconds: u64) -> anyhow::Result<WrkResult> {
        let mut command = tokio::process::Command::from(pinned(&self.cpus, "wrk"));
        command.args([
            "-t",
            &self.threads.to_string(),
            "-c",
            &self.connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
        ]);
        if variant == Variant::Close {
            command.args(["-H", "Connection: close"]);
        }
        let out = command
            .arg(format!("http://127.0.0.1:{port}/"))
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .output()
            .await
            .context("could not run wrk")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "wrk failed: {}{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        parse_wrk(&text).with_context(|| format!("could not read wrk's report:\n{text}"))
    }
}

/// A wrk duration: `950.00us`, `1.23ms`, `2.00s`, `1.00m`.
fn parse_wrk_time(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    let value: f64 = number.trim().parse().ok()?;
    Duration::try_from_secs_f64(value * scale).ok()
}

fn parse_wrk(text: &str) -> Option<WrkResult> {
    let mut result = WrkResult {
        requests: 0,
        per_second: 0.0,
        p50: None,
        p99: None,
        errors: 0,
    };
    let mut saw_rate = false;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", t] => result.p50 = parse_wrk_time(t),
            ["99%", t] => result.p99 = parse_wrk_time(t),
            [n, "requests", "in", ..] => result.requests = n.parse().ok()?,
            ["Requests/sec:", r] => {
                result.per_second = r.parse().ok()?;
                saw_rate = true;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => result.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                for pair in rest.chunks(2) {
                    if let [_, n] = pair {
                        result.errors += n.trim_end_matches(',').parse::<u64>().ok()?;
                    }
                }
            }
            _ => {}
        }
    }
    saw_rate.then_some(result)
}

#[derive(Debug, Clone)]
struct Measured {
    variant: Variant,
    proxy: Proxy,
    result: WrkResult,
    /// CPU time the proxy used during the measurement.
    cpu: Option<Duration>,
    wall: Duration,
}

impl Measured {
    fn cpu_per_request_us(&self) -> Option<f64> {
        let requests = self.result.requests.max(1) as f64;
        self.cpu.map(|c| c.as_secs_f64() * 1e6 / requests)
    }
    fn cpu_share(&self) -> Option<f64> {
        self.cpu
            .map(|c| 100.0 * c.as_secs_f64() / self.wall.as_secs_f64().max(1e-9))
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// The median of `values` (the upper one of an even count); `None` when there are none.
fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> Option<T> {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values.get(values.len() / 2).copied()
}

/// One row per variant and proxy: the median of each figure over the rounds, errors summed.
fn medians(rows: &[Measured]) -> Vec<Measured> {
    let mut out = Vec::new();
    for variant in [Variant::KeepAlive, Variant::Close] {
        for proxy in [Proxy::Berth, Proxy::Nginx] {
            let of: Vec<&Measured> = rows
                .iter()
                .filter(|r| r.variant == variant && r.proxy == proxy)
                .collect();
            if of.is_empty() {
                continue;
            }
            // The CPU figures are those of the round with the median rate.
            let per_second = median(of.iter().map(|r| r.result.per_second).collect());
            let Some(typical) = of.iter().find(|r| Some(r.result.per_second) == per_second) else {
                continue;
            };
            out.push(Measured {
                result: WrkResult {
                    requests: typical.result.requests,
                    per_second: typical.result.per_second,
                    p50: median(of.iter().filter_map(|r| r.result.p50).collect()),
                    p99: median(of.iter().filter_map(|r| r.result.p99).collect()),
                    errors: of.iter().map(|r| r.result.errors).sum(),
                },
                ..(*typical).clone()
            });
        }
    }
    out
}

/// One line per measurement, and after each Berth/nginx pair of a variant the ratios.
fn table(rows: &[Measured]) -> String {
    let mut out = format!(
        "{:<18} {:<12} {:>10} {:>8} {:>8} {:>8} {:>10} {:>7}\n",
        "VARIANT", "PROXY", "REQ/S", "P50 MS", "P99 MS", "CPU %", "CPU US/REQ", "ERRORS"
    );
    let opt = |v: Option<f64>, decimals: usize| {
        v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
    };
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    for (i, row) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<18} {:<12} {:>10.0} {:>8} {:>8} {:>8} {:>10} {:>7}",
            row.variant.label(),
            row.proxy.label(),
            row.result.per_second,
            ms(row.result.p50),
            ms(row.result.p99),
            opt(row.cpu_share(), 0),
            opt(row.cpu_per_request_us(), 1),
            row.result.errors
        );
        // The pair is complete at its second member.
        let Some(previous) = i.checked_sub(1).map(|p| &rows[p]) else {
            continue;
        };
        if previous.variant != row.variant || previous.proxy == row.proxy {
            continue;
        }
        let (berth, nginx) = match row.proxy {
            Proxy::Nginx => (previous, row),
            Proxy::Berth => (row, previous),
        };
        let _ = writeln!(
            out,
            "{:<18} {:<12} {:>10} {:>8} {:>8} {:>8} {:>10} {:>7}",
            row.variant.label(),
            "berth/nginx",
            ratio(Some(berth.result.per_second), Some(nginx.result.per_second)),
            ratio(secs(berth.result.p50), secs(nginx.result.p50)),
            ratio(secs(berth.result.p99), secs(nginx.result.p99)),
            ratio(berth.cpu_share(), nginx.cpu_share()),
            ratio(berth.cpu_per_request_us(), nginx.cpu_per_request_us()),
            ""
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.01ms  300.00us   9.87ms   80.00%
    Req/Sec    31.00k     2.00k   35.00k    70.00%
  Latency Distribution
     50%  950.00us
     75%    1.10ms
     90%    1.30ms
     99%    2.50ms
  617284 requests in 10.00s, 100.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 2
Requests/sec:  61728.40
Transfer/sec:     10.00MB
";

    #[test]
    fn reads_wrk_reports() {
        let r = parse_wrk(REPORT).unwrap();
        assert_eq!(r.requests, 617_284);
        assert!((r.per_second - 61_728.40).abs() < 1e-6);
        assert_eq!(r.p50, Some(Duration::from_micros(950)));
        assert_eq!(r.p99, Some(Duration::from_micros(2500)));
        assert_eq!(r.errors, 6);
        assert!(parse_wrk("unable to connect to 127.0.0.1:1").is_none());
        assert_eq!(parse_wrk_time("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_wrk_time("1.00m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_wrk_time("fast"), None);
    }

    #[test]
    fn encodes_form_values_and_reads_elements() {
        assert_eq!(
            form_encode("arn:aws:x/y z"),
            "arn%3Aaws%3Ax%2Fy%20z".to_string()
        );
        let xml = "<A><TargetGroupArn>arn:1</TargetGroupArn><State>healthy</State></A>";
        assert_eq!(element(xml, "TargetGroupArn"), Some("arn:1"));
        assert_eq!(element(xml, "State"), Some("healthy"));
        assert_eq!(element(xml, "Missing"), None);
    }

    #[test]
    fn the_table_pairs_berth_with_nginx_and_takes_medians() {
        let row = |proxy, per_second, p99_ms| Measured {
            variant: Variant::KeepAlive,
            proxy,
            result: WrkResult {
                requests: 1000,
                per_second,
                p50: Some(Duration::from_millis(1)),
                p99: Some(Duration::from_millis(p99_ms)),
                errors: 0,
            },
            cpu: Some(Duration::from_millis(10)),
            wall: Duration::from_millis(100),
        };
        // Round two ran nginx first.
        let rows = [
            row(Proxy::Berth, 2000.0, 4),
            row(Proxy::Nginx, 1000.0, 2),
            row(Proxy::Nginx, 3000.0, 6),
            row(Proxy::Berth, 1500.0, 8),
        ];
        let text = table(&rows);
        let ratios: Vec<&str> = text.lines().filter(|l| l.contains("berth/nginx")).collect();
        assert_eq!(ratios.len(), 2, "{text}");
        assert!(ratios[0].contains("2.00"), "{text}");
        assert!(ratios[1].contains("0.50"), "{text}");
        let typical = medians(&rows);
        assert_eq!(typical.len(), 2);
        assert_eq!(typical[0].result.per_second, 2000.0);
        assert_eq!(typical[0].result.p99, Some(Duration::from_millis(8)));
        assert_eq!(typical[1].result.per_second, 3000.0);
    }
}
