//! The in-process harness shared by the server's integration tests: the real router on a real
//! SQLite store in a temporary directory, called with `oneshot` (no sockets), auth off.

#![allow(dead_code)] // each test binary uses its own part of the harness

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use berth_server::App;
use berth_server::config::{AuthMode, Config};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// An answer of the router: status, headers and body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A header's value, "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    /// The first OCI error code.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends `req` through `app`'s router and reads the whole answer.
pub async fn send(app: &App, req: Request<Body>) -> Reply {
    let response = app.router().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: body.to_vec(),
    }
}

pub struct Harness {
    pub app: App,
    _dir: Option<tempfile::TempDir>,
}

pub async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    config.auth = AuthMode::Off;
    let store = berth_server::open_sqlite(&config).unwrap();
    let (app, _) = App::open(config, store).await.unwrap();
    Harness {
        app,
        _dir: Some(dir),
    }
}

impl Harness {
    pub async fn call(&self, op: &str, body: Value) -> (StatusCode, Value) {
        self.raw(Some(op), body.to_string().into_bytes()).await
    }

    pub async fn raw(&self, op: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let target = op.map(|op| format!("AmazonEC2ContainerServiceV20141113.{op}"));
        self.json_1_1(target.as_deref(), body).await
    }

    /// A JSON 1.1 call of the service whose target prefix is `prefix`.
    pub async fn call_service(&self, prefix: &str, op: &str, body: Value) -> (StatusCode, Value) {
        let target = format!("{prefix}.{op}");
        self.json_1_1(Some(&target), body.to_string().into_bytes())
            .await
    }

    async fn json_1_1(&self, target: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let mut req = Request::post("/").header("content-type", "application/x-amz-json-1.1");
        if let Some(target) = target {
            req = req.header("x-amz-target", target);
        }
        let reply = send(&self.app, req.body(Body::from(body)).unwrap()).await;
        (reply.status, reply.json())
    }

    /// `POST path` with a JSON body (Berth's own APIs); the status and the JSON answer.
    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let reply = send(&self.app, req).await;
        (reply.status, reply.json())
    }

    pub async fn ok(&self, op: &str, body: Value) -> Value {
        let (status, out) = self.call(op, body).await;
        assert_eq!(status, StatusCode::OK, "{op} failed: {out}");
        out
    }
}

/// A clock pinned to one moment.
pub struct At(pub berth_model::Timestamp);

impl berth_server::clock::Clock for At {
    fn now(&self) -> berth_model::Timestamp {
        self.0
    }
}

impl Harness {
    /// A harness around an existing app (e.g. one with a pinned clock).
    pub fn with_app(app: App) -> Harness {
        Harness { app, _dir: None }
    }

    /// The same app with its clock pinned `seconds` after now.
    pub fn later(&self, seconds: i64) -> App {
        App {
            clock: std::sync::Arc::new(At(self.app.clock.now().plus_millis(seconds * 1000))),
            ..self.app.clone()
        }
    }
}

impl Harness {
    /// An ELBv2 query-protocol call; returns the XML answer, which must be a success.
    pub async fn elbv2(&self, action: &str, params: &[(&str, &str)]) -> String {
        use axum::body::Body;
        use axum::http::Request;
        let encode = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let mut body = format!("Action={action}&Version=2015-12-01");
        for (k, v) in params {
            body.push_str(&format!("&{}={}", encode(k), encode(v)));
        }
        let req = Request::post("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let response = self.app.router().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert_eq!(status, StatusCode::OK, "{action}: {text}");
        text
    }
}

/// The text of the first `<tag>` element of an XML answer.
pub fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).expect("closed") + start;
    xml[start..end].to_string()
}

/// `s` with its last character replaced by a different one: a well-formed
/// name or ARN that names nothing (a fixed replacement would sometimes equal
/// the original).
pub fn with_last_changed(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let last = chars.last_mut().expect("a non-empty string");
    *last = if *last == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}
