//! The listeners: one accept loop per served port (HTTP/1.1 and cleartext HTTP/2 on the same
//! port), each request routed by the port's current table and answered as ALB does — forwarded
//! over pooled keep-alive connections with `X-Forwarded-For/-Proto/-Port`, redirected, or a
//! fixed response; 502 when the target refuses or breaks the connection, 503 when the target
//! group has no target to offer, 504 when the target does not answer within the idle timeout.
//! Requests with ambiguous framing or malformed heads get 400, oversized heads 431, and the
//! connection is closed ([`crate::guard`]). A port that cannot be bound is logged and retried.

use crate::balancer::InFlight;
use crate::config::{Compiled, ListenerTable, Shared};
use crate::guard::HeadGuard;
use crate::router::{self, Decision, Origin, RequestView};
use berth_model::elbv2::Protocol;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The body of every answer.
pub type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// The largest request head accepted (ALB: 64 KiB of headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a client may take to send a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a port that could not be bound is tried again.
const BIND_RETRY: Duration = Duration::from_secs(2);

type Upstream = Client<HttpConnector, Incoming>;

fn upstream_client() -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(50))
        .build(connector)
}

/// Keeps an accept loop on every port the configuration has listeners on, until dropped.
pub async fn run(shared: Arc<Shared>, bind: IpAddr) {
    let upstream = upstream_client();
    let mut changes = shared.subscribe();
    let mut open: HashMap<u16, JoinHandle<()>> = HashMap::new();
    let mut failing: HashMap<u16, String> = HashMap::new();
    loop {
        let ports: Vec<u16> = shared.current().listeners.keys().copied().collect();
        open.retain(|port, task| {
            let keep = ports.contains(port);
            if !keep {
                tracing::info!(port, "listener removed; no longer accepting on this port");
                task.abort();
            }
            keep
        });
        failing.retain(|port, _| ports.contains(port));
        for port in ports {
            if open.contains_key(&port) {
                continue;
            }
            match TcpListener::bind(SocketAddr::new(bind, port)).await {
                Ok(listener) => {
                    if failing.remove(&port).is_some() {
                        tracing::info!(port, "listener port is free again");
                    }
                    tracing::info!(port, %bind, "listening");
                    open.insert(
                        port,
                        tokio::spawn(accept(listener, port, shared.clone(), upstream.clone())),
                    );
                }
                Err(e) => {
                    let message = e.to_string();
                    if failing.get(&port) != Some(&message) {
                        tracing::error!(
                            port,
                            %bind,
                            "cannot listen on {bind}:{port} ({message}); is another program using it? retrying every {BIND_RETRY:?}"
                        );
                    }
                    failing.insert(port, message);
                }
            }
        }
        let retry = !failing.is_empty();
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            () = tokio::time::sleep(BIND_RETRY), if retry => {}
        }
    }
    for (_, task) in open {
        task.abort();
    }
}

async fn accept(listener: TcpListener, port: u16, shared: Arc<Shared>, upstream: Upstream) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(port, "could not accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (shared, upstream, builder) = (shared.clone(), upstream.clone(), builder.clone());
        tokio::spawn(async move {
            let io = TokioIo::new(HeadGuard::new(stream, MAX_HEAD_BYTES));
            let service = hyper::service::service_fn(move |req| {
                let (shared, upstream) = (shared.clone(), upstream.clone());
                async move {
                    let current = shared.current();
                    Ok::<_, Infallible>(handle(req, &current, &upstream, port, peer).await)
                }
            });
            if let Err(e) = builder.serve_connection(io, service).await {
                tracing::debug!(%peer, port, "connection ended: {e}");
            }
        });
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// An answer of the load balancer itself.
fn answer(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
        .headers_mut()
        .insert(header::SERVER, HeaderValue::from_static("berth-lb"));
    response
}

fn error_page(status: StatusCode) -> Response<Body> {
    let text = format!(
        "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    answer(status, "text/html", text)
}

/// A 400 that also closes the connection.
fn refuse(message: &'static str) -> Response<Body> {
    let mut r = answer(StatusCode::BAD_REQUEST, "text/plain", message);
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, those named in `Connection` too.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

async fn handle(
    req: Request<Incoming>,
    current: &Compiled,
    upstream: &Upstream,
    port: u16,
    peer: SocketAddr,
) -> Response<Body> {
    // hyper drops a second Content-Length equal to the first, and a Content-Length beside
    // Transfer-Encoding; the guard refuses both before they get here, this is the backstop.
    let lengths = req.headers().get_all(header::CONTENT_LENGTH).iter().count();
    if lengths > 1 || (lengths == 1 && req.headers().contains_key(header::TRANSFER_ENCODING)) {
        return refuse("ambiguous request framing");
    }
    let Some(table) = current.listeners.get(&port) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let host: Option<String> = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let view = RequestView {
        method: req.method().as_str(),
        host: host.as_deref(),
        path: &path,
        query: query.as_deref(),
        headers: req.headers(),
        source: peer.ip(),
    };
    match router::route(&table.rules, &view) {
        Decision::Nothing => error_page(StatusCode::SERVICE_UNAVAILABLE),
        Decision::Fixed(f) => {
            let status = f
                .status_code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::OK);
            let content_type = f.content_type.as_deref().unwrap_or("text/plain");
            answer(
                status,
                content_type,
                f.message_body.clone().unwrap_or_default(),
            )
        }
        Decision::Redirect(r) => {
            let origin = Origin {
                protocol: table.protocol.as_str(),
                host: host.as_deref().unwrap_or(""),
                port,
                path: &path,
                query: query.as_deref(),
            };
            let (status, location) = router::redirect_location(r, &origin);
            let mut response = answer(
                StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY),
                "text/html",
                Bytes::new(),
            );
            match HeaderValue::from_str(&location) {
                Ok(v) => {
                    response.headers_mut().insert(header::LOCATION, v);
                    response
                }
                Err(_) => error_page(StatusCode::BAD_REQUEST),
            }
        }
        Decision::Forward(groups) => {
            let total = router::total_weight(groups);
            let arn = if total == 0 {
                None
            } else {
                router::pick_weighted(groups, rand::random_range(0..total))
            };
            let Some(group) = arn.and_then(|a| current.groups.get(a)) else {
                return error_page(StatusCode::SERVICE_UNAVAILABLE);
            };
            let Some(target) = group.pick() else {
                return error_page(StatusCode::SERVICE_UNAVAILABLE);
            };
            let Some(address) = target.address else {
                return error_page(StatusCode::SERVICE_UNAVAILABLE);
            };
            let in_flight = InFlight::start(target.stats.clone());
            forward(req, table, upstream, address, host, peer, in_flight).await
        }
    }
}

async fn forward(
    req: Request<Incoming>,
    table: &ListenerTable,
    upstream: &Upstream,
    address: SocketAddr,
    host: Option<String>,
    peer: SocketAddr,
    in_flight: InFlight,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let Ok(uri) = format!("http://{address}{path_and_query}").parse::<Uri>() else {
        return error_page(StatusCode::BAD_REQUEST);
    };
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    if !headers.contains_key(header::HOST)
        && let Some(v) = host.and_then(|h| HeaderValue::from_str(&h).ok())
    {
        headers.insert(header::HOST, v);
    }
    let client_ip = peer.ip().to_canonical().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(previous) => format!("{previous}, {client_ip}"),
        None => client_ip,
    };
    let proto = match table.protocol {
        Protocol::Http => "http",
        Protocol::Https => "https",
    };
    for (name, value) in [
        ("x-forwarded-for", forwarded_for),
        ("x-forwarded-proto", proto.to_string()),
        ("x-forwarded-port", table.port.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    let request = Request::from_parts(parts, body);
    match tokio::time::timeout(table.idle_timeout, upstream.request(request)).await {
        Err(_) => error_page(StatusCode::GATEWAY_TIMEOUT),
        Ok(Err(e)) => {
            tracing::debug!(target = %address, "target failed: {e}");
            error_page(StatusCode::BAD_GATEWAY)
        }
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            // The request counts as outstanding until its answer has been sent.
            let body = body
                .map_frame(move |frame| {
                    let _keep = &in_flight;
                    frame
                })
                .boxed_unsync();
            Response::from_parts(parts, body)
        }
    }
}
