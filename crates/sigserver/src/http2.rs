//! HTTP/2 through hyper: prior knowledge on plain TCP (`h2c`, detected by
//! [`crate::h1`] from the connection preface) and ALPN `h2` on TLS. Requests are
//! translated to the handler's [`RequestHead`] and its [`Reply`] back to a hyper
//! response with a [`ServeBody`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http2;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::body::ServeBody;
use crate::request::{ContentRange, Reply, RequestHead};
use crate::serve::{AccessRecord, State, handle};

/// Serves one HTTP/2 connection until it ends or the server shuts down (then in-flight
/// streams finish and the connection closes with `GOAWAY`).
pub(crate) async fn serve<I>(
    builder: &http2::Builder<TokioExecutor>,
    io: I,
    state: Arc<State>,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = Svc(Arc::new(Conn { state, peer }));
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let res = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        tracing::debug!(%peer, error = %e, "HTTP/2 connection ended with an error");
    }
}

struct Conn {
    state: Arc<State>,
    peer: SocketAddr,
}

#[derive(Clone)]
struct Svc(Arc<Conn>);

impl hyper::service::Service<Request<Incoming>> for Svc {
    type Response = Response<ServeBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<ServeBody>, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let start = Instant::now();
        let conn = &self.0;
        let head = request_head(&req);
        let reply = handle(&conn.state, conn.peer, &head, false);
        let log = AccessRecord::new(&conn.state, conn.peer, &head, &reply, start);
        std::future::ready(Ok(response(reply, &conn.state, log)))
    }
}

fn request_head<B>(req: &Request<B>) -> RequestHead<'_> {
    let h = req.headers();
    let get = |name: HeaderName| h.get(name).map(HeaderValue::as_bytes);
    let mut head = RequestHead {
        method_text: req.method().as_str(),
        path: req.uri().path(),
        range: get(header::RANGE),
        if_range: get(header::IF_RANGE),
        if_modified_since: get(header::IF_MODIFIED_SINCE),
        user_agent: get(header::USER_AGENT),
        ..RequestHead::default()
    };
    for v in h.get_all(header::IF_NONE_MATCH) {
        head.push_if_none_match(v.as_bytes());
    }
    head
}

fn response(
    reply: Reply,
    state: &Arc<State>,
    log: Option<Box<AccessRecord>>,
) -> Response<ServeBody> {
    let mut hm = HeaderMap::with_capacity(10);
    let mut put = |name: HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            hm.insert(name, v);
        }
    };
    if let Some(ct) = reply.content_type {
        put(header::CONTENT_TYPE, ct);
    }
    put(header::CACHE_CONTROL, reply.cache_control);
    if let Some(v) = &reply.validators {
        put(header::ETAG, v.etag());
        put(header::LAST_MODIFIED, v.last_modified());
    }
    if reply.accept_ranges {
        put(header::ACCEPT_RANGES, "bytes");
    }
    match reply.content_range {
        Some(ContentRange::Bytes { start, end, len }) => {
            put(header::CONTENT_RANGE, &format!("bytes {start}-{end}/{len}"));
        }
        Some(ContentRange::Unsatisfied { len }) => {
            put(header::CONTENT_RANGE, &format!("bytes */{len}"));
        }
        None => {}
    }
    if let Some(a) = reply.allow {
        put(header::ALLOW, a);
    }
    if let Some(s) = reply.retry_after {
        put(header::RETRY_AFTER, &s.to_string());
    }
    if let Some(l) = &reply.location {
        put(header::LOCATION, l);
    }
    if let Some(n) = reply.content_length {
        put(header::CONTENT_LENGTH, &n.to_string());
    }
    let body = ServeBody::of(reply.body, state.chunk).accounted(state.clone(), reply.kind, log);
    let mut resp = Response::new(body);
    *resp.status_mut() = reply.status;
    *resp.headers_mut() = hm;
    resp
}
