//! The data plane against real HTTP backends on 127.0.0.1: routing, health checks, failure
//! codes, bad input and configuration changes, with the configuration applied directly (the
//! control plane's side is covered by the CLI's black-box test).

use berth_lb::balancer::Health;
use berth_lb::config::Shared;
use berth_model::elbv2::data_plane::{
    Algorithm, CertificateConfig, DataPlaneConfig, HealthCheckConfig, HealthReport, ListenerConfig,
    LoadBalancerConfig, RuleConfig, Stickiness, TargetConfig, TargetGroupConfig,
};
use berth_model::elbv2::target::TargetState;
use berth_model::elbv2::{
    Action, ActionType, Condition, FixedResponse, Forward, Protocol, Redirect, WeightedTargetGroup,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// A small HTTP server: answers `NAME PATH`, `/health` with its health code, `/slow` after a
/// second and a half, `/login` with a `SESSION` cookie; echoes X-Forwarded-* back as headers.
struct Backend {
    port: u16,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
    sick: Arc<AtomicBool>,
}

impl Backend {
    async fn start(name: &'static str) -> Backend {
        Self::start_with(name, false).await
    }

    /// `hang`: accept connections and never answer.
    async fn start_with(name: &'static str, hang: bool) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let sick = Arc::new(AtomicBool::new(false));
        let (t, s) = (tasks.clone(), sick.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let sick = s.clone();
                let conn = tokio::spawn(async move {
                    if hang {
                        let mut stream = stream;
                        let mut buf = [0u8; 1024];
                        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                        return;
                    }
                    let service =
                        hyper::service::service_fn(move |req: http::Request<Incoming>| {
                            let sick = sick.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let mut response = http::Response::builder();
                                for h in
                                    ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-port"]
                                {
                                    if let Some(v) = req.headers().get(h) {
                                        response = response.header(format!("echo-{h}"), v);
                                    }
                                }
                                if path == "/health" {
                                    let code = if sick.load(Ordering::SeqCst) {
                                        500
                                    } else {
                                        200
                                    };
                                    return Ok::<_, Infallible>(
                                        response
                                            .status(code)
                                            .body(Full::new(Bytes::new()))
                                            .unwrap(),
                                    );
                                }
                                if path == "/login" {
                                    response = response.header("set-cookie", "SESSION=s1; Path=/");
                                }
                                if path == "/slow" {
                                    tokio::time::sleep(Duration::from_millis(1500)).await;
                                }
                                let body = format!("{name} {path}");
                                Ok(response.body(Full::new(Bytes::from(body))).unwrap())
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                t.lock().unwrap().push(conn.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Backend { port, tasks, sick }
    }

    /// Stops listening and drops every connection.
    fn kill(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn forward_to(arns: &[(&str, u32)]) -> Action {
    Action {
        kind: ActionType::Forward,
        order: None,
        forward: Some(Forward {
            target_groups: arns
                .iter()
                .map(|(a, w)| WeightedTargetGroup {
                    target_group_arn: a.to_string(),
                    weight: *w,
                })
                .collect(),
            stickiness_enabled: false,
            stickiness_duration_seconds: None,
        }),
        redirect: None,
        fixed_response: None,
    }
}

fn path_rule(priority: u32, pattern: &str, action: Action) -> RuleConfig {
    RuleConfig {
        priority: Some(priority),
        conditions: vec![Condition::PathPattern {
            values: vec![pattern.to_string()],
        }],
        actions: vec![action],
    }
}

fn default_rule(action: Action) -> RuleConfig {
    RuleConfig {
        priority: None,
        conditions: vec![],
        actions: vec![action],
    }
}

fn check() -> HealthCheckConfig {
    HealthCheckConfig {
        enabled: true,
        protocol: Protocol::Http,
        path: "/health".into(),
        interval_ms: 150,
        timeout_ms: 100,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        matcher: "200-299".into(),
    }
}

fn group(arn: &str, ports: &[u16]) -> TargetGroupConfig {
    TargetGroupConfig {
        arn: arn.into(),
        name: arn.into(),
        protocol: Protocol::Http,
        health_check: check(),
        algorithm: Algorithm::RoundRobin,
        slow_start_seconds: 0,
        stickiness: None,
        deregistration_delay_seconds: 0,
        targets: ports
            .iter()
            .map(|p| TargetConfig {
                id: "127.0.0.1".into(),
                port: *p,
                address: Some("127.0.0.1".into()),
                health_check_port: *p,
                state: TargetState::Initial,
            })
            .collect(),
    }
}

fn config(port: u16, rules: Vec<RuleConfig>, groups: Vec<TargetGroupConfig>) -> DataPlaneConfig {
    DataPlaneConfig {
        load_balancers: vec![LoadBalancerConfig {
            arn: "lb".into(),
            name: "web".into(),
            idle_timeout_ms: 600,
            listeners: vec![ListenerConfig {
                arn: "listener".into(),
                port,
                protocol: Protocol::Http,
                certificates: vec![],
                rules,
            }],
        }],
        target_groups: groups,
        certificates: vec![],
    }
}

/// The data plane on its own: listeners, health checks; verdicts come out of the channel.
struct Plane {
    shared: Arc<Shared>,
    verdicts: mpsc::UnboundedReceiver<HealthReport>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Plane {
    fn start(config: DataPlaneConfig) -> Plane {
        let shared = Arc::new(Shared::default());
        shared.apply(config);
        let (tx, verdicts) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(berth_lb::health::run(shared.clone(), tx)),
            tokio::spawn(berth_lb::proxy::run(
                shared.clone(),
                "127.0.0.1".parse().unwrap(),
            )),
        ];
        Plane {
            shared,
            verdicts,
            tasks,
        }
    }

    fn health(&self, group: &str, port: u16) -> Health {
        let current = self.shared.current();
        current.groups[group]
            .targets
            .iter()
            .find(|t| t.port == port)
            .map(|t| t.stats.health())
            .unwrap()
    }

    async fn wait_health(&self, group: &str, port: u16, want: Health, within: Duration) {
        let deadline = Instant::now() + within;
        while self.health(group, port) != want {
            assert!(
                Instant::now() < deadline,
                "{group}:{port} is not {want:?} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

fn client(http2: bool) -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .http2_only(http2)
        .build(HttpConnector::new())
}

async fn get_with(client: &Client<HttpConnector, Full<Bytes>>, port: u16, path: &str) -> Answer {
    get_with_headers(client, port, path, &[]).await
}

async fn get_with_headers(
    client: &Client<HttpConnector, Full<Bytes>>,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut request = http::Request::get(format!("http://127.0.0.1:{port}{path}"))
            .header("x-forwarded-for", "203.0.113.9");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::new())).unwrap();
        match client.request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                return Answer {
                    status,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
            }
            // The listener may not be bound yet.
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("GET {path} on port {port}: {e}"),
        }
    }
}

async fn get(port: u16, path: &str) -> Answer {
    get_with(&client(false), port, path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_path_to_two_target_groups_over_http1_and_http2() {
    let (auth, random) = (Backend::start("auth").await, Backend::start("random").await);
    let port = free_port();
    let plane = Plane::start(config(
        port,
        vec![
            path_rule(10, "/random/*", forward_to(&[("random", 1)])),
            default_rule(forward_to(&[("auth", 1)])),
        ],
        vec![group("auth", &[auth.port]), group("random", &[random.port])],
    ));
    plane
        .wait_health("auth", auth.port, Health::Healthy, Duration::from_secs(3))
        .await;
    let a = get(port, "/login").await;
    assert_eq!((a.status, a.body.as_str()), (200, "auth /login"));
    assert_eq!(a.headers["echo-x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(a.headers["echo-x-forwarded-proto"], "http");
    assert_eq!(
        a.headers["echo-x-forwarded-port"],
        port.to_string().as_str()
    );
    let r = get(port, "/random/42").await;
    assert_eq!((r.status, r.body.as_str()), (200, "random /random/42"));
    let h2 = get_with(&client(true), port, "/random/h2").await;
    assert_eq!((h2.status, h2.body.as_str()), (200, "random /random/h2"));
    let h2 = get_with(&client(true), port, "/x").await;
    assert_eq!(h2.body, "auth /x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_turns_unhealthy_and_gets_no_more_traffic() {
    let (one, two) = (Backend::start("one").await, Backend::start("two").await);
    let port = free_port();
    let mut plane = Plane::start(config(
        port,
        vec![default_rule(forward_to(&[("web", 1)]))],
        vec![group("web", &[one.port, two.port])],
    ));
    for p in [one.port, two.port] {
        plane
            .wait_health("web", p, Health::Healthy, Duration::from_secs(3))
            .await;
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(get(port, "/").await.body);
    }
    seen.sort();
    assert_eq!(seen, ["one /", "one /", "two /", "two /"], "round robin");
    one.kill();
    let killed = Instant::now();
    plane
        .wait_health("web", one.port, Health::Unhealthy, Duration::from_secs(2))
        .await;
    // Two failed checks, 150 ms apart.
    assert!(killed.elapsed() < Duration::from_millis(1000));
    for _ in 0..6 {
        let a = get(port, "/").await;
        assert_eq!((a.status, a.body.as_str()), (200, "two /"));
    }
    let mut unhealthy = None;
    while let Ok(r) = plane.verdicts.try_recv() {
        if r.port == one.port && !r.healthy {
            unhealthy = Some(r);
        }
    }
    let r = unhealthy.expect("an unhealthy verdict was published");
    assert_eq!(r.target_group_arn, "web");
    assert_eq!(r.reason.as_deref(), Some("Target.FailedHealthChecks"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_open_when_every_target_is_unhealthy() {
    let (one, two) = (Backend::start("one").await, Backend::start("two").await);
    one.sick.store(true, Ordering::SeqCst);
    two.sick.store(true, Ordering::SeqCst);
    let port = free_port();
    let plane = Plane::start(config(
        port,
        vec![default_rule(forward_to(&[("web", 1)]))],
        vec![group("web", &[one.port, two.port])],
    ));
    for p in [one.port, two.port] {
        plane
            .wait_health("web", p, Health::Unhealthy, Duration::from_secs(3))
            .await;
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        let a = get(port, "/").await;
        assert_eq!(a.status, 200);
        seen.push(a.body);
    }
    seen.sort();
    assert_eq!(seen, ["one /", "one /", "two /", "two /"]);
    // One recovers: after the healthy threshold it alone gets the traffic.
    two.sick.store(false, Ordering::SeqCst);
    plane
        .wait_health("web", two.port, Health::Healthy, Duration::from_secs(3))
        .await;
    for _ in 0..4 {
        assert_eq!(get(port, "/").await.body, "two /");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_502_503_504_where_alb_does() {
    let hanging = Backend::start_with("hang", true).await;
    let refused = free_port();
    let port = free_port();
    let mut no_checks = group("refused", &[refused]);
    no_checks.health_check.enabled = false;
    let mut hang_group = group("hang", &[hanging.port]);
    hang_group.health_check.enabled = false;
    let plane = Plane::start(config(
        port,
        vec![
            path_rule(1, "/hang", forward_to(&[("hang", 1)])),
            path_rule(2, "/refused", forward_to(&[("refused", 1)])),
            path_rule(3, "/empty", forward_to(&[("empty", 1)])),
            path_rule(4, "/missing", forward_to(&[("missing", 1)])),
            path_rule(
                5,
                "/fixed",
                Action {
                    kind: ActionType::FixedResponse,
                    order: None,
                    forward: None,
                    redirect: None,
                    fixed_response: Some(FixedResponse {
                        status_code: "418".into(),
                        content_type: Some("application/json".into()),
                        message_body: Some("{\"tea\":true}".into()),
                    }),
                },
            ),
            default_rule(Action {
                kind: ActionType::Redirect,
                order: None,
                forward: None,
                redirect: Some(Redirect {
                    protocol: "HTTPS".into(),
                    port: "443".into(),
                    host: "#{host}".into(),
                    path: "/#{path}".into(),
                    query: "#{query}".into(),
                    status_code: "HTTP_301".into(),
                }),
                fixed_response: None,
            }),
        ],
        vec![hang_group, no_checks, group("empty", &[])],
    ));
    let started = Instant::now();
    assert_eq!(get(port, "/hang").await.status, 504);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_secs(3),
        "504 after {took:?}"
    );
    assert_eq!(get(port, "/refused").await.status, 502);
    assert_eq!(get(port, "/empty").await.status, 503);
    assert_eq!(get(port, "/missing").await.status, 503);
    let fixed = get(port, "/fixed").await;
    assert_eq!((fixed.status, fixed.body.as_str()), (418, "{\"tea\":true}"));
    assert_eq!(fixed.headers["content-type"], "application/json");
    let moved = get(port, "/a/b?x=1").await;
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.headers["location"],
        "https://127.0.0.1/a/b?x=1".to_string().as_str()
    );
    drop(plane);
}

/// Sends raw bytes and reads until the load balancer closes the connection.
async fn raw(port: u16, request: &[u8]) -> (u16, bool) {
    let mut stream = connect_when_listening(port).await;
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut out))
        .await
        .is_ok();
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_or_431_and_the_connection_closed() {
    let backend = Backend::start("web").await;
    let port = free_port();
    let _plane = Plane::start(config(
        port,
        vec![default_rule(forward_to(&[("web", 1)]))],
        vec![group("web", &[backend.port])],
    ));
    // The listener answers a good request first (and is bound).
    assert_eq!(get(port, "/").await.status, 200);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "content-length and transfer-encoding",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "transfer-encoding then content-length",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "duplicate content-length",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
            400,
        ),
        (
            "malformed request line",
            b"GET /with space HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        ("garbage", b"\x16\x03\x01hello\r\n\r\n".to_vec(), 400),
        ("oversized headers", big.into_bytes(), 431),
        (
            "smuggled behind a good request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            200,
        ),
    ];
    for (what, request, want) in cases {
        let (status, closed) = raw(port, &request).await;
        assert_eq!(status, want, "{what}");
        assert!(closed, "{what}: the connection was not closed");
    }
    // Still serving.
    assert_eq!(get(port, "/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rule_takes_effect_while_a_long_request_completes() {
    let (old, new) = (Backend::start("old").await, Backend::start("new").await);
    let port = free_port();
    let groups = vec![group("old", &[old.port]), group("new", &[new.port])];
    let patient = |mut c: DataPlaneConfig| {
        c.load_balancers[0].idle_timeout_ms = 5000;
        c
    };
    let plane = Plane::start(patient(config(
        port,
        vec![default_rule(forward_to(&[("old", 1)]))],
        groups.clone(),
    )));
    assert_eq!(get(port, "/x").await.body, "old /x");
    let slow = tokio::spawn(async move { get(port, "/slow").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let changed = Instant::now();
    plane.shared.apply(patient(config(
        port,
        vec![
            path_rule(1, "/slow", forward_to(&[("new", 1)])),
            default_rule(forward_to(&[("old", 1)])),
        ],
        groups,
    )));
    let after = tokio::spawn(async move { get(port, "/slow").await });
    assert_eq!(get(port, "/x").await.body, "old /x");
    let in_flight = slow.await.unwrap();
    assert_eq!(
        (in_flight.status, in_flight.body.as_str()),
        (200, "old /slow"),
        "the request in flight finished on the old route"
    );
    let after = after.await.unwrap();
    assert_eq!((after.status, after.body.as_str()), (200, "new /slow"));
    // The new request was routed at once: it took the backend's 1.5 s, not more.
    assert!(changed.elapsed() < Duration::from_millis(2500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_targets_get_no_new_requests_and_weights_split_traffic() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let port = free_port();
    let mut web = group("web", &[a.port, b.port]);
    web.targets[0].state = TargetState::Draining;
    let plane = Plane::start(config(
        port,
        vec![
            path_rule(1, "/split", forward_to(&[("web", 1), ("other", 0)])),
            default_rule(forward_to(&[("web", 1)])),
        ],
        vec![web, group("other", &[a.port])],
    ));
    plane
        .wait_health("web", b.port, Health::Healthy, Duration::from_secs(3))
        .await;
    for _ in 0..5 {
        assert_eq!(get(port, "/").await.body, "b /");
        assert_eq!(
            get(port, "/split").await.body,
            "b /split",
            "weight 0 gets nothing"
        );
    }
}

/// How a [`RawBackend`] answers.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    Length,
    Chunked,
    /// A `Content-Length` answer, then the connection closed without saying so.
    LengthThenClose,
}

/// The data plane on `port` sending everything to the one target on `backend`, unchecked.
fn unchecked_plane(port: u16, backend: u16) -> Plane {
    let mut web = group("web", &[backend]);
    web.health_check.enabled = false;
    Plane::start(config(
        port,
        vec![default_rule(forward_to(&[("web", 1)]))],
        vec![web],
    ))
}

/// A backend on raw sockets that numbers its connections and answers every request with the
/// number of the connection it came on.
async fn raw_backend(framing: Framing) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for n in 0u32.. {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..end + 4);
                        let body = format!("connection {n}");
                        let answer = match framing {
                            Framing::Chunked => format!(
                                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                                body.len()
                            ),
                            _ => format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            ),
                        };
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                        if framing == Framing::LengthThenClose {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_targets_are_reused_until_the_target_closes_them() {
    for framing in [Framing::Length, Framing::Chunked, Framing::LengthThenClose] {
        let backend = raw_backend(framing).await;
        let port = free_port();
        let _plane = unchecked_plane(port, backend);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let answer = get(port, "/x").await;
            assert_eq!(answer.status, 200);
            seen.push(answer.body);
            // Time for a closed connection to be noticed.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen.dedup();
        match framing {
            Framing::LengthThenClose => assert_eq!(seen.len(), 4, "{seen:?}"),
            _ => assert_eq!(seen, ["connection 0"], "one connection for all"),
        }
    }
}

/// A self-signed certificate for `names` (the first also its common name), as ACM holds one.
fn certificate(
    arn: &str,
    names: &[&str],
) -> (
    CertificateConfig,
    rustls::pki_types::CertificateDer<'static>,
) {
    let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(sans).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let config = CertificateConfig {
        arn: arn.into(),
        certificate_chain_pem: cert.pem(),
        private_key_pem: key.serialize_pem(),
    };
    (config, cert.der().clone())
}

/// A TLS connection to 127.0.0.1:`port` asking for `name`, trusting `roots`, offering `alpn`.
async fn tls_connect(
    port: u16,
    name: &str,
    roots: &[rustls::pki_types::CertificateDer<'static>],
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = connect_when_listening(port).await;
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    connector.connect(server_name, tcp).await
}

/// What an HTTPS request saw: the answer, the protocol ALPN chose and the server's certificate.
struct TlsAnswer {
    answer: Answer,
    alpn: Option<Vec<u8>>,
    presented: rustls::pki_types::CertificateDer<'static>,
}

/// `GET path` over TLS to 127.0.0.1:`port`, asking for `name`, trusting `roots`, offering
/// `alpn`.
async fn https_get(
    port: u16,
    name: &str,
    roots: &[rustls::pki_types::CertificateDer<'static>],
    alpn: &[&[u8]],
    path: &str,
) -> TlsAnswer {
    let tls = tls_connect(port, name, roots, alpn).await.unwrap();
    let (_, session) = tls.get_ref();
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    let presented = session.peer_certificates().unwrap()[0].clone();
    let request = http::Request::get(format!("https://{name}:{port}{path}"))
        .header("host", name)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let request = if alpn.as_deref() == Some(b"h2") {
        let mut request = request;
        request.headers_mut().remove("host");
        request
    } else {
        let (parts, body) = request.into_parts();
        let mut parts = parts;
        parts.uri = path.parse().unwrap();
        http::Request::from_parts(parts, body)
    };
    let io = TokioIo::new(tls);
    let response = if alpn.as_deref() == Some(b"h2") {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await.unwrap()
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    TlsAnswer {
        answer: Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        alpn,
        presented,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listeners_terminate_tls_pick_certificates_by_name_and_speak_h2_and_http1() {
    let backend = Backend::start("web").await;
    let port = free_port();
    let (shop, shop_der) = certificate("arn:shop", &["shop.example.com"]);
    let (api, api_der) = certificate("arn:api", &["*.api.example.com"]);
    let mut c = config(
        port,
        vec![default_rule(forward_to(&[("web", 1)]))],
        vec![group("web", &[backend.port])],
    );
    let listener = &mut c.load_balancers[0].listeners[0];
    listener.protocol = Protocol::Https;
    listener.certificates = vec!["arn:shop".into(), "arn:api".into()];
    c.certificates = vec![shop, api];
    let plane = Plane::start(c);
    plane
        .wait_health("web", backend.port, Health::Healthy, Duration::from_secs(5))
        .await;
    let roots = [shop_der.clone(), api_der.clone()];

    let h2 = https_get(
        port,
        "shop.example.com",
        &roots,
        &[b"h2", b"http/1.1"],
        "/a",
    )
    .await;
    assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!((h2.answer.status, h2.answer.body.as_str()), (200, "web /a"));
    assert_eq!(h2.answer.headers["echo-x-forwarded-proto"], "https");
    assert_eq!(
        h2.answer.headers["echo-x-forwarded-port"],
        port.to_string().as_str()
    );
    assert_eq!(h2.presented, shop_der);

    let h1 = https_get(port, "v2.api.example.com", &roots, &[b"http/1.1"], "/b").await;
    assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!((h1.answer.status, h1.answer.body.as_str()), (200, "web /b"));
    assert_eq!(
        h1.presented, api_der,
        "the name picks the wildcard certificate"
    );

    // No ALPN at all is HTTP/1.1.
    let plain = https_get(port, "shop.example.com", &roots, &[], "/c").await;
    assert_eq!(plain.alpn, None);
    assert_eq!(
        (plain.answer.status, plain.answer.body.as_str()),
        (200, "web /c")
    );
    // A name no certificate has gets the default one (which this client then refuses).
    let refused = tls_connect(port, "other.example.com", &roots, &[])
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("shop.example.com"),
        "{refused}"
    );

    // Cleartext on the HTTPS port gets no HTTP answer.
    let (status, _) = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_ne!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_listener_without_a_loadable_certificate_is_not_served() {
    let backend = Backend::start("web").await;
    let port = free_port();
    let (mut broken, _) = certificate("arn:broken", &["shop.example.com"]);
    broken.private_key_pem = certificate("arn:other", &["x.example.com"])
        .0
        .private_key_pem;
    let mut c = config(
        port,
        vec![default_rule(forward_to(&[("web", 1)]))],
        vec![group("web", &[backend.port])],
    );
    let listener = &mut c.load_balancers[0].listeners[0];
    listener.protocol = Protocol::Https;
    listener.certificates = vec!["arn:broken".into(), "arn:missing".into()];
    c.certificates = vec![broken];
    let plane = Plane::start(c);
    assert!(!plane.shared.current().listeners.contains_key(&port));
}

/// A backend that switches to an upper-casing echo when asked to upgrade to `websocket`, and
/// answers 426 to any other request; it echoes the `x-forwarded-for` it got in its 101.
async fn upgrading_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut stream).await.to_ascii_lowercase();
                if !(head.contains("\r\nupgrade: websocket\r\n")
                    && head.contains("\r\nconnection: upgrade\r\n"))
                {
                    let refused = "HTTP/1.1 426 Upgrade Required\r\ncontent-length: 0\r\n\r\n";
                    let _ = stream.write_all(refused.as_bytes()).await;
                    return;
                }
                let forwarded = head
                    .lines()
                    .find_map(|l| l.strip_prefix("x-forwarded-for: "))
                    .unwrap_or("")
                    .to_string();
                let switched = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\necho-x-forwarded-for: {forwarded}\r\n\r\n"
                );
                if stream.write_all(switched.as_bytes()).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0
                        || stream
                            .write_all(&buf[..n].to_ascii_uppercase())
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A connection to the load balancer's `port`, once its listener is bound.
async fn connect_when_listening(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => return stream,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("connecting to port {port}: {e}"),
        }
    }
}

/// Reads up to the end of a head (the blank line), byte by byte so nothing after it is taken.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_are_joined_to_the_target_until_idle() {
    let backend = upgrading_backend().await;
    let port = free_port();
    // The idle timeout of `config` is 600 ms.
    let _plane = unchecked_plane(port, backend);
    let mut ws = connect_when_listening(port).await;
    ws.write_all(
        b"GET /chat HTTP/1.1\r\nhost: shop\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut ws).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(head.contains("echo-x-forwarded-for: 127.0.0.1"), "{head}");
    // Both ways, more than once, with pauses shorter than the idle timeout.
    for word in ["hello", "again", "third"] {
        ws.write_all(word.as_bytes()).await.unwrap();
        let mut got = vec![0u8; word.len()];
        tokio::time::timeout(Duration::from_secs(5), ws.read_exact(&mut got))
            .await
            .expect("the target's answer comes back through the tunnel")
            .unwrap();
        assert_eq!(got, word.to_ascii_uppercase().as_bytes());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Silent for longer than the idle timeout: the load balancer closes the connection.
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), ws.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "an idle tunnel is closed");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );

    // A target that does not switch: its answer is passed on as it is.
    let mut plain = connect_when_listening(port).await;
    plain
        .write_all(
            b"GET /chat HTTP/1.1\r\nhost: shop\r\nupgrade: h2c\r\nconnection: Upgrade\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut plain).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 426 "), "{head}");
}

/// The `AWSALB=…` pair of an answer's cookies.
fn stickiness_cookie(answer: &Answer) -> String {
    let set: Vec<&str> = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let cookie = set.iter().find(|c| c.starts_with("AWSALB="));
    let cookie = cookie.unwrap_or_else(|| panic!("no AWSALB cookie in {set:?}"));
    assert!(cookie.contains("Max-Age=60"), "{cookie}");
    assert!(set.iter().any(|c| c.starts_with("AWSALBCORS=")), "{set:?}");
    cookie.split(';').next().unwrap().to_string()
}

/// Backends `one` and `two` in group `web` with `stickiness`, behind a listener on the port
/// returned, both healthy.
async fn sticky_pair(stickiness: Stickiness) -> (Backend, Backend, u16, Plane) {
    let (one, two) = (Backend::start("one").await, Backend::start("two").await);
    let port = free_port();
    let mut web = group("web", &[one.port, two.port]);
    web.stickiness = Some(stickiness);
    let plane = Plane::start(config(
        port,
        vec![default_rule(forward_to(&[("web", 1)]))],
        vec![web],
    ));
    for p in [one.port, two.port] {
        plane
            .wait_health("web", p, Health::Healthy, Duration::from_secs(3))
            .await;
    }
    (one, two, port, plane)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stickiness_keeps_a_client_on_its_target_while_it_is_healthy() {
    let (_one, two, port, plane) = sticky_pair(Stickiness::LbCookie { seconds: 60 }).await;
    let client = client(false);
    // Without a cookie: round robin, each answer naming its target.
    let (first, second) = (get(port, "/").await, get(port, "/").await);
    assert_ne!(first.body, second.body, "round robin");
    let cookie_of_two = match second.body.as_str() {
        "two /" => stickiness_cookie(&second),
        _ => stickiness_cookie(&first),
    };
    assert_ne!(stickiness_cookie(&first), stickiness_cookie(&second));
    // With it: always the same target, the cookie renewed.
    let cookie = [("cookie", format!("session=abc; {cookie_of_two}"))];
    let cookie: Vec<(&str, &str)> = cookie.iter().map(|(n, v)| (*n, v.as_str())).collect();
    for _ in 0..6 {
        let a = get_with_headers(&client, port, "/", &cookie).await;
        assert_eq!((a.status, a.body.as_str()), (200, "two /"));
        assert_eq!(stickiness_cookie(&a), cookie_of_two);
    }
    // Its target gone unhealthy, the client goes elsewhere and is told so.
    two.kill();
    plane
        .wait_health("web", two.port, Health::Unhealthy, Duration::from_secs(2))
        .await;
    let moved = get_with_headers(&client, port, "/", &cookie).await;
    assert_eq!((moved.status, moved.body.as_str()), (200, "one /"));
    assert_ne!(stickiness_cookie(&moved), cookie_of_two);
    // A cookie naming no target of the group is ignored.
    let forged = [("cookie", "AWSALB=3132372e302e302e313a31")];
    assert_eq!(
        get_with_headers(&client, port, "/", &forged).await.status,
        200
    );
}

/// The `NAME=VALUE` pairs of the cookies an answer sets whose names start with `prefix`.
fn cookies_set(answer: &Answer, prefix: &str) -> Vec<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .filter(|c| c.starts_with(prefix))
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_cookie_stickiness_follows_the_targets_own_cookie() {
    let (_one, _two, port, _plane) = sticky_pair(Stickiness::AppCookie {
        cookie_name: "SESSION".into(),
        seconds: 90,
    })
    .await;
    // An answer that does not set the application's cookie sets none of the balancer's.
    let plain = get(port, "/").await;
    assert_eq!(plain.status, 200);
    assert!(
        cookies_set(&plain, "AWSALB").is_empty(),
        "{:?}",
        plain.headers
    );

    // One that does is followed by AWSALBAPP-0 naming its target, for the configured time.
    let login = get(port, "/login").await;
    let held = cookies_set(&login, "AWSALBAPP-0=");
    assert_eq!(held.len(), 1, "{:?}", login.headers);
    let full = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("AWSALBAPP-0="))
        .unwrap();
    assert!(full.contains("Max-Age=90"), "{full}");
    let target = login.body.split(' ').next().unwrap().to_string();

    let client = client(false);
    let cookie = format!("SESSION=s1; {}", held[0]);
    for _ in 0..6 {
        let a = get_with_headers(&client, port, "/cart", &[("cookie", &cookie)]).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (200, format!("{target} /cart").as_str())
        );
        assert!(
            cookies_set(&a, "AWSALBAPP").is_empty(),
            "not renewed without SESSION"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_group_stickiness_keeps_a_client_on_the_group_a_weighted_forward_chose() {
    let (blue, green) = (Backend::start("blue").await, Backend::start("green").await);
    let port = free_port();
    let mut action = forward_to(&[("blue", 1), ("green", 1)]);
    let forward = action.forward.as_mut().unwrap();
    forward.stickiness_enabled = true;
    forward.stickiness_duration_seconds = Some(300);
    let plane = Plane::start(config(
        port,
        vec![default_rule(action)],
        vec![group("blue", &[blue.port]), group("green", &[green.port])],
    ));
    plane
        .wait_health("blue", blue.port, Health::Healthy, Duration::from_secs(3))
        .await;
    plane
        .wait_health("green", green.port, Health::Healthy, Duration::from_secs(3))
        .await;
    // Without the cookie both groups get requests, each answer naming its group.
    let client = client(false);
    let mut chosen: std::collections::BTreeMap<String, String> = Default::default();
    for _ in 0..40 {
        let a = get_with(&client, port, "/").await;
        let group_cookie = cookies_set(&a, "AWSALBTG=");
        assert_eq!(group_cookie.len(), 1, "{:?}", a.headers);
        assert_eq!(cookies_set(&a, "AWSALBTGCORS=").len(), 1);
        chosen.insert(a.body.clone(), group_cookie[0].clone());
    }
    assert_eq!(
        chosen.len(),
        2,
        "both groups chosen in 40 draws: {chosen:?}"
    );
    // With it, every request goes to that group.
    for (body, cookie) in &chosen {
        for _ in 0..8 {
            let a = get_with_headers(&client, port, "/", &[("cookie", cookie)]).await;
            assert_eq!(&a.body, body);
        }
    }
    // A cookie naming a group the action does not forward to is ignored.
    let other = "AWSALBTG=6f74686572";
    let a = get_with_headers(&client, port, "/", &[("cookie", other)]).await;
    assert_eq!(a.status, 200);
}
