//! A minimal HTTP/1.1 listener for `POST /push` alone: the admin listener of
//! `sigupdate watch` and of `sigserver --push-listen`. One request per connection,
//! `Content-Length` required, bodies over the notice limit refused with 413 before
//! they are read, 5 s to send the request, 64 connections at a time.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    let (head_len, method, path, content_length, headers) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut hs = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut hs);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let mut cl: Option<Result<usize, ()>> = None;
                let mut chunked = false;
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        let v = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|s| s.trim().parse::<usize>().ok())
                            .ok_or(());
                        cl = Some(match cl {
                            Some(old) if old != v => Err(()),
                            _ => v,
                        });
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = true;
                    }
                }
                let headers =
                    NoticeHeaders::from_pairs(req.headers.iter().map(|h| (h.name, h.value)));
                let cl = if chunked { Some(Err(())) } else { cl };
                break (
                    len,
                    req.method.unwrap_or("").to_owned(),
                    req.path.unwrap_or("").to_owned(),
                    cl,
                    headers,
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => return Ok(plain(431, "request head too large")),
            Err(_) => return Ok(plain(400, "malformed request")),
        }
    };
    let path_only = path.split('?').next().unwrap_or("");
    if path_only != PUSH_PATH {
        return Ok(plain(404, "not found"));
    }
    if method != "POST" {
        return Ok(plain(405, "POST expected"));
    }
    let len = match content_length {
        None => return Ok(plain(411, "Content-Length required")),
        Some(Err(())) => return Ok(plain(400, "bad Content-Length or Transfer-Encoding")),
        Some(Ok(n)) => n,
    };
    if len > MAX_NOTICE_LEN {
        // Counted like any other refusal, without reading the body.
        return Ok(hub.handle(&headers, &vec![0u8; MAX_NOTICE_LEN + 1]));
    }
    let mut body = buf.split_off(head_len);
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
