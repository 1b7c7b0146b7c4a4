//! Limits: slow or idle clients, connection count, per-client rate.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};

use crate::util::{Server, get, plain_mirror};

#[test]
fn a_client_that_never_finishes_its_head_is_disconnected() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &["--header-timeout", "1"]);
    let mut c = testkit::net::connect(s.addr).unwrap();
    c.write_all(b"GET /test.cvd HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // The server closes the connection on its own (possibly after a 408).
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    if !out.is_empty() {
        assert_eq!(crate::util::parse(&out).status, 408);
    }
    assert_eq!(get(s.addr, "/test.cvd", "").status, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &["--header-timeout", "1"]);
    let mut c = testkit::net::connect(s.addr).unwrap();
    c.write_all(b"GET /dns.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let h = crate::util::read_head(&mut c);
    assert_eq!(h.status, 200);
    let n: usize = h.header("content-length").unwrap().parse().unwrap();
    let mut body = vec![0; n];
    c.read_exact(&mut body).unwrap();
    // No second request: the server hangs up.
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.is_empty() || crate::util::parse(&rest).status == 408);
}

#[test]
fn a_client_that_stops_reading_is_disconnected() {
    let d = tempfile::tempdir().unwrap();
    // Large enough to fill the socket buffers on both sides.
    let big: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.path().join("big.cvd"), &big).unwrap();
    let s = Server::start(d.path(), &["--idle-timeout", "1"]);
    let mut c = testkit::net::connect(s.addr).unwrap();
    c.write_all(b"GET /big.cvd HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let h = crate::util::read_head(&mut c);
    assert_eq!(h.status, 200);
    // Stall until the server gives up on us: its access log records an incomplete body.
    let line = s.log.wait_for("path=/big.cvd status=200").unwrap();
    assert!(line.contains("complete=false"), "{line}");
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.len() < big.len());
}

#[test]
fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &["--max-connections", "1"]);
    // A holds the only slot (keep-alive).
    let mut a = testkit::net::connect(s.addr).unwrap();
    a.write_all(b"GET /dns.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let h = crate::util::read_head(&mut a);
    let n: usize = h.header("content-length").unwrap().parse().unwrap();
    let mut body = vec![0; n];
    a.read_exact(&mut body).unwrap();
    // B connects (kernel backlog) and asks; it is not accepted while A is open.
    let addr = s.addr;
    let b = std::thread::spawn(move || get(addr, "/test-2.cdiff", ""));
    a.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let h = crate::util::read_head(&mut a);
    let n: usize = h.header("content-length").unwrap().parse().unwrap();
    let mut m = vec![0; n];
    a.read_exact(&mut m).unwrap();
    let m = String::from_utf8(m).unwrap();
    assert_eq!(
        crate::util::metric(&m, "sigserver_connections_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        crate::util::metric(&m, "sigserver_open_connections"),
        Some(1.0)
    );
    drop(a);
    // Once A is gone, B is served.
    assert_eq!(b.join().unwrap().status, 200);
}

#[test]
fn per_client_rate_limit_answers_429_with_retry_after() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &["--rate-limit", "0.001", "--rate-burst", "3"]);
    for _ in 0..3 {
        assert_eq!(
            get(s.addr, "/test.cvd", "Range: bytes=0-511\r\n").status,
            206
        );
    }
    let r = get(s.addr, "/test.cvd", "Range: bytes=0-511\r\n");
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1);
    // Operations endpoints are never limited.
    assert_eq!(get(s.addr, "/health", "").status, 200);
    let m = s.metrics();
    assert_eq!(
        crate::util::metric(&m, "sigserver_rate_limited_total"),
        Some(1.0)
    );
    assert_eq!(
        crate::util::metric(
            &m,
            "sigserver_requests_total{kind=\"other\",status=\"429\"}"
        ),
        Some(1.0)
    );
}
