//! A minimal HTTP/1.1 listener for `POST /push` alone: the admin listener of
//! `sigupdate watch` and of `sigserver --push-listen`. One request per connection,
//! `Content-Length` required, bodies over the notice limit refused with 413 before
//! they are read, 5 s to send the request, 64 connections at a time.
//!
//! The request head is read with the workspace's one strict parser, `http-head`, as
//! `sigserver`'s own HTTP/1 loop reads it: an invalid or conflicting `Content-Length`
//! (`+5`), `Content-Length` with `Transfer-Encoding`, obs-fold continuation lines and
//! an HTTP/1.1 request without exactly one `Host` get `400`, a head over 8 KiB or with
//! too many fields `431`, a version other than 1.0/1.1 `505`. What decides the body's
//! length ([`notice_len`]) is shared with `sigserver` too.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use http_head::HeadScan;

use crate::hub::{PushHub, Reply};
use crate::notice::MAX_NOTICE_LEN;
use crate::receiver::NoticeHeaders;

/// Path notices are posted to.
pub const PUSH_PATH: &str = "/push";
/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// Serves `POST /push` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<PushHub>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = &mut shutdown => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("push listener: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let hub = hub.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection(stream, &hub).await {
                tracing::debug!(%peer, "push connection: {e}");
            }
        });
    }
}

async fn connection(mut stream: TcpStream, hub: &PushHub) -> std::io::Result<()> {
    let reply = match tokio::time::timeout(REQUEST_TIMEOUT, request(&mut stream, hub)).await {
        Ok(r) => r?,
        Err(_) => Reply {
            status: 408,
            body: "request timeout\n".into(),
        },
    };
    write_reply(&mut stream, &reply).await
}

/// Reads one request and answers it (a pure function of the bytes but for the hub).
async fn request(stream: &mut TcpStream, hub: &PushHub) -> std::io::Result<Reply> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut scan = HeadScan::default();
    // Empty lines before the request line are skipped (RFC 9112 §2.2).
    let mut start = 0;
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        while buf.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            start += 1;
        }
        if scan.complete(&buf, start, buf.len()) {
            break;
        }
        if buf.len() >= MAX_HEAD {
            return Ok(refusal(http_head::Error::TooLarge));
        }
    }
    let mut headers = NoticeHeaders::default();
    let parsed = http_head::parse_request(&buf[start..], MAX_HEAD, |name, value| {
        headers.add(name, value)
    });
    // (A complete head never parses as partial; if it did, it would be malformed.)
    let head = match parsed.and_then(|h| h.ok_or(http_head::Error::Malformed)) {
        Ok(head) => head,
        Err(e) => return Ok(refusal(e)),
    };
    if head.path != PUSH_PATH {
        return Ok(plain(404, "not found"));
    }
    if head.method != "POST" {
        return Ok(plain(405, "POST expected"));
    }
    let len = match notice_len(hub, &headers, head.body.content_length()) {
        Ok(len) => len,
        Err(refused) => return Ok(refused),
    };
    let mut body = buf.split_off(start + head.len);
    body.truncate(len);
    while body.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let take = n.min(len - body.len());
        body.extend_from_slice(&chunk[..take]);
    }
    Ok(hub.handle(&headers, &body))
}

/// The length of a notice's body, from its head's `Content-Length` (`None`: none, or
/// `Transfer-Encoding`), or the answer without reading it: `411` without a length, the
/// hub's `413` over [`MAX_NOTICE_LEN`] (counted like any other refusal). This
/// listener's and `sigserver`'s `POST /push` decide alike.
pub fn notice_len(
    hub: &PushHub,
    headers: &NoticeHeaders,
    content_length: Option<u64>,
) -> Result<usize, Reply> {
    let Some(len) = content_length else {
        return Err(plain(411, "Content-Length required"));
    };
    match usize::try_from(len) {
        Ok(len) if len <= MAX_NOTICE_LEN => Ok(len),
        _ => Err(hub.handle(headers, &vec![0u8; MAX_NOTICE_LEN + 1])),
    }
}

/// The answer to a refused request head: its status, and the text `sigserver` gives.
fn refusal(e: http_head::Error) -> Reply {
    match e.status() {
        431 => plain(431, "request head too large"),
        505 => plain(505, "HTTP version not supported"),
        status => plain(status, &format!("bad request: {e}")),
    }
}

fn plain(status: u16, text: &str) -> Reply {
    Reply {
        status,
        body: format!("{text}\n"),
    }
}

/// The reason phrase of the statuses this crate answers with.
pub fn reason(status: u16) -> &'static str {
    match status {
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

async fn write_reply(stream: &mut TcpStream, r: &Reply) -> std::io::Result<()> {
    stream.write_all(reply_head(r).as_bytes()).await?;
    stream.write_all(r.body.as_bytes()).await?;
    stream.shutdown().await
}

/// The status line and headers of a reply.
fn reply_head(r: &Reply) -> String {
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        r.status,
        reason(r.status),
        r.body.len(),
        match r.status {
            401 => "WWW-Authenticate: HMAC-SHA256\r\n",
            // Never a 429 without a short Retry-After (as sigserver's POST /push).
            429 => "Retry-After: 1\r\n",
            _ => "",
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_always_says_when_to_retry_and_a_401_how_to_authenticate() {
        let head = |status| reply_head(&plain(status, "x"));
        assert!(
            head(429).contains("\r\nRetry-After: 1\r\n"),
            "{}",
            head(429)
        );
        assert!(head(401).contains("\r\nWWW-Authenticate: HMAC-SHA256\r\n"));
        for status in [202, 400, 404, 413] {
            assert!(!head(status).contains("Retry-After"), "{}", head(status));
        }
        assert!(head(429).starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(head(202).ends_with("\r\n\r\n"));
    }
}
