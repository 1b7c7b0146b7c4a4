//! The one strict HTTP/1.x request-head parser of the workspace: `sigserver`'s HTTP/1
//! loop and `push`'s `POST /push` listener both read request heads through it, so a
//! head one of them refuses, the other refuses too, with the same status.
//!
//! It parses; it does no I/O (no sockets, no tokio) and writes no responses. The caller
//! buffers bytes until [`HeadScan`] finds the empty line that ends a head, then calls
//! [`parse_request`], which reads the request line and the header fields (through
//! `httparse`, the parser hyper uses), hands every field to the caller's callback, and
//! applies the rules that keep two servers from reading one byte stream differently
//! (RFC 9112 §3.2, §6.3: no request smuggling):
//!
//! | input | refused with |
//! |---|---|
//! | a head over the caller's limit (`max_head`), or more than [`MAX_HEADERS`] fields | [`Error::TooLarge`], [`Error::TooManyFields`]: `431` |
//! | a version other than HTTP/1.0 and HTTP/1.1 | [`Error::Version`]: `505` |
//! | a malformed request line or field (a field name with spaces, obs-fold continuation lines, control bytes) | [`Error::Malformed`]: `400` |
//! | `Content-Length` that is not 1 to 19 decimal digits (`+5`, `-5`, `0x10`, empty) | [`Error::ContentLength`]: `400` |
//! | two `Content-Length` fields with different values (equal ones are one value) | [`Error::ConflictingContentLength`]: `400` |
//! | `Content-Length` together with `Transfer-Encoding` | [`Error::LengthAndEncoding`]: `400` |
//! | an HTTP/1.1 request without exactly one `Host` | [`Error::Host`]: `400` |
//! | an empty request path (`?x`) | [`Error::EmptyPath`]: `400` |
//!
//! [`Error::status`] is that status code.
//!
//! ```
//! let raw = b"POST /push?x HTTP/1.1\r\nHost: m\r\nContent-Length: 2\r\nX-Push-Sender: a\r\n\r\n{}";
//! let mut sender = None;
//! let head = http_head::parse_request(raw, 8192, |name, value| {
//!     if name.eq_ignore_ascii_case("x-push-sender") {
//!         sender = Some(value);
//!     }
//! })?
//! .expect("a complete head");
//! assert_eq!((head.method, head.path), ("POST", "/push"));
//! assert_eq!(head.body, http_head::Body::Length(2));
//! assert_eq!(&raw[head.len..], b"{}");
//! assert_eq!(sender, Some(&b"a"[..]));
//!
//! let e = http_head::parse_request(b"POST /push HTTP/1.1\r\nHost: m\r\nContent-Length: +5\r\n\r\n", 8192, |_, _| {})
//!     .unwrap_err();
//! assert_eq!((e, e.status()), (http_head::Error::ContentLength, 400));
//! # Ok::<(), http_head::Error>(())
//! ```
//!
//! # Limits and worst cases
//!
//! * The head: at most the caller's `max_head` bytes (`sigserver`: `max_header_bytes`,
//!   16 KiB by default and at most 1 MiB; the push listener: 8 KiB) and at most
//!   [`MAX_HEADERS`] fields. `parse_request` makes one pass over the head (httparse),
//!   then one over the fields; it allocates nothing.
//! * Its worst input is the most fields the limits allow: 99 one-word fields in 917
//!   bytes took 1.7 times as long per byte as one long `User-Agent` of the same size,
//!   measured through `sigserver`'s whole exchange (`benches/worst_case.rs`, the
//!   "HTTP/1 request head" row, and `sigserver`'s "Worst cases"; measured when this
//!   code was still inside `sigserver`, unchanged since).
//! * A head arriving one byte per read: [`HeadScan`] looks only at the bytes appended
//!   since its last call, so finding the end of a head costs time linear in its size
//!   (at most 3 bytes examined per byte, a unit test counts it); rescanning from the
//!   start on every read cost time quadratic in its size (about 10^11 byte visits for a
//!   1 MiB head). Callers parse once, when the scan has found the end.
//! * `Content-Length`: at most 19 digits, so its value always fits a `u64`; what body
//!   length is acceptable is the caller's decision.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Most header fields in a request head (more: [`Error::TooManyFields`], `431`).
pub const MAX_HEADERS: usize = 100;

/// Why a request head was refused. [`status`](Error::status) is the HTTP answer; the
/// connection is closed after it (the stream cannot be trusted to be in step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The head (complete or not) reached the caller's limit in bytes.
    #[error("request head too large")]
    TooLarge,
    /// More than [`MAX_HEADERS`] header fields.
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyFields,
    /// A version other than HTTP/1.0 and HTTP/1.1.
    #[error("HTTP version not supported")]
    Version,
    /// A malformed request line or header field (obs-fold included).
    #[error("malformed request head")]
    Malformed,
    /// An empty path in the request target.
    #[error("empty request path")]
    EmptyPath,
    /// A `Content-Length` that is not 1 to 19 decimal digits.
    #[error("invalid Content-Length")]
    ContentLength,
    /// Two `Content-Length` fields with different values.
    #[error("conflicting Content-Length")]
    ConflictingContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`.
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndEncoding,
    /// An HTTP/1.1 request without exactly one `Host`.
    #[error("an HTTP/1.1 request needs exactly one Host")]
    Host,
}

impl Error {
    /// The HTTP status to answer with: `431` for a head too large, `505` for an
    /// unsupported version, `400` otherwise.
    pub fn status(self) -> u16 {
        match self {
            Error::TooLarge | Error::TooManyFields => 431,
            Error::Version => 505,
            _ => 400,
        }
    }
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// What the head says about a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Neither `Content-Length` nor `Transfer-Encoding`: no body.
    None,
    /// `Content-Length` (possibly 0).
    Length(u64),
    /// `Transfer-Encoding` (whatever its value), without `Content-Length`.
    Chunked,
}

impl Body {
    /// The length announced by `Content-Length`, if any.
    pub fn content_length(self) -> Option<u64> {
        match self {
            Body::Length(n) => Some(n),
            Body::None | Body::Chunked => None,
        }
    }
}

/// A parsed request head, borrowing from the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'b> {
    /// The method, as received (case-sensitive: `GET`, `POST`, ...).
    pub method: &'b str,
    /// The request target, as received.
    pub target: &'b str,
    /// The path of the target (see [`target_path`]), percent-encoded as received.
    pub path: &'b str,
    /// The version.
    pub version: Version,
    /// Bytes of the head, its final empty line included: the body (or the next
    /// pipelined request) starts there.
    pub len: usize,
    /// Whether the connection may stay open after the response, as far as the request
    /// goes: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `Connection:
    /// keep-alive`, and never when the request announces a body.
    pub keep_alive: bool,
    /// The body the head announces.
    pub body: Body,
}

/// Parses the request head at the start of `buf`, calling `field` with every header
/// field's name and value in order (before the rules above are checked: on `Err`
/// discard what it collected). `Ok(None)` when more bytes are needed and allowed;
/// a partial head already `max_head` bytes long is [`Error::TooLarge`], and so is a
/// complete one longer than that.
///
/// Empty lines before the request line are skipped (RFC 9112 §2.2) and count towards
/// [`RequestHead::len`].
pub fn parse_request<'b>(
    buf: &'b [u8],
    max_head: usize,
    mut field: impl FnMut(&'b str, &'b [u8]),
) -> Result<Option<RequestHead<'b>>, Error> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= max_head => n,
        Ok(httparse::Status::Complete(_)) => return Err(Error::TooLarge),
        Ok(httparse::Status::Partial) if buf.len() >= max_head => return Err(Error::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::TooManyFields),
        Err(httparse::Error::Version) => return Err(Error::Version),
        Err(_) => return Err(Error::Malformed),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Error::Malformed);
    };
    let version = match version {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(Error::Version),
    };
    let mut content_length: Option<u64> = None;
    let (mut chunked, mut hosts, mut close, mut keep) = (false, 0usize, false, false);
    for f in req.headers.iter() {
        let (name, value) = (f.name, f.value);
        field(name, value);
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("host") {
            hosts += 1;
        } else if is("content-length") {
            let n = parse_content_length(value)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(Error::ConflictingContentLength);
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
        }
    }
    if chunked && content_length.is_some() {
        return Err(Error::LengthAndEncoding);
    }
    if version == Version::Http11 && hosts != 1 {
        return Err(Error::Host);
    }
    let body = match (chunked, content_length) {
        (true, _) => Body::Chunked,
        (false, Some(n)) => Body::Length(n),
        (false, None) => Body::None,
    };
    let announces_body = chunked || content_length.is_some_and(|n| n > 0);
    Ok(Some(RequestHead {
        method,
        target,
        path: target_path(target)?,
        version,
        len,
        keep_alive: !announces_body && !close && (version == Version::Http11 || keep),
        body,
    }))
}

/// The path of a request target: origin form (`/p?q`) or absolute form
/// (`http://host/p?q`, RFC 9112 §3.2.2), without query or fragment; `*` and authority
/// form pass through (no file has such a name). An empty path is [`Error::EmptyPath`].
pub fn target_path(target: &str) -> Result<&str, Error> {
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
        return Err(Error::EmptyPath);
    }
    Ok(&path[..end])
}

/// A `Content-Length` value: 1 to 19 ASCII digits, optional surrounding whitespace.
fn parse_content_length(v: &[u8]) -> Result<u64, Error> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(Error::ContentLength);
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The search for the end of a head (an empty line) in a buffer that only grows at
/// its end between calls.
///
/// Each call looks only at what was appended since the last one (plus the two bytes
/// before it, where a `\n\r\n` may have started), so a head trickled in one byte per
/// read costs time linear in its size.
#[derive(Debug, Default)]
pub struct HeadScan {
    /// `buf[start..scanned]` holds no complete end of head.
    scanned: usize,
    /// Bytes looked at so far.
    examined: usize,
}

impl HeadScan {
    /// Whether `buf[start..end]` (starting at a request line) holds a complete head.
    /// Between calls the caller only appends at `end`, or moves the contents with
    /// [`shifted`](Self::shifted); a new head needs a new scan.
    pub fn complete(&mut self, buf: &[u8], start: usize, end: usize) -> bool {
        let from = self.scanned.saturating_sub(2).clamp(start, end);
        let window = buf.get(from..end).unwrap_or_default();
        self.examined += window.len();
        let found = head_complete(window);
        if !found {
            self.scanned = end;
        }
        found
    }

    /// The buffer's contents moved `by` bytes towards its start.
    pub fn shifted(&mut self, by: usize) {
        self.scanned = self.scanned.saturating_sub(by);
    }

    /// Bytes looked at so far (the work measure of the worst-case tests).
    pub fn examined(&self) -> usize {
        self.examined
    }
}

/// Whether `b` holds the end of a head: an empty line (`\n\n` or `\n\r\n`).
fn head_complete(b: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', b).any(|i| match b.get(i + 1) {
        Some(b'\n') => true,
        Some(b'\r') => b.get(i + 2) == Some(&b'\n'),
        _ => false,
    })
}

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    //! Entry point of the `http_head` fuzz target (`fuzz/`): any bytes, at any limit,
    //! fed in any split.

    use super::{Body, Error, HeadScan, parse_request};

    /// Parses `data` (its first byte picks the head limit and the read size): never a
    /// panic; a head is within the buffer and the limit, every field it reported is
    /// inside the head, and the end the incremental scan finds agrees with the parse.
    pub fn request(data: &[u8]) {
        let Some((&knob, input)) = data.split_first() else {
            return;
        };
        let max_head = 16 + usize::from(knob) * 8;
        let step = usize::from(knob % 7) + 1;
        let mut fields = 0usize;
        let got = parse_request(input, max_head, |name, value| {
            fields += 1;
            assert!(!name.is_empty());
            assert!(!value.contains(&b'\n'));
        });
        match got {
            Ok(Some(head)) => {
                assert!(head.len <= input.len() && head.len <= max_head);
                assert!(fields <= super::MAX_HEADERS);
                assert!(!head.path.is_empty());
                if head.body != Body::None {
                    assert!(!head.keep_alive || head.body == Body::Length(0));
                }
                // Every prefix of a complete head is incomplete or refused, never a
                // different head.
                let cut = head.len.saturating_sub(1);
                assert!(!matches!(
                    parse_request(&input[..cut], max_head, |_, _| {}),
                    Ok(Some(_))
                ));
                // The incremental scan, fed `step` bytes at a time, finds the end.
                let mut scan = HeadScan::default();
                let skip = input
                    .iter()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .count();
                let mut end = skip;
                let mut found = false;
                while end < head.len {
                    end = (end + step).min(head.len);
                    if scan.complete(input, skip, end) {
                        found = true;
                        break;
                    }
                }
                assert!(found, "the scan missed the end of a parsed head");
                assert!(scan.examined() <= 3 * head.len);
            }
            Ok(None) => assert!(input.len() < max_head),
            // Too large only at the limit.
            Err(Error::TooLarge) => assert!(input.len() >= max_head),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worst case of the head search: a large head of many short fields, arriving one
    /// byte per read. Every byte is looked at a bounded number of times, at 1× and at
    /// 8× the size.
    #[test]
    fn trickled_head_is_scanned_in_linear_work() {
        fn examined(fields: usize) -> (usize, usize) {
            let head = format!(
                "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
                "X: y\r\n".repeat(fields)
            );
            let buf = head.as_bytes();
            let mut scan = HeadScan::default();
            let mut found_at = None;
            for end in 1..=buf.len() {
                if scan.complete(buf, 0, end) {
                    found_at = Some(end);
                    break;
                }
            }
            assert_eq!(found_at, Some(buf.len()), "the head ends at its last byte");
            (buf.len(), scan.examined())
        }
        // sigserver's largest head limit (1 MiB), in 6-byte fields.
        const MAX_HEAD: usize = 1 << 20;
        let (small_len, small) = examined(MAX_HEAD / 6 / 8);
        let (large_len, large) = examined(MAX_HEAD / 6);
        assert!(large_len >= MAX_HEAD - 64);
        // Each byte once, plus two bytes of overlap per read.
        assert!(
            small <= 3 * small_len,
            "{small} bytes examined for {small_len}"
        );
        assert!(
            large <= 3 * large_len,
            "{large} bytes examined for {large_len}"
        );
        // 8× the head, 8× the work (a rescan from the start would be 64×).
        assert!(large <= 9 * small, "{small} → {large}");
    }

    #[test]
    fn head_scan_survives_compaction_and_leading_blank_lines() {
        let mut buf = b"xxxxGET / HTTP/1.1\r\nHost: a\r".to_vec();
        let mut scan = HeadScan::default();
        assert!(!scan.complete(&buf, 4, buf.len()));
        // Compaction moves the pending bytes to the front.
        buf.drain(..4);
        scan.shifted(4);
        assert!(!scan.complete(&buf, 0, buf.len()));
        // The terminator arrives split across reads: `\r` already there, `\n\r\n` now.
        buf.extend_from_slice(b"\n\r");
        assert!(!scan.complete(&buf, 0, buf.len()));
        buf.push(b'\n');
        assert!(scan.complete(&buf, 0, buf.len()));
    }

    #[test]
    fn head_end_is_an_empty_line() {
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(head_complete(b"GET / HTTP/1.1\nHost: a\n\n"));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r"));
    }
}
