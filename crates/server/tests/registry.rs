//! In-process tests of the image registry: the ECR API (SigV4-signed, auth on) and the OCI
//! distribution endpoints under `/v2/` (HTTP Basic with an ECR token), on the real router, a
//! real SQLite store and the real blob directory in a temp dir, called with `oneshot`.

mod support;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_server::App;
use berth_server::config::{Config, RootKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::SystemTime;
use support::Reply;

const AKID: &str = "AKIAREGISTRYTEST0001";
const SECRET: &str = "registryTestSecret000000000000000000000";
const HOST: &str = "127.0.0.1:5000";

struct Registry {
    app: App,
    dir: tempfile::TempDir,
    /// `Authorization` value for the OCI endpoints.
    basic: String,
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

async fn registry() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    config.root_key = Some(RootKey {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
    });
    let store = berth_server::open_sqlite(&config).unwrap();
    let (app, _) = App::open(config, store).await.unwrap();
    let mut r = Registry {
        app,
        dir,
        basic: String::new(),
    };
    let token = r.ecr_ok("GetAuthorizationToken", json!({})).await;
    let data = &token["authorizationData"][0];
    r.basic = format!("Basic {}", data["authorizationToken"].as_str().unwrap());
    r
}

impl Registry {
    async fn ecr(&self, op: &str, body: Value) -> (StatusCode, Value) {
        let body = body.to_string().into_bytes();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static(HOST));
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(&format!("AmazonEC2ContainerRegistry_V20150921.{op}")).unwrap(),
        );
        berth_sigv4::sign(
            &berth_sigv4::SigningParams {
                access_key_id: AKID,
                secret_access_key: SECRET,
                region: "us-east-1",
                service: "ecr",
                time: SystemTime::now(),
            },
            &berth_sigv4::Unsigned {
                method: "POST",
                path: "/",
                query: "",
                body: &body,
            },
            &mut headers,
        );
        let mut req = Request::post("/");
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let reply = self.send(req.body(Body::from(body)).unwrap()).await;
        (reply.status, reply.json())
    }

    async fn ecr_ok(&self, op: &str, body: Value) -> Value {
        let (status, out) = self.ecr(op, body).await;
        assert_eq!(status, StatusCode::OK, "{op} failed: {out}");
        out
    }

    /// The `__type` of a failed ECR call.
    async fn ecr_err(&self, op: &str, body: Value) -> String {
        let (status, out) = self.ecr(op, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{op} did not fail: {out}");
        out["__type"].as_str().unwrap_or_default().to_string()
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        support::send(&self.app, req).await
    }

    /// An OCI request with the registry token and extra headers.
    async fn oci(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", &self.basic);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body.to_vec())).unwrap())
            .await
    }

    async fn create(&self, name: &str, mutability: &str) {
        self.ecr_ok(
            "CreateRepository",
            json!({"repositoryName": name, "imageTagMutability": mutability}),
        )
        .await;
    }

    /// Pushes a blob in one POST; returns its digest.
    async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let r = self
            .oci(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                data,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("docker-content-digest"), d);
        d
    }

    /// Pushes a config and one layer and an image manifest naming them under `tag`.
    async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (String, Vec<u8>) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#);
        let config_digest = self.push_blob(repo, config.as_bytes()).await;
        let layer_digest = self.push_blob(repo, layer).await;
        let manifest = manifest(&config_digest, config.len(), &layer_digest, layer.len());
        let r = self
            .oci(
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("content-type", DOCKER_MANIFEST)],
                &manifest,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        (r.header("docker-content-digest").to_string(), manifest)
    }

    /// Every blob file on disk.
    fn blob_files(&self) -> Vec<String> {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    walk(&entry.path(), out);
                } else {
                    out.push(entry.file_name().to_string_lossy().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("registry/blobs"), &mut out);
        out.sort();
        out
    }
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn manifest(config: &str, config_size: usize, layer: &str, layer_size: usize) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config_size, "digest": config},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer_size, "digest": layer}]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn repositories_follow_the_ecr_rules() {
    let r = registry().await;
    let created = r
        .ecr_ok(
            "CreateRepository",
            json!({"repositoryName": "team/app", "tags": [{"Key": "team", "Value": "a"}]}),
        )
        .await;
    let repo = &created["repository"];
    assert_eq!(repo["repositoryUri"], "127.0.0.1:5000/team/app");
    assert_eq!(
        repo["repositoryArn"],
        "arn:aws:ecr:us-east-1:000000000000:repository/team/app"
    );
    assert_eq!(repo["registryId"], "000000000000");
    assert_eq!(repo["imageTagMutability"], "MUTABLE");
    assert!(repo["createdAt"].as_f64().unwrap() > 1.6e9);

    let body = json!({"repositoryName": "team/app"});
    assert_eq!(
        r.ecr_err("CreateRepository", body.clone()).await,
        "RepositoryAlreadyExistsException"
    );
    for bad in [
        json!({"repositoryName": "Team"}),
        json!({"repositoryName": "x"}),
        json!({"repositoryName": "ok", "imageTagMutability": "SOMETIMES"}),
        json!({"repositoryName": "ok", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"}),
        json!({"repositoryName": "ok", "registryId": "111111111111"}),
        json!({}),
    ] {
        assert_eq!(
            r.ecr_err("CreateRepository", bad.clone()).await,
            "InvalidParameterException",
            "{bad}"
        );
    }
    r.create("other", "IMMUTABLE").await;

    let all = r.ecr_ok("DescribeRepositories", json!({})).await;
    let names: Vec<&str> = all["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repositoryName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other", "team/app"]);
    let first = r
        .ecr_ok("DescribeRepositories", json!({"maxResults": 1}))
        .await;
    assert_eq!(first["repositories"][0]["repositoryName"], "other");
    let token = first["nextToken"].as_str().unwrap();
    let second = r
        .ecr_ok(
            "DescribeRepositories",
            json!({"maxResults": 1, "nextToken": token}),
        )
        .await;
    assert_eq!(second["repositories"][0]["repositoryName"], "team/app");
    assert!(second.get("nextToken").is_none(), "{second}");
    let named = r
        .ecr_ok(
            "DescribeRepositories",
            json!({"repositoryNames": ["other"]}),
        )
        .await;
    assert_eq!(named["repositories"][0]["imageTagMutability"], "IMMUTABLE");
    assert_eq!(
        r.ecr_err(
            "DescribeRepositories",
            json!({"repositoryNames": ["other", "nope"]})
        )
        .await,
        "RepositoryNotFoundException"
    );

    r.push_image("team/app", "v1", b"layer").await;
    assert_eq!(
        r.ecr_err("DeleteRepository", body.clone()).await,
        "RepositoryNotEmptyException"
    );
    let deleted = r
        .ecr_ok(
            "DeleteRepository",
            json!({"repositoryName": "team/app", "force": true}),
        )
        .await;
    assert_eq!(deleted["repository"]["repositoryName"], "team/app");
    assert_eq!(
        r.ecr_err("DeleteRepository", body.clone()).await,
        "RepositoryNotFoundException"
    );
    assert_eq!(
        r.oci("GET", "/v2/team/app/manifests/v1", &[], b"")
            .await
            .code(),
        "NAME_UNKNOWN"
    );
    // Re-created, it starts empty: nothing of the old repository leaks into it.
    r.create("team/app", "MUTABLE").await;
    let images = r
        .ecr_ok("ListImages", json!({"repositoryName": "team/app"}))
        .await;
    assert_eq!(images["imageIds"], json!([]));
    let blob = r
        .oci(
            "HEAD",
            &format!("/v2/team/app/blobs/{}", digest(b"layer")),
            &[],
            b"",
        )
        .await;
    assert_eq!(blob.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_registry_refuses_anonymous_and_forged_credentials() {
    let r = registry().await;
    let token = r.ecr_ok("GetAuthorizationToken", json!({})).await;
    let data = &token["authorizationData"][0];
    assert_eq!(data["proxyEndpoint"], "http://127.0.0.1:5000");
    let expires = data["expiresAt"].as_f64().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((expires - now - 12.0 * 3600.0).abs() < 60.0, "{expires}");
    let decoded = String::from_utf8(
        STANDARD
            .decode(data["authorizationToken"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let password = decoded.strip_prefix("AWS:").expect("user AWS").to_string();
    assert_eq!(
        r.ecr_err(
            "GetAuthorizationToken",
            json!({"registryIds": ["123456789012"]})
        )
        .await,
        "InvalidParameterException"
    );

    let anonymous = r
        .send(Request::get("/v2/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        anonymous
            .header("www-authenticate")
            .starts_with("Basic realm="),
        "{:?}",
        anonymous.headers
    );
    assert_eq!(anonymous.code(), "UNAUTHORIZED");
    assert_eq!(
        anonymous.header("docker-distribution-api-version"),
        "registry/2.0"
    );

    let basic = |user: &str, password: &str| {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    };
    let mut forged = password.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let expired = {
        let key = berth_server::records::AccessKey {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
            principal_arn: "arn:aws:iam::000000000000:root".into(),
            created_at: berth_model::Timestamp(0),
        };
        let past =
            berth_model::Timestamp::from_millis(r.app.clock.now().millis() - 13 * 3600 * 1000);
        berth_server::registry::auth::issue(&key, "us-east-1", past).0
    };
    let other_secret = {
        let key = berth_server::records::AccessKey {
            access_key_id: AKID.into(),
            secret_access_key: "not-the-secret".into(),
            principal_arn: String::new(),
            created_at: berth_model::Timestamp(0),
        };
        berth_server::registry::auth::issue(&key, "us-east-1", r.app.clock.now()).0
    };
    for (what, value) in [
        ("forged", basic("AWS", &forged)),
        ("expired", basic("AWS", &expired)),
        ("signed with another secret", basic("AWS", &other_secret)),
        ("wrong user", basic("admin", &password)),
        ("not basic", format!("Bearer {password}")),
        ("garbage", "Basic !!!".to_string()),
    ] {
        let reply = r
            .send(
                Request::get("/v2/")
                    .header("authorization", value)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            !String::from_utf8_lossy(&reply.body).contains(&password),
            "{what}: the token is echoed"
        );
    }
    let ok = r
        .send(
            Request::get("/v2/")
                .header("authorization", basic("AWS", &password))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    // Every endpoint needs the token, not just the base.
    r.create("app", "MUTABLE").await;
    let pull = r
        .send(
            Request::get("/v2/app/tags/list")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(pull.status, StatusCode::UNAUTHORIZED);
    let push = r
        .send(
            Request::post("/v2/app/blobs/uploads/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(push.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn monolithic_and_chunked_pushes_are_pulled_back_by_tag_digest_and_range() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = r.push_blob("app", config).await;

    // A chunked upload: a session, two PATCHes, a PUT with the digest.
    let layer: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let layer_digest = digest(&layer);
    let started = r.oci("POST", "/v2/app/blobs/uploads/", &[], b"").await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    let location = started.header("location").to_string();
    assert!(location.starts_with("/v2/app/blobs/uploads/"), "{location}");
    assert_eq!(started.header("range"), "0-0");
    assert!(!started.header("docker-upload-uuid").is_empty());
    let first = r
        .oci(
            "PATCH",
            &location,
            &[("content-range", "0-59999")],
            &layer[..60_000],
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.header("range"), "0-59999");
    let out_of_order = r
        .oci(
            "PATCH",
            &location,
            &[("content-range", "0-9")],
            &layer[..10],
        )
        .await;
    assert_eq!(out_of_order.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(out_of_order.code(), "BLOB_UPLOAD_INVALID");
    let second = r.oci("PATCH", &location, &[], &layer[60_000..]).await;
    assert_eq!(second.header("range"), "0-99999");
    let status = r.oci("GET", &location, &[], b"").await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-99999");
    let done = r
        .oci(
            "PUT",
            &format!("{location}?digest={layer_digest}"),
            &[],
            b"",
        )
        .await;
    assert_eq!(
        done.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&done.body)
    );
    assert_eq!(
        done.header("location"),
        format!("/v2/app/blobs/{layer_digest}")
    );
    let gone = r.oci("PATCH", &location, &[], b"x").await;
    assert_eq!(
        gone.code(),
        "BLOB_UPLOAD_UNKNOWN",
        "a finished upload is over"
    );

    // Blobs: HEAD, GET, Range.
    let head = r
        .oci("HEAD", &format!("/v2/app/blobs/{layer_digest}"), &[], b"")
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), "100000");
    assert_eq!(head.header("docker-content-digest"), layer_digest);
    assert!(head.body.is_empty());
    let full = r
        .oci("GET", &format!("/v2/app/blobs/{layer_digest}"), &[], b"")
        .await;
    assert_eq!(full.body, layer);
    let part = r
        .oci(
            "GET",
            &format!("/v2/app/blobs/{layer_digest}"),
            &[("range", "bytes=10-19")],
            b"",
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), "bytes 10-19/100000");
    assert_eq!(part.body, &layer[10..20]);
    let beyond = r
        .oci(
            "GET",
            &format!("/v2/app/blobs/{layer_digest}"),
            &[("range", "bytes=100000-")],
            b"",
        )
        .await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);

    // The manifest, by tag and by digest.
    let body = manifest(&config_digest, config.len(), &layer_digest, layer.len());
    let put = r
        .oci(
            "PUT",
            "/v2/app/manifests/v1",
            &[("content-type", DOCKER_MANIFEST)],
            &body,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let manifest_digest = digest(&body);
    assert_eq!(put.header("docker-content-digest"), manifest_digest);
    for reference in ["v1", manifest_digest.as_str()] {
        let got = r
            .oci("GET", &format!("/v2/app/manifests/{reference}"), &[], b"")
            .await;
        assert_eq!(got.status, StatusCode::OK, "{reference}");
        assert_eq!(got.body, body);
        assert_eq!(got.header("content-type"), DOCKER_MANIFEST);
        assert_eq!(got.header("docker-content-digest"), manifest_digest);
        let head = r
            .oci("HEAD", &format!("/v2/app/manifests/{reference}"), &[], b"")
            .await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.header("content-length"), body.len().to_string());
        assert!(head.body.is_empty());
    }

    // Stored once, content-addressed, however often it is pushed and wherever.
    let files = r.blob_files();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.contains(&layer_digest[7..].to_string()));
    let hex = &layer_digest[7..];
    assert!(
        r.dir
            .path()
            .join("registry/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .is_file()
    );
    r.push_blob("app", &layer).await;
    r.create("other", "MUTABLE").await;
    let mounted = r
        .oci(
            "POST",
            &format!("/v2/other/blobs/uploads/?mount={layer_digest}&from=app"),
            &[],
            b"",
        )
        .await;
    assert_eq!(mounted.status, StatusCode::CREATED);
    assert_eq!(
        mounted.header("location"),
        format!("/v2/other/blobs/{layer_digest}")
    );
    let via_other = r
        .oci("GET", &format!("/v2/other/blobs/{layer_digest}"), &[], b"")
        .await;
    assert_eq!(via_other.body, layer);
    assert_eq!(r.blob_files().len(), 2);
    // A mount from a repository that lacks the blob starts an ordinary upload instead.
    let fallback = r
        .oci(
            "POST",
            &format!(
                "/v2/other/blobs/uploads/?mount={}&from=app",
                digest(b"nope")
            ),
            &[],
            b"",
        )
        .await;
    assert_eq!(fallback.status, StatusCode::ACCEPTED);
    let cancelled = r.oci("DELETE", fallback.header("location"), &[], b"").await;
    assert_eq!(cancelled.status, StatusCode::NO_CONTENT);
    // Blob bodies stream: no request body limit applies to them.
    let big = vec![7u8; 5 * 1024 * 1024];
    let big_digest = r.push_blob("other", &big).await;
    let head = r
        .oci("HEAD", &format!("/v2/other/blobs/{big_digest}"), &[], b"")
        .await;
    assert_eq!(head.header("content-length"), big.len().to_string());
}

#[tokio::test]
async fn a_wrong_digest_stores_nothing() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    let claimed = digest(b"what the client claims");
    let mono = r
        .oci(
            "POST",
            &format!("/v2/app/blobs/uploads/?digest={claimed}"),
            &[],
            b"other bytes",
        )
        .await;
    assert_eq!(mono.status, StatusCode::BAD_REQUEST);
    assert_eq!(mono.code(), "DIGEST_INVALID");
    let started = r.oci("POST", "/v2/app/blobs/uploads/", &[], b"").await;
    let location = started.header("location").to_string();
    r.oci("PATCH", &location, &[], b"other bytes").await;
    let finish = r
        .oci("PUT", &format!("{location}?digest={claimed}"), &[], b"")
        .await;
    assert_eq!(finish.code(), "DIGEST_INVALID");
    let bad_format = r
        .oci(
            "POST",
            "/v2/app/blobs/uploads/?digest=sha256:xyz",
            &[],
            b"x",
        )
        .await;
    assert_eq!(bad_format.code(), "DIGEST_INVALID");

    assert!(r.blob_files().is_empty(), "{:?}", r.blob_files());
    let uploads = r.dir.path().join("registry/uploads");
    assert_eq!(
        std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0),
        0,
        "no staged bytes are left behind"
    );
    for d in [&claimed, &digest(b"other bytes")] {
        let head = r.oci("GET", &format!("/v2/app/blobs/{d}"), &[], b"").await;
        assert_eq!(head.status, StatusCode::NOT_FOUND);
        assert_eq!(head.code(), "BLOB_UNKNOWN");
    }
    let after = r.oci("GET", &location, &[], b"").await;
    assert_eq!(after.code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn manifests_must_name_blobs_the_repository_holds() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    r.create("elsewhere", "MUTABLE").await;
    let config = r.push_blob("app", b"{}").await;
    let only_elsewhere = r.push_blob("elsewhere", b"layer elsewhere").await;
    for missing in [digest(b"never pushed"), only_elsewhere] {
        let body = manifest(&config, 2, &missing, 10);
        let put = r
            .oci(
                "PUT",
                "/v2/app/manifests/v1",
                &[("content-type", DOCKER_MANIFEST)],
                &body,
            )
            .await;
        assert_eq!(put.status, StatusCode::BAD_REQUEST);
        assert_eq!(put.code(), "MANIFEST_BLOB_UNKNOWN");
        assert_eq!(put.json()["errors"][0]["detail"]["digest"], missing);
    }
    let unknown = r.oci("GET", "/v2/app/manifests/v1", &[], b"").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "MANIFEST_UNKNOWN");
    let tags = r.oci("GET", "/v2/app/tags/list", &[], b"").await;
    assert_eq!(tags.json()["tags"], json!([]));

    let layer = r.push_blob("app", b"layer").await;
    let body = manifest(&config, 2, &layer, 5);
    let invalid = r
        .oci(
            "PUT",
            "/v2/app/manifests/v1",
            &[],
            b"{\"schemaVersion\": 1}",
        )
        .await;
    assert_eq!(invalid.code(), "MANIFEST_INVALID");
    let mismatch = r
        .oci(
            "PUT",
            &format!("/v2/app/manifests/{}", digest(b"x")),
            &[("content-type", DOCKER_MANIFEST)],
            &body,
        )
        .await;
    assert_eq!(mismatch.code(), "DIGEST_INVALID");
    let no_repo = r.oci("PUT", "/v2/nope/manifests/v1", &[], &body).await;
    assert_eq!(no_repo.status, StatusCode::NOT_FOUND);
    assert_eq!(no_repo.code(), "NAME_UNKNOWN");
    let bad_name = r.oci("GET", "/v2/Bad/tags/list", &[], b"").await;
    assert_eq!(bad_name.code(), "NAME_INVALID");

    // By digest, then an OCI index that names it (and one that names a missing manifest).
    let by_digest = r
        .oci(
            "PUT",
            &format!("/v2/app/manifests/{}", digest(&body)),
            &[("content-type", DOCKER_MANIFEST)],
            &body,
        )
        .await;
    assert_eq!(by_digest.status, StatusCode::CREATED);
    let index = |child: &str| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": child, "size": body.len(),
                              "platform": {"architecture": "amd64", "os": "linux"}}]})
        .to_string()
    };
    let missing_child = r
        .oci(
            "PUT",
            "/v2/app/manifests/multi",
            &[],
            index(&digest(b"no")).as_bytes(),
        )
        .await;
    assert_eq!(missing_child.code(), "MANIFEST_BLOB_UNKNOWN");
    let ok = r
        .oci(
            "PUT",
            "/v2/app/manifests/multi",
            &[],
            index(&digest(&body)).as_bytes(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let got = r.oci("GET", "/v2/app/manifests/multi", &[], b"").await;
    assert_eq!(
        got.header("content-type"),
        "application/vnd.oci.image.index.v1+json"
    );
}

#[tokio::test]
async fn tags_list_pages_with_a_link_to_the_next() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    for tag in ["e", "b", "a", "d", "c"] {
        r.push_image("app", tag, tag.as_bytes()).await;
    }
    let all = r.oci("GET", "/v2/app/tags/list", &[], b"").await;
    assert_eq!(
        all.json(),
        json!({"name": "app", "tags": ["a", "b", "c", "d", "e"]})
    );
    assert_eq!(all.header("link"), "");
    let first = r.oci("GET", "/v2/app/tags/list?n=2", &[], b"").await;
    assert_eq!(first.json()["tags"], json!(["a", "b"]));
    assert_eq!(
        first.header("link"),
        "</v2/app/tags/list?n=2&last=b>; rel=\"next\""
    );
    let second = r.oci("GET", "/v2/app/tags/list?n=2&last=b", &[], b"").await;
    assert_eq!(second.json()["tags"], json!(["c", "d"]));
    let third = r.oci("GET", "/v2/app/tags/list?n=2&last=d", &[], b"").await;
    assert_eq!(third.json()["tags"], json!(["e"]));
    assert_eq!(third.header("link"), "");
    let bad = r.oci("GET", "/v2/app/tags/list?n=x", &[], b"").await;
    assert_eq!(bad.code(), "PAGINATION_NUMBER_INVALID");
}

#[tokio::test]
async fn images_are_described_listed_fetched_put_and_deleted() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    let (v1, v1_body) = r.push_image("app", "v1", b"one").await;
    let (v2, _) = r.push_image("app", "v2", b"two").await;
    // A second tag on v1, then v2 moved onto v1: v2's old image is left untagged.
    let retag = r
        .ecr_ok(
            "PutImage",
            json!({"repositoryName": "app", "imageTag": "latest",
                   "imageManifest": String::from_utf8(v1_body.clone()).unwrap()}),
        )
        .await;
    assert_eq!(retag["image"]["imageId"]["imageDigest"], v1);
    assert_eq!(retag["image"]["imageManifestMediaType"], DOCKER_MANIFEST);
    assert_eq!(
        r.ecr_err(
            "PutImage",
            json!({"repositoryName": "app", "imageTag": "latest",
                   "imageManifest": String::from_utf8(v1_body.clone()).unwrap()})
        )
        .await,
        "ImageAlreadyExistsException"
    );
    let missing_layer = String::from_utf8(manifest(&digest(b"c"), 1, &digest(b"l"), 1)).unwrap();
    assert_eq!(
        r.ecr_err(
            "PutImage",
            json!({"repositoryName": "app", "imageTag": "x", "imageManifest": missing_layer})
        )
        .await,
        "LayersNotFoundException"
    );
    assert_eq!(
        r.ecr_err(
            "PutImage",
            json!({"repositoryName": "app", "imageDigest": digest(b"x"),
                   "imageManifest": String::from_utf8(v1_body.clone()).unwrap()})
        )
        .await,
        "ImageDigestDoesNotMatchException"
    );
    assert_eq!(
        r.ecr_err(
            "PutImage",
            json!({"repositoryName": "nope", "imageManifest": "{}"})
        )
        .await,
        "RepositoryNotFoundException"
    );
    let moved = r
        .oci(
            "PUT",
            "/v2/app/manifests/v2",
            &[("content-type", DOCKER_MANIFEST)],
            &v1_body,
        )
        .await;
    assert_eq!(moved.status, StatusCode::CREATED);

    let described = r
        .ecr_ok("DescribeImages", json!({"repositoryName": "app"}))
        .await;
    let details = described["imageDetails"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{described}");
    let detail_of = |d: &str| {
        details
            .iter()
            .find(|x| x["imageDigest"] == d)
            .unwrap()
            .clone()
    };
    let mut tags: Vec<String> = detail_of(&v1)["imageTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(tags, ["latest", "v1", "v2"]);
    assert!(detail_of(&v2).get("imageTags").is_none());
    assert_eq!(detail_of(&v1)["imageManifestMediaType"], DOCKER_MANIFEST);
    assert!(detail_of(&v1)["imageSizeInBytes"].as_i64().unwrap() > 3);
    let untagged = r
        .ecr_ok(
            "DescribeImages",
            json!({"repositoryName": "app", "filter": {"tagStatus": "UNTAGGED"}}),
        )
        .await;
    assert_eq!(untagged["imageDetails"][0]["imageDigest"], v2);
    assert_eq!(
        r.ecr_err(
            "DescribeImages",
            json!({"repositoryName": "app", "imageIds": [{"imageTag": "nope"}]})
        )
        .await,
        "ImageNotFoundException"
    );

    let listed = r
        .ecr_ok(
            "ListImages",
            json!({"repositoryName": "app", "maxResults": 2}),
        )
        .await;
    assert_eq!(listed["imageIds"].as_array().unwrap().len(), 2);
    let rest = r
        .ecr_ok(
            "ListImages",
            json!({"repositoryName": "app", "maxResults": 2, "nextToken": listed["nextToken"]}),
        )
        .await;
    assert_eq!(
        rest["imageIds"].as_array().unwrap().len(),
        2,
        "3 tags + 1 untagged"
    );
    assert!(rest.get("nextToken").is_none());

    let got = r
        .ecr_ok(
            "BatchGetImage",
            json!({"repositoryName": "app", "imageIds": [
                {"imageTag": "v1"}, {"imageTag": "gone"}, {"imageDigest": "sha256:zz"},
                {"imageTag": "v1", "imageDigest": v2}, {}
            ]}),
        )
        .await;
    assert_eq!(
        got["images"][0]["imageManifest"],
        String::from_utf8(v1_body).unwrap()
    );
    let codes: Vec<&str> = got["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["failureCode"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "ImageNotFound",
            "InvalidImageDigest",
            "ImageTagDoesNotMatchDigest",
            "MissingDigestAndTag"
        ]
    );

    // Untagging keeps the image while a tag is left; the last tag takes the image with it.
    let deleted = r
        .ecr_ok(
            "BatchDeleteImage",
            json!({"repositoryName": "app", "imageIds": [{"imageTag": "v1"}, {"imageTag": "v2"}, {"imageTag": "nope"}]}),
        )
        .await;
    assert_eq!(deleted["imageIds"].as_array().unwrap().len(), 2);
    assert_eq!(deleted["failures"][0]["failureCode"], "ImageNotFound");
    assert_eq!(
        r.oci("GET", "/v2/app/manifests/latest", &[], b"")
            .await
            .status,
        StatusCode::OK
    );
    r.ecr_ok(
        "BatchDeleteImage",
        json!({"repositoryName": "app", "imageIds": [{"imageTag": "latest"}]}),
    )
    .await;
    let by_digest = r
        .oci("GET", &format!("/v2/app/manifests/{v1}"), &[], b"")
        .await;
    assert_eq!(by_digest.code(), "MANIFEST_UNKNOWN");

    // OCI deletes: a manifest by digest, then a blob.
    let gone = r
        .oci("DELETE", &format!("/v2/app/manifests/{v2}"), &[], b"")
        .await;
    assert_eq!(gone.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.oci("DELETE", &format!("/v2/app/manifests/{v2}"), &[], b"")
            .await
            .code(),
        "MANIFEST_UNKNOWN"
    );
    let listed = r
        .ecr_ok("ListImages", json!({"repositoryName": "app"}))
        .await;
    assert_eq!(listed["imageIds"], json!([]));
    let blob = digest(b"one");
    assert_eq!(
        r.oci("DELETE", &format!("/v2/app/blobs/{blob}"), &[], b"")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.oci("GET", &format!("/v2/app/blobs/{blob}"), &[], b"")
            .await
            .code(),
        "BLOB_UNKNOWN"
    );
}

#[tokio::test]
async fn immutable_tags_cannot_be_overwritten() {
    let r = registry().await;
    r.create("app", "IMMUTABLE").await;
    let (_, first) = r.push_image("app", "v1", b"one").await;
    // The same manifest again is no overwrite.
    let again = r
        .oci(
            "PUT",
            "/v2/app/manifests/v1",
            &[("content-type", DOCKER_MANIFEST)],
            &first,
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    let config = r.push_blob("app", b"{\"other\":1}").await;
    let layer = r.push_blob("app", b"two").await;
    let second = manifest(&config, 11, &layer, 3);
    let overwrite = r
        .oci(
            "PUT",
            "/v2/app/manifests/v1",
            &[("content-type", DOCKER_MANIFEST)],
            &second,
        )
        .await;
    assert_eq!(overwrite.status, StatusCode::BAD_REQUEST);
    assert_eq!(overwrite.code(), "TAG_INVALID");
    assert_eq!(
        r.ecr_err(
            "PutImage",
            json!({"repositoryName": "app", "imageTag": "v1",
                   "imageManifest": String::from_utf8(second.clone()).unwrap()})
        )
        .await,
        "ImageTagAlreadyExistsException"
    );
    let still = r.oci("GET", "/v2/app/manifests/v1", &[], b"").await;
    assert_eq!(still.body, first);
}

// Lifecycle policies, referrers and garbage collection.

use berth_server::config::RegistrySweep;
use berth_server::db::Writes;
use berth_server::records::{ImageRecord, keys};
use berth_server::registry::{gc, lifecycle};

const DAY_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A policy text: `{"rules": [...]}` with a description on each rule (ECR's minimum length is
/// 100 characters).
fn policy(rules: Value) -> String {
    json!({ "rules": rules }).to_string()
}

fn expire_rule(priority: i64, selection: Value) -> Value {
    json!({"rulePriority": priority, "description": format!("rule number {priority}"),
           "selection": selection, "action": {"type": "expire"}})
}

impl Registry {
    /// An ECR call that must fail: its `__type` and message.
    async fn ecr_refusal(&self, op: &str, body: Value) -> (String, String) {
        let (status, out) = self.ecr(op, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{op} did not fail: {out}");
        (
            out["__type"].as_str().unwrap_or_default().to_string(),
            out["message"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// Pushes an image by digest only (untagged); returns its digest.
    async fn push_untagged(&self, repo: &str, layer: &[u8]) -> String {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","layer":{}}}"#,
            layer.len()
        );
        let config_digest = self.push_blob(repo, config.as_bytes()).await;
        let layer_digest = self.push_blob(repo, layer).await;
        let body = manifest(&config_digest, config.len(), &layer_digest, layer.len());
        let d = digest(&body);
        let r = self
            .oci(
                "PUT",
                &format!("/v2/{repo}/manifests/{d}"),
                &[("content-type", DOCKER_MANIFEST)],
                &body,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        d
    }

    /// Makes an image look pushed `days` ago.
    async fn backdate(&self, repo: &str, image_digest: &str, days: i64) {
        let key = keys::image("us-east-1", repo, image_digest);
        let image = self.app.db.get::<ImageRecord>(&key).expect("image stored");
        let mut value = image.value.clone();
        value.pushed_at = self.app.clock.now().plus_millis(-days * DAY_MS);
        let written = self
            .app
            .db
            .commit(Writes::new().expect_unchanged(&image).put(&key, value))
            .await
            .unwrap();
        assert!(written);
    }

    async fn digests(&self, repo: &str) -> Vec<String> {
        let described = self
            .ecr_ok("DescribeImages", json!({"repositoryName": repo}))
            .await;
        let mut out: Vec<String> = described["imageDetails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["imageDigest"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    fn staged_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("registry/uploads"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn lifecycle_policies_are_put_read_and_deleted() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    let repo = json!({"repositoryName": "app"});
    let text = policy(json!([expire_rule(
        1,
        json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14})
    )]));

    for op in ["GetLifecyclePolicy", "DeleteLifecyclePolicy"] {
        let (code, message) = r.ecr_refusal(op, repo.clone()).await;
        assert_eq!(code, "LifecyclePolicyNotFoundException", "{op}");
        assert!(message.contains("'app'"), "{message}");
        assert_eq!(
            r.ecr_err(op, json!({"repositoryName": "nope"})).await,
            "RepositoryNotFoundException"
        );
    }
    assert_eq!(
        r.ecr_err(
            "PutLifecyclePolicy",
            json!({"repositoryName": "nope", "lifecyclePolicyText": text})
        )
        .await,
        "RepositoryNotFoundException"
    );

    // Bad policies are refused with the member that is wrong.
    let tagged_without_prefix = policy(json!([expire_rule(
        1,
        json!({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 5})
    )]));
    let same_priority = policy(json!([
        expire_rule(
            1,
            json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5})
        ),
        expire_rule(
            1,
            json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50})
        ),
    ]));
    let unknown_member = policy(json!([expire_rule(
        1,
        json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "description": "x"})
    )]));
    let mut not_json = text.clone();
    not_json.pop();
    for (bad, expected) in [
        (not_json, "not valid JSON"),
        (tagged_without_prefix, "rules[0].selection.tagPrefixList"),
        (same_priority, "rules[1].rulePriority 1"),
        (
            unknown_member,
            "rules[0].selection.description is not a member",
        ),
        (r#"{"rules": []}"#.to_string(), "100 to 30720 characters"),
    ] {
        let (code, message) = r
            .ecr_refusal(
                "PutLifecyclePolicy",
                json!({"repositoryName": "app", "lifecyclePolicyText": bad}),
            )
            .await;
        assert_eq!(code, "InvalidParameterException", "{bad}");
        assert!(message.starts_with("lifecyclePolicyText: "), "{message}");
        assert!(message.contains(expected), "{bad}: {message}");
    }
    let (code, message) = r.ecr_refusal("PutLifecyclePolicy", repo.clone()).await;
    assert_eq!(code, "InvalidParameterException");
    assert!(message.contains("lifecyclePolicyText"), "{message}");
    assert_eq!(
        r.ecr_err(
            "PutLifecyclePolicy",
            json!({"repositoryName": "app", "registryId": "111111111111", "lifecyclePolicyText": text})
        )
        .await,
        "InvalidParameterException"
    );
    assert_eq!(
        r.ecr_err("GetLifecyclePolicy", repo.clone()).await,
        "LifecyclePolicyNotFoundException",
        "a refused policy is not stored"
    );

    let put = r
        .ecr_ok(
            "PutLifecyclePolicy",
            json!({"repositoryName": "app", "lifecyclePolicyText": text}),
        )
        .await;
    assert_eq!(
        put,
        json!({"registryId": "000000000000", "repositoryName": "app", "lifecyclePolicyText": text})
    );
    let got = r.ecr_ok("GetLifecyclePolicy", repo.clone()).await;
    assert_eq!(got["lifecyclePolicyText"], text);
    assert_eq!(got["registryId"], "000000000000");
    assert!(got.get("lastEvaluatedAt").is_none(), "not run yet: {got}");

    let now = r.app.clock.now();
    assert_eq!(
        lifecycle::apply_lifecycle_policies(&r.app, now)
            .await
            .unwrap(),
        0
    );
    let got = r.ecr_ok("GetLifecyclePolicy", repo.clone()).await;
    assert_eq!(got["lastEvaluatedAt"].as_f64(), Some(now.seconds()));

    let deleted = r.ecr_ok("DeleteLifecyclePolicy", repo.clone()).await;
    assert_eq!(deleted["lifecyclePolicyText"], text);
    assert_eq!(deleted["lastEvaluatedAt"].as_f64(), Some(now.seconds()));
    assert_eq!(
        r.ecr_err("GetLifecyclePolicy", repo.clone()).await,
        "LifecyclePolicyNotFoundException"
    );

    // Deleting the repository takes its policy with it.
    r.ecr_ok(
        "PutLifecyclePolicy",
        json!({"repositoryName": "app", "lifecyclePolicyText": text}),
    )
    .await;
    r.ecr_ok("DeleteRepository", repo.clone()).await;
    r.create("app", "MUTABLE").await;
    assert_eq!(
        r.ecr_err("GetLifecyclePolicy", repo.clone()).await,
        "LifecyclePolicyNotFoundException"
    );
}

#[tokio::test]
async fn a_lifecycle_policy_expires_old_untagged_images_and_keeps_the_newest_releases() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    let mut release = Vec::new();
    for (i, age) in [(1, 30), (2, 20), (3, 10), (4, 1)] {
        let (d, _) = r
            .push_image(
                "app",
                &format!("release-{i}"),
                format!("release {i}").as_bytes(),
            )
            .await;
        r.backdate("app", &d, age).await;
        release.push(d);
    }
    let (dev, _) = r.push_image("app", "dev-1", b"dev").await;
    r.backdate("app", &dev, 40).await;
    let old_untagged = r.push_untagged("app", b"old untagged").await;
    r.backdate("app", &old_untagged, 9).await;
    let new_untagged = r.push_untagged("app", b"new untagged").await;
    r.backdate("app", &new_untagged, 3).await;
    assert_eq!(r.digests("app").await.len(), 7);

    let text = policy(json!([
        expire_rule(
            10,
            json!({"tagStatus": "tagged", "tagPrefixList": ["release"],
                               "countType": "imageCountMoreThan", "countNumber": 2})
        ),
        expire_rule(
            20,
            json!({"tagStatus": "untagged", "countType": "sinceImagePushed",
                               "countUnit": "days", "countNumber": 7})
        ),
    ]));
    let repo = json!({"repositoryName": "app"});

    // A preview shows what the policy would do, and does nothing.
    assert_eq!(
        r.ecr_err("GetLifecyclePolicyPreview", repo.clone()).await,
        "LifecyclePolicyPreviewNotFoundException"
    );
    assert_eq!(
        r.ecr_err("StartLifecyclePolicyPreview", repo.clone()).await,
        "LifecyclePolicyNotFoundException",
        "no text given and no policy to preview"
    );
    let started = r
        .ecr_ok(
            "StartLifecyclePolicyPreview",
            json!({"repositoryName": "app", "lifecyclePolicyText": text}),
        )
        .await;
    assert_eq!(started["status"], "COMPLETE");
    assert_eq!(started["lifecyclePolicyText"], text);
    let preview = r.ecr_ok("GetLifecyclePolicyPreview", repo.clone()).await;
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 3);
    let results = preview["previewResults"].as_array().unwrap();
    let seen: Vec<(&str, i64)> = results
        .iter()
        .map(|p| {
            assert_eq!(p["action"]["type"], "EXPIRE");
            (
                p["imageDigest"].as_str().unwrap(),
                p["appliedRulePriority"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (release[0].as_str(), 10),
            (release[1].as_str(), 10),
            (old_untagged.as_str(), 20)
        ]
    );
    assert_eq!(results[0]["imageTags"], json!(["release-1"]));
    let untagged_only = r
        .ecr_ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "app", "filter": {"tagStatus": "UNTAGGED"}}),
        )
        .await;
    assert_eq!(
        untagged_only["previewResults"][0]["imageDigest"],
        old_untagged
    );
    assert_eq!(untagged_only["previewResults"].as_array().unwrap().len(), 1);
    let first = r
        .ecr_ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "app", "maxResults": 2}),
        )
        .await;
    assert_eq!(first["previewResults"].as_array().unwrap().len(), 2);
    let rest = r
        .ecr_ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "app", "maxResults": 2, "nextToken": first["nextToken"]}),
        )
        .await;
    assert_eq!(rest["previewResults"][0]["imageDigest"], old_untagged);
    assert!(rest.get("nextToken").is_none(), "{rest}");
    assert_eq!(r.digests("app").await.len(), 7, "a preview expires nothing");

    r.ecr_ok(
        "PutLifecyclePolicy",
        json!({"repositoryName": "app", "lifecyclePolicyText": text}),
    )
    .await;
    let now = r.app.clock.now();
    assert_eq!(
        lifecycle::apply_lifecycle_policies(&r.app, now)
            .await
            .unwrap(),
        3
    );
    let mut kept = vec![
        release[2].clone(),
        release[3].clone(),
        dev.clone(),
        new_untagged.clone(),
    ];
    kept.sort();
    assert_eq!(r.digests("app").await, kept);
    // Expired as BatchDeleteImage deletes: the manifest and its tags.
    for gone in ["release-1", "release-2", old_untagged.as_str()] {
        let reply = r
            .oci("GET", &format!("/v2/app/manifests/{gone}"), &[], b"")
            .await;
        assert_eq!(reply.code(), "MANIFEST_UNKNOWN", "{gone}");
    }
    let tags = r.oci("GET", "/v2/app/tags/list", &[], b"").await;
    assert_eq!(
        tags.json()["tags"],
        json!(["dev-1", "release-3", "release-4"])
    );
    let got = r.ecr_ok("GetLifecyclePolicy", repo.clone()).await;
    assert_eq!(got["lastEvaluatedAt"].as_f64(), Some(now.seconds()));
    // Applying it again changes nothing.
    assert_eq!(
        lifecycle::apply_lifecycle_policies(&r.app, now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(r.digests("app").await.len(), 4);
}

/// An OCI artifact manifest about `subject`: the empty config and one layer.
fn artifact(
    empty: &str,
    layer: &str,
    artifact_type: Option<&str>,
    config_type: &str,
    subject: &str,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": 9}],
        "subject": {"mediaType": DOCKER_MANIFEST, "digest": subject, "size": 100},
        "annotations": {"org.example.kind": config_type},
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = json!(t);
    }
    m.to_string().into_bytes()
}

#[tokio::test]
async fn referrers_list_the_manifests_naming_a_subject() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    let (subject, _) = r.push_image("app", "v1", b"the image").await;
    let plain = r.push_untagged("app", b"no subject").await;
    let empty = r.push_blob("app", b"{}").await;
    let layer = r.push_blob("app", b"signature").await;
    let empty_type = "application/vnd.oci.empty.v1+json";
    let signature = artifact(
        &empty,
        &layer,
        Some("application/vnd.example.signature"),
        empty_type,
        &subject,
    );
    let sbom = artifact(
        &empty,
        &layer,
        Some("application/vnd.example.sbom"),
        empty_type,
        &subject,
    );
    // No artifactType: the config's media type stands for it.
    let by_config = artifact(
        &empty,
        &layer,
        None,
        "application/vnd.example.config",
        &subject,
    );
    for (tag, body) in [("sig", &signature), ("sbom", &sbom), ("cfg", &by_config)] {
        let put = r
            .oci(
                "PUT",
                &format!("/v2/app/manifests/{tag}"),
                &[("content-type", OCI_MANIFEST)],
                body,
            )
            .await;
        assert_eq!(
            put.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&put.body)
        );
        assert_eq!(put.header("oci-subject"), subject, "{tag}");
    }
    // A manifest without a subject answers no OCI-Subject.
    let (_, again) = r.push_image("app", "v2", b"the image").await;
    let put = r
        .oci(
            "PUT",
            "/v2/app/manifests/v3",
            &[("content-type", DOCKER_MANIFEST)],
            &again,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(put.header("oci-subject"), "");

    let all = r
        .oci("GET", &format!("/v2/app/referrers/{subject}"), &[], b"")
        .await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.header("content-type"), OCI_INDEX);
    assert_eq!(all.header("oci-filters-applied"), "");
    let index = all.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut found: Vec<(String, String, i64)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["mediaType"], OCI_MANIFEST);
            let artifact_type = d["artifactType"].as_str().unwrap().to_string();
            let config_type = if artifact_type == "application/vnd.example.config" {
                "application/vnd.example.config"
            } else {
                empty_type
            };
            assert_eq!(d["annotations"]["org.example.kind"], config_type);
            (
                d["digest"].as_str().unwrap().to_string(),
                artifact_type,
                d["size"].as_i64().unwrap(),
            )
        })
        .collect();
    found.sort();
    let described = |body: &[u8], t: &str| (digest(body), t.to_string(), body.len() as i64);
    let mut expected = vec![
        described(&signature, "application/vnd.example.signature"),
        described(&sbom, "application/vnd.example.sbom"),
        described(&by_config, "application/vnd.example.config"),
    ];
    expected.sort();
    assert_eq!(found, expected);

    let filtered = r
        .oci(
            "GET",
            &format!("/v2/app/referrers/{subject}?artifactType=application%2Fvnd.example.sbom"),
            &[],
            b"",
        )
        .await;
    assert_eq!(filtered.header("oci-filters-applied"), "artifactType");
    let manifests = filtered.json()["manifests"].clone();
    assert_eq!(manifests.as_array().unwrap().len(), 1, "{manifests}");
    assert_eq!(manifests[0]["digest"], digest(&sbom));

    // Nothing refers to these: an empty index, not an error.
    for nobody in [plain.clone(), digest(b"never pushed")] {
        let none = r
            .oci("GET", &format!("/v2/app/referrers/{nobody}"), &[], b"")
            .await;
        assert_eq!(none.status, StatusCode::OK);
        assert_eq!(none.json()["manifests"], json!([]));
    }
    let bad = r.oci("GET", "/v2/app/referrers/sha256:xyz", &[], b"").await;
    assert_eq!(bad.code(), "DIGEST_INVALID");

    // A referrer may come before its subject; a deleted one is no longer listed.
    let later = digest(b"a subject pushed later");
    let early = artifact(
        &empty,
        &layer,
        Some("application/vnd.example.early"),
        empty_type,
        &later,
    );
    let put = r
        .oci(
            "PUT",
            &format!("/v2/app/manifests/{}", digest(&early)),
            &[("content-type", OCI_MANIFEST)],
            &early,
        )
        .await;
    assert_eq!(put.header("oci-subject"), later);
    let listed = r
        .oci("GET", &format!("/v2/app/referrers/{later}"), &[], b"")
        .await;
    assert_eq!(listed.json()["manifests"][0]["digest"], digest(&early));
    let deleted = r
        .oci(
            "DELETE",
            &format!("/v2/app/manifests/{}", digest(&sbom)),
            &[],
            b"",
        )
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    let after = r
        .oci("GET", &format!("/v2/app/referrers/{subject}"), &[], b"")
        .await;
    assert_eq!(after.json()["manifests"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn garbage_collection_removes_unreferenced_blobs_and_keeps_shared_ones() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    r.create("other", "MUTABLE").await;
    let sweep = RegistrySweep::default();
    let config = |tag: &str| {
        digest(format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#).as_bytes())
    };
    r.push_image("app", "a", b"shared layer").await;
    r.push_image("app", "b", b"shared layer").await;
    r.push_image("app", "c", b"c's layer").await;
    r.push_image("other", "x", b"c's layer").await;
    let hex = |d: String| d[7..].to_string();
    let mut everything: Vec<String> = [
        config("a"),
        config("b"),
        config("c"),
        config("x"),
        digest(b"shared layer"),
        digest(b"c's layer"),
    ]
    .into_iter()
    .map(hex)
    .collect();
    everything.sort();
    assert_eq!(r.blob_files(), everything);

    let deleted = r
        .ecr_ok(
            "BatchDeleteImage",
            json!({"repositoryName": "app", "imageIds": [{"imageTag": "a"}, {"imageTag": "c"}]}),
        )
        .await;
    assert_eq!(deleted["imageIds"].as_array().unwrap().len(), 2);

    // Within the grace period nothing goes: a push may be about to use these.
    let now = r.app.clock.now();
    let report = gc::collect_garbage(&r.app, now, &sweep).await.unwrap();
    assert!(report.is_empty(), "{report:?}");
    assert_eq!(r.blob_files(), everything);

    let later = now.plus_millis(2 * HOUR_MS);
    let report = gc::collect_garbage(&r.app, later, &sweep).await.unwrap();
    // app's links to a's config, c's config and c's layer; a's and c's config files. c's
    // layer stays for other/x, the shared layer for app/b.
    assert_eq!((report.links, report.blobs), (3, 2), "{report:?}");
    let mut kept: Vec<String> = [
        config("b"),
        config("x"),
        digest(b"shared layer"),
        digest(b"c's layer"),
    ]
    .into_iter()
    .map(hex)
    .collect();
    kept.sort();
    assert_eq!(r.blob_files(), kept);
    let gone = r
        .oci("GET", &format!("/v2/app/blobs/{}", config("a")), &[], b"")
        .await;
    assert_eq!(gone.code(), "BLOB_UNKNOWN");
    let shared = r
        .oci(
            "GET",
            &format!("/v2/app/blobs/{}", digest(b"shared layer")),
            &[],
            b"",
        )
        .await;
    assert_eq!(shared.body, b"shared layer");
    let pulled = r.oci("GET", "/v2/other/manifests/x", &[], b"").await;
    assert_eq!(pulled.status, StatusCode::OK);
    let layer = r
        .oci(
            "GET",
            &format!("/v2/other/blobs/{}", digest(b"c's layer")),
            &[],
            b"",
        )
        .await;
    assert_eq!(layer.body, b"c's layer");
    // The repository lost its link to c's layer with c: pushing it again works.
    r.push_image("app", "c", b"c's layer").await;

    // Everything deleted: every file goes.
    r.ecr_ok(
        "DeleteRepository",
        json!({"repositoryName": "app", "force": true}),
    )
    .await;
    r.ecr_ok(
        "DeleteRepository",
        json!({"repositoryName": "other", "force": true}),
    )
    .await;
    let report = gc::collect_garbage(&r.app, later, &sweep).await.unwrap();
    assert_eq!(report.blobs, 5, "{report:?}");
    assert!(r.blob_files().is_empty(), "{:?}", r.blob_files());
}

#[tokio::test]
async fn abandoned_uploads_are_removed_with_their_bytes() {
    let r = registry().await;
    r.create("app", "MUTABLE").await;
    let sweep = RegistrySweep::default();
    let started = r.oci("POST", "/v2/app/blobs/uploads/", &[], b"").await;
    let location = started.header("location").to_string();
    let patched = r.oci("PATCH", &location, &[], b"half a layer").await;
    assert_eq!(patched.status, StatusCode::ACCEPTED);
    // Bytes staged by a monolithic push that never finished: no session owns them.
    std::fs::write(
        r.dir.path().join("registry/uploads/interrupted0"),
        b"partial",
    )
    .unwrap();
    assert_eq!(r.staged_files(), 2);

    let now = r.app.clock.now();
    let soon = gc::collect_garbage(&r.app, now.plus_millis(HOUR_MS), &sweep)
        .await
        .unwrap();
    assert!(soon.is_empty(), "{soon:?}");
    let status = r.oci("GET", &location, &[], b"").await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-11");

    let day_later = now.plus_millis(25 * HOUR_MS);
    let report = gc::collect_garbage(&r.app, day_later, &sweep)
        .await
        .unwrap();
    assert_eq!((report.uploads, report.staged), (1, 1), "{report:?}");
    assert_eq!(r.staged_files(), 0);
    let gone = r.oci("GET", &location, &[], b"").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "BLOB_UPLOAD_UNKNOWN");
}
