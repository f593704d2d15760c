//! The registry with its blobs in a real S3-compatible server: moto's `moto_server` on a
//! loopback port, a bucket made with the AWS CLI, and Berth started with
//! `registry_store = s3://BUCKET/PREFIX`, reading the endpoint and keys from the `AWS_*`
//! environment as `berth server --registry-store` does. `moto_server` and `aws` come from the
//! virtualenv `scripts/test` puts first on PATH; without them this test fails, never passes.
//!
//! A test cannot set its own environment, so the test re-executes its own binary (libtest's
//! `--exact` filter selects this test again) with the `AWS_*` variables and
//! `BERTH_REGISTRY_S3_CHILD` set. The child runs Berth in-process with the real router and
//! pushes, pulls and collects garbage through `/v2/`; the parent then lists the bucket with the
//! AWS CLI and checks that exactly the expected objects are in it. This works the same under
//! `cargo test` and `cargo nextest run`, which both run the libtest binary.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use berth_server::App;
use berth_server::config::{AuthMode, Config, RegistrySweep};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::Reply;

const CHILD_ENV: &str = "BERTH_REGISTRY_S3_CHILD";
const TEST_NAME: &str = "registry_blobs_live_in_an_s3_bucket";
const BUCKET: &str = "berth-registry";
const PREFIX: &str = "team-a/registry";
const REPO: &str = "team/app";
const KEY_ID: &str = "AKIAMOTOTEST0000001";
const SECRET: &str = "motoTestSecret0000000000000000000000000";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// 12 MiB and a bit: pushed in chunks larger and smaller than an S3 multipart part, stored
/// with a multipart upload.
fn layer() -> Vec<u8> {
    (0..12 * 1024 * 1024 + 4321u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn image_config() -> Vec<u8> {
    br#"{"architecture":"amd64","os":"linux","config":{}}"#.to_vec()
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The key of blob `digest` and of its commit mark in the bucket.
fn blob_keys(digest: &str) -> [String; 2] {
    let hex = &digest["sha256:".len()..];
    ["blobs", "commits"].map(|kind| format!("{PREFIX}/{kind}/sha256/{}/{hex}", &hex[..2]))
}

#[test]
fn registry_blobs_live_in_an_s3_bucket() {
    if let Ok(store) = std::env::var(CHILD_ENV) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(registry_half(&store));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(dir.path());
    let aws = Aws {
        endpoint: moto.endpoint.clone(),
        dir: dir.path().to_path_buf(),
    };
    aws.run(&["s3api", "create-bucket", "--bucket", BUCKET]);

    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("s3://{BUCKET}/{PREFIX}"));
    aws.environment(&mut child);
    let out = child.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "the registry half failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Exactly the pushed blobs and their commit marks are in the bucket: no staged parts, no
    // blob of the refused upload, none of the collected one.
    let listed = aws.run(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    let mut keys: Vec<&str> = listed["Contents"]
        .as_array()
        .map(|objects| objects.iter().filter_map(|o| o["Key"].as_str()).collect())
        .unwrap_or_default();
    keys.sort();
    let layer = layer();
    let mut expected: Vec<String> = [digest(&layer), digest(&image_config())]
        .iter()
        .flat_map(|d| blob_keys(d))
        .collect();
    expected.sort();
    assert_eq!(keys, expected, "the bucket holds {listed}");
    let sizes: Vec<(&str, u64)> = listed["Contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["Key"].as_str().unwrap(), o["Size"].as_u64().unwrap()))
        .collect();
    let [layer_key, _] = blob_keys(&digest(&layer));
    assert!(
        sizes.contains(&(layer_key.as_str(), layer.len() as u64)),
        "{sizes:?}"
    );
    let copy = dir.path().join("layer");
    aws.run(&[
        "s3api",
        "get-object",
        "--bucket",
        BUCKET,
        "--key",
        &layer_key,
        copy.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&copy).unwrap() == layer,
        "the stored layer differs"
    );
}

/// The child: Berth with its registry in the bucket, driven through `/v2/`.
async fn registry_half(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    config.auth = AuthMode::Off;
    config.registry_store = store.parse().unwrap();
    let sqlite = berth_server::open_sqlite(&config).unwrap();
    let (app, _) = App::open(config, sqlite).await.unwrap();
    let r = Oci { app };
    r.create_repository(REPO).await;

    // A layer in chunks: larger than a part, smaller, and the last one with the PUT.
    let layer = layer();
    let layer_digest = digest(&layer);
    let chunks = [
        &layer[..9 * 1024 * 1024],
        &layer[9 * 1024 * 1024..12 * 1024 * 1024],
        &layer[12 * 1024 * 1024..],
    ];
    r.push_in_chunks(&chunks, &layer_digest).await;
    assert_eq!(
        r.app.blobs.size(&layer_digest).await.unwrap(),
        Some(layer.len() as u64)
    );

    let config_blob = image_config();
    let config_digest = r.push_whole(&config_blob).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": config_blob.len(), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": layer.len(), "digest": layer_digest}]
    })
    .to_string()
    .into_bytes();
    let put = r
        .send(
            "PUT",
            &format!("/v2/{REPO}/manifests/v1"),
            &[("content-type", DOCKER_MANIFEST)],
            manifest.clone(),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());

    // Pulled back: the manifest, the whole layer, and ranges (one across the 8 MiB boundary
    // between the parts of its multipart upload, one from the end).
    let got = r
        .send("GET", &format!("/v2/{REPO}/manifests/v1"), &[], Vec::new())
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body == manifest, "the manifest came back changed");
    let blob = format!("/v2/{REPO}/blobs/{layer_digest}");
    let whole = r.send("GET", &blob, &[], Vec::new()).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert!(whole.body == layer, "the layer came back changed");
    let boundary = 8 * 1024 * 1024;
    let (start, end) = (boundary - 1000, boundary + 999);
    let range = format!("bytes={start}-{end}");
    let part = r.send("GET", &blob, &[("range", &range)], Vec::new()).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.header("content-range"),
        format!("bytes {start}-{end}/{}", layer.len())
    );
    assert!(
        part.body == layer[start..=end],
        "the range came back changed"
    );
    let tail = r
        .send("GET", &blob, &[("range", "bytes=-100")], Vec::new())
        .await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert!(tail.body == layer[layer.len() - 100..]);

    // A wrong digest is refused and stores nothing.
    let claimed = digest(b"what the client meant to send");
    let refused = r.push_wrong(b"what arrived instead", &claimed).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    assert_eq!(refused.code(), "DIGEST_INVALID");
    let head = r
        .send(
            "HEAD",
            &format!("/v2/{REPO}/blobs/{claimed}"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    for d in [claimed, digest(b"what arrived instead")] {
        assert_eq!(r.app.blobs.size(&d).await.unwrap(), None, "{d}");
    }
    assert!(r.app.blobs.staged_uploads().await.unwrap().is_empty());

    // A blob no manifest names is collected once its grace period is over; the image's stay.
    let orphan = r.push_whole(b"pushed and never used").await;
    let later = r.app.clock.now().plus_millis(2 * 3600 * 1000);
    let report =
        berth_server::registry::gc::collect_garbage(&r.app, later, &RegistrySweep::default())
            .await
            .unwrap();
    assert_eq!((report.links, report.blobs), (1, 1), "{report:?}");
    assert_eq!(r.app.blobs.size(&orphan).await.unwrap(), None);
    assert!(r.app.blobs.size(&layer_digest).await.unwrap().is_some());
    let listed = r.app.blobs.blobs().await.unwrap();
    let mut names: Vec<_> = listed.into_iter().map(|s| s.name).collect();
    names.sort();
    let mut expected = vec![layer_digest, config_digest];
    expected.sort();
    assert_eq!(names, expected);
}

/// Requests to the in-process server (auth off).
struct Oci {
    app: App,
}

impl Oci {
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        support::send(&self.app, req.body(Body::from(body)).unwrap()).await
    }

    async fn create_repository(&self, name: &str) {
        let target = "AmazonEC2ContainerRegistry_V20150921.CreateRepository";
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ];
        let body = json!({ "repositoryName": name }).to_string().into_bytes();
        let created = self.send("POST", "/", &headers, body).await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    }

    /// Starts an upload session; its location.
    async fn start(&self) -> String {
        let started = self
            .send(
                "POST",
                &format!("/v2/{REPO}/blobs/uploads/"),
                &[],
                Vec::new(),
            )
            .await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text());
        started.header("location").to_string()
    }

    /// PATCHes every chunk but the last, which goes with the closing PUT.
    async fn push_in_chunks(&self, chunks: &[&[u8]], digest: &str) {
        let location = self.start().await;
        let (last, patched) = chunks.split_last().unwrap();
        let mut sent = 0;
        for chunk in patched {
            let range = format!("{sent}-{}", sent + chunk.len() - 1);
            let reply = self
                .send(
                    "PATCH",
                    &location,
                    &[("content-range", &range)],
                    chunk.to_vec(),
                )
                .await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
            sent += chunk.len();
            assert_eq!(reply.header("range"), format!("0-{}", sent - 1));
        }
        let done = self
            .send(
                "PUT",
                &format!("{location}?digest={digest}"),
                &[],
                last.to_vec(),
            )
            .await;
        assert_eq!(done.status, StatusCode::CREATED, "{}", done.text());
        assert_eq!(done.header("docker-content-digest"), digest);
    }

    /// Pushes `data` in one POST; its digest.
    async fn push_whole(&self, data: &[u8]) -> String {
        let d = digest(data);
        let path = format!("/v2/{REPO}/blobs/uploads/?digest={d}");
        let reply = self.send("POST", &path, &[], data.to_vec()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        d
    }

    /// Uploads `data` in a session and closes it claiming digest `claimed`.
    async fn push_wrong(&self, data: &[u8], claimed: &str) -> Reply {
        let location = self.start().await;
        let patched = self.send("PATCH", &location, &[], data.to_vec()).await;
        assert_eq!(patched.status, StatusCode::ACCEPTED, "{}", patched.text());
        self.send(
            "PUT",
            &format!("{location}?digest={claimed}"),
            &[],
            Vec::new(),
        )
        .await
    }
}

/// Where a command is on PATH, if it is.
fn on_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
}

fn required(command: &str) -> PathBuf {
    on_path(command).unwrap_or_else(|| {
        panic!(
            "`{command}` is not on PATH: run this test through scripts/test (e.g. \
             `scripts/test -p berth-server --test registry_s3`), which installs awscli and \
             moto[server] in .venv and puts it first on PATH"
        )
    })
}

/// `moto_server` on a free loopback port, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start(dir: &Path) -> Moto {
        let program = required("moto_server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_path = dir.join("moto.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        moto.wait_until_it_answers(port, &log_path);
        moto
    }

    fn wait_until_it_answers(&mut self, port: u16, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            let log = || std::fs::read_to_string(log).unwrap_or_default();
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("moto_server exited ({status}):\n{}", log());
            }
            if Instant::now() > deadline {
                panic!(
                    "moto_server did not listen on port {port} within 30 s:\n{}",
                    log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The AWS CLI against moto, with its own keys and no user configuration.
struct Aws {
    endpoint: String,
    dir: PathBuf,
}

impl Aws {
    /// The environment Berth and the AWS CLI read their S3 settings from: moto's endpoint and
    /// keys, nothing from the environment this test runs in.
    fn environment(&self, command: &mut Command) {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_CONFIG_FILE", self.dir.join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.join("no-aws-credentials"),
            );
    }

    /// Runs `aws ARGS` and returns its JSON answer (null if none); panics if it fails.
    fn run(&self, args: &[&str]) -> Value {
        let mut command = Command::new(required("aws"));
        command.args(["--output", "json"]).args(args);
        self.environment(&mut command);
        let out = command.stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "aws {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}
