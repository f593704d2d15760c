//! Berth's own HTTP client: AWS JSON 1.1 calls signed with SigV4, over pooled keep-alive
//! connections.
//!
//! Contract: this is how every Berth process that is not the server (the agent, the load
//! balancer, the CLI, benchmarks) reaches state — through the public API, never the store.
//! A call either returns the response document or a [`ClientError`]; an AWS error response
//! (`{"__type": …, "message": …}`) becomes [`ClientError::Api`] with its code and message, so
//! callers can match on the code exactly as they would with an AWS SDK. The client is cheap to
//! clone and safe to share between tasks. `https://` endpoints are held to a [`Trust`]: the
//! system's roots, or a pinned server key ([`trust`]).

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod trust;
pub use trust::{ServerPin, Trust};

/// The `X-Amz-Target` prefix of the ECS API.
pub const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";

/// An access key pair.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not an `http://` or `https://` `HOST:PORT` URL.
    #[error("endpoint {0:?} is not an http://HOST:PORT or https://HOST:PORT URL")]
    Endpoint(String),
    /// The TLS configuration could not be made.
    #[error("TLS for {endpoint}: {detail}")]
    Tls { endpoint: String, detail: String },
    /// The request could not be sent or the response not read.
    #[error("could not reach {endpoint}: {}", causes(source.as_ref()))]
    Transport {
        endpoint: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The service answered with an AWS error.
    #[error("{code} (HTTP {status}): {message}")]
    Api {
        code: String,
        message: String,
        status: u16,
    },
    /// The response was not the JSON the caller expected.
    #[error("unexpected response (HTTP {status}): {detail}")]
    Decode { status: u16, detail: String },
}

/// An error and its causes, outermost first: hyper's own messages say little ("client error
/// (Connect)") without what lies under them.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        next = cause.source();
    }
    text
}

impl ClientError {
    /// The AWS error code, for an error the service returned.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A signed client for one Berth endpoint, region and key pair.
#[derive(Clone, Debug)]
pub struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: Uri,
    host: HeaderValue,
    credentials: Credentials,
    region: String,
}

impl Client {
    /// A client for `endpoint` (e.g. `http://127.0.0.1:9180`); an `https://` one must have a
    /// certificate from the system's roots.
    pub fn new(
        endpoint: &str,
        credentials: Credentials,
        region: impl Into<String>,
    ) -> Result<Self, ClientError> {
        Client::with_trust(endpoint, credentials, region, &Trust::SystemRoots)
    }

    /// A client for `endpoint` that holds an `https://` one to `trust`.
    pub fn with_trust(
        endpoint: &str,
        credentials: Credentials,
        region: impl Into<String>,
        trust: &Trust,
    ) -> Result<Self, ClientError> {
        let bad = || ClientError::Endpoint(endpoint.to_owned());
        let uri: Uri = endpoint.trim_end_matches('/').parse().map_err(|_| bad())?;
        let tls = match uri.scheme_str() {
            // No handshake happens on an http:// endpoint: no roots to load.
            Some("http") => trust::plain_config(),
            Some("https") => trust::client_config(trust),
            _ => return Err(bad()),
        }
        .map_err(|detail| ClientError::Tls {
            endpoint: endpoint.to_owned(),
            detail,
        })?;
        let authority = uri.authority().ok_or_else(bad)?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| bad())?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Client {
            http,
            endpoint: uri,
            host,
            credentials,
            region: region.into(),
        })
    }

    /// The endpoint's `HOST:PORT`.
    pub fn endpoint_authority(&self) -> String {
        self.endpoint
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default()
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The same client — endpoint, key pair, connection pool — signing for `region`.
    pub fn for_region(&self, region: &str) -> Client {
        Client {
            region: region.to_owned(),
            ..self.clone()
        }
    }

    /// Calls an ECS operation, e.g. `ecs("ListTasks", &json!({"cluster": "default"}))`.
    pub async fn ecs<I: Serialize, O: DeserializeOwned>(
        &self,
        operation: &str,
        input: &I,
    ) -> Result<O, ClientError> {
        self.json_1_1("ecs", ECS_TARGET_PREFIX, operation, input)
            .await
    }

    /// Calls an AWS JSON 1.1 operation of `service` (the SigV4 service name).
    pub async fn json_1_1<I: Serialize, O: DeserializeOwned>(
        &self,
        service: &str,
        target_prefix: &str,
        operation: &str,
        input: &I,
    ) -> Result<O, ClientError> {
        let target = HeaderValue::from_str(&format!("{target_prefix}.{operation}"))
            .map_err(|_| ClientError::Endpoint(format!("bad operation name {operation:?}")))?;
        let content_type = HeaderValue::from_static("application/x-amz-json-1.1");
        self.post_json(service, "/", content_type, Some(target), input)
            .await
    }

    /// Calls one of Berth's own JSON APIs: `POST path` with a JSON body, signed for the SigV4
    /// service `service`; errors come back as with [`Client::json_1_1`].
    pub async fn berth_json<I: Serialize, O: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        input: &I,
    ) -> Result<O, ClientError> {
        let content_type = HeaderValue::from_static("application/json");
        self.post_json(service, path, content_type, None, input)
            .await
    }

    /// Signs and sends a JSON `POST path` (with `X-Amz-Target` when given) and decodes the
    /// answer.
    async fn post_json<I: Serialize, O: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        content_type: HeaderValue,
        target: Option<HeaderValue>,
        input: &I,
    ) -> Result<O, ClientError> {
        let body = serde_json::to_vec(input).map_err(|e| ClientError::Decode {
            status: 0,
            detail: format!("the request does not serialize: {e}"),
        })?;
        let scheme = self.endpoint.scheme_str().unwrap_or("http");
        let uri: Uri = format!("{scheme}://{}{path}", self.endpoint_authority())
            .parse()
            .map_err(|_| ClientError::Endpoint(format!("bad path {path:?}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, self.host.clone());
        headers.insert(http::header::CONTENT_TYPE, content_type);
        if let Some(target) = target {
            headers.insert("x-amz-target", target);
        }
        berth_sigv4::sign(
            &berth_sigv4::SigningParams {
                access_key_id: &self.credentials.access_key_id,
                secret_access_key: &self.credentials.secret_access_key,
                region: &self.region,
                service,
                time: SystemTime::now(),
            },
            &berth_sigv4::Unsigned {
                method: "POST",
                path: uri.path(),
                query: "",
                body: &body,
            },
            &mut headers,
        );
        let (status, bytes) = self.send(uri, headers, body).await?;
        decode(status, &bytes)
    }

    async fn send(
        &self,
        uri: Uri,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), ClientError> {
        let mut request = Request::post(uri)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.transport(e))?;
        *request.headers_mut() = headers;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.transport(e))?
            .to_bytes();
        Ok((status, bytes))
    }

    fn transport(&self, e: impl std::error::Error + Send + Sync + 'static) -> ClientError {
        ClientError::Transport {
            endpoint: self.endpoint.to_string(),
            source: Box::new(e),
        }
    }
}

/// Reads a JSON 1.1 response: the document on 2xx, the AWS error otherwise.
fn decode<O: DeserializeOwned>(status: u16, bytes: &[u8]) -> Result<O, ClientError> {
    if (200..300).contains(&status) {
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
        return serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
            status,
            detail: e.to_string(),
        });
    }
    #[derive(serde::Deserialize)]
    struct AwsError {
        #[serde(rename = "__type")]
        code: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    match serde_json::from_slice::<AwsError>(bytes) {
        Ok(AwsError {
            code: Some(code),
            message,
        }) => Err(ClientError::Api {
            // `__type` may carry a namespace: `com.amazonaws.ecs#ClusterNotFoundException`.
            code: code.rsplit('#').next().unwrap_or(&code).to_owned(),
            message: message.unwrap_or_default(),
            status,
        }),
        _ => Err(ClientError::Decode {
            status,
            detail: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn decodes_documents_and_aws_errors() {
        let ok: Value = decode(200, br#"{"clusterArns":[]}"#).unwrap();
        assert_eq!(ok, json!({"clusterArns": []}));
        let empty: Value = decode(200, b"").unwrap();
        assert_eq!(empty, json!({}));
        let err = decode::<Value>(
            400,
            br#"{"__type":"com.amazonaws.ecs#ClusterNotFoundException","message":"Cluster not found."}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), Some("ClusterNotFoundException"));
        assert!(err.to_string().contains("Cluster not found."), "{err}");
        let garbage = decode::<Value>(502, b"<html>bad gateway</html>").unwrap_err();
        assert!(matches!(garbage, ClientError::Decode { status: 502, .. }));
    }

    #[test]
    fn refuses_endpoints_it_cannot_reach() {
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
        };
        for bad in [
            "127.0.0.1:9180",
            "ftp://example.com",
            "http://",
            "not a url",
        ] {
            let err = Client::new(bad, creds.clone(), "us-east-1").unwrap_err();
            assert!(matches!(err, ClientError::Endpoint(_)), "{bad}: {err}");
        }
        assert!(Client::new("http://127.0.0.1:9180/", creds.clone(), "us-east-1").is_ok());
        assert!(Client::new("https://berth.example:9180", creds, "us-east-1").is_ok());
    }
}
