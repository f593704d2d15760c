//! The listeners: one accept loop per served port (HTTP/1.1 and cleartext HTTP/2 on the same
//! port; for HTTPS listeners TLS first, [`crate::tls`], and HTTP/2 or HTTP/1.1 as ALPN
//! chose), each request routed by the port's current table and answered as ALB does — forwarded
//! over pooled keep-alive connections with `X-Forwarded-For/-Proto/-Port`, redirected, or a
//! fixed response; 502 when the target refuses or breaks the connection, 503 when the target
//! group has no target to offer, 504 when the target does not answer within the idle timeout.
//! A request that asks to switch protocols (WebSocket) goes on a connection of its own and, when
//! the target agrees, the two connections are joined ([`crate::tunnel`]).
//! Requests with ambiguous framing or malformed heads get 400, oversized heads 431, and the
//! connection is closed ([`crate::guard`]). A port that cannot be bound is logged and retried.

use crate::balancer::InFlight;
use crate::config::{Compiled, ListenerTable, Shared};
use crate::guard::{Activity, Busy, HeadGuard};
use crate::router::{self, Decision, Origin, RequestView};
use crate::upstream::{Pooled, Upstream};
use crate::{sticky, tunnel};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::Full;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The body of every answer: the load balancer's own, or a target's. The request counts as in
/// flight on its connection until this is dropped.
pub struct Body {
    inner: Inner,
    /// A target's answer: the request counts as outstanding on the target until it is dropped.
    _outstanding: Option<InFlight>,
    _busy: Option<Busy>,
}

enum Inner {
    Own(Full<Bytes>),
    Proxied(Pooled),
}

impl Body {
    /// The same body, the request in flight on its connection until it is dropped.
    fn holding(mut self, busy: Busy) -> Body {
        self._busy = Some(busy);
        self
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().inner {
            Inner::Own(full) => Pin::new(full)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(|never| match never {}))),
            Inner::Proxied(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Own(full) => full.is_end_stream(),
            Inner::Proxied(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Own(full) => full.size_hint(),
            Inner::Proxied(body) => body.size_hint(),
        }
    }
}

/// The largest request head accepted (ALB: 64 KiB of headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a connection may wait for a request head (sent slowly, or none on an idle
/// keep-alive connection) while none of its requests is in flight.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a port that could not be bound is tried again.
const BIND_RETRY: Duration = Duration::from_secs(2);
/// How long opening a connection to a target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection to a target is kept idle for reuse.
const UPSTREAM_IDLE: Duration = Duration::from_secs(50);

/// Keeps an accept loop on every port the configuration has listeners on, until dropped.
pub async fn run(shared: Arc<Shared>, bind: IpAddr) {
    let upstream = Upstream::new(CONNECT_TIMEOUT, UPSTREAM_IDLE);
    let mut sweep = tokio::time::interval(UPSTREAM_IDLE / 5);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = shared.subscribe();
    let mut open = Accepting::default();
    let mut failing: HashMap<u16, String> = HashMap::new();
    loop {
        let ports: Vec<u16> = shared.current().listeners.keys().copied().collect();
        open.0.retain(|port, task| {
            let keep = ports.contains(port);
            if !keep {
                tracing::info!(port, "listener removed; no longer accepting on this port");
                task.abort();
            }
            keep
        });
        failing.retain(|port, _| ports.contains(port));
        for port in ports {
            if open.0.contains_key(&port) {
                continue;
            }
            match TcpListener::bind(SocketAddr::new(bind, port)).await {
                Ok(listener) => {
                    if failing.remove(&port).is_some() {
                        tracing::info!(port, "listener port is free again");
                    }
                    tracing::info!(port, %bind, "listening");
                    open.0.insert(
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
        let bind_again = tokio::time::sleep(BIND_RETRY);
        tokio::pin!(bind_again);
        loop {
            tokio::select! {
                changed = changes.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => return,
                },
                () = &mut bind_again, if retry => break,
                _ = sweep.tick() => upstream.sweep(),
            }
        }
    }
}

/// The accept loops by port; they stop when this is dropped.
#[derive(Default)]
struct Accepting(HashMap<u16, JoinHandle<()>>);

impl Drop for Accepting {
    fn drop(&mut self) {
        for task in self.0.values() {
            task.abort();
        }
    }
}

/// How an HTTP/2 connection (prior knowledge) begins.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The connection settings of a listener, for HTTP/1 and HTTP/2.
struct Protocols {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

impl Protocols {
    fn new() -> Protocols {
        let mut h1 = http1::Builder::new();
        // The guard limits waiting for heads (hyper's limit arms a timer per request).
        h1.timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_header_size(MAX_HEAD_BYTES)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new());
        Protocols { h1, h2 }
    }
}

async fn accept(listener: TcpListener, port: u16, shared: Arc<Shared>, upstream: Arc<Upstream>) {
    let protocols = Arc::new(Protocols::new());
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
        let connection = Connection {
            shared: shared.clone(),
            upstream: upstream.clone(),
            protocols: protocols.clone(),
            port,
            peer,
        };
        tokio::spawn(connection.run(stream));
    }
}

/// One client connection and what serving it takes.
struct Connection {
    shared: Arc<Shared>,
    upstream: Arc<Upstream>,
    protocols: Arc<Protocols>,
    port: u16,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let (port, peer) = (self.port, self.peer);
        let tls = self
            .shared
            .current()
            .listeners
            .get(&port)
            .and_then(|t| t.tls.clone());
        let activity = Activity::default();
        let Some(tls) = tls else {
            let mut guard = HeadGuard::new(stream, MAX_HEAD_BYTES)
                .with_head_timeout(HEAD_TIMEOUT, activity.clone());
            let h2 = match tokio::time::timeout(HEAD_TIMEOUT, guard.starts_with(H2_PREFACE)).await {
                Ok(Ok(h2)) => h2,
                Ok(Err(e)) => return tracing::debug!(%peer, port, "connection ended: {e}"),
                Err(_) => return tracing::debug!(%peer, port, "no request within {HEAD_TIMEOUT:?}"),
            };
            return self.serve(guard, h2, activity).await;
        };
        let accepted = tokio::time::timeout(HEAD_TIMEOUT, TlsAcceptor::from(tls).accept(stream));
        let stream = match accepted.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return tracing::debug!(%peer, port, "TLS handshake failed: {e}"),
            Err(_) => {
                return tracing::debug!(%peer, port, "no TLS handshake within {HEAD_TIMEOUT:?}");
            }
        };
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let guard = HeadGuard::new(stream, MAX_HEAD_BYTES)
            .with_head_timeout(HEAD_TIMEOUT, activity.clone());
        self.serve(guard, h2, activity).await;
    }

    async fn serve<T>(self, guard: HeadGuard<T>, h2: bool, activity: Activity)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            shared,
            upstream,
            protocols,
            port,
            peer,
        } = self;
        let io = TokioIo::new(guard);
        let client = Arc::new(Client::new(peer));
        let service = hyper::service::service_fn(move |req| {
            let (shared, upstream, client) = (shared.clone(), upstream.clone(), client.clone());
            let busy = activity.start();
            async move {
                let current = shared.current();
                let response = handle(req, &current, &upstream, port, &client).await;
                Ok::<_, Infallible>(response.map(|body| body.holding(busy)))
            }
        });
        let served = if h2 {
            protocols.h2.serve_connection(io, service).await
        } else {
            protocols
                .h1
                .serve_connection(io, service)
                .with_upgrades()
                .await
        };
        if let Err(e) = served {
            tracing::debug!(%peer, port, "connection ended: {e}");
        }
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Body {
        inner: Inner::Own(Full::new(body.into())),
        _outstanding: None,
        _busy: None,
    }
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

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, those named in `Connection` too.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
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
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// What is known of a client connection.
struct Client {
    peer: SocketAddr,
    /// Its address as `X-Forwarded-For` gives it.
    forwarded_for: Option<HeaderValue>,
}

impl Client {
    fn new(peer: SocketAddr) -> Client {
        Client {
            peer,
            forwarded_for: HeaderValue::from_str(&peer.ip().to_canonical().to_string()).ok(),
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    current: &Compiled,
    upstream: &Arc<Upstream>,
    port: u16,
    client: &Client,
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
    let host = request_host(&req);
    let view = RequestView {
        method: req.method().as_str(),
        host,
        path: req.uri().path(),
        query: req.uri().query(),
        headers: req.headers(),
        source: client.peer.ip(),
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
                host: host.unwrap_or(""),
                port,
                path: req.uri().path(),
                query: req.uri().query(),
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
        Decision::Forward(action) => {
            let groups = &action.target_groups;
            // A client held to one of the action's groups stays with it while it has weight.
            let held = action
                .stickiness_enabled
                .then(|| sticky::read(req.headers(), &sticky::GROUP_COOKIE))
                .flatten()
                .filter(|arn| {
                    groups
                        .iter()
                        .any(|g| g.target_group_arn == *arn && g.weight > 0)
                });
            let arn = match (held.as_deref(), groups.as_slice()) {
                (Some(arn), _) => Some(arn),
                (None, [only]) if only.weight > 0 => Some(only.target_group_arn.as_str()),
                (None, _) => {
                    let total = router::total_weight(groups);
                    if total == 0 {
                        None
                    } else {
                        router::pick_weighted(groups, rand::random_range(0..total))
                    }
                }
            };
            let Some(group) = arn.and_then(|a| current.groups.get(a)) else {
                return error_page(StatusCode::SERVICE_UNAVAILABLE);
            };
            let sticky = group
                .stickiness
                .as_ref()
                .and_then(|policy| policy.requested(req.headers()))
                .and_then(|(id, port)| group.sticky(&id, port));
            let Some(target) = sticky.or_else(|| group.pick()) else {
                return error_page(StatusCode::SERVICE_UNAVAILABLE);
            };
            let Some(address) = target.address else {
                return error_page(StatusCode::SERVICE_UNAVAILABLE);
            };
            let in_flight = InFlight::start(target.stats.clone());
            let mut response = forward(req, table, upstream, address, client, in_flight).await;
            if let Some(policy) = &group.stickiness {
                policy.hold(response.headers_mut(), target);
            }
            if let (true, Some(seconds)) = (
                action.stickiness_enabled,
                action.stickiness_duration_seconds,
            ) {
                let duration = Duration::from_secs(u64::from(seconds));
                sticky::write(
                    response.headers_mut(),
                    &sticky::GROUP_COOKIE,
                    &group.arn,
                    duration,
                );
            }
            response
        }
    }
}

/// The `Host` header, or the HTTP/2 authority; port included if sent.
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

async fn forward(
    mut req: Request<Incoming>,
    table: &ListenerTable,
    upstream: &Arc<Upstream>,
    address: SocketAddr,
    client: &Client,
    in_flight: InFlight,
) -> Response<Body> {
    let upgrade = match req.version() {
        Version::HTTP_11 => tunnel::requested(req.headers()),
        _ => None,
    };
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // An HTTP/2 request names its host in the authority only.
    let authority = match parts.headers.contains_key(header::HOST) {
        true => None,
        false => parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(path_and_query);
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    if let Some(host) = authority {
        headers.insert(header::HOST, host);
    }
    let forwarded_for = match (
        headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()),
        &client.forwarded_for,
    ) {
        (Some(previous), Some(ip)) => {
            let ip = ip.to_str().unwrap_or_default();
            HeaderValue::from_str(&format!("{previous}, {ip}")).ok()
        }
        (_, ip) => ip.clone(),
    };
    if let Some(v) = forwarded_for {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_FORWARDED_PROTO, table.forwarded_proto.clone());
    headers.insert(X_FORWARDED_PORT, table.forwarded_port.clone());
    if let Some(protocol) = upgrade {
        tunnel::keep_upgrade(headers, protocol);
    }
    let request = Request::from_parts(parts, body);
    if let Some(client_upgrade) = client_upgrade {
        return forward_upgrade(request, client_upgrade, table, upstream, address, in_flight).await;
    }
    match tokio::time::timeout(table.idle_timeout, upstream.send(address, request)).await {
        Err(_) => error_page(StatusCode::GATEWAY_TIMEOUT),
        Ok(Err(e)) => {
            tracing::debug!(target = %address, "target failed: {e}");
            error_page(StatusCode::BAD_GATEWAY)
        }
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            let body = Body {
                inner: Inner::Proxied(body),
                _outstanding: Some(in_flight),
                _busy: None,
            };
            Response::from_parts(parts, body)
        }
    }
}

/// Forwards a request that asks to switch protocols; on the target's 101 the two connections
/// are joined ([`tunnel`]), any other answer is passed on.
async fn forward_upgrade(
    request: Request<Incoming>,
    client_upgrade: hyper::upgrade::OnUpgrade,
    table: &ListenerTable,
    upstream: &Arc<Upstream>,
    address: SocketAddr,
    in_flight: InFlight,
) -> Response<Body> {
    let sent = tokio::time::timeout(table.idle_timeout, upstream.send_upgrade(address, request));
    let mut response = match sent.await {
        Err(_) => return error_page(StatusCode::GATEWAY_TIMEOUT),
        Ok(Err(e)) => {
            tracing::debug!(target = %address, "target failed: {e}");
            return error_page(StatusCode::BAD_GATEWAY);
        }
        Ok(Ok(response)) => response,
    };
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let agreed = tunnel::requested(response.headers());
    strip_hop_by_hop(response.headers_mut());
    match agreed {
        Some(protocol) if switching => {
            tunnel::keep_upgrade(response.headers_mut(), protocol);
            let target_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(tunnel::join(
                client_upgrade,
                target_upgrade,
                table.idle_timeout,
                in_flight,
            ));
            let (parts, _) = response.into_parts();
            Response::from_parts(parts, full(Bytes::new()))
        }
        _ => {
            let (parts, body) = response.into_parts();
            let body = Body {
                inner: Inner::Proxied(body),
                _outstanding: Some(in_flight),
                _busy: None,
            };
            Response::from_parts(parts, body)
        }
    }
}
