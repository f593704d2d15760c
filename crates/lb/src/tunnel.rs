//! Upgraded connections (WebSocket, or any HTTP/1.1 `Upgrade`), as ALB passes them: the request
//! goes to the target on a connection of its own with its `Upgrade` and `Connection: upgrade`
//! headers; when the target answers 101 Switching Protocols, the client's connection and the
//! target's are joined and bytes flow both ways until either side closes or nothing has flowed
//! for the load balancer's idle timeout. Any other answer is passed on as a normal one.

use http::HeaderMap;
use http::header::{self, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol an HTTP/1.1 request asks to switch to: its `Upgrade` header, when `Connection`
/// names `upgrade`.
pub fn requested(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// Puts back the headers that ask for (or agree to) switching to `protocol`, after the
/// hop-by-hop headers were removed.
pub fn keep_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::UPGRADE, protocol);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Joins the client's connection and the target's once both have switched protocols; `hold`
/// (the request's standing as in flight on the target) is kept until the tunnel closes.
pub async fn join<H: Send>(client: OnUpgrade, target: OnUpgrade, idle: Duration, hold: H) {
    let (client, target) = match tokio::join!(client, target) {
        (Ok(client), Ok(target)) => (client, target),
        (Err(e), _) | (_, Err(e)) => {
            return tracing::debug!("an upgraded connection could not be joined: {e}");
        }
    };
    if let Err(e) = relay(TokioIo::new(client), TokioIo::new(target), idle).await {
        tracing::debug!("an upgraded connection ended: {e}");
    }
    drop(hold);
}

/// Copies bytes both ways until both sides have finished sending, an error, or `idle` without a
/// byte in either direction. A side that finishes sending has the other's writing half shut.
pub async fn relay<A, B>(mut a: A, mut b: B, idle: Duration) -> std::io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut from_a, mut from_b) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        tokio::select! {
            read = a.read(&mut from_a), if a_open => match read? {
                0 => {
                    a_open = false;
                    b.shutdown().await?;
                }
                n => b.write_all(&from_a[..n]).await?,
            },
            read = b.read(&mut from_b), if b_open => match read? {
                0 => {
                    b_open = false;
                    a.shutdown().await?;
                }
                n => a.write_all(&from_b[..n]).await?,
            },
            () = tokio::time::sleep(idle) => {
                tracing::debug!(?idle, "closing an upgraded connection that was idle");
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[test]
    fn an_upgrade_is_asked_for_with_both_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(requested(&h), None, "Connection must name upgrade");
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert_eq!(requested(&h), Some(HeaderValue::from_static("websocket")));
        h.remove(header::UPGRADE);
        assert_eq!(requested(&h), None);
    }

    #[tokio::test]
    async fn relays_both_ways_and_passes_on_a_close() {
        let (mut client, a) = duplex(64);
        let (b, mut target) = duplex(64);
        let relay = tokio::spawn(relay(a, b, Duration::from_secs(5)));
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        target.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        target.write_all(b"pong").await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
        // The client stops sending: the target reads the end, and can still answer.
        client.shutdown().await.unwrap();
        assert_eq!(target.read(&mut got).await.unwrap(), 0);
        target.write_all(b"last").await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"last");
        drop(target);
        relay.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn closes_after_the_idle_timeout() {
        let (_client, a) = duplex(64);
        let (b, _target) = duplex(64);
        let started = tokio::time::Instant::now();
        relay(a, b, Duration::from_secs(60)).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }
}
