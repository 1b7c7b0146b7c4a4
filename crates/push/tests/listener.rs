//! The `POST /push` listener over real sockets on loopback reads request heads with the
//! strict parser `sigserver` uses (`http-head`): ambiguous framing, obs-fold and
//! oversized heads are refused with `sigserver`'s statuses before the hub sees
//! anything, and a well-formed request still reaches the hub.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use push::{PushHub, PushSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every socket operation of these tests ends within this.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A hub accepting notices from `origin`, and its listener on `127.0.0.1:0`.
async fn listener(
    dir: &Path,
) -> (
    Arc<PushHub>,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let key = dir.join("origin.key");
    std::fs::write(&key, "the secret of origin -> this mirror\n").unwrap();
    let mut s = PushSettings::new("mirror");
    s.senders = vec![PushSettings::parse_sender(&format!("origin={}", key.display())).unwrap()];
    let hub = s.validated().unwrap().hub(dir).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(push::listener::serve(l, hub.clone(), async {
        let _ = stopped.await;
    }));
    (hub, addr, stop)
}

/// Notices the hub counted (any outcome), from the push state it stores in `dir`.
fn notices(hub: &PushHub, dir: &Path) -> u64 {
    hub.flush();
    push::state::PushState::read(dir)
        .unwrap()
        .map_or(0, |s| s.notices.values().sum())
}

/// Sends `raw` and returns the status of the answer.
async fn status(addr: std::net::SocketAddr, raw: &[u8]) -> u16 {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        out
    };
    let out = tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .expect("an answer in time");
    let text = String::from_utf8_lossy(&out);
    let line = text.lines().next().unwrap_or_default();
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_or_oversized_heads_are_refused_like_sigserver_refuses_them() {
    let d = tempfile::tempdir().unwrap();
    let (hub, addr, _stop) = listener(d.path()).await;
    let post =
        |fields: &str| format!("POST /push HTTP/1.1\r\nHost: m\r\n{fields}\r\n").into_bytes();
    let mut oversized = b"POST /push HTTP/1.1\r\nHost: m\r\nX-Big: ".to_vec();
    oversized.resize(8 * 1024, b'a'); // the listener's limit, never ended
    let many = post(&"X: y\r\n".repeat(http_head::MAX_HEADERS));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("Content-Length: +5", post("Content-Length: +5\r\n"), 400),
        ("Content-Length: -5", post("Content-Length: -5\r\n"), 400),
        (
            "two different Content-Length",
            post("Content-Length: 2\r\nContent-Length: 3\r\n"),
            400,
        ),
        (
            "Transfer-Encoding with Content-Length",
            post("Transfer-Encoding: chunked\r\nContent-Length: 2\r\n"),
            400,
        ),
        (
            "obs-fold",
            post("X-Push-Sender: origin\r\n continued\r\nContent-Length: 0\r\n"),
            400,
        ),
        (
            "no Host in HTTP/1.1",
            b"POST /push HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "HTTP/1.2",
            b"POST /push HTTP/1.2\r\nHost: m\r\n\r\n".to_vec(),
            505,
        ),
        ("head at the size limit", oversized, 431),
        ("too many fields", many, 431),
        (
            "chunked without length",
            post("Transfer-Encoding: chunked\r\n"),
            411,
        ),
        ("no Content-Length", post(""), 411),
    ];
    for (what, raw, want) in &cases {
        assert_eq!(status(addr, raw).await, *want, "{what}");
    }
    // None of them reached the hub's checks: no notice was counted.
    assert_eq!(notices(&hub, d.path()), 0);
    // Well-formed (equal repeated Content-Length is one value): the hub answers, 401
    // for a notice without signature, and counts it.
    let ok = b"POST /push HTTP/1.1\r\nHost: m\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}";
    assert_eq!(status(addr, ok).await, 401);
    assert_eq!(notices(&hub, d.path()), 1);
}
