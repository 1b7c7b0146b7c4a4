//! Hostile and malformed request targets never reach a file outside the mirror.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use crate::util::{Server, get, plain_mirror, request};

/// A mirror directory inside a parent that holds a secret with a mirror-like name.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let mirror = parent.path().join("mirror");
    std::fs::create_dir(&mirror).unwrap();
    for e in std::fs::read_dir(plain_mirror().path()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), mirror.join(e.file_name())).unwrap();
    }
    std::fs::write(parent.path().join("secret.cvd"), b"SECRET").unwrap();
    std::fs::write(parent.path().join("dns.txt"), b"SECRET").unwrap();
    (parent, mirror)
}

#[test]
fn traversal_and_encoded_separators_get_400() {
    let (_p, mirror) = setup();
    let s = Server::start(&mirror, &[]);
    for path in [
        "/../secret.cvd",
        "/..%2fsecret.cvd",
        "/..%2Fsecret.cvd",
        "/%2e%2e/secret.cvd",
        "/%2e%2e%2fsecret.cvd",
        "/..%5csecret.cvd",
        "/..\\secret.cvd",
        "/test.cvd%00",
        "/test.cvd%00.txt",
        "/%00",
        "/..",
        "/%2e%2e",
        "/.",
        "//etc/passwd",
        "/test.cvd/",
        "/sub/dir/test.cvd",
        "/sub/..",
        "/sub/%2e%2e",
        "/sub/a%2fb",
        "/%zz",
        "/test%2",
    ] {
        let r = get(s.addr, path, "");
        assert_eq!(r.status, 400, "{path}");
        assert!(!r.body.windows(6).any(|w| w == b"SECRET"), "{path}");
    }
    let metrics = s.metrics();
    assert!(
        crate::util::metric(
            &metrics,
            "sigserver_requests_total{kind=\"other\",status=\"400\"}"
        )
        .unwrap()
            >= 18.0
    );
}

#[test]
fn names_outside_the_grammar_get_404() {
    let (_p, mirror) = setup();
    std::fs::write(mirror.join("status.json.cvd.bak"), b"x").unwrap();
    std::fs::write(mirror.join("notes.txt"), b"x").unwrap();
    let s = Server::start(&mirror, &[]);
    for path in [
        "/",
        "/notes.txt",
        "/status.json.cvd.bak",
        "/secret",
        "/index.html",
        "/test-02.cdiff",
        "/Test.CVD",
        "/test.cvd.sign",
        "/a-b.cvd",
        "/.cvd",
        "/current",
        "/generations",
        // Two segments name a third-party feed's file: 404 unless the published
        // generation's feeds.json lists it (a plain directory has no feeds).
        "/sub/test.cvd",
        "/current/test.cvd",
        "/generations/g-1",
    ] {
        assert_eq!(get(s.addr, path, "").status, 404, "{path}");
    }
    // Query strings are not part of the name.
    assert_eq!(get(s.addr, "/test.cvd?x=../../secret.cvd", "").status, 200);
}

#[test]
fn overlong_paths_and_absolute_form_targets() {
    let (_p, mirror) = setup();
    let s = Server::start(&mirror, &[]);
    let long = format!("/{}.cvd", "a".repeat(300));
    assert_eq!(get(s.addr, &long, "").status, 400);
    let huge = format!("/{}", "a".repeat(70_000));
    let raw = format!("GET {huge} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if let Some(r) = try_request(s.addr, raw.as_bytes()) {
        assert!(
            r.status == 400 || r.status == 414 || r.status == 431,
            "{}",
            r.status
        );
    }
    // Absolute-form target: only the path is used.
    let r = request(
        s.addr,
        "GET http://elsewhere.example/test-2.cdiff HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let r = request(
        s.addr,
        "GET http://elsewhere.example/../secret.cvd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_ne!(r.status, 200);
}

#[test]
fn malformed_requests_are_refused_without_crashing() {
    let (_p, mirror) = setup();
    let s = Server::start(&mirror, &["--max-header-bytes", "8192"]);
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /test.cvd HTTP/9.9\r\n\r\n",
        b"GET /test.cvd HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET /te\x00st.cvd HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /test.cvd HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        use std::io::{Read, Write};
        let mut c = testkit::net::connect(s.addr).unwrap();
        // The server may hang up before everything is written: that is a refusal too.
        let _ = c.write_all(raw);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        if !out.is_empty() {
            let r = crate::util::parse(&out);
            // 4xx; an unsupported HTTP version gets 505 (RFC 9110 §15.6.6).
            let version = raw.windows(8).any(|w| w == b"HTTP/9.9");
            assert!(
                (400..500).contains(&r.status) || (version && r.status == 505),
                "{:?}: {}",
                String::from_utf8_lossy(raw),
                r.status
            );
        }
    }
    // Oversized request head: 431 (or the connection is closed), never served.
    let big = format!(
        "GET /test.cvd HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    // The server may close (RST) before the client has read the 431 because part of
    // the oversized head is still unread; it must never serve the file.
    let mut got_431 = 0;
    for _ in 0..20 {
        if let Some(r) = try_request(s.addr, big.as_bytes()) {
            assert_eq!(r.status, 431);
            got_431 += 1;
        }
    }
    assert!(got_431 > 0, "never saw a 431");
    // Still serving.
    assert_eq!(get(s.addr, "/test.cvd", "").status, 200);
}

#[test]
fn directories_and_fifos_under_mirror_names_are_not_served() {
    let (p, mirror) = setup();
    // A directory under a mirror name, and a FIFO under a mirror name.
    std::fs::create_dir(mirror.join("dir.cvd")).unwrap();
    let fifo = mirror.join("fifo.cvd");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let s = Server::start(&mirror, &[]);
    assert_eq!(get(s.addr, "/dir.cvd", "").status, 404);
    assert_eq!(get(s.addr, "/fifo.cvd", "").status, 404);
    assert_eq!(get(s.addr, "/test.cvd", "").status, 200);
    drop(p);
}

/// Sends a request and returns the response, or `None` if the connection was dropped
/// before a complete response head arrived.
fn try_request(addr: std::net::SocketAddr, raw: &[u8]) -> Option<crate::util::Response> {
    use std::io::{Read, Write};
    let mut c = testkit::net::connect(addr).ok()?;
    let _ = c.write_all(raw);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out.windows(4)
        .any(|w| w == b"\r\n\r\n")
        .then(|| crate::util::parse(&out))
}
