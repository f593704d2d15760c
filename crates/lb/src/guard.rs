//! A guard in front of the HTTP/1 parser against request smuggling. hyper quietly accepts a
//! request with both `Content-Length` and `Transfer-Encoding` (the latter wins) and one with the
//! same `Content-Length` twice; ALB refuses both. [`HeadGuard`] follows the inbound byte stream
//! request by request (the head, then a body framed by its length or its chunks), holds each head
//! back until it is complete, and replaces a head with ambiguous framing by a malformed one, so
//! the parser answers 400 and closes the connection. Anything it does not understand (HTTP/2's
//! preface, a head larger than the limit) passes through untouched for hyper to judge.

use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a refused head is replaced by: a request line hyper rejects with 400.
const REFUSED: &[u8] = b"\x01 / HTTP/1.1\r\n\r\n";

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
        }
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
                return Poll::Ready(Ok(()));
            }
            if matches!(this.state, State::Refused) {
                // The refused head has been handed on; nothing after it is.
                return Poll::Ready(Ok(()));
            }
            let mut scratch = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let filled = read.filled();
                    if filled.is_empty() {
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
                    let filled = filled.to_vec();
                    this.feed(&filled);
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

    #[test]
    fn leaves_what_it_does_not_know_to_the_parser() {
        let preface: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00";
        assert_eq!(through(&[preface]).0, preface);
        let big = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 2000]].concat();
        assert_eq!(through(&[&big]).0, big);
    }
}
