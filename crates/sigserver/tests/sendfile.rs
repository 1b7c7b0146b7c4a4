//! File bodies sent with `sendfile` (plain-TCP HTTP/1, bodies of 16 KiB and more) are
//! byte-identical to the copying path (`--sendfile false`): full files larger than one
//! sendfile frame (1 MiB), ranges across frame boundaries, small bodies from the cache,
//! HTTP/1.0, and pipelined requests whose heads and bodies share the write queue.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{Server, get};

fn content(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

struct Files {
    _dir: tempfile::TempDir,
    big: Vec<u8>,
    mid: Vec<u8>,
    /// Under the small-file cache's per-file limit (raised by [`servers`]) but far over
    /// what loopback socket buffers hold: with `--sendfile false` it is one in-memory
    /// body that takes many writes.
    cached: Vec<u8>,
}

fn mirror() -> Files {
    let d = tempfile::tempdir().unwrap();
    let big = content(1, (2 << 20) + 12_345);
    let mid = content(2, 20_000);
    std::fs::write(d.path().join("daily.cvd"), &big).unwrap();
    std::fs::write(d.path().join("daily-7.cdiff"), &mid).unwrap();
    let cached = content(3, 12 << 20);
    std::fs::write(d.path().join("main.cvd"), &cached).unwrap();
    Files {
        _dir: d,
        big,
        mid,
        cached,
    }
}

fn servers(f: &Files) -> Vec<(&'static str, Server)> {
    ["true", "false"]
        .into_iter()
        .map(|on| {
            let args = ["--sendfile", on, "--cache-max-file", "16777216"];
            let args = [&args[..], &["--cache-bytes", "268435456"]].concat();
            (on, Server::start(f._dir.path(), &args))
        })
        .collect()
}

#[test]
fn full_files_and_ranges_are_byte_identical() {
    let f = mirror();
    let n = f.big.len();
    for (on, s) in servers(&f) {
        let r = get(s.addr, "/daily.cvd", "");
        assert_eq!(r.status, 200, "sendfile {on}");
        assert_eq!(r.header("content-length"), Some(n.to_string().as_str()));
        assert!(r.body == f.big, "sendfile {on}: full body differs");
        let r = get(s.addr, "/daily-7.cdiff", "");
        assert!(r.body == f.mid, "sendfile {on}: 20 KB body differs");
        for (range, from, to) in [
            ("bytes=0-511", 0, 511),
            ("bytes=1000-2098151", 1000, 2_098_151),
            ("bytes=1048575-1048576", 1_048_575, 1_048_576),
            ("bytes=1048576-", 1_048_576, n - 1),
            ("bytes=-40000", n - 40_000, n - 1),
            ("bytes=7-16390", 7, 16_390),
        ] {
            let r = get(s.addr, "/daily.cvd", &format!("Range: {range}\r\n"));
            assert_eq!(r.status, 206, "sendfile {on} {range}");
            assert_eq!(
                r.header("content-range"),
                Some(format!("bytes {from}-{to}/{n}").as_str())
            );
            assert!(
                r.body == f.big[from..=to],
                "sendfile {on} {range}: body differs"
            );
        }
        let r = crate::util::request(s.addr, "GET /daily.cvd HTTP/1.0\r\n\r\n");
        assert_eq!(r.status, 200);
        assert!(r.body == f.big, "sendfile {on}: HTTP/1.0 body differs");
    }
}

#[test]
fn pipelined_requests_on_one_connection() {
    let f = mirror();
    for (on, s) in servers(&f) {
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let reqs = [
            (
                "GET",
                "/daily.cvd",
                "Range: bytes=5-30004\r\n",
                &f.big[5..30_005],
            ),
            ("GET", "/daily-7.cdiff", "", &f.mid[..]),
            ("HEAD", "/daily.cvd", "", &[][..]),
            ("GET", "/daily.cvd", "Range: bytes=0-99\r\n", &f.big[..100]),
            ("GET", "/daily.cvd", "", &f.big[..]),
            ("GET", "/daily-7.cdiff", "Range: bytes=3-\r\n", &f.mid[3..]),
        ];
        let mut raw = String::new();
        for (i, (m, p, h, _)) in reqs.iter().enumerate() {
            let close = if i + 1 == reqs.len() {
                "Connection: close\r\n"
            } else {
                ""
            };
            raw.push_str(&format!("{m} {p} HTTP/1.1\r\nHost: t\r\n{h}{close}\r\n"));
        }
        c.write_all(raw.as_bytes()).unwrap();
        for (m, p, h, want) in reqs {
            let r = crate::util::read_head(&mut c);
            assert!(
                r.status == 200 || r.status == 206,
                "sendfile {on} {m} {p} {h}"
            );
            if m == "HEAD" {
                continue;
            }
            let len: usize = r.header("content-length").unwrap().parse().unwrap();
            assert_eq!(len, want.len(), "sendfile {on} {p} {h}");
            let mut body = vec![0u8; len];
            c.read_exact(&mut body).unwrap();
            assert!(body == want, "sendfile {on} {p} {h}: body differs");
        }
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "sendfile {on}: trailing bytes after the last response"
        );
    }
}

#[test]
fn slow_reader_gets_every_byte() {
    let f = mirror();
    for (on, s) in servers(&f) {
        for (name, want) in [("daily.cvd", &f.big), ("main.cvd", &f.cached)] {
            let mut c = TcpStream::connect(s.addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let req = format!("GET /{name} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            c.write_all(req.as_bytes()).unwrap();
            let h = crate::util::read_head(&mut c);
            assert_eq!(h.status, 200);
            // Let the server fill the socket buffers and wait for writability a few times.
            let mut got = Vec::new();
            let mut buf = [0u8; 64 * 1024];
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(50));
                let k = c.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..k]);
            }
            c.read_to_end(&mut got).unwrap();
            assert!(got == *want, "sendfile {on}: slow read of {name} differs");
        }
    }
}
