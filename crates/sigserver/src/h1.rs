//! HTTP/1.1 and HTTP/1.0 connections: a request loop made for serving files.
//!
//! Why not hyper here (it still serves HTTP/2, [`crate::http2`]): a mirror answers
//! small `GET`s with known lengths, and under load the per-request cost of a general
//! HTTP stack (header maps built and dropped, a body trait polled frame by frame, a
//! timer armed per request head, a service future per call) was most of sigserver's
//! CPU time per request, and what kept it behind nginx. This loop parses the head in
//! place with the workspace's one strict request-head parser, `http-head` (over
//! `httparse`, the parser hyper itself uses; `push`'s listener uses it too), reads only
//! the headers the handler needs, writes the response head straight into a reused buffer, and sends the
//! body in the same `writev` (small-file cache) or with `sendfile` after the head
//! (plain TCP, [`crate::sendfile`]). One timer per connection covers both timeouts
//! (re-armed lazily, not per request).
//!
//! Protocol decisions (the request-head rules are `http-head`'s):
//! * keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
//!   `Connection: keep-alive` (echoed). Pipelined requests are answered in order.
//! * request bodies are never read (no method here takes one): a request announcing
//!   one (`Content-Length` > 0 or `Transfer-Encoding`) is answered and the connection
//!   closed. `Content-Length` together with `Transfer-Encoding`, an invalid or
//!   conflicting `Content-Length`, and an HTTP/1.1 request without exactly one `Host`
//!   get `400` (RFC 9112 §3.2, §6.3: no request smuggling).
//! * a head larger than the limit, or with more than [`http_head::MAX_HEADERS`] fields, gets `431`;
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
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use http_head::HeadScan;
use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::request::{ContentRange, Reply, ReplyBody, RequestHead};
use crate::serve::{AccessRecord, State, protocol_error};

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
    /// An admin listener: only the operations endpoints (see `serve::handle_on`).
    pub(crate) admin: bool,
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
    /// `Content-Length`, when the request has one (and no `Transfer-Encoding`).
    pub(crate) body_len: Option<u64>,
}

/// Why a head was refused (answered with [`HeadError::status`], then the connection
/// closes).
pub(crate) use http_head::Error as HeadError;

/// The answer to a refused head: `431`, `505` or `400` with the reason.
fn refusal(e: HeadError, state: &State) -> Reply {
    match e.status() {
        431 => protocol_error(
            state,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head too large\n",
        ),
        505 => protocol_error(
            state,
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "HTTP version not supported\n",
        ),
        _ => protocol_error(
            state,
            StatusCode::BAD_REQUEST,
            &format!("bad request: {e}\n"),
        ),
    }
}

/// Parses the request head at the start of `buf` (`http_head::parse_request`, which
/// applies the framing, `Host` and size rules), keeping the fields the handler reads:
/// `Ok(None)` when more bytes are needed (and allowed: a partial head already at
/// `max_head` bytes is `TooLarge`).
pub(crate) fn parse_head(buf: &[u8], max_head: usize) -> Result<Option<Parsed<'_>>, HeadError> {
    let mut head = RequestHead::default();
    let parsed = http_head::parse_request(buf, max_head, |name, value| {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("range") {
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
    })?;
    let Some(p) = parsed else {
        return Ok(None);
    };
    head.method_text = p.method;
    head.path = p.path;
    Ok(Some(Parsed {
        head,
        len: p.len,
        keep_alive: p.keep_alive,
        body_len: p.body.content_length(),
    }))
}

/// One timer per connection for every deadline: it is armed at some deadline and,
/// when it fires, compared with the deadline that applies now and re-armed later if
/// there was progress. Deadlines only move forward in steady state, so the timer
/// wheel is touched about once per timeout period, not once per request.
///
/// It also keeps the connection's notion of "now", read from the clock once per
/// request, after any step that had to wait, and between the pieces of a large body:
/// deadlines are measured from it without a clock read per I/O call.
struct Timer {
    sleep: Pin<Box<Sleep>>,
    armed: Instant,
    now: Instant,
}

impl Timer {
    fn new(timeout: Duration) -> Self {
        let now = Instant::now();
        let deadline = now + timeout;
        Timer {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            armed: deadline,
            now,
        }
    }

    /// Reads the clock.
    fn tick(&mut self) -> Instant {
        self.now = Instant::now();
        self.now
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
            if self.tick() >= deadline {
                return true;
            }
            self.sleep.as_mut().reset(deadline);
            self.armed = deadline;
        }
    }

    /// Runs `fut` (an I/O step) unless `timeout` passes (from "now") without it
    /// completing.
    async fn run<T>(
        &mut self,
        timeout: Duration,
        fut: impl Future<Output = io::Result<T>>,
    ) -> io::Result<T> {
        self.run_until(self.now + timeout, fut).await
    }

    /// Runs `fut` unless `deadline` passes first (then a `TimedOut` error); reads the
    /// clock afterwards if it had to wait.
    async fn run_until<T>(
        &mut self,
        deadline: Instant,
        fut: impl Future<Output = io::Result<T>>,
    ) -> io::Result<T> {
        self.cover(deadline);
        let mut fut = std::pin::pin!(fut);
        let mut waited = false;
        let r = poll_fn(|cx| match fut.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending if self.expired(cx, deadline) => Poll::Ready(Err(timed_out())),
            Poll::Pending => {
                waited = true;
                Poll::Pending
            }
        })
        .await;
        if waited {
            self.tick();
        }
        r
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
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
    let mut timer = Timer::new(p.header_timeout);
    // Until the first request line: the HTTP/2 preface may still come.
    let mut h2c = p.h2c;
    let sendfile = p.sendfile && crate::sendfile::AVAILABLE && io.tcp().is_some();
    loop {
        // 1. Buffer a whole request head (it may already be there: pipelining).
        let head_deadline = timer.tick() + p.header_timeout;
        let mut scan = HeadScan::default();
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
                if scan.complete(&buf, start, end) {
                    break;
                }
                if end - start >= p.max_head {
                    let e = HeadError::TooLarge;
                    refuse(io, &mut out, &mut timer, p, state, peer, e).await;
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
                    scan.shifted(start);
                    end -= start;
                    start = 0;
                } else {
                    let grown = (buf.len() * 2).min(p.max_head.max(buf.len() + 1));
                    buf.resize(grown, 0);
                }
            } else if start == end {
                (start, end) = (0, 0);
                scan = HeadScan::default();
            }
            let read = wait_read(io, &mut buf[end..], &mut shutdown);
            match timer.run_until(head_deadline, read).await {
                Ok(Some(n)) if n > 0 => end += n,
                // End of input, shutdown, timeout or error.
                _ => return End::Closed,
            }
        }
        // 2. Parse it, answer it.
        // (A complete head never parses as partial; if it did, it would be malformed.)
        let parsed =
            parse_head(&buf[start..end], p.max_head).and_then(|r| r.ok_or(HeadError::Malformed));
        let req = match parsed {
            Ok(req) => req,
            Err(e) => {
                refuse(io, &mut out, &mut timer, p, state, peer, e).await;
                return End::Closed;
            }
        };
        let t0 = state.access_log().then(std::time::Instant::now);
        if req.head.path == push::listener::PUSH_PATH && req.head.method_text == "POST" && !p.admin
        {
            // A push notice: its body is read (bounded), the connection then closes.
            let head_bytes = buf[start..start + req.len].to_vec();
            let have = buf[start + req.len..end].to_vec();
            let notice = read_push(
                io,
                &mut timer,
                p,
                state,
                &head_bytes,
                have,
                req.body_len,
                &mut shutdown,
            )
            .await;
            let reply = crate::serve::push_reply(state, notice);
            let log = t0.and_then(|t0| AccessRecord::new(state, peer, &req.head, &reply, t0));
            let _ = respond(
                io, &mut out, &mut timer, p, state, log, reply, false, sendfile,
            )
            .await;
            linger(io, &mut timer).await;
            return End::Closed;
        }
        let reply = crate::serve::handle_on(state, peer, &req.head, sendfile, p.admin);
        let log = t0.and_then(|t0| AccessRecord::new(state, peer, &req.head, &reply, t0));
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
    }
}

/// Reads the body of a `POST /push` (at most the notice limit, within the header
/// timeout) and hands it to the push hub; `None` when this server takes no notices.
#[allow(clippy::too_many_arguments)]
async fn read_push<S: Transport>(
    io: &mut S,
    timer: &mut Timer,
    p: &Params,
    state: &State,
    head: &[u8],
    mut body: Vec<u8>,
    body_len: Option<u64>,
    shutdown: &mut Option<Pin<&mut (dyn Future<Output = ()> + Send)>>,
) -> Option<push::Reply> {
    let hub = state.push.as_ref().filter(|h| h.receives())?;
    // The head parsed before; now for the notice's authentication fields.
    let mut headers = push::receiver::NoticeHeaders::default();
    let _ = http_head::parse_request(head, head.len(), |name, value| headers.add(name, value));
    let len = match push::listener::notice_len(hub, &headers, body_len) {
        Ok(len) => len,
        Err(refused) => return Some(refused),
    };
    body.truncate(len);
    let deadline = timer.tick() + p.header_timeout;
    let mut chunk = vec![0u8; 4096];
    while body.len() < len {
        let read = wait_read(io, &mut chunk, shutdown);
        match timer.run_until(deadline, read).await {
            Ok(Some(n)) if n > 0 => body.extend_from_slice(&chunk[..n.min(len - body.len())]),
            _ => {
                return Some(push::Reply {
                    status: 400,
                    body: "incomplete body\n".into(),
                });
            }
        }
    }
    Some(hub.handle(&headers, &body))
}

/// Answers a refused head with its error status (logged with method and path `-`),
/// then closes gracefully.
#[allow(clippy::too_many_arguments)]
async fn refuse<S: Transport>(
    io: &mut S,
    out: &mut Vec<u8>,
    timer: &mut Timer,
    p: &Params,
    state: &State,
    peer: SocketAddr,
    e: HeadError,
) {
    let reply = refusal(e, state);
    let unknown = RequestHead {
        method_text: "-",
        path: "-",
        ..RequestHead::default()
    };
    let log = AccessRecord::new(state, peer, &unknown, &reply, std::time::Instant::now());
    if respond(io, out, timer, p, state, log, reply, false, false)
        .await
        .is_ok()
    {
        linger(io, timer).await;
    }
}

/// Reads into `dst`: `Some(bytes read)`, or `None` once the server shuts down (the
/// caller bounds it with the head deadline).
async fn wait_read<S: Transport>(
    io: &mut S,
    dst: &mut [u8],
    shutdown: &mut Option<Pin<&mut (dyn Future<Output = ()> + Send)>>,
) -> io::Result<Option<usize>> {
    poll_fn(|cx| {
        let mut rb = ReadBuf::new(dst);
        if let Poll::Ready(r) = Pin::new(&mut *io).poll_read(cx, &mut rb) {
            return Poll::Ready(r.map(|()| Some(rb.filled().len())));
        }
        if let Some(s) = shutdown.as_mut()
            && s.as_mut().poll(cx).is_ready()
        {
            *shutdown = None;
            return Poll::Ready(Ok(None));
        }
        Poll::Pending
    })
    .await
}

/// Writes `reply` (head and body); accounts the body bytes and emits the access log.
///
/// The response is first pushed with non-blocking calls ([`send_now`]); only what the
/// socket did not take at once goes through the awaiting path, so the usual small
/// response costs one `writev` and no future beyond this one.
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
    write_head(out, &reply, keep_alive, timer.now);
    let kind = reply.kind;
    let expected = reply.body_len();
    let mut at = Progress::default();
    let res = match send_now(io, out, &reply.body, sendfile, &mut at) {
        Ok(true) => Ok(()),
        Ok(false) => {
            let head = &out[at.head..];
            send_rest(io, head, timer, p, reply.body, sendfile, &mut at.body).await
        }
        Err(e) => Err(e),
    };
    if at.body > 0 {
        state.metrics.bytes(kind, at.body);
    }
    if let Some(mut log) = log {
        log.bytes_sent = at.body;
        log.emit(res.is_ok() && at.body == expected);
    }
    res
}

/// How much of a response has been sent: head bytes, body bytes.
#[derive(Debug, Default)]
struct Progress {
    head: usize,
    body: u64,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Sends as much of the response as the socket takes without waiting (plain TCP);
/// `Ok(true)` when all of it went. Other transports send nothing here.
fn send_now<S: Transport>(
    io: &S,
    head: &[u8],
    body: &ReplyBody,
    sendfile: bool,
    at: &mut Progress,
) -> io::Result<bool> {
    let Some(tcp) = io.tcp() else {
        return Ok(false);
    };
    match body {
        ReplyBody::Empty | ReplyBody::Bytes(_) => {
            let b: &[u8] = match body {
                ReplyBody::Bytes(b) => b,
                _ => &[],
            };
            loop {
                let from = usize::try_from(at.body).unwrap_or(b.len()).min(b.len());
                let (h, rest) = (&head[at.head..], &b[from..]);
                if h.is_empty() && rest.is_empty() {
                    return Ok(true);
                }
                match tcp.try_write_vectored(&[IoSlice::new(h), IoSlice::new(rest)]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        let from_head = n.min(h.len());
                        at.head += from_head;
                        at.body += (n - from_head) as u64;
                    }
                    Err(e) if would_block(&e) => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
        }
        ReplyBody::File { file, start, len } if sendfile => {
            while at.head < head.len() {
                match crate::sendfile::try_send_more(tcp, &head[at.head..]) {
                    Ok(n) => at.head += n,
                    Err(e) if would_block(&e) => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            while at.body < *len {
                match crate::sendfile::try_send_file(tcp, file, start + at.body, len - at.body) {
                    Ok(0) => return Err(shrank()),
                    Ok(n) => at.body += n as u64,
                    Err(e) if would_block(&e) => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            Ok(true)
        }
        ReplyBody::File { .. } => Ok(false),
    }
}

/// Sends the rest of a response, waiting for the socket as needed: `head` is what is
/// left of the head, `sent` the body bytes already sent.
async fn send_rest<S: Transport>(
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
            let from = usize::try_from(*sent).unwrap_or(b.len()).min(b.len());
            write_all(io, timer, idle, head, &b[from..]).await?;
            *sent = b.len() as u64;
        }
        ReplyBody::File { file, start, len } => {
            if sendfile && let Some(tcp) = io.tcp() {
                let mut h = head;
                while !h.is_empty() {
                    let n = timer.run(idle, crate::sendfile::send_more(tcp, h)).await?;
                    h = &h[n..];
                }
                while *sent < len {
                    timer.tick();
                    let rest = len - *sent;
                    let call = crate::sendfile::send_file(tcp, &file, start + *sent, rest);
                    let n = timer.run(idle, call).await?;
                    if n == 0 {
                        return Err(shrank());
                    }
                    *sent += n as u64;
                }
            } else {
                let chunk = p.chunk.clamp(4096, 1 << 20);
                let left = usize::try_from(len - *sent).unwrap_or(chunk);
                let mut data = vec![0u8; left.min(chunk)];
                let mut h = head;
                while *sent < len {
                    timer.tick();
                    let left = usize::try_from(len - *sent).unwrap_or(chunk);
                    let dst = &mut data[..left.min(chunk)];
                    crate::open_files::read_exact_at(&file, dst, start + *sent)?;
                    write_all(io, timer, idle, h, dst).await?;
                    h = &[];
                    *sent += dst.len() as u64;
                }
                if !h.is_empty() {
                    write_all(io, timer, idle, h, &[]).await?;
                }
            }
        }
    }
    timer.run(idle, io.flush()).await
}

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shrank while being served",
    )
}

/// Writes `a` then `b`, vectored (one `writev` for a small response).
async fn write_all<S: Transport>(
    io: &mut S,
    timer: &mut Timer,
    idle: Duration,
    mut a: &[u8],
    mut b: &[u8],
) -> io::Result<()> {
    let mut first = true;
    while !a.is_empty() || !b.is_empty() {
        if !first {
            timer.tick();
        }
        first = false;
        let slices = [IoSlice::new(a), IoSlice::new(b)];
        let n = timer.run(idle, io.write_vectored(&slices)).await?;
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
    let end = timer.tick() + LINGER_TIME;
    if timer.run_until(end, io.shutdown()).await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while total < LINGER_BYTES {
        match timer.run_until(end, io.read(&mut sink)).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// Serialises the status line and headers of `r` into `out`.
pub(crate) fn write_head(out: &mut Vec<u8>, r: &Reply, keep_alive: bool, now: Instant) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(r.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(r.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    with_date(now.into_std(), |d| out.extend_from_slice(d));
    fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
    }
    if let Some(ct) = r.content_type {
        field(out, b"Content-Type", ct.as_bytes());
    }
    if let Some(n) = r.content_length {
        field(out, b"Content-Length", num.format(n).as_bytes());
    }
    if let Some(v) = &r.validators {
        field(out, b"ETag", v.etag().as_bytes());
        field(out, b"Last-Modified", v.last_modified().as_bytes());
    }
    field(out, b"Cache-Control", r.cache_control.as_bytes());
    if r.accept_ranges {
        field(out, b"Accept-Ranges", b"bytes");
    }
    match r.content_range {
        Some(ContentRange::Bytes { start, end, len }) => {
            field(out, b"Content-Range", b"bytes ");
            out.extend_from_slice(num.format(start).as_bytes());
            out.push(b'-');
            out.extend_from_slice(num.format(end).as_bytes());
            out.push(b'/');
            out.extend_from_slice(num.format(len).as_bytes());
        }
        Some(ContentRange::Unsatisfied { len }) => {
            field(out, b"Content-Range", b"bytes */");
            out.extend_from_slice(num.format(len).as_bytes());
        }
        None => {}
    }
    if let Some(a) = r.allow {
        field(out, b"Allow", a.as_bytes());
    }
    if let Some(s) = r.retry_after {
        field(out, b"Retry-After", num.format(s).as_bytes());
    }
    if let Some(l) = &r.location {
        field(out, b"Location", l.as_bytes());
    }
    field(
        out,
        b"Connection",
        if keep_alive { b"keep-alive" } else { b"close" },
    );
    out.extend_from_slice(b"\r\n\r\n");
}

/// The `Date` value, formatted once per second per thread: `now` (monotonic, the
/// connection's last clock reading) tells whether the second formatted last is over,
/// so the wall clock is read once per second, not per response.
fn with_date<R>(now: std::time::Instant, f: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static DATE: RefCell<(Option<std::time::Instant>, String)> =
            const { RefCell::new((None, String::new())) };
    }
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0.is_none_or(|until| now >= until) {
            let wall = SystemTime::now();
            let into = wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |t| t.subsec_nanos());
            let left = Duration::from_nanos(u64::from(1_000_000_000 - into.min(999_999_999)));
            *d = (Some(now + left), httpdate::fmt_http_date(wall));
        }
        f(d.1.as_bytes())
    })
}

/// Runs one HTTP/1 connection over an in-memory pipe: the client sends `input`, then
/// closes its side; everything the server wrote comes back. For tests and fuzzing.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn exchange(state: &State, p: &Params, input: &[u8]) -> io::Result<Vec<u8>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(async {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        let srv = async {
            let stop = std::future::pending::<()>();
            tokio::pin!(stop);
            let end = serve(&mut server, state, peer, p, stop).await;
            drop(server);
            end
        };
        let cli = async {
            client.write_all(input).await?;
            client.shutdown().await?;
            let mut out = Vec::new();
            client.read_to_end(&mut out).await?;
            Ok::<_, io::Error>(out)
        };
        let (_, out) = tokio::join!(srv, cli);
        out
    })
}

/// One response split off a byte stream: status, headers (names lowercased), body.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) type SplitResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// Splits what a server wrote into responses, checking each is well formed and carries
/// its whole body. `heads[i]`: response `i` answers a `HEAD` (no body). Without
/// `heads`, a body position where the next status line starts counts as `HEAD`.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn split_responses(
    mut out: &[u8],
    heads: Option<&[bool]>,
) -> Result<Vec<SplitResponse>, String> {
    let mut v: Vec<SplitResponse> = Vec::new();
    while !out.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut fields);
        let n = match resp.parse(out) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Err("truncated response head".into()),
            Err(e) => return Err(format!("malformed response head: {e}")),
        };
        let hs: Vec<(String, String)> = resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let code = resp.code.ok_or("no status")?;
        let len = match hs.iter().find(|(k, _)| k == "content-length") {
            Some((_, v)) => v.parse::<usize>().map_err(|_| "bad Content-Length")?,
            None if code == 304 => 0,
            None => return Err(format!("{code} without Content-Length")),
        };
        let rest = &out[n..];
        let head = match heads {
            Some(h) => h.get(v.len()).copied().unwrap_or(false),
            None => rest.starts_with(b"HTTP/1.1 ") || (rest.is_empty() && len > 0),
        };
        let blen = if head || code == 304 { 0 } else { len };
        if rest.len() < blen {
            return Err(format!("body truncated: {} of {blen}", rest.len()));
        }
        v.push((code, hs, rest[..blen].to_vec()));
        out = &rest[blen..];
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Method;

    fn parse(raw: &[u8]) -> Result<Option<Parsed<'_>>, HeadError> {
        parse_head(raw, 8192)
    }

    #[test]
    fn reads_the_fields_the_handler_needs() {
        let raw = b"GET /daily.cvd?x=1 HTTP/1.1\r\nHost: m\r\nRange: bytes=0-511\r\n\
            If-None-Match: \"a\"\r\nif-none-match: \"b\"\r\nIf-Modified-Since: x\r\n\
            If-Range: \"c\"\r\nUser-Agent: ClamAV/1.4.6\r\n\r\nGET /next";
        let p = parse(raw).unwrap().unwrap();
        assert_eq!(p.head.method(), Method::Get);
        assert_eq!(p.head.path, "/daily.cvd");
        assert_eq!(p.head.range, Some(&b"bytes=0-511"[..]));
        assert_eq!(p.head.if_none_match(), [&b"\"a\""[..], &b"\"b\""[..]]);
        assert_eq!(p.head.if_modified_since, Some(&b"x"[..]));
        assert_eq!(p.head.if_range, Some(&b"\"c\""[..]));
        assert_eq!(p.head.user_agent, Some(&b"ClamAV/1.4.6"[..]));
        assert_eq!(&raw[p.len..], b"GET /next");
        assert!(p.keep_alive);
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let cases: [(&[u8], bool); 7] = [
            (b"GET / HTTP/1.1\r\nHost: m\r\n\r\n", true),
            (
                b"GET / HTTP/1.1\r\nHost: m\r\nConnection: Close\r\n\r\n",
                false,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: m\r\nConnection: te, close\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (
                b"GET / HTTP/1.1\r\nHost: m\r\nContent-Length: 3\r\n\r\nabc",
                false,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
        ];
        for (raw, keep) in cases {
            let p = parse(raw).unwrap().unwrap();
            assert_eq!(p.keep_alive, keep, "{}", String::from_utf8_lossy(raw));
        }
        let chunked = b"POST / HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let p = parse(chunked).unwrap().unwrap();
        assert!(!p.keep_alive);
        assert_eq!(p.head.method(), Method::Other);
    }

    /// The rules themselves are `http-head`'s (tested there); this checks that the
    /// loop's parse applies them and that each refusal gets its status and text.
    #[test]
    fn refuses_ambiguous_or_oversized_heads() {
        let bad: [(&[u8], HeadError); 7] = [
            (b"GET / HTTP/1.1\r\n\r\n", HeadError::Host),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                HeadError::Host,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::LengthAndEncoding,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                HeadError::ConflictingContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
                HeadError::ContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
                HeadError::ContentLength,
            ),
            (b"GET / HTTP/1.1\r\nHost a\r\n\r\n", HeadError::Malformed),
        ];
        let dir = tempfile::tempdir().unwrap();
        let state = test_state(dir.path());
        for (raw, want) in bad {
            assert_eq!(
                parse(raw).unwrap_err(),
                want,
                "{}",
                String::from_utf8_lossy(raw)
            );
            let reply = refusal(want, &state);
            assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(
            parse(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n").unwrap_err(),
            HeadError::Version
        );
        assert_eq!(
            refusal(HeadError::Version, &state).status,
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        let many = format!(
            "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
            "X: y\r\n".repeat(http_head::MAX_HEADERS)
        );
        assert_eq!(
            parse(many.as_bytes()).unwrap_err(),
            HeadError::TooManyFields
        );
        assert_eq!(
            refusal(HeadError::TooManyFields, &state).status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let partial = format!("GET / HTTP/1.1\r\nX: {}", "y".repeat(100));
        assert!(parse_head(partial.as_bytes(), 200).unwrap().is_none());
        assert_eq!(
            parse_head(partial.as_bytes(), 100).unwrap_err(),
            HeadError::TooLarge
        );
        assert_eq!(
            refusal(HeadError::TooLarge, &state).status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        // Repeated equal Content-Length values are one value (RFC 9112 §6.3).
        let same = b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n";
        assert!(parse(same).unwrap().is_some());
    }

    #[test]
    fn written_heads_parse_back() {
        let mut r = Reply::new(
            StatusCode::PARTIAL_CONTENT,
            crate::metrics::RequestKind::Other,
            "no-store",
        );
        r.content_type = Some("application/octet-stream");
        r.content_length = Some(512);
        r.content_range = Some(ContentRange::Bytes {
            start: 0,
            end: 511,
            len: 9952,
        });
        r.accept_ranges = true;
        r.retry_after = Some(7);
        r.allow = Some("GET, HEAD");
        r.validators = Some(crate::validators::Validators::new(
            1,
            2,
            SystemTime::UNIX_EPOCH,
        ));
        let mut out = Vec::new();
        write_head(&mut out, &r, true, Instant::now());
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut fields);
        assert_eq!(
            resp.parse(&out).unwrap(),
            httparse::Status::Complete(out.len())
        );
        assert_eq!(resp.code, Some(206));
        assert_eq!(resp.reason, Some("Partial Content"));
        let get = |n: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(n))
                .map(|h| std::str::from_utf8(h.value).unwrap())
        };
        assert_eq!(get("content-length"), Some("512"));
        assert_eq!(get("content-range"), Some("bytes 0-511/9952"));
        assert_eq!(get("etag"), Some("\"1-2-0\""));
        assert_eq!(get("last-modified"), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
        assert_eq!(get("retry-after"), Some("7"));
        assert_eq!(get("allow"), Some("GET, HEAD"));
        assert_eq!(get("connection"), Some("keep-alive"));
        assert!(httpdate::parse_http_date(get("date").unwrap()).is_ok());
        r.content_range = Some(ContentRange::Unsatisfied { len: 5 });
        r.content_length = None;
        out.clear();
        write_head(&mut out, &r, false, Instant::now());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nContent-Range: bytes */5\r\n"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("\r\nConnection: close\r\n\r\n"));
    }

    fn responses(out: &[u8], heads: &[bool]) -> Vec<SplitResponse> {
        split_responses(out, Some(heads)).unwrap()
    }

    pub(crate) fn test_state(dir: &std::path::Path) -> State {
        let cfg = crate::Config::builder(dir)
            .listen(["127.0.0.1:0".parse().unwrap()])
            .access_log(false)
            .build()
            .unwrap();
        State::new(&cfg)
    }

    fn params() -> Params {
        Params {
            max_head: 8192,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            h2c: true,
            admin: false,
            sendfile: true,
            chunk: 4096,
        }
    }

    /// A mirror directory with `test.cvd` (bytes 0, 1, 2, ... mod 251) of `len` bytes.
    fn mirror(len: usize) -> (tempfile::TempDir, Vec<u8>) {
        let d = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(d.path().join("test.cvd"), &data).unwrap();
        (d, data)
    }

    fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
        hs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_until_close() {
        let (d, data) = mirror(40_000);
        let state = test_state(d.path());
        let input = b"GET /test.cvd HTTP/1.1\r\nHost: m\r\nRange: bytes=0-9\r\n\r\n\
            HEAD /test.cvd HTTP/1.1\r\nHost: m\r\n\r\n\
            GET /test.cvd HTTP/1.1\r\nHost: m\r\n\r\n\
            GET /missing.cvd HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n\
            GET /test.cvd HTTP/1.1\r\nHost: m\r\n\r\n";
        let out = exchange(&state, &params(), input).unwrap();
        let r = responses(&out, &[false, true, false, false]);
        assert_eq!(r.len(), 4, "nothing is answered after Connection: close");
        assert_eq!(r[0].0, 206);
        assert_eq!(r[0].2, &data[..10]);
        assert_eq!(header(&r[0].1, "content-range"), Some("bytes 0-9/40000"));
        assert_eq!(r[1].0, 200);
        assert_eq!(header(&r[1].1, "content-length"), Some("40000"));
        assert!(r[1].2.is_empty());
        assert_eq!(r[2].0, 200);
        assert_eq!(
            r[2].2, data,
            "the copy path (no sendfile on a pipe) sends the file"
        );
        assert_eq!(r[3].0, 404);
        assert_eq!(header(&r[3].1, "connection"), Some("close"));
    }

    #[test]
    fn http10_closes_unless_asked_to_keep_alive() {
        let (d, _) = mirror(100);
        let state = test_state(d.path());
        let two = b"GET /test.cvd HTTP/1.0\r\n\r\nGET /test.cvd HTTP/1.0\r\n\r\n";
        let r = responses(&exchange(&state, &params(), two).unwrap(), &[]);
        assert_eq!(r.len(), 1);
        let ka = b"GET /test.cvd HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /test.cvd HTTP/1.0\r\n\r\n";
        let r = responses(&exchange(&state, &params(), ka).unwrap(), &[]);
        assert_eq!(r.len(), 2);
        assert_eq!(header(&r[0].1, "connection"), Some("keep-alive"));
        assert_eq!(header(&r[1].1, "connection"), Some("close"));
    }

    #[test]
    fn refused_heads_get_their_status_then_close() {
        let (d, _) = mirror(100);
        let state = test_state(d.path());
        let p = params();
        let cases: [(&[u8], u16); 4] = [
            (
                b"GET /test.cvd HTTP/1.1\r\n\r\nGET /test.cvd HTTP/1.1\r\nHost: m\r\n\r\n",
                400,
            ),
            (b"GET /test.cvd HTTP/3.0\r\nHost: m\r\n\r\n", 505),
            (b"GET /test.cvd HTTP/1.1\r\nHost: m\r\nX: \x01\r\n\r\n", 400),
            (
                b"\r\n\r\nGET /test.cvd HTTP/1.1\r\nHost: m\r\nContent-Length: 2\r\n\r\nab",
                200,
            ),
        ];
        for (raw, status) in cases {
            let r = responses(&exchange(&state, &p, raw).unwrap(), &[]);
            assert_eq!(r.len(), 1, "{}", String::from_utf8_lossy(raw));
            assert_eq!(r[0].0, status, "{}", String::from_utf8_lossy(raw));
            assert_eq!(header(&r[0].1, "connection"), Some("close"));
        }
        let big = format!(
            "GET /test.cvd HTTP/1.1\r\nHost: m\r\nX: {}\r\n\r\n",
            "a".repeat(9000)
        );
        let r = responses(&exchange(&state, &p, big.as_bytes()).unwrap(), &[]);
        assert_eq!(r[0].0, 431);
    }

    #[test]
    fn the_http2_preface_hands_the_connection_over() {
        let (d, _) = mirror(100);
        let state = test_state(d.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let end = rt.block_on(async {
            let (mut client, mut server) = tokio::io::duplex(1024);
            client.write_all(H2_PREFACE).await.unwrap();
            client.write_all(b"\0\0\0\x04").await.unwrap();
            let stop = std::future::pending::<()>();
            tokio::pin!(stop);
            let peer = SocketAddr::from(([127, 0, 0, 1], 9));
            serve(&mut server, &state, peer, &params(), stop).await
        });
        match end {
            End::Http2(read) => assert!(read.starts_with(H2_PREFACE)),
            End::Closed => panic!("not handed to HTTP/2"),
        }
        // Without HTTP/2, the preface is just a request with an unknown version.
        let p = Params {
            h2c: false,
            admin: false,
            ..params()
        };
        let r = responses(&exchange(&state, &p, H2_PREFACE).unwrap(), &[]);
        assert_eq!(r[0].0, 505);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_get_well_formed_answers(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let (d, _) = mirror(100);
            let state = test_state(d.path());
            let out = exchange(&state, &params(), &input).unwrap();
            // Every answer parses and carries its whole body; none follows a close.
            let r = split_responses(&out, None).unwrap();
            for (i, (_, hs, _)) in r.iter().enumerate() {
                if header(hs, "connection") == Some("close") {
                    proptest::prop_assert_eq!(i + 1, r.len());
                }
            }
        }

        #[test]
        fn pipelines_of_valid_requests_are_all_answered(
            reqs in proptest::collection::vec((0u8..4, 0u64..120, 0u64..120), 1..12)
        ) {
            let (d, data) = mirror(100);
            let state = test_state(d.path());
            let mut input = Vec::new();
            let mut heads = Vec::new();
            for (what, a, b) in &reqs {
                let (m, extra) = match what {
                    0 => ("GET", String::new()),
                    1 => ("HEAD", String::new()),
                    2 => ("GET", format!("Range: bytes={a}-{b}\r\n")),
                    _ => ("GET", "If-None-Match: *\r\n".to_owned()),
                };
                input.extend_from_slice(format!("{m} /test.cvd HTTP/1.1\r\nHost: m\r\n{extra}\r\n").as_bytes());
                heads.push(m == "HEAD");
            }
            let out = exchange(&state, &params(), &input).unwrap();
            let r = responses(&out, &heads);
            proptest::prop_assert_eq!(r.len(), reqs.len());
            for ((what, a, b), (code, _, body)) in reqs.iter().zip(&r) {
                match what {
                    0 => { proptest::prop_assert_eq!(*code, 200); proptest::prop_assert_eq!(body, &data); }
                    1 => proptest::prop_assert_eq!(*code, 200),
                    2 if a <= b && *a < 100 => {
                        let end = (*b).min(99) as usize;
                        proptest::prop_assert_eq!(*code, 206);
                        proptest::prop_assert_eq!(&body[..], &data[*a as usize..=end]);
                    }
                    2 if a > b => proptest::prop_assert_eq!(*code, 200),
                    2 => proptest::prop_assert_eq!(*code, 416),
                    _ => proptest::prop_assert_eq!(*code, 304),
                }
            }
        }
    }
}
