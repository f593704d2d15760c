//! Seed 004 end to end: two ECS services behind one application load balancer, each in its own
//! target group, with path-based routing and dynamic host ports. The real `berth up` (server,
//! in-process agent on real Docker, in-process load balancer) driven by the real AWS CLI.
//!
//! A rolling deployment of one service under a steady, bounded client load completes with zero
//! failed requests: the new revision's tasks (which take a few seconds to listen) get traffic
//! only once their targets are healthy, the old tasks are replaced only then, and they drain (no
//! new requests, in-flight ones finish) for the deregistration delay before they are stopped.
//!
//! Needs a Docker Engine and Debian's `busybox-static` (`/bin/busybox`); the test image is built
//! offline from them.

mod support;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{Berth, free_port, only, s, strings};

const IMAGE: &str = "berth-test/busybox:1";
const TEST_LABEL: &str = "com.berth.test-run";
/// The deregistration delay of both target groups: how long an old task drains.
const DEREGISTRATION_DELAY: &str = "3";
/// How long one client request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between two requests of one client loop: bounds the load (~30 req/s per loop).
const CLIENT_PAUSE: Duration = Duration::from_millis(30);

fn docker(args: &[&str]) -> std::process::Output {
    support::images::docker_in(None, args, None)
}

fn ensure_test_image() {
    if !docker(&["image", "inspect", IMAGE]).status.success() {
        support::images::build_busybox_image(IMAGE, None);
    }
}

/// `berth up` with its agent and load balancer; on drop, Berth is stopped first (so no agent
/// starts a replacement), then every container of this run is removed, even when the test fails.
struct Stack {
    berth: Option<Berth>,
    run: String,
}

impl Stack {
    fn up() -> Stack {
        ensure_test_image();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let berth = Berth::start_up(vec![
            "--no-profile".into(),
            "--lb-bind".into(),
            "127.0.0.1".into(),
        ]);
        let stack = Stack {
            berth: Some(berth),
            run: format!("alb-{}-{nanos}", std::process::id()),
        };
        let berth = stack.berth();
        poll(Duration::from_secs(30), "the agent to register", || {
            let listed = berth.aws(&["ecs", "list-container-instances"]);
            (listed.status == 0 && strings(&listed.json["containerInstanceArns"]).len() == 1)
                .then_some(())
        });
        stack
    }

    fn berth(&self) -> &Berth {
        self.berth.as_ref().expect("berth runs")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(berth) = self.berth.take() {
            if std::thread::panicking() {
                let log = berth.stderr();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("--- berth stderr (last lines) ---");
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
            drop(berth);
        }
        let filter = format!("label={TEST_LABEL}={}", self.run);
        let out = docker(&["ps", "-aq", "--filter", &filter]);
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
    }
}

/// Calls `check` every 250 ms until it gives a value; panics after `limit`.
#[track_caller]
fn poll<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// An answer read off a connection: status and body.
type Answer = (u16, String);

/// Reads one HTTP/1.1 response: status, body, and whether the connection may carry another
/// request. `Ok(None)`: the connection closed before the first byte of an answer.
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<(Answer, bool)>> {
    let mut status_line = String::new();
    if r.read_line(&mut status_line)? == 0 {
        return Ok(None);
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = status_line.starts_with("HTTP/1.0");
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other(
                "the connection closed inside the head",
            ));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
        close = true;
    }
    let body = String::from_utf8_lossy(&body).trim().to_string();
    Ok(Some(((status, body), !close)))
}

fn connect(port: u16) -> std::io::Result<BufReader<TcpStream>> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&address, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// One GET on a fresh connection.
fn get_once(port: u16, path: &str) -> Result<Answer, String> {
    let mut r = connect(port).map_err(|e| format!("connect: {e}"))?;
    write!(
        r.get_mut(),
        "GET {path} HTTP/1.1\r\nhost: seed.example.com\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    match read_response(&mut r) {
        Ok(Some((answer, _))) => Ok(answer),
        Ok(None) => Err("closed without an answer".into()),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// A client that keeps its connection open between requests, as browsers and SDKs do.
struct KeepAlive {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
    /// Requests sent again because the load balancer closed an idle connection first.
    resent: usize,
    /// Connections opened.
    opened: usize,
}

impl KeepAlive {
    fn get(&mut self, path: &str) -> Result<Answer, String> {
        for _ in 0..2 {
            let reused = self.conn.is_some();
            let r = match self.conn.as_mut() {
                Some(r) => r,
                None => {
                    self.opened += 1;
                    self.conn
                        .insert(connect(self.port).map_err(|e| format!("connect: {e}"))?)
                }
            };
            let sent = write!(
                r.get_mut(),
                "GET {path} HTTP/1.1\r\nhost: seed.example.com\r\n\r\n"
            );
            let outcome = match sent {
                Ok(()) => read_response(r),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(Some((answer, keep))) => {
                    if !keep {
                        self.conn = None;
                    }
                    return Ok(answer);
                }
                // A reused connection the server closed while idle: HTTP clients send an
                // idempotent request again on a new one.
                Ok(None) if reused => {
                    self.conn = None;
                    self.resent += 1;
                }
                Err(e)
                    if reused
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                        ) =>
                {
                    self.conn = None;
                    self.resent += 1;
                }
                Ok(None) => {
                    self.conn = None;
                    return Err("closed without an answer".into());
                }
                Err(e) => {
                    self.conn = None;
                    return Err(format!("keep-alive: {e}"));
                }
            }
        }
        Err("closed without an answer twice in a row".into())
    }
}

/// One request of the load.
#[derive(Debug, Clone)]
struct Sample {
    /// Since the load started.
    at: Duration,
    took: Duration,
    client: usize,
    path: &'static str,
    outcome: Result<Answer, String>,
}

/// `clients` loops of GETs through the listener, alternating over `paths`, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    done: Arc<AtomicUsize>,
    samples: Arc<Mutex<Vec<Sample>>>,
    resent: Arc<AtomicUsize>,
    opened: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, clients: usize, paths: &'static [&'static str]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let done = Arc::new(AtomicUsize::new(0));
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let resent = Arc::new(AtomicUsize::new(0));
        let opened = Arc::new(AtomicUsize::new(0));
        let workers = (0..clients)
            .map(|client| {
                let (stop, done, samples, resent, opened) = (
                    stop.clone(),
                    done.clone(),
                    samples.clone(),
                    resent.clone(),
                    opened.clone(),
                );
                std::thread::spawn(move || {
                    // Even clients open a connection per request, odd ones keep theirs.
                    let mut keep_alive = (client % 2 == 1).then_some(KeepAlive {
                        port,
                        conn: None,
                        resent: 0,
                        opened: 0,
                    });
                    let mut turn = client;
                    while !stop.load(Ordering::Relaxed) {
                        let path = paths[turn % paths.len()];
                        turn += 1;
                        let at = started.elapsed();
                        let outcome = match keep_alive.as_mut() {
                            Some(k) => k.get(path),
                            None => get_once(port, path),
                        };
                        let took = started.elapsed() - at;
                        samples.lock().unwrap().push(Sample {
                            at,
                            took,
                            client,
                            path,
                            outcome,
                        });
                        done.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(CLIENT_PAUSE);
                    }
                    if let Some(k) = keep_alive {
                        resent.fetch_add(k.resent, Ordering::Relaxed);
                        opened.fetch_add(k.opened, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load {
            stop,
            started,
            done,
            samples,
            resent,
            opened,
            workers,
        }
    }

    /// Since the load started.
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until `n` more requests have been answered (or failed) from now on.
    fn wait_for_requests(&self, n: usize) {
        let target = self.done.load(Ordering::Relaxed) + n;
        poll(Duration::from_secs(30), "the client load to go on", || {
            (self.done.load(Ordering::Relaxed) >= target).then_some(())
        });
    }

    /// Stops the clients; returns every sample, how many requests were sent again and how many
    /// connections the keep-alive clients opened.
    fn finish(mut self) -> (Vec<Sample>, usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            w.join().expect("a client loop panicked");
        }
        let samples = std::mem::take(&mut *self.samples.lock().unwrap());
        (
            samples,
            self.resent.load(Ordering::Relaxed),
            self.opened.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Registers a busybox httpd task definition whose files name `revision`: `/index.html` for
/// the web service, `/api/x` and `/api/health` for the api service. The server starts
/// listening `warm_up_seconds` after the container started, as real applications take a while.
fn register(stack: &Stack, family: &str, revision: &str, warm_up_seconds: u32) -> String {
    let script = format!(
        "mkdir -p /www/api && echo {revision} > /www/index.html && echo {revision} > /www/api/x \
         && echo ok > /www/api/health && sleep {warm_up_seconds} && exec httpd -f -p 8080 -h /www"
    );
    let container = json!({
        "name": family, "image": IMAGE, "memory": 32, "essential": true, "stopTimeout": 1,
        "command": ["sh", "-c", script],
        "portMappings": [{"containerPort": 8080, "hostPort": 0}],
        "dockerLabels": { TEST_LABEL: stack.run },
    });
    let berth = stack.berth();
    let file = berth.file(
        &format!("{family}-{revision}.json"),
        &json!([container]).to_string(),
    );
    let out = berth
        .aws(&[
            "ecs",
            "register-task-definition",
            "--family",
            family,
            "--container-definitions",
            &file,
        ])
        .ok();
    s(&out["taskDefinition"]["taskDefinitionArn"])
}

/// The host ports of the service's tasks that are meant to run, by task definition ARN.
fn task_ports(berth: &Berth, service: &str) -> BTreeMap<String, BTreeSet<u16>> {
    let listed = berth
        .aws(&[
            "ecs",
            "list-tasks",
            "--service-name",
            service,
            "--desired-status",
            "RUNNING",
        ])
        .ok();
    let arns = strings(&listed["taskArns"]);
    let mut out: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    if arns.is_empty() {
        return out;
    }
    let mut args = vec!["ecs", "describe-tasks", "--tasks"];
    args.extend(arns.iter().map(String::as_str));
    let described = berth.aws(&args).ok();
    for t in described["tasks"].as_array().unwrap() {
        let ports = out.entry(s(&t["taskDefinitionArn"])).or_default();
        for binding in t["containers"][0]["networkBindings"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(port) = binding["hostPort"].as_u64() {
                ports.insert(u16::try_from(port).unwrap());
            }
        }
    }
    out
}

/// The target group's targets: port → state.
fn target_states(berth: &Berth, group: &str) -> BTreeMap<u16, String> {
    let health = berth
        .aws(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            group,
        ])
        .ok();
    health["TargetHealthDescriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                u16::try_from(d["Target"]["Port"].as_u64().unwrap()).unwrap(),
                s(&d["TargetHealth"]["State"]),
            )
        })
        .collect()
}

/// Waits until the target group holds exactly `ports`, all healthy.
fn wait_healthy(berth: &Berth, group: &str, ports: &BTreeSet<u16>) {
    poll(
        Duration::from_secs(60),
        &format!("targets {ports:?} healthy in {group}"),
        || {
            let states = target_states(berth, group);
            (states.keys().copied().collect::<BTreeSet<_>>() == *ports
                && states.values().all(|s| s == "healthy"))
            .then_some(())
        },
    );
}

fn describe_service(berth: &Berth, name: &str) -> Value {
    let out = berth
        .aws(&["ecs", "describe-services", "--services", name])
        .ok();
    only(&out, "services").clone()
}

fn is_failure(sample: &Sample, allowed: &[&str]) -> bool {
    match &sample.outcome {
        Ok((200, body)) => !allowed.contains(&body.as_str()),
        _ => true,
    }
}

#[test]
fn two_services_behind_one_load_balancer_roll_out_without_a_failed_request() {
    let test_started = Instant::now();
    let stack = Stack::up();
    let berth = stack.berth();
    let elb = |args: &[&str]| {
        let mut all = vec!["elbv2"];
        all.extend_from_slice(args);
        berth.aws(&all).ok()
    };

    // The seed's load balancer: two target groups, health checks on the traffic port.
    let lb = elb(&[
        "create-load-balancer",
        "--name",
        "stage01-alb",
        "--subnets",
        "subnet-0a",
        "subnet-0b",
    ]);
    let lb_arn = s(&lb["LoadBalancers"][0]["LoadBalancerArn"]);
    let mut groups = Vec::new();
    for (name, path) in [("web", "/"), ("api", "/api/health")] {
        let tg = elb(&[
            "create-target-group",
            "--name",
            name,
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--vpc-id",
            "vpc-0seed",
            "--health-check-path",
            path,
            "--health-check-port",
            "traffic-port",
            "--health-check-interval-seconds",
            "5",
            "--health-check-timeout-seconds",
            "2",
            "--healthy-threshold-count",
            "2",
            "--unhealthy-threshold-count",
            "2",
        ]);
        let arn = s(&tg["TargetGroups"][0]["TargetGroupArn"]);
        assert_eq!(tg["TargetGroups"][0]["TargetType"], "instance", "{tg}");
        elb(&[
            "modify-target-group-attributes",
            "--target-group-arn",
            &arn,
            "--attributes",
            &format!("Key=deregistration_delay.timeout_seconds,Value={DEREGISTRATION_DELAY}"),
        ]);
        groups.push(arn);
    }
    let (web_tg, api_tg) = (groups[0].clone(), groups[1].clone());
    let port = free_port();
    let listener = elb(&[
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        &port.to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={web_tg}"),
    ]);
    let listener_arn = s(&listener["Listeners"][0]["ListenerArn"]);
    elb(&[
        "create-rule",
        "--listener-arn",
        &listener_arn,
        "--priority",
        "10",
        "--conditions",
        "Field=path-pattern,Values=/api/*",
        "--actions",
        &format!("Type=forward,TargetGroupArn={api_tg}"),
    ]);

    // Two services of two tasks each, on dynamic host ports, registered by ECS.
    let web_v1 = register(&stack, "web", "web-v1", 0);
    let api_v1 = register(&stack, "api", "api-v1", 0);
    for (service, definition, group) in [("web", &web_v1, &web_tg), ("api", &api_v1, &api_tg)] {
        berth
            .aws(&[
                "ecs",
                "create-service",
                "--service-name",
                service,
                "--task-definition",
                definition,
                "--desired-count",
                "2",
                "--load-balancers",
                &format!("targetGroupArn={group},containerName={service},containerPort=8080"),
            ])
            .ok();
    }
    let ports_of = |service: &str, definition: &str| {
        poll(
            Duration::from_secs(60),
            &format!("two running tasks of {definition}"),
            || {
                let ports = task_ports(berth, service);
                let mine = ports.get(definition).cloned().unwrap_or_default();
                (ports.len() == 1 && mine.len() == 2).then_some(mine)
            },
        )
    };
    let web_ports = ports_of("web", &web_v1);
    let api_ports = ports_of("api", &api_v1);
    assert!(
        web_ports.is_disjoint(&api_ports),
        "{web_ports:?} {api_ports:?}"
    );
    wait_healthy(berth, &web_tg, &web_ports);
    wait_healthy(berth, &api_tg, &api_ports);
    let in_service = test_started.elapsed();

    // Path routing: /api/* goes to the api service, everything else to web.
    for path in ["/", "/index.html", "/api/x"] {
        let expected = if path.starts_with("/api/") {
            "api-v1"
        } else {
            "web-v1"
        };
        let answer = poll(Duration::from_secs(10), "the listener to answer", || {
            get_once(port, path).ok()
        });
        assert_eq!(answer, (200, expected.to_string()), "GET {path}");
    }

    // A steady, bounded load through the listener, then a rolling deployment of api.
    const PATHS: &[&str] = &["/api/x", "/", "/api/x", "/index.html"];
    let load = Load::start(port, 4, PATHS);
    load.wait_for_requests(40);
    // The new revision listens 3 s after it starts: its first health check fails.
    let api_v2 = register(&stack, "api", "api-v2", 3);
    let update_at = load.now();
    berth
        .aws(&[
            "ecs",
            "update-service",
            "--service",
            "api",
            "--task-definition",
            &api_v2,
        ])
        .ok();
    let mut timeline: Vec<(Duration, BTreeMap<u16, String>)> = Vec::new();
    let service = poll(
        Duration::from_secs(90),
        "the api deployment to complete",
        || {
            let states = target_states(berth, &api_tg);
            if timeline.last().is_none_or(|(_, last)| *last != states) {
                timeline.push((load.now(), states));
            }
            let s = describe_service(berth, "api");
            let deployments = s["deployments"].as_array().unwrap();
            (deployments.len() == 1
                && deployments[0]["taskDefinition"] == api_v2.as_str()
                && deployments[0]["rolloutState"] == "COMPLETED"
                && s["runningCount"] == 2)
                .then_some(s)
        },
    );
    let completed_at = load.now();
    for (at, states) in &timeline {
        println!("alb_services: api targets at {at:.2?}: {states:?}");
    }
    let new_ports = ports_of("api", &api_v2);
    assert!(new_ports.is_disjoint(&api_ports), "{new_ports:?}");
    // The load goes on a while against the new revision alone.
    load.wait_for_requests(60);
    let (samples, resent, opened) = load.finish();

    let api_states = target_states(berth, &api_tg);
    assert!(
        api_states
            .iter()
            .all(|(p, state)| new_ports.contains(p) && state == "healthy"),
        "only the new tasks are in service: {api_states:?} (new {new_ports:?})"
    );
    assert_eq!(
        task_ports(berth, "web").get(&web_v1),
        Some(&web_ports),
        "web was not touched"
    );

    let allowed = |path: &str| -> &'static [&'static str] {
        if path.starts_with("/api/") {
            &["api-v1", "api-v2"]
        } else {
            &["web-v1"]
        }
    };
    let failures: Vec<&Sample> = samples
        .iter()
        .filter(|s| is_failure(s, allowed(s.path)))
        .collect();
    let answered_by = |from: Duration, to: Duration, body: &str| {
        samples
            .iter()
            .filter(|s| s.at >= from && s.at < to && s.path.starts_with("/api/"))
            .filter(|s| matches!(&s.outcome, Ok((200, b)) if b == body))
            .count()
    };
    let forever = Duration::from_secs(3600);
    let v1_during = answered_by(update_at, completed_at, "api-v1");
    let v2_during = answered_by(update_at, completed_at, "api-v2");
    let v1_after = answered_by(completed_at, forever, "api-v1");
    let v2_after = answered_by(completed_at, forever, "api-v2");
    let slowest = samples.iter().map(|s| s.took).max().unwrap_or_default();
    println!(
        "alb_services: in service after {in_service:.1?}; rollout took {:.1?}; {} requests \
         ({} failed; the keep-alive clients opened {opened} connections and sent {resent} requests \
         again on a new one), slowest {slowest:.1?}; \
         api during the rollout: v1 {v1_during}, v2 {v2_during}; after: v1 {v1_after}, \
         v2 {v2_after}; whole test {:.1?}",
        completed_at - update_at,
        samples.len(),
        failures.len(),
        test_started.elapsed(),
    );
    let events: Vec<String> = service["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| s(&e["message"]))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed (update at {update_at:.2?}, completed at {completed_at:.2?}):\n{}\nservice events:\n{}",
        failures.len(),
        samples.len(),
        failures
            .iter()
            .take(20)
            .map(|s| format!(
                "  at {:.2?} (took {:.2?}) client {} GET {}: {:?}",
                s.at, s.took, s.client, s.path, s.outcome
            ))
            .collect::<Vec<_>>()
            .join("\n"),
        events.join("\n"),
    );
    assert_eq!(resent, 0, "the load balancer closed keep-alive connections");
    // The minimum healthy percent (100) holds behind the load balancer: old targets drain only
    // once new ones are healthy.
    for (at, states) in &timeline {
        let healthy = states.values().filter(|s| *s == "healthy").count();
        assert!(
            healthy >= 2,
            "at {at:.2?} only {healthy} api targets were healthy: {timeline:?}"
        );
    }
    assert!(
        v1_during > 0 && v2_during > 0,
        "both revisions answered during the rollout: v1 {v1_during}, v2 {v2_during}"
    );
    assert!(
        v1_after == 0 && v2_after > 0,
        "only the new revision answers once the deployment completed: v1 {v1_after}, v2 {v2_after}"
    );
}
