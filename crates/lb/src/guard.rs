//! A guard in front of the HTTP/1 parser against request smuggling. hyper quietly accepts a
//! request with both `Content-Length` and `Transfer-Encoding` (the latter wins) and one with the
//! same `Content-Length` twice; ALB refuses both. [`HeadGuard`] follows the inbound byte stream
//! request by request (the head, then a body framed by its length or its chunks), holds each head
//! back until it is complete, and replaces a head with ambiguous framing by a malformed one, so
//! the parser answers 400 and closes the connection. Anything it does not understand (HTTP/2's
//! preface, a head larger than the limit) passes through untouched for hyper to judge.
//!
//! Bytes are read straight into the parser's buffer and judged there; only a head that arrives
//! in pieces is copied (held back until its end), so a well-formed stream costs one scan. The
//! guard also ends a connection that waits for a request head longer than a limit while none of
//! its requests is in flight ([`HeadGuard::with_head_timeout`]), with one timer per connection.

use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What a refused head is replaced by: a request line hyper rejects with 400.
const REFUSED: &[u8] = b"\x01 / HTTP/1.1\r\n\r\n";
/// How much the first read of a connection asks for.
const FIRST_READ: usize = 8 * 1024;

#[derive(Debug)]
enum Chunk {
    /// Reading a chunk-size line.
    Size(Vec<u8>),
    /// Passing `n` bytes of chunk data.
    Data(u64),
    /// Passing the CRLF after chunk data (how many of its bytes are still to come).
    DataEnd(u8),
    /// Reading trailer lines after the last chunk.
    Trailer(Vec<u8>),
}

#[derive(Debug)]
enum State {
    Head(Vec<u8>),
    Fixed(u64),
    Chunked(Chunk),
    Passthrough,
    Refused,
}

/// Wraps a client connection; see the module documentation.
pub struct HeadGuard<T> {
    inner: T,
    state: State,
    out: BytesMut,
    max_head: usize,
    head_timeout: Option<HeadTimeout>,
}

/// How many requests of a connection are in flight: received, their answer not yet sent to its
/// end. While there are some, the connection is not waiting for a head.
#[derive(Debug, Clone, Default)]
pub struct Activity(Arc<AtomicUsize>);

impl Activity {
    /// Counts a request as in flight until the returned value is dropped.
    pub fn start(&self) -> Busy {
        self.0.fetch_add(1, Ordering::Relaxed);
        Busy(self.0.clone())
    }

    fn idle(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

/// A request in flight; see [`Activity::start`].
#[derive(Debug)]
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The limit on waiting for a request head, with one timer per connection that is moved on
/// only when it fires (no timer work per request).
struct HeadTimeout {
    limit: Duration,
    activity: Activity,
    /// Since when the connection has waited for a head with no request in flight.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl HeadTimeout {
    /// Called when a read found nothing while a head is awaited: arms the timer, or fails
    /// once the head has been awaited longer than the limit with no request in flight.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.activity.idle() {
            self.waiting_since = None;
            return Poll::Pending;
        }
        let deadline = *self.waiting_since.get_or_insert_with(Instant::now) + self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no request head within {:?}", self.limit),
                )));
            }
            timer.as_mut().reset(deadline);
        }
    }
}

impl<T> HeadGuard<T> {
    /// `max_head`: beyond this many bytes a head is passed on unread (the parser refuses it
    /// with 431).
    pub fn new(inner: T, max_head: usize) -> HeadGuard<T> {
        HeadGuard {
            inner,
            state: State::Head(Vec::new()),
            out: BytesMut::new(),
            max_head,
            head_timeout: None,
        }
    }

    /// Ends the stream with a `TimedOut` error when a request head is awaited for longer than
    /// `limit` while no request of `activity` is in flight: idle keep-alive connections and
    /// heads sent too slowly alike.
    pub fn with_head_timeout(mut self, limit: Duration, activity: Activity) -> HeadGuard<T> {
        self.head_timeout = Some(HeadTimeout {
            limit,
            activity,
            waiting_since: None,
            timer: None,
        });
        self
    }

    /// Runs `input`, which the caller already holds in its buffer, through the framing state
    /// machine without copying it: how many of its leading bytes pass as they are. What follows
    /// them is held back (the start of a head) or replaced (a refused head, whose replacement
    /// goes to `out`). `None` when a partial head is held back from an earlier read: then
    /// nothing can pass in place and [`Self::feed`] must take the input.
    fn feed_in_place(&mut self, input: &[u8]) -> Option<usize> {
        if matches!(&self.state, State::Head(held) if !held.is_empty()) {
            return None;
        }
        let mut at = 0;
        while at < input.len() {
            match &mut self.state {
                State::Passthrough => return Some(input.len()),
                State::Refused => return Some(at),
                State::Head(held) => {
                    let rest = &input[at..];
                    match find(rest, b"\r\n\r\n") {
                        Some(end) => {
                            let head = &rest[..end + 4];
                            self.state = judge(head);
                            if matches!(self.state, State::Refused) {
                                self.out.extend_from_slice(REFUSED);
                                return Some(at);
                            }
                            at += head.len();
                        }
                        None if rest.len() > self.max_head => {
                            self.state = State::Passthrough;
                            return Some(input.len());
                        }
                        None => {
                            held.extend_from_slice(rest);
                            return Some(at);
                        }
                    }
                }
                State::Fixed(n) => {
                    let take = usize::try_from(*n)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - at);
                    *n -= take as u64;
                    if *n == 0 {
                        self.state = State::Head(Vec::new());
                    }
                    at += take;
                }
                State::Chunked(chunk) => {
                    let (used, next) = step_chunk(chunk, &input[at..]);
                    at += used;
                    if let Some(next) = next {
                        self.state = next;
                    }
                }
            }
        }
        Some(at)
    }

    /// Runs `input` through the framing state machine, appending what may pass to `out`.
    fn feed(&mut self, input: &[u8]) {
        let mut input = input.to_vec();
        while !input.is_empty() {
            match &mut self.state {
                State::Passthrough => {
                    self.out.extend_from_slice(&input);
                    return;
                }
                State::Refused => return,
                State::Fixed(n) => {
                    let take = usize::try_from(*n).unwrap_or(usize::MAX).min(input.len());
                    self.out.extend_from_slice(&input[..take]);
                    *n -= take as u64;
                    if *n == 0 {
                        self.state = State::Head(Vec::new());
                    }
                    input.drain(..take);
                }
                State::Head(buf) => {
                    let from = buf.len().saturating_sub(3);
                    buf.extend_from_slice(&input);
                    input.clear();
                    match find(&buf[from..], b"\r\n\r\n") {
                        Some(at) => {
                            let end = from + at + 4;
                            input = buf.split_off(end);
                            let head = std::mem::take(buf);
                            self.state = judge(&head);
                            if matches!(self.state, State::Refused) {
                                self.out.extend_from_slice(REFUSED);
                                return;
                            }
                            self.out.extend_from_slice(&head);
                        }
                        None if buf.len() > self.max_head => {
                            self.out.extend_from_slice(buf);
                            self.state = State::Passthrough;
                        }
                        None => {}
                    }
                }
                State::Chunked(chunk) => {
                    let (used, next) = step_chunk(chunk, &input);
                    self.out.extend_from_slice(&input[..used]);
                    input.drain(..used);
                    if let Some(next) = next {
                        self.state = next;
                    }
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> HeadGuard<T> {
    /// Reads the start of the stream and tells whether it begins with `prefix` (HTTP/2's
    /// preface, say). What was read goes through the guard like everything after it.
    pub async fn starts_with(&mut self, prefix: &[u8]) -> io::Result<bool> {
        let mut seen = BytesMut::with_capacity(FIRST_READ);
        loop {
            let n = self.inner.read_buf(&mut seen).await?;
            let common = seen.len().min(prefix.len());
            let same = seen[..common] == prefix[..common];
            if n == 0 || !same || seen.len() >= prefix.len() {
                let starts = same && seen.len() >= prefix.len();
                match self.feed_in_place(&seen) {
                    Some(passed) => {
                        // What passes comes first, then what the guard put in its place.
                        seen.truncate(passed);
                        seen.extend_from_slice(&self.out);
                        self.out = seen;
                    }
                    None => self.feed(&seen),
                }
                return Ok(starts);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decides how the request after `head` is framed, or refuses it.
fn judge(head: &[u8]) -> State {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        // Not HTTP/1 as this guard knows it: let the parser judge.
        _ => return State::Passthrough,
    }
    let mut lengths = Vec::new();
    let mut encodings = Vec::new();
    let mut upgrade = request.method == Some("CONNECT");
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths.push(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encodings.push(h.value);
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if lengths.len() > 1 || (!lengths.is_empty() && !encodings.is_empty()) {
        return State::Refused;
    }
    if !encodings.is_empty() && request.version == Some(0) {
        return State::Refused;
    }
    if upgrade {
        return State::Passthrough;
    }
    if let Some(last) = encodings.last() {
        let chunked = std::str::from_utf8(last).ok().is_some_and(|v| {
            v.rsplit(',')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
        });
        return if chunked {
            State::Chunked(Chunk::Size(Vec::new()))
        } else {
            State::Refused
        };
    }
    match lengths.first() {
        None => State::Head(Vec::new()),
        Some(v) => match std::str::from_utf8(v).ok().and_then(|v| {
            v.trim()
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| v.trim().parse::<u64>().ok())
                .flatten()
        }) {
            Some(0) => State::Head(Vec::new()),
            Some(n) => State::Fixed(n),
            None => State::Refused,
        },
    }
}

/// Advances a chunked body over `input`: how many bytes it used, and the state after the body
/// when it ended. Malformed framing passes through for the parser to refuse.
fn step_chunk(chunk: &mut Chunk, input: &[u8]) -> (usize, Option<State>) {
    match chunk {
        Chunk::Size(line) => match input.iter().position(|b| *b == b'\n') {
            Some(at) => {
                line.extend_from_slice(&input[..=at]);
                let text = String::from_utf8_lossy(line);
                let size = text
                    .trim_end_matches(['\r', '\n'])
                    .split(';')
                    .next()
                    .map(str::trim)
                    .and_then(|s| u64::from_str_radix(s, 16).ok());
                match size {
                    None => (at + 1, Some(State::Passthrough)),
                    Some(0) => {
                        *chunk = Chunk::Trailer(Vec::new());
                        (at + 1, None)
                    }
                    Some(n) => {
                        *chunk = Chunk::Data(n);
                        (at + 1, None)
                    }
                }
            }
            None => {
                line.extend_from_slice(input);
                if line.len() > 1024 {
                    return (input.len(), Some(State::Passthrough));
                }
                (input.len(), None)
            }
        },
        Chunk::Data(n) => {
            let take = usize::try_from(*n).unwrap_or(usize::MAX).min(input.len());
            *n -= take as u64;
            if *n == 0 {
                *chunk = Chunk::DataEnd(2);
            }
            (take, None)
        }
        Chunk::DataEnd(left) => {
            let take = usize::from(*left).min(input.len());
            *left -= take as u8;
            if *left == 0 {
                *chunk = Chunk::Size(Vec::new());
            }
            (take, None)
        }
        Chunk::Trailer(line) => match input.iter().position(|b| *b == b'\n') {
            Some(at) => {
                line.extend_from_slice(&input[..=at]);
                let empty = line.as_slice() == b"\r\n" || line.as_slice() == b"\n";
                line.clear();
                if empty {
                    (at + 1, Some(State::Head(Vec::new())))
                } else {
                    (at + 1, None)
                }
            }
            None => {
                line.extend_from_slice(input);
                if line.len() > 8192 {
                    return (input.len(), Some(State::Passthrough));
                }
                (input.len(), None)
            }
        },
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.out.is_empty() {
                let n = this.out.len().min(buf.remaining());
                buf.put_slice(&this.out.split_to(n));
                if let Some(timeout) = &mut this.head_timeout {
                    timeout.waiting_since = None;
                }
                return Poll::Ready(Ok(()));
            }
            match this.state {
                // The refused head has been handed on; nothing after it is.
                State::Refused => return Poll::Ready(Ok(())),
                State::Passthrough => return Pin::new(&mut this.inner).poll_read(cx, buf),
                _ => {}
            }
            let before = buf.filled().len();
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Pending => {
                    return match (&this.state, &mut this.head_timeout) {
                        (State::Head(_), Some(timeout)) => timeout.poll_wait(cx),
                        _ => Poll::Pending,
                    };
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            let read = buf.filled().len() - before;
            if read == 0 {
                // End of stream: hand on an incomplete head as it is.
                if let State::Head(rest) = &mut this.state
                    && !rest.is_empty()
                {
                    let rest = std::mem::take(rest);
                    this.out.extend_from_slice(&rest);
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            match this.feed_in_place(&buf.filled()[before..]) {
                Some(passed) => {
                    buf.set_filled(before + passed);
                    if passed > 0 {
                        if let Some(timeout) = &mut this.head_timeout {
                            timeout.waiting_since = None;
                        }
                        return Poll::Ready(Ok(()));
                    }
                }
                None => {
                    // A head held back from an earlier read goes on in this one: copy it all.
                    let input = buf.filled()[before..].to_vec();
                    buf.set_filled(before);
                    this.feed(&input);
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut g = HeadGuard::new((), 1024);
        for c in chunks {
            g.feed(c);
        }
        (g.out.to_vec(), matches!(g.state, State::Refused))
    }

    #[test]
    fn passes_well_framed_requests_in_pieces() {
        let req: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        for split in [1, 7, 40, req.len()] {
            let pieces: Vec<&[u8]> = req.chunks(split).collect();
            let (out, refused) = through(&pieces);
            assert!(!refused);
            assert_eq!(out, req, "split {split}");
        }
    }

    #[test]
    fn refuses_ambiguous_framing() {
        for bad in [
            &b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nContent-Length: 3x\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let (out, refused) = through(&[bad]);
            assert!(refused, "{}", String::from_utf8_lossy(bad));
            assert_eq!(out, REFUSED);
        }
        // A smuggled second request behind a good first one is refused too.
        let (out, refused) = through(&[
            b"GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ]);
        assert!(refused);
        assert_eq!(out, [&b"GET / HTTP/1.1\r\n\r\n"[..], REFUSED].concat());
    }

    /// A stream that hands out its chunks one read at a time.
    struct Chunks(std::collections::VecDeque<Vec<u8>>);

    impl AsyncRead for Chunks {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let chunks = &mut self.get_mut().0;
            if let Some(mut chunk) = chunks.pop_front() {
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                if n < chunk.len() {
                    chunks.push_front(chunk.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    /// Everything the parser would read through the guard, in reads of `size` bytes, the
    /// stream cut into pieces of `split`; and whether it began with HTTP/2's preface.
    async fn read_through(stream: &[u8], split: usize, size: usize) -> (Vec<u8>, bool) {
        use tokio::io::AsyncReadExt;
        let chunks = stream.chunks(split).map(<[u8]>::to_vec).collect();
        let mut guard = HeadGuard::new(Chunks(chunks), 1024);
        let h2 = guard.starts_with(b"PRI * HTTP/2.0\r\n").await.unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; size];
        loop {
            let n = guard.read(&mut buf).await.unwrap();
            if n == 0 {
                return (out, h2);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn reads_in_place_in_any_pieces() {
        let good: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        let smuggled = [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /after HTTP/1.1\r\n\r\n",
        ]
        .concat();
        let refused = [&b"GET / HTTP/1.1\r\n\r\n"[..], REFUSED].concat();
        let preface: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12";
        for split in [1, 3, 7, 40, 4096] {
            for size in [1, 5, 64, 8192] {
                let case = format!("split {split}, reads of {size}");
                assert_eq!(
                    read_through(good, split, size).await,
                    (good.to_vec(), false),
                    "{case}"
                );
                assert_eq!(
                    read_through(&smuggled, split, size).await,
                    (refused.clone(), false),
                    "{case}"
                );
                assert_eq!(
                    read_through(preface, split, size).await,
                    (preface.to_vec(), true),
                    "{case}"
                );
            }
        }
        // A head cut off by the end of the stream is handed on as it is.
        let cut: &[u8] = b"GET / HTTP/1.1\r\nHost: x";
        assert_eq!(read_through(cut, 4, 8192).await, (cut.to_vec(), false));
    }

    /// A stream that hands out its chunks, then never has anything more.
    struct ThenSilent(std::collections::VecDeque<Vec<u8>>);

    impl AsyncRead for ThenSilent {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.get_mut().0.pop_front() {
                Some(chunk) => {
                    buf.put_slice(&chunk);
                    Poll::Ready(Ok(()))
                }
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_awaited_too_long_ends_the_connection_unless_a_request_is_in_flight() {
        use tokio::io::AsyncReadExt;
        let limit = Duration::from_secs(60);
        let activity = Activity::default();
        let request = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        let stream = ThenSilent([request.clone()].into());
        let mut guard = HeadGuard::new(stream, 1024).with_head_timeout(limit, activity.clone());
        let mut buf = [0u8; 64];
        assert_eq!(guard.read(&mut buf).await.unwrap(), request.len());
        // While the request is in flight, waiting for the next head is not limited.
        let busy = activity.start();
        let long = tokio::time::timeout(limit * 3, guard.read(&mut buf)).await;
        assert!(long.is_err(), "still waiting");
        drop(busy);
        // Idle, it is.
        let started = Instant::now();
        let e = guard.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), limit);

        // A head sent in part and then no more times out as well.
        let stream = ThenSilent([b"GET / HTTP/1.1\r\nHo".to_vec()].into());
        let mut guard = HeadGuard::new(stream, 1024).with_head_timeout(limit, Activity::default());
        let started = Instant::now();
        let e = guard.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), limit);
    }

    #[test]
    fn leaves_what_it_does_not_know_to_the_parser() {
        let preface: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00";
        assert_eq!(through(&[preface]).0, preface);
        let big = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 2000]].concat();
        assert_eq!(through(&[&big]).0, big);
    }
}
