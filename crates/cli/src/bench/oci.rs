//! A small OCI distribution client over hyper, the same for every registry the benchmark
//! measures: blob uploads (monolithic `POST` + `PUT`, or `POST` + `PATCH` chunks + `PUT`),
//! manifest `PUT`/`GET` and blob `GET`. Upload locations are followed as the registry hands
//! them out (relative or absolute, each `PATCH` may move them).

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// What a manifest `GET` accepts.
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

/// One registry at `http://HOST:PORT`, with the `Authorization` every request carries.
#[derive(Clone)]
pub struct OciClient {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    authority: String,
    authorization: Option<HeaderValue>,
}

/// A response's status, `Location` and body.
struct Reply {
    status: StatusCode,
    location: Option<String>,
    body: Bytes,
}

impl OciClient {
    /// A client of its own (its own connections) for `http://HOST:PORT`.
    pub fn new(endpoint: &str, authorization: Option<&str>) -> anyhow::Result<OciClient> {
        let authority = endpoint
            .strip_prefix("http://")
            .with_context(|| format!("{endpoint} is not an http:// URL"))?
            .trim_end_matches('/')
            .to_owned();
        let authorization = authorization
            .map(HeaderValue::from_str)
            .transpose()
            .context("the Authorization value is not a valid header")?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Ok(OciClient {
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
            authority,
            authorization,
        })
    }

    /// Sends a request to `target` (a path with its query, or an absolute URL).
    async fn send(
        &self,
        method: Method,
        target: &str,
        headers: &[(header::HeaderName, &str)],
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let response = self.start(method.clone(), target, headers, body).await?;
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("{method} {target}: the response body"))?
            .to_bytes();
        Ok(Reply {
            status,
            location,
            body,
        })
    }

    /// Sends a request and returns the response with its body unread.
    async fn start(
        &self,
        method: Method,
        target: &str,
        headers: &[(header::HeaderName, &str)],
        body: Bytes,
    ) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        let uri = if target.starts_with("http://") {
            target.to_owned()
        } else {
            format!("http://{}{target}", self.authority)
        };
        let mut request = Request::builder().method(method.clone()).uri(&uri);
        if let Some(auth) = &self.authorization {
            request = request.header(header::AUTHORIZATION, auth.clone());
        }
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let request = request
            .header(header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .with_context(|| format!("{method} {uri}: not a valid request"))?;
        self.http
            .request(request)
            .await
            .with_context(|| format!("{method} {uri}"))
    }

    /// `POST /v2/<repo>/blobs/uploads/`: the session's location.
    async fn open_upload(&self, repo: &str) -> anyhow::Result<String> {
        let reply = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Bytes::new(),
            )
            .await?;
        expect(&reply, StatusCode::ACCEPTED, "starting an upload")?;
        reply
            .location
            .context("the registry started an upload without a Location")
    }

    /// `PUT <location>?digest=` with the last bytes (possibly none).
    async fn close_upload(&self, location: &str, digest: &str, data: Bytes) -> anyhow::Result<()> {
        let separator = if location.contains('?') { '&' } else { '?' };
        let reply = self
            .send(
                Method::PUT,
                &format!("{location}{separator}digest={digest}"),
                &[(header::CONTENT_TYPE, "application/octet-stream")],
                data,
            )
            .await?;
        expect(&reply, StatusCode::CREATED, "finishing an upload")
    }

    /// Uploads a blob in one `PUT` after the `POST` that opens the session.
    pub async fn push_monolithic(
        &self,
        repo: &str,
        digest: &str,
        data: Bytes,
    ) -> anyhow::Result<()> {
        let location = self.open_upload(repo).await?;
        self.close_upload(&location, digest, data).await
    }

    /// Uploads a blob as `PATCH` requests of `chunk` bytes, then an empty `PUT`.
    pub async fn push_chunked(
        &self,
        repo: &str,
        digest: &str,
        data: Bytes,
        chunk: usize,
    ) -> anyhow::Result<()> {
        let mut location = self.open_upload(repo).await?;
        let mut offset = 0;
        while offset < data.len() {
            let end = (offset + chunk).min(data.len());
            let range = format!("{offset}-{}", end - 1);
            let reply = self
                .send(
                    Method::PATCH,
                    &location,
                    &[
                        (header::CONTENT_TYPE, "application/octet-stream"),
                        (header::CONTENT_RANGE, &range),
                    ],
                    data.slice(offset..end),
                )
                .await?;
            expect(&reply, StatusCode::ACCEPTED, "uploading a chunk")?;
            location = reply
                .location
                .context("the registry took a chunk without a Location")?;
            offset = end;
        }
        self.close_upload(&location, digest, Bytes::new()).await
    }

    /// `PUT /v2/<repo>/manifests/<tag>`.
    pub async fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        manifest: Bytes,
    ) -> anyhow::Result<()> {
        let reply = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{tag}"),
                &[(header::CONTENT_TYPE, media_type)],
                manifest,
            )
            .await?;
        expect(&reply, StatusCode::CREATED, "putting the manifest")
    }

    /// `GET /v2/<repo>/manifests/<tag>`: the manifest's bytes.
    pub async fn get_manifest(&self, repo: &str, tag: &str) -> anyhow::Result<Bytes> {
        let reply = self
            .send(
                Method::GET,
                &format!("/v2/{repo}/manifests/{tag}"),
                &[(header::ACCEPT, ACCEPT)],
                Bytes::new(),
            )
            .await?;
        expect(&reply, StatusCode::OK, "getting the manifest")?;
        Ok(reply.body)
    }

    /// `GET /v2/<repo>/blobs/<digest>`, handing each piece of the body to `each` as it
    /// arrives; returns how many bytes came.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &str,
        mut each: impl FnMut(&Bytes),
    ) -> anyhow::Result<u64> {
        let target = format!("/v2/{repo}/blobs/{digest}");
        let mut response = self.start(Method::GET, &target, &[], Bytes::new()).await?;
        if response.status() != StatusCode::OK {
            bail!("GET {target}: HTTP {}", response.status());
        }
        let mut size = 0;
        while let Some(frame) = response.body_mut().frame().await {
            let frame = frame.with_context(|| format!("GET {target}: the body"))?;
            if let Some(data) = frame.data_ref() {
                size += data.len() as u64;
                each(data);
            }
        }
        Ok(size)
    }

    /// `GET /v2/`: whether the registry answers 200 (it is up, and lets this client in).
    pub async fn ping(&self) -> bool {
        matches!(
            self.send(Method::GET, "/v2/", &[], Bytes::new()).await,
            Ok(Reply {
                status: StatusCode::OK,
                ..
            })
        )
    }
}

fn expect(reply: &Reply, status: StatusCode, doing: &str) -> anyhow::Result<()> {
    if reply.status == status {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)]).into_owned();
    bail!("{doing}: HTTP {} (expected {status}): {body}", reply.status)
}
