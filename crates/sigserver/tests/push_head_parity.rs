//! One strict request-head parser (`http-head`) for sigserver's `POST /push` and for
//! the standalone push listener (`push::listener`, what `sigupdate watch
//! --push-listen` and `sigserver --push-listen` run): every malformed, ambiguous or
//! oversized head, and every head without a usable body length, gets the same status
//! from both, sent over loopback to each.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::SocketAddr;

use crate::util::{plain_mirror, request_bytes};

/// The two servers, sharing one push hub, with the same 8 KiB head limit; stopped when
/// the returned sender drops.
fn start(dir: &std::path::Path) -> (SocketAddr, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let key = dir.join("origin.key");
    std::fs::write(&key, "the secret of origin -> this mirror\n").unwrap();
    let mut s = push::PushSettings::new("mirror");
    s.senders =
        vec![push::PushSettings::parse_sender(&format!("origin={}", key.display())).unwrap()];
    let hub = s.validated().unwrap().hub(dir).unwrap();
    let cfg = sigserver::Config::builder(dir)
        .listen(["127.0.0.1:0".parse().unwrap()])
        .max_header_bytes(8 * 1024)
        .workers(1)
        .push(hub.clone())
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addrs, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let server = sigserver::Server::bind(cfg).await.unwrap();
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs
                .send((server.local_addrs()[0], l.local_addr().unwrap()))
                .unwrap();
            let (stop_l, stopped_l) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(push::listener::serve(l, hub, async {
                let _ = stopped_l.await;
            }));
            let _ = server
                .run(async {
                    let _ = stopped.await;
                })
                .await;
            drop(stop_l);
        });
    });
    let (sig, listener) = got.recv().unwrap();
    (sig, listener, stop)
}

#[test]
fn the_push_listener_refuses_heads_as_sigserver_does() {
    let d = plain_mirror();
    let (sig, listener, _stop) = start(d.path());
    let post = |fields: &str| {
        format!("POST /push HTTP/1.1\r\nHost: m\r\nConnection: close\r\n{fields}\r\n").into_bytes()
    };
    let mut at_limit = b"POST /push HTTP/1.1\r\nHost: m\r\nX-Big: ".to_vec();
    at_limit.resize(8 * 1024, b'a'); // both limits, never ended
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("Content-Length: +5", post("Content-Length: +5\r\n"), 400),
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
        ("head at the size limit", at_limit, 431),
        (
            "too many fields",
            post(&"X: y\r\n".repeat(http_head::MAX_HEADERS)),
            431,
        ),
        (
            "chunked without length",
            post("Transfer-Encoding: chunked\r\n"),
            411,
        ),
        ("no Content-Length", post(""), 411),
        (
            "over the notice limit",
            post(&format!(
                "Content-Length: {}\r\n",
                push::notice::MAX_NOTICE_LEN + 1
            )),
            413,
        ),
        (
            "unsigned notice",
            [post("Content-Length: 2\r\n"), b"{}".to_vec()].concat(),
            401,
        ),
    ];
    for (what, raw, want) in &cases {
        let from_sigserver = request_bytes(sig, raw).status;
        let from_listener = request_bytes(listener, raw).status;
        assert_eq!((from_sigserver, from_listener), (*want, *want), "{what}");
    }
}
