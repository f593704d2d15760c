//! The in-process harness shared by the server's integration tests: the real router on a real
//! SQLite store in a temporary directory, called with `oneshot` (no sockets), auth off.

#![allow(dead_code)] // each test binary uses its own part of the harness

use axum::body::Body;
use axum::http::{Request, StatusCode};
use berth_server::App;
use berth_server::config::{AuthMode, Config};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

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
        let mut req = Request::post("/").header("content-type", "application/x-amz-json-1.1");
        if let Some(op) = op {
            req = req.header(
                "x-amz-target",
                format!("AmazonEC2ContainerServiceV20141113.{op}"),
            );
        }
        let response = self
            .app
            .router()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `POST path` with a JSON body (Berth's own APIs); the status and the JSON answer.
    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.app.router().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
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
