//! The HTTP/2 response body (hyper): nothing, a small in-memory buffer, or a byte range
//! of an open file streamed in chunks.

use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::metrics::RequestKind;
use crate::request::ReplyBody;
use crate::serve::{AccessRecord, State};

/// A response body. File bodies read `chunk` bytes at a time from the descriptor that
/// was opened for the request (and is owned by this body alone), hence memory per
/// connection stays at about one chunk whatever the file size. Reads are done inline on the runtime thread: the files are served from the
/// page cache, where a `pread` costs less than handing it to a blocking-thread pool.
#[derive(Debug)]
pub(crate) struct ServeBody {
    inner: Inner,
    /// For byte accounting.
    state: Option<Arc<State>>,
    kind: RequestKind,
    log: Option<Box<AccessRecord>>,
}

#[derive(Debug)]
enum Inner {
    Empty,
    Bytes(Option<Bytes>),
    File {
        /// Possibly shared with other requests (open-file cache): read by position only.
        file: Arc<File>,
        /// Offset of the next read.
        pos: u64,
        remaining: u64,
        chunk: usize,
    },
}

impl ServeBody {
    fn with(inner: Inner) -> Self {
        ServeBody {
            inner,
            state: None,
            kind: RequestKind::Other,
            log: None,
        }
    }

    /// The body of a reply; file bodies are read `chunk` bytes at a time.
    pub(crate) fn of(body: ReplyBody, chunk: usize) -> Self {
        Self::with(match body {
            ReplyBody::Empty => Inner::Empty,
            ReplyBody::Bytes(b) => Inner::Bytes(Some(b)),
            ReplyBody::File { file, start, len } => Inner::File {
                file,
                pos: start,
                remaining: len,
                chunk,
            },
        })
    }

    /// Attaches metrics accounting and the access log record (logged when the body is
    /// dropped, i.e. after the last byte was handed over or the client went away).
    pub(crate) fn accounted(
        mut self,
        state: Arc<State>,
        kind: RequestKind,
        log: Option<Box<AccessRecord>>,
    ) -> Self {
        self.state = Some(state);
        self.kind = kind;
        self.log = log;
        self
    }

    fn sent(&mut self, n: usize) {
        if let Some(s) = &self.state {
            s.metrics.bytes(self.kind, n as u64);
        }
        if let Some(l) = &mut self.log {
            l.bytes_sent += n as u64;
        }
    }
}

impl Body for ServeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let frame = match &mut this.inner {
            Inner::Empty => None,
            Inner::Bytes(b) => b.take(),
            Inner::File {
                file,
                pos,
                remaining,
                chunk,
            } => {
                if *remaining == 0 {
                    None
                } else {
                    let n = (*chunk as u64).min(*remaining) as usize;
                    let mut buf = vec![0u8; n];
                    if let Err(e) = crate::open_files::read_exact_at(file, &mut buf, *pos) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    *pos += n as u64;
                    *remaining -= n as u64;
                    Some(Bytes::from(buf))
                }
            }
        };
        Poll::Ready(frame.map(|b| {
            this.sent(b.len());
            Ok(Frame::data(b))
        }))
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Bytes(b) => b.is_none(),
            Inner::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Bytes(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

impl Drop for ServeBody {
    fn drop(&mut self) {
        if let Some(log) = self.log.take() {
            let complete = self.is_end_stream();
            log.emit(complete);
        }
    }
}
