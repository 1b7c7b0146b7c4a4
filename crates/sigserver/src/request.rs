//! The protocol-neutral request and response of the handler ([`crate::serve`]).
//!
//! Both protocol front ends build a [`RequestHead`] from what they parsed (our own
//! HTTP/1.1 loop in [`crate::h1`], hyper for HTTP/2 in [`crate::http2`]) and turn the
//! [`Reply`] into bytes on the wire: the handler knows nothing of either protocol.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;

use crate::metrics::RequestKind;
use crate::validators::Validators;

/// Most `If-None-Match` field lines looked at (later ones are ignored).
pub(crate) const MAX_IF_NONE_MATCH: usize = 8;

/// The request method, as far as the handler cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// Anything else (answered `405`).
    Other,
}

impl Method {
    pub(crate) fn parse(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            _ => Method::Other,
        }
    }
}

/// What the handler reads of a request. Everything borrows from the receive buffer.
#[derive(Debug, Default)]
pub(crate) struct RequestHead<'a> {
    /// The method as received (for the access log; [`RequestHead::method`]).
    pub(crate) method_text: &'a str,
    /// The path of the request target (without query), percent-encoded as received.
    pub(crate) path: &'a str,
    pub(crate) range: Option<&'a [u8]>,
    pub(crate) if_range: Option<&'a [u8]>,
    /// Every `If-None-Match` field value (up to [`MAX_IF_NONE_MATCH`]).
    pub(crate) if_none_match: [&'a [u8]; MAX_IF_NONE_MATCH],
    pub(crate) if_none_match_count: usize,
    pub(crate) if_modified_since: Option<&'a [u8]>,
    pub(crate) user_agent: Option<&'a [u8]>,
}

impl<'a> RequestHead<'a> {
    pub(crate) fn method(&self) -> Method {
        Method::parse(self.method_text.as_bytes())
    }

    pub(crate) fn push_if_none_match(&mut self, v: &'a [u8]) {
        if let Some(slot) = self.if_none_match.get_mut(self.if_none_match_count) {
            *slot = v;
            self.if_none_match_count += 1;
        }
    }

    pub(crate) fn if_none_match(&self) -> &[&'a [u8]] {
        &self.if_none_match[..self.if_none_match_count]
    }
}

/// `Content-Range` of a `206` or `416`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentRange {
    /// `bytes start-end/len`.
    Bytes { start: u64, end: u64, len: u64 },
    /// `bytes */len`.
    Unsatisfied { len: u64 },
}

/// The body of a [`Reply`].
#[derive(Debug)]
pub(crate) enum ReplyBody {
    /// No body (`HEAD`, `304`, `416`).
    Empty,
    /// In memory (small-file cache, text responses).
    Bytes(Bytes),
    /// `len` bytes of `file` from `start`: the descriptor the request opened.
    File {
        file: Arc<File>,
        start: u64,
        len: u64,
    },
}

/// The handler's answer, before it is written in either protocol.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    /// For metrics and the access log.
    pub(crate) kind: RequestKind,
    pub(crate) content_type: Option<&'static str>,
    pub(crate) cache_control: &'static str,
    pub(crate) validators: Option<Validators>,
    pub(crate) accept_ranges: bool,
    pub(crate) content_range: Option<ContentRange>,
    /// `Allow` (on `405`).
    pub(crate) allow: Option<&'static str>,
    /// `Retry-After` seconds (on `429`).
    pub(crate) retry_after: Option<u64>,
    /// `Location` (on `302`, see `behind`).
    pub(crate) location: Option<String>,
    /// `Content-Length`; `None` only for `304`.
    pub(crate) content_length: Option<u64>,
    pub(crate) body: ReplyBody,
}

impl Reply {
    /// A reply with no headers beyond `Cache-Control` and no body.
    pub(crate) fn new(status: StatusCode, kind: RequestKind, cache_control: &'static str) -> Self {
        Reply {
            status,
            kind,
            content_type: None,
            cache_control,
            validators: None,
            accept_ranges: false,
            content_range: None,
            allow: None,
            retry_after: None,
            location: None,
            content_length: Some(0),
            body: ReplyBody::Empty,
        }
    }

    /// Drops the body, keeping `Content-Length` (a `HEAD` answer).
    pub(crate) fn strip_body(&mut self) {
        self.body = ReplyBody::Empty;
    }

    /// Number of body bytes that will be sent.
    pub(crate) fn body_len(&self) -> u64 {
        match &self.body {
            ReplyBody::Empty => 0,
            ReplyBody::Bytes(b) => b.len() as u64,
            ReplyBody::File { len, .. } => *len,
        }
    }
}
