//! Connections to targets: HTTP/1.1 over TCP (`TCP_NODELAY`), kept alive and reused. A request
//! takes its target's most recently used idle connection, or opens a new one; its connection
//! goes back to the idle set once the answer's body has been passed on to the end (a body
//! abandoned half-way closes it). A connection the target closed is never used again, and a
//! request that such a connection handed back unsent goes on another. Idle connections older
//! than the idle timeout are closed.

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Why a request could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("connecting to {0} took longer than {1:?}")]
    ConnectTimeout(SocketAddr, Duration),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
}

/// The pool of connections to every target, shared by the listeners.
pub struct Upstream {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> Arc<Upstream> {
        Arc::new(Upstream {
            idle: Mutex::default(),
            connect_timeout,
            idle_timeout,
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection to `address` that is still open.
    fn take(&self, address: SocketAddr) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle();
        let list = idle.get_mut(&address)?;
        while let Some(c) = list.pop() {
            if !c.sender.is_closed() && c.since.elapsed() < self.idle_timeout {
                return Some(c.sender);
            }
        }
        None
    }

    fn put(&self, address: SocketAddr, sender: SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle();
        let list = idle.entry(address).or_default();
        // The oldest come first: close those that waited too long.
        let stale = list
            .iter()
            .take_while(|c| now.duration_since(c.since) >= self.idle_timeout)
            .count();
        list.drain(..stale);
        list.push(Idle { sender, since: now });
    }

    /// Closes every idle connection that waited longer than the idle timeout or was closed.
    pub fn sweep(&self) {
        let mut idle = self.idle();
        idle.retain(|_, list| {
            list.retain(|c| !c.sender.is_closed() && c.since.elapsed() < self.idle_timeout);
            !list.is_empty()
        });
    }

    async fn connect(&self, address: SocketAddr) -> Result<SendRequest<Incoming>, UpstreamError> {
        let stream = self.open(address).await?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        // Upgrades are allowed on every connection; only `send_upgrade`'s, never pooled, see one.
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(target = %address, "target connection ended: {e}");
            }
        });
        Ok(sender)
    }

    async fn open(&self, address: SocketAddr) -> Result<TcpStream, UpstreamError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout(address, self.connect_timeout))?
            .map_err(|e| UpstreamError::Connect(address, e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| UpstreamError::Connect(address, e))?;
        Ok(stream)
    }

    /// Sends a request that asks to switch protocols on a new connection of its own, which
    /// is never pooled: after a 101 answer it belongs to the upgrade (`hyper::upgrade::on`).
    pub async fn send_upgrade(
        &self,
        address: SocketAddr,
        request: Request<Incoming>,
    ) -> Result<Response<Pooled>, UpstreamError> {
        let mut sender = self.connect(address).await?;
        let response = sender.send_request(request).await?;
        Ok(response.map(|body| Pooled {
            body,
            ended: false,
            connection: None,
        }))
    }

    /// Sends `request` (origin-form URI, `Host` set) to `address` and returns the answer, whose
    /// body gives the connection back when it has been read to the end.
    pub async fn send(
        self: &Arc<Self>,
        address: SocketAddr,
        mut request: Request<Incoming>,
    ) -> Result<Response<Pooled>, UpstreamError> {
        while let Some(mut sender) = self.take(address) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.pooled(address, sender, response)),
                Err(mut e) => match e.take_message() {
                    // Closed before it was sent: another connection takes it.
                    Some(unsent) => request = unsent,
                    None => return Err(e.into_error().into()),
                },
            }
        }
        // Boxed: the rarer path keeps the future of every request small.
        let mut sender = Box::pin(self.connect(address)).await?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        Ok(self.pooled(address, sender, response))
    }

    fn pooled(
        self: &Arc<Self>,
        address: SocketAddr,
        sender: SendRequest<Incoming>,
        response: Response<Incoming>,
    ) -> Response<Pooled> {
        response.map(|body| Pooled {
            body,
            ended: false,
            connection: Some((self.clone(), address, sender)),
        })
    }
}

/// An answer's body; when it is dropped after its end, its connection goes back to the pool
/// (if it came from the pool).
pub struct Pooled {
    body: Incoming,
    /// The body said it ended (a chunked one never tells `is_end_stream`).
    ended: bool,
    connection: Option<(Arc<Upstream>, SocketAddr, SendRequest<Incoming>)>,
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if self.is_end_stream()
            && let Some((pool, address, sender)) = self.connection.take()
        {
            pool.put(address, sender);
        }
    }
}
