//! HTTP/1.1 and HTTP/1.0 connections: a request loop made for serving files.
//!
//! Why not hyper here (it still serves HTTP/2, [`crate::http2`]): a mirror answers
//! small `GET`s with known lengths, and under load the per-request cost of a general
//! HTTP stack (header maps built and dropped, a body trait polled frame by frame, a
//! timer armed per request head, a service future per call) was most of sigserver's
//! CPU time per request, and what kept it behind nginx. This loop parses the head in
//! place with `httparse` (the parser hyper itself uses), reads only the headers the
//! handler needs, writes the response head straight into a reused buffer, and sends the
//! body in the same `writev` (small-file cache) or with `sendfile` after the head
//! (plain TCP, [`crate::sendfile`]). One timer per connection covers both timeouts
//! (re-armed lazily, not per request).
//!
//! Protocol decisions:
//! * keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
//!   `Connection: keep-alive` (echoed). Pipelined requests are answered in order.
//! * request bodies are never read (no method here takes one): a request announcing
//!   one (`Content-Length` > 0 or `Transfer-Encoding`) is answered and the connection
//!   closed. `Content-Length` together with `Transfer-Encoding`, an invalid or
//!   conflicting `Content-Length`, and an HTTP/1.1 request without exactly one `Host`
//!   get `400` (RFC 9112 §3.2, §6.3: no request smuggling).
//! * a head larger than the limit, or with more than [`MAX_HEADERS`] fields, gets `431`;
//!   a version other than 1.0/1.1 gets `505`; other malformed heads `400`; each then
//!   closes the connection.
//! * timeouts: a complete request head must arrive within the header timeout of the
//!   moment the server started waiting for it (this also bounds idle keep-alive); a
//!   response write may make no progress for at most the idle timeout. Either closes
//!   the connection without a response.
//! * closing after a response: the write side is shut down first and the input drained
//!   for a short while ("lingering close"), so a client still sending never turns the
//!   close into a reset that destroys the response it has not read yet.
//! * graceful shutdown: an idle connection is closed at once; a request being answered
//!   is finished first.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::request::{ContentRange, Method, Reply, ReplyBody, RequestHead};
use crate::serve::{AccessRecord, State, handle, protocol_error};

/// Most header fields in a request head (more: `431`).
pub const MAX_HEADERS: usize = 100;
/// The HTTP/2 connection preface (prior knowledge, RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// First size of a connection's receive buffer (grows up to the head limit).
const INITIAL_BUF: usize = 4096;
/// Lingering close: most time and bytes spent draining a closing connection's input.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;

/// Limits of the HTTP/1 loop.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Largest request head in bytes.
    pub(crate) max_head: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    /// Recognise the HTTP/2 prior-knowledge preface (plain TCP with HTTP/2 on).
    pub(crate) h2c: bool,
    /// Send file bodies with `sendfile` when the transport is plain TCP.
    pub(crate) sendfile: bool,
    /// Read size for file bodies that are copied (TLS).
    pub(crate) chunk: usize,
}

/// A connection's byte stream, as the loop needs it.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin {
    /// The TCP socket to `sendfile` to, when what is written to it reaches the client
    /// unchanged (plain TCP); `None` for TLS.
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
}

impl Transport for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Transport for tokio_rustls::server::TlsStream<T> {}

impl Transport for tokio::io::DuplexStream {}

/// How a connection's HTTP/1 part ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Done: closed by either side, timed out, failed, or shut down.
    Closed,
    /// The client opened with the HTTP/2 preface: continue as HTTP/2, with these bytes
    /// already read from the stream.
    Http2(Vec<u8>),
}

/// A parsed request head, borrowing from the receive buffer.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub(crate) head: RequestHead<'a>,
    /// Bytes of the head (the next request starts there).
    pub(crate) len: usize,
    /// The connection may stay open after the response (as far as the request goes).
    pub(crate) keep_alive: bool,
}

/// Why a head was refused (answered, then the connection closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// `431`: head over the size limit or too many fields.
    TooLarge,
    /// `505`.
    Version,
    /// `400`, with the reason.
    Bad(&'static str),
}

impl HeadError {
    fn reply(self, state: &State) -> Reply {
        match self {
            HeadError::TooLarge => protocol_error(
                state,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request head too large\n",
            ),
            HeadError::Version => protocol_error(
                state,
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "HTTP version not supported\n",
            ),
            HeadError::Bad(why) => protocol_error(
                state,
                StatusCode::BAD_REQUEST,
                &format!("bad request: {why}\n"),
            ),
        }
    }
}

/// Parses the request head at the start of `buf`: `Ok(None)` when more bytes are
/// needed (and allowed: a partial head already at `max_head` bytes is `TooLarge`).
pub(crate) fn parse_head(buf: &[u8], max_head: usize) -> Result<Option<Parsed<'_>>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= max_head => n,
        Ok(httparse::Status::Complete(_)) => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) if buf.len() >= max_head => {
            return Err(HeadError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(httparse::Error::Version) => return Err(HeadError::Version),
        Err(_) => return Err(HeadError::Bad("malformed request head")),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Bad("malformed request line"));
    };
    let http11 = version == 1;
    let mut head = RequestHead {
        method_text: method,
        method: Some(Method::parse(method.as_bytes())),
        path: target_path(target)?,
        ..RequestHead::default()
    };
    let mut content_length: Option<u64> = None;
    let (mut chunked, mut hosts, mut close, mut keep) = (false, 0usize, false, false);
    for f in req.headers.iter() {
        let (name, value) = (f.name, f.value);
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("host") {
            hosts += 1;
        } else if is("content-length") {
            let n = parse_content_length(value)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(HeadError::Bad("conflicting Content-Length"));
            }
            content_length = Some(n);
        } else if is("transfer-encoding") {
            chunked = true;
        } else if is("connection") {
            for token in value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                close |= t.eq_ignore_ascii_case(b"close");
                keep |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is("range") {
            head.range.get_or_insert(value);
        } else if is("if-range") {
            head.if_range.get_or_insert(value);
        } else if is("if-none-match") {
            head.push_if_none_match(value);
        } else if is("if-modified-since") {
            head.if_modified_since.get_or_insert(value);
        } else if is("user-agent") {
            head.user_agent.get_or_insert(value);
        }
    }
    if chunked && content_length.is_some() {
        return Err(HeadError::Bad("both Content-Length and Transfer-Encoding"));
    }
    if http11 && hosts != 1 {
        return Err(HeadError::Bad("an HTTP/1.1 request needs exactly one Host"));
    }
    let body = chunked || content_length.is_some_and(|n| n > 0);
    let keep_alive = !body && !close && (http11 || keep);
    Ok(Some(Parsed {
        head,
        len,
        keep_alive,
    }))
}

/// The path of a request target: origin form (`/p?q`) or absolute form
/// (`http://host/p?q`, RFC 9112 §3.2.2); `*` and authority form pass through (the
/// handler finds no such file).
fn target_path(target: &str) -> Result<&str, HeadError> {
    let path = match target.find("://") {
        Some(i) if !target.starts_with('/') => {
            let rest = &target[i + 3..];
            match rest.find('/') {
                Some(j) => &rest[j..],
                None => "/",
            }
        }
        _ => target,
    };
    let end = path.find(['?', '#']).unwrap_or(path.len());
    if end == 0 {
        return Err(HeadError::Bad("empty request path"));
    }
    Ok(&path[..end])
}

fn parse_content_length(v: &[u8]) -> Result<u64, HeadError> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::Bad("invalid Content-Length"));
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// One timer per connection for every deadline: it is armed at some deadline and,
/// when it fires, compared with the deadline that applies now and re-armed later if
/// there was progress. Deadlines only move forward in steady state, so the timer
/// wheel is touched about once per timeout period, not once per request.
struct Timer {
    sleep: Pin<Box<Sleep>>,
    armed: Instant,
}

impl Timer {
    fn new(deadline: Instant) -> Self {
        Timer {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            armed: deadline,
        }
    }

    /// Makes sure the timer fires no later than `deadline`.
    fn cover(&mut self, deadline: Instant) {
        if deadline < self.armed {
            self.sleep.as_mut().reset(deadline);
            self.armed = deadline;
        }
    }

    /// Whether `deadline` has passed; registers for a wake-up otherwise.
    fn expired(&mut self, cx: &mut std::task::Context<'_>, deadline: Instant) -> bool {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= deadline {
                return true;
            }
            self.sleep.as_mut().reset(deadline);
            self.armed = deadline;
        }
    }

    /// Runs `fut` (an I/O step) unless `deadline` passes first.
    async fn run<T>(
        &mut self,
        deadline: Instant,
        fut: impl Future<Output = io::Result<T>>,
    ) -> io::Result<T> {
        self.cover(deadline);
        let mut fut = std::pin::pin!(fut);
        poll_fn(|cx| match fut.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending if self.expired(cx, deadline) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        })
        .await
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
}

/// What waiting for more request bytes gave.
enum Wait {
    Read(usize),
    Stop,
    TimedOut,
}

/// Serves HTTP/1 requests on `io` until the connection ends. `shutdown` completes when
/// the server shuts down.
pub(crate) async fn serve<S: Transport>(
    io: &mut S,
    state: &State,
    peer: SocketAddr,
    p: &Params,
    shutdown: Pin<&mut (dyn Future<Output = ()> + Send)>,
) -> End {
    let mut shutdown = Some(shutdown);
    let mut buf = vec![0u8; INITIAL_BUF.min(p.max_head.max(1))];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out: Vec<u8> = Vec::with_capacity(512);
    let mut timer = Timer::new(Instant::now() + p.header_timeout);
    // Until the first request line: the HTTP/2 preface may still come.
    let mut h2c = p.h2c;
    let sendfile = p.sendfile && crate::sendfile::AVAILABLE && io.tcp().is_some();
    loop {
        // 1. Buffer a whole request head (it may already be there: pipelining).
        let head_deadline = Instant::now() + p.header_timeout;
        loop {
            if h2c && start < end {
                let pending = &buf[start..end];
                let n = pending.len().min(H2_PREFACE.len());
                if pending[..n] != H2_PREFACE[..n] {
                    h2c = false;
                } else if n == H2_PREFACE.len() {
                    return End::Http2(pending.to_vec());
                }
            }
            if !h2c {
                // Empty lines before a request line are ignored (RFC 9112 §2.2).
                while start < end && matches!(buf[start], b'\r' | b'\n') {
                    start += 1;
                }
                if head_complete(&buf[start..end]) {
                    break;
                }
                if end - start >= p.max_head {
                    refuse(io, &mut out, &mut timer, p, state, HeadError::TooLarge).await;
                    return End::Closed;
                }
            }
            if shutdown.is_none() {
                return End::Closed;
            }
            // Room for more: compact, then grow up to the head limit.
            if end == buf.len() {
                if start > 0 {
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                } else {
                    let grown = (buf.len() * 2).min(p.max_head.max(buf.len() + 1));
                    buf.resize(grown, 0);
                }
            } else if start == end {
                (start, end) = (0, 0);
            }
            match wait_read(
                io,
                &mut buf[end..],
                &mut timer,
                head_deadline,
                &mut shutdown,
            )
            .await
            {
                Wait::Read(0) | Wait::Stop | Wait::TimedOut => return End::Closed,
                Wait::Read(n) => end += n,
            }
        }
        // 2. Parse it, answer it.
        let req = match parse_head(&buf[start..end], p.max_head) {
            Ok(Some(req)) => req,
            Ok(None) => {
                let e = HeadError::Bad("malformed request head");
                refuse(io, &mut out, &mut timer, p, state, e).await;
                return End::Closed;
            }
            Err(e) => {
                refuse(io, &mut out, &mut timer, p, state, e).await;
                return End::Closed;
            }
        };
        let t0 = std::time::Instant::now();
        let reply = handle(state, peer, &req.head, sendfile);
        let log = AccessRecord::new(state, peer, &req.head, &reply, t0);
        let keep = req.keep_alive && shutdown.is_some();
        start += req.len;
        let sent = respond(
            io, &mut out, &mut timer, p, state, log, reply, keep, sendfile,
        )
        .await;
        if sent.is_err() {
            return End::Closed;
        }
        if !keep {
            linger(io, &mut timer).await;
            return End::Closed;
        }
        if start == end {
            (start, end) = (0, 0);
        }
    }
}

/// Whether `b` (starting at a request line) holds a whole head: an empty line.
fn head_complete(b: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', b).any(|i| match b.get(i + 1) {
        Some(b'\n') => true,
        Some(b'\r') => b.get(i + 2) == Some(&b'\n'),
        _ => false,
    })
}

/// Answers a refused head with its error status, then closes gracefully.
async fn refuse<S: Transport>(
    io: &mut S,
    out: &mut Vec<u8>,
    timer: &mut Timer,
    p: &Params,
    state: &State,
    e: HeadError,
) {
    let reply = e.reply(state);
    if respond(io, out, timer, p, state, None, reply, false, false)
        .await
        .is_ok()
    {
        linger(io, timer).await;
    }
}

/// Reads into `dst`, unless the deadline passes or the server shuts down first.
async fn wait_read<S: Transport>(
    io: &mut S,
    dst: &mut [u8],
    timer: &mut Timer,
    deadline: Instant,
    shutdown: &mut Option<Pin<&mut (dyn Future<Output = ()> + Send)>>,
) -> Wait {
    timer.cover(deadline);
    poll_fn(|cx| {
        let mut rb = ReadBuf::new(dst);
        match Pin::new(&mut *io).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => return Poll::Ready(Wait::Read(rb.filled().len())),
            Poll::Ready(Err(_)) => return Poll::Ready(Wait::Read(0)),
            Poll::Pending => {}
        }
        if let Some(s) = shutdown.as_mut()
            && s.as_mut().poll(cx).is_ready()
        {
            *shutdown = None;
            return Poll::Ready(Wait::Stop);
        }
        if timer.expired(cx, deadline) {
            return Poll::Ready(Wait::TimedOut);
        }
        Poll::Pending
    })
    .await
}

/// Writes `reply` (head and body); accounts the body bytes and emits the access log.
#[allow(clippy::too_many_arguments)]
async fn respond<S: Transport>(
    io: &mut S,
    out: &mut Vec<u8>,
    timer: &mut Timer,
    p: &Params,
    state: &State,
    log: Option<Box<AccessRecord>>,
    reply: Reply,
    keep_alive: bool,
    sendfile: bool,
) -> io::Result<()> {
    out.clear();
    write_head(out, &reply, keep_alive);
    let kind = reply.kind;
    let expected = reply.body_len();
    let mut sent = 0u64;
    let res = send_body(io, out, timer, p, reply.body, sendfile, &mut sent).await;
    if sent > 0 {
        state.metrics.bytes(kind, sent);
    }
    if let Some(mut log) = log {
        log.bytes_sent = sent;
        log.emit(res.is_ok() && sent == expected);
    }
    res
}

async fn send_body<S: Transport>(
    io: &mut S,
    head: &[u8],
    timer: &mut Timer,
    p: &Params,
    body: ReplyBody,
    sendfile: bool,
    sent: &mut u64,
) -> io::Result<()> {
    let idle = p.idle_timeout;
    match body {
        ReplyBody::Empty => write_all(io, timer, idle, head, &[]).await?,
        ReplyBody::Bytes(b) => {
            write_all(io, timer, idle, head, &b).await?;
            *sent = b.len() as u64;
        }
        ReplyBody::File { file, start, len } => {
            if sendfile && let Some(tcp) = io.tcp() {
                let mut h = head;
                while !h.is_empty() {
                    let n = timer
                        .run(Instant::now() + idle, crate::sendfile::send_more(tcp, h))
                        .await?;
                    h = &h[n..];
                }
                while *sent < len {
                    let n = timer
                        .run(
                            Instant::now() + idle,
                            crate::sendfile::send_file(tcp, &file, start + *sent, len - *sent),
                        )
                        .await?;
                    if n == 0 {
                        return Err(shrank());
                    }
                    *sent += n as u64;
                }
            } else {
                let chunk = p.chunk.clamp(4096, 1 << 20);
                let mut data = vec![0u8; usize::try_from(len).unwrap_or(chunk).min(chunk)];
                let mut h = head;
                while *sent < len {
                    let want = usize::try_from(len - *sent)
                        .unwrap_or(chunk)
                        .min(data.len());
                    let dst = &mut data[..want];
                    read_exact_at(&file, dst, start + *sent)?;
                    write_all(io, timer, idle, h, dst).await?;
                    h = &[];
                    *sent += want as u64;
                }
                if !h.is_empty() {
                    write_all(io, timer, idle, h, &[]).await?;
                }
            }
        }
    }
    let deadline = Instant::now() + idle;
    timer.run(deadline, io.flush()).await
}

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shrank while being served",
    )
}

fn read_exact_at(file: &std::fs::File, mut dst: &mut [u8], mut at: u64) -> io::Result<()> {
    while !dst.is_empty() {
        match file.read_at(dst, at) {
            Ok(0) => return Err(shrank()),
            Ok(n) => {
                dst = &mut dst[n..];
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `a` then `b`, vectored (one `writev` for a small response).
async fn write_all<S: Transport>(
    io: &mut S,
    timer: &mut Timer,
    idle: Duration,
    mut a: &[u8],
    mut b: &[u8],
) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let slices = [IoSlice::new(a), IoSlice::new(b)];
        let n = timer
            .run(Instant::now() + idle, io.write_vectored(&slices))
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    Ok(())
}

/// Closes gracefully: shuts the write side down, then drains what the client still
/// sends (bounded in time and bytes) so the close does not become a reset.
async fn linger<S: Transport>(io: &mut S, timer: &mut Timer) {
    let deadline = Instant::now() + LINGER_TIME;
    if timer.run(deadline, io.shutdown()).await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while total < LINGER_BYTES {
        match timer.run(deadline, io.read(&mut sink)).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// Serialises the status line and headers of `r` into `out`.
pub(crate) fn write_head(out: &mut Vec<u8>, r: &Reply, keep_alive: bool) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(r.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(r.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    with_date(|d| out.extend_from_slice(d));
    let mut field = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
    };
    if let Some(ct) = r.content_type {
        field(b"Content-Type", ct.as_bytes());
    }
    if let Some(n) = r.content_length {
        field(b"Content-Length", num.format(n).as_bytes());
    }
    if let Some(v) = &r.validators {
        field(b"ETag", v.etag().as_bytes());
        field(b"Last-Modified", v.last_modified().as_bytes());
    }
    field(b"Cache-Control", r.cache_control.as_bytes());
    if r.accept_ranges {
        field(b"Accept-Ranges", b"bytes");
    }
    match r.content_range {
        Some(ContentRange::Bytes { start, end, len }) => {
            let mut v = Vec::with_capacity(48);
            v.extend_from_slice(b"bytes ");
            v.extend_from_slice(num.format(start).as_bytes());
            v.push(b'-');
            v.extend_from_slice(num.format(end).as_bytes());
            v.push(b'/');
            v.extend_from_slice(num.format(len).as_bytes());
            field(b"Content-Range", &v);
        }
        Some(ContentRange::Unsatisfied { len }) => {
            let mut v = b"bytes */".to_vec();
            v.extend_from_slice(num.format(len).as_bytes());
            field(b"Content-Range", &v);
        }
        None => {}
    }
    if let Some(a) = r.allow {
        field(b"Allow", a.as_bytes());
    }
    if let Some(s) = r.retry_after {
        field(b"Retry-After", num.format(s).as_bytes());
    }
    field(
        b"Connection",
        if keep_alive { b"keep-alive" } else { b"close" },
    );
    out.extend_from_slice(b"\r\n\r\n");
}

/// The `Date` value, formatted once per second per thread.
fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            *d = (secs, httpdate::fmt_http_date(now));
        }
        f(d.1.as_bytes())
    })
}
