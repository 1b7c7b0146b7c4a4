//! Never poison a client (issue 23): freshclam puts itself on a 24-hour cool-down for
//! every mirror on a `403`, and on a 4-hour one on a `429` without `Retry-After`. Over
//! every error path of the server (missing `.sign`, unknown and hostile names, other
//! methods, ranges, oversized and malformed heads, non-regular and dangling entries,
//! unreadable files, `/trace` and `/ready` refusals, `/push` without a hub, the rate
//! limiter) no answer is a `403`, and the only `429` comes from the rate limiter, with a
//! short `Retry-After`.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::util::{Response, Server, get, parse, plain_mirror, request};

/// Longest `Retry-After` that counts as short.
const SHORT: u64 = 60;

fn try_request(addr: SocketAddr, raw: &[u8]) -> Option<Response> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    (!buf.is_empty()).then(|| parse(&buf))
}

fn check(what: &str, r: &Response, expected: u16) {
    assert_ne!(r.status, 403, "{what}: 403");
    assert_eq!(r.status, expected, "{what}");
    if r.status == 429 {
        let s: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=SHORT).contains(&s), "{what}: Retry-After {s}");
    }
}

#[test]
fn no_error_path_answers_403_and_429_only_with_a_short_retry_after() {
    let d = plain_mirror();
    // entries that are not servable files
    std::fs::create_dir(d.path().join("test.cld")).unwrap();
    std::os::unix::fs::symlink("nowhere.cvd", d.path().join("main.cvd")).unwrap();
    std::fs::copy(
        d.path().join("test-2.cdiff"),
        d.path().join("daily-9.cdiff"),
    )
    .unwrap();
    let locked = d.path().join("daily-9.cdiff");
    let mut perms = std::fs::metadata(&locked).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o000);
    std::fs::set_permissions(&locked, perms).unwrap();
    let s = Server::start(d.path(), &["--rate-limit", "0.2", "--rate-burst", "60"]);
    let a = s.addr;
    let cases: Vec<(&str, Response, u16)> = vec![
        ("missing .cvd.sign", get(a, "/test-5.cvd.sign", ""), 404),
        ("missing .cdiff.sign", get(a, "/test-9.cdiff.sign", ""), 404),
        ("missing cdiff", get(a, "/test-9.cdiff", ""), 404),
        ("missing .cvd", get(a, "/daily.cvd", ""), 404),
        ("unknown name", get(a, "/index.html", ""), 404),
        ("traversal", get(a, "/..%2f..%2fetc%2fpasswd", ""), 400),
        ("NUL", get(a, "/test%00.cvd", ""), 400),
        (
            "no leading slash",
            request(
                a,
                "GET test.cvd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ),
            400,
        ),
        (
            "PUT",
            request(
                a,
                "PUT /test.cvd HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ),
            405,
        ),
        (
            "DELETE",
            request(
                a,
                "DELETE /test.cvd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ),
            405,
        ),
        (
            "POST /push without a hub",
            request(
                a,
                "POST /push HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            ),
            404,
        ),
        (
            "unsatisfiable range",
            get(a, "/test.cvd", "Range: bytes=99999999-\r\n"),
            416,
        ),
        ("directory entry", get(a, "/test.cld", ""), 404),
        ("dangling symlink", get(a, "/main.cvd", ""), 404),
        ("/trace of a plain directory", get(a, "/trace", ""), 404),
        ("garbage request line", request(a, "GARBAGE\r\n\r\n"), 400),
        (
            "HTTP/2.0 in an HTTP/1 line",
            request(a, "GET /test.cvd HTTP/3.0\r\nHost: t\r\n\r\n"),
            505,
        ),
    ];
    for (what, r, expected) in &cases {
        if *what == "HTTP/2.0 in an HTTP/1 line" {
            // whatever the protocol layer says, it is never 403/429
            assert!(![403, 429].contains(&r.status), "{what}: {}", r.status);
            continue;
        }
        check(what, r, *expected);
    }
    // unreadable file: root reads it anyway (200); anyone else gets 500, never 403
    let r = get(a, "/daily-9.cdiff", "");
    assert!(
        r.status == 200 || r.status == 500,
        "unreadable file: {}",
        r.status
    );
    // oversized head: 431 or a closed connection, never 403
    let big = format!(
        "GET /test.cvd HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(70_000)
    );
    if let Some(r) = try_request(a, big.as_bytes()) {
        check("oversized head", &r, 431);
    }
    // the rate limiter: the only 429, always with a short Retry-After
    let mut limited = None;
    for _ in 0..200 {
        let r = crate::util::head(a, "/test.cvd", "");
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 200);
    }
    check(
        "rate limited",
        &limited.expect("the limiter never answered"),
        429,
    );
    // operations endpoints are never limited
    assert_eq!(get(a, "/health", "").status, 200);
    // and nothing in the access log is a 403
    s.log.wait_for("path=/health ").unwrap();
    let log = s.log.text();
    assert!(!log.contains("status=403"), "{log}");
    assert!(log.contains("status=429"));
}

/// A mirror directory whose `/ready` refuses and whose files are redirected: still no
/// 403 (`/ready` is 503, the redirects 302).
#[test]
fn a_behind_or_broken_mirror_never_answers_403() {
    let d = crate::behind_redirect::stuck_mirror(3, 6, 120);
    let s = Server::start(
        d.path(),
        &[
            "--ready-lag",
            "1",
            "--behind-redirect",
            "http://127.0.0.1:9",
        ],
    );
    check("behind /ready", &get(s.addr, "/ready", ""), 503);
    check("lacking .cvd", &get(s.addr, "/test.cvd", ""), 302);
    check(
        "missing old .sign",
        &get(s.addr, "/test-2.cvd.sign", ""),
        404,
    );
    // status.json damaged: /ready 503, /metrics still 200, files still served
    std::fs::write(d.path().join("status.json"), "{not json").unwrap();
    check("damaged status /ready", &get(s.addr, "/ready", ""), 503);
    check("damaged status /metrics", &get(s.addr, "/metrics", ""), 200);
    check(
        "damaged status file",
        &get(s.addr, "/test-3.cdiff", ""),
        200,
    );
    // current points nowhere
    std::fs::remove_file(d.path().join("current")).unwrap();
    std::os::unix::fs::symlink("generations/none", d.path().join("current")).unwrap();
    check(
        "no generation: file",
        &get(s.addr, "/test-3.cdiff", ""),
        404,
    );
    // (an operator's endpoint: the record is unreadable, said as such)
    check("no generation: /trace", &get(s.addr, "/trace", ""), 500);
    get(s.addr, "/sentinel-end", "");
    s.log.wait_for("path=/sentinel-end ").unwrap();
    assert!(!s.log.text().contains("status=403"));
}
