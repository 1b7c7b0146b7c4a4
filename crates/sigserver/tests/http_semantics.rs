//! Every header and status of the file responses, over real loopback connections to
//! the real binary.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use crate::util::{Server, get, head, plain_mirror, request};

#[test]
fn full_get_has_all_headers_and_exact_bytes() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let want = std::fs::read(crate::util::fixture("test-6.cvd")).unwrap();
    let r = get(s.addr, "/test.cvd", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, want);
    assert_eq!(
        r.header("content-length"),
        Some(want.len().to_string().as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=60, must-revalidate")
    );
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let etag = r.header("etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    // A database is dated by its header's build time, not by the file's mtime.
    let lm = httpdate::parse_http_date(r.header("last-modified").unwrap()).unwrap();
    let secs =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(secs(lm) as i64, build_time(&want));
    let mtime = std::fs::metadata(d.path().join("test.cvd"))
        .unwrap()
        .modified()
        .unwrap();
    assert_ne!(
        secs(lm),
        secs(mtime),
        "the fixture copy's mtime is the copy time"
    );
    assert!(r.header("date").is_some());
}

#[test]
fn content_type_and_cache_control_per_kind() {
    let d = plain_mirror();
    std::fs::write(d.path().join("test.cld"), b"cld").unwrap();
    let s = Server::start(d.path(), &[]);
    for (path, ctype, cache) in [
        (
            "/test-3.cdiff",
            "application/octet-stream",
            sigserver::CACHE_IMMUTABLE,
        ),
        (
            "/test-3.cdiff.sign",
            "application/octet-stream",
            sigserver::CACHE_IMMUTABLE,
        ),
        (
            "/test-6.cvd.sign",
            "application/octet-stream",
            sigserver::CACHE_IMMUTABLE,
        ),
        (
            "/test.cvd",
            "application/octet-stream",
            sigserver::CACHE_MUTABLE,
        ),
        (
            "/test.cld",
            "application/octet-stream",
            sigserver::CACHE_MUTABLE,
        ),
        (
            "/dns.txt",
            "text/plain; charset=utf-8",
            sigserver::CACHE_MUTABLE,
        ),
    ] {
        let r = get(s.addr, path, "");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ctype), "{path}");
        assert_eq!(r.header("cache-control"), Some(cache), "{path}");
        assert_eq!(
            r.body,
            std::fs::read(d.path().join(&path[1..])).unwrap(),
            "{path}"
        );
    }
    assert_eq!(get(s.addr, "/test-7.cdiff", "").status, 404);
    assert_eq!(get(s.addr, "/main.cvd", "").status, 404);
}

#[test]
fn head_has_the_get_headers_and_no_body() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let g = get(s.addr, "/test-4.cdiff", "");
    let h = head(s.addr, "/test-4.cdiff", "");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    for name in [
        "content-length",
        "content-type",
        "etag",
        "last-modified",
        "cache-control",
        "accept-ranges",
    ] {
        assert_eq!(h.header(name), g.header(name), "{name}");
    }
    // Range is defined for GET only: HEAD ignores it.
    let h = head(s.addr, "/test.cvd", "Range: bytes=0-511\r\n");
    assert_eq!(h.status, 200);
    assert!(h.header("content-range").is_none());
}

#[test]
fn header_probe_and_other_single_ranges_get_206() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let file = std::fs::read(crate::util::fixture("test-6.cvd")).unwrap();
    let len = file.len();
    for (range, start, end) in [
        ("bytes=0-511", 0, 511),
        ("bytes=100-", 100, len - 1),
        ("bytes=-200", len - 200, len - 1),
        ("bytes=0-999999", 0, len - 1),
        ("bytes=5-5", 5, 5),
    ] {
        let r = get(s.addr, "/test.cvd", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{len}").as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start + 1).to_string().as_str())
        );
        assert_eq!(r.body, &file[start..=end], "{range}");
    }
    // The 512-byte probe is the CVD header: it names the version.
    let r = get(s.addr, "/test.cvd", "Range: bytes=0-511\r\n");
    let header = String::from_utf8_lossy(&r.body);
    assert!(
        header.starts_with("ClamAV-VDB:") && header.split(':').nth(2) == Some("6"),
        "{header}"
    );
}

#[test]
fn unsatisfiable_multi_and_invalid_ranges() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let len = std::fs::metadata(d.path().join("test.cvd")).unwrap().len();
    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 10, len + 20),
        "bytes=-0".to_owned(),
    ] {
        let r = get(s.addr, "/test.cvd", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{len}").as_str())
        );
        assert!(r.body.is_empty());
    }
    // Several ranges, a foreign unit or a malformed header: the full file (200).
    for range in ["bytes=0-1,4-5", "lines=1-2", "bytes=9-2", "bytes=x-y"] {
        let r = get(s.addr, "/test.cvd", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.body.len() as u64, len, "{range}");
        assert!(r.header("content-range").is_none());
    }
}

#[test]
fn conditional_requests_give_304() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let r = get(s.addr, "/test-2.cdiff", "");
    let etag = r.header("etag").unwrap().to_owned();
    let lm = r.header("last-modified").unwrap().to_owned();

    let nm = get(
        s.addr,
        "/test-2.cdiff",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(nm.status, 304);
    assert!(nm.body.is_empty());
    assert_eq!(nm.header("etag"), Some(etag.as_str()));
    assert_eq!(nm.header("cache-control"), Some(sigserver::CACHE_IMMUTABLE));
    assert_eq!(
        get(
            s.addr,
            "/test-2.cdiff",
            &format!("If-None-Match: \"a\", W/{etag}\r\n")
        )
        .status,
        304
    );
    assert_eq!(
        get(s.addr, "/test-2.cdiff", "If-None-Match: *\r\n").status,
        304
    );
    assert_eq!(
        head(
            s.addr,
            "/test-2.cdiff",
            &format!("If-None-Match: {etag}\r\n")
        )
        .status,
        304
    );
    assert_eq!(
        get(s.addr, "/test-2.cdiff", "If-None-Match: \"nope\"\r\n").status,
        200
    );

    assert_eq!(
        get(
            s.addr,
            "/test-2.cdiff",
            &format!("If-Modified-Since: {lm}\r\n")
        )
        .status,
        304
    );
    assert_eq!(
        get(
            s.addr,
            "/test-2.cdiff",
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
        )
        .status,
        200
    );
    assert_eq!(
        get(s.addr, "/test-2.cdiff", "If-Modified-Since: garbage\r\n").status,
        200
    );
    // If-None-Match takes precedence over If-Modified-Since, both ways.
    assert_eq!(
        get(
            s.addr,
            "/test-2.cdiff",
            &format!("If-None-Match: \"nope\"\r\nIf-Modified-Since: {lm}\r\n")
        )
        .status,
        200
    );
    assert_eq!(
        get(
            s.addr,
            "/test-2.cdiff",
            &format!(
                "If-None-Match: {etag}\r\nIf-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
            )
        )
        .status,
        304
    );
}

#[test]
fn etag_changes_when_the_file_changes() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let a = get(s.addr, "/dns.txt", "");
    // Replace the file the way a publisher does: new file, rename over the old name.
    std::fs::write(
        d.path().join(".dns.tmp"),
        "1.4.6:62:27001:1700000100:0:90:0:335\n",
    )
    .unwrap();
    std::fs::rename(d.path().join(".dns.tmp"), d.path().join("dns.txt")).unwrap();
    let b = get(s.addr, "/dns.txt", "");
    assert_ne!(a.header("etag"), b.header("etag"));
    assert_eq!(b.body, b"1.4.6:62:27001:1700000100:0:90:0:335\n");
    let old = a.header("etag").unwrap();
    assert_eq!(
        get(s.addr, "/dns.txt", &format!("If-None-Match: {old}\r\n")).status,
        200
    );
}

#[test]
fn if_range_applies_the_range_only_while_the_validator_matches() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let r = get(s.addr, "/test.cvd", "");
    let etag = r.header("etag").unwrap().to_owned();
    let lm = r.header("last-modified").unwrap().to_owned();
    let ranged = |if_range: &str| {
        get(
            s.addr,
            "/test.cvd",
            &format!("Range: bytes=0-511\r\nIf-Range: {if_range}\r\n"),
        )
    };
    assert_eq!(ranged(&etag).status, 206);
    assert_eq!(ranged(&lm).status, 206);
    let stale = ranged("\"an-old-tag\"");
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, r.body);
    assert_eq!(ranged(&format!("W/{etag}")).status, 200);
    assert_eq!(ranged("Thu, 01 Jan 1970 00:00:00 GMT").status, 200);
}

#[test]
fn other_methods_get_405_with_allow() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"] {
        let r = request(
            s.addr,
            &format!(
                "{m} /test.cvd HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{m}");
    }
    let r = request(
        s.addr,
        "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 405);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    use std::io::{Read, Write};
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let mut c = testkit::net::connect(s.addr).unwrap();
    for v in 2..=6 {
        write!(c, "GET /test-{v}.cdiff HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let h = crate::util::read_head(&mut c);
        assert_eq!(h.status, 200);
        let n: usize = h.header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0; n];
        c.read_exact(&mut body).unwrap();
        assert_eq!(
            body,
            std::fs::read(crate::util::fixture(&format!("test-{v}.cdiff"))).unwrap()
        );
    }
}

#[test]
fn the_workspace_http_client_downloads_everything() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let agent = fetch::HttpSettings::default()
        .blocking_builder(true)
        .unwrap()
        .build()
        .unwrap();
    for name in [
        "test.cvd",
        "test-6.cvd.sign",
        "test-2.cdiff",
        "test-2.cdiff.sign",
        "dns.txt",
    ] {
        let r = agent.get(s.url(&format!("/{name}"))).send().unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let body = r.bytes().unwrap().to_vec();
        assert_eq!(body, std::fs::read(d.path().join(name)).unwrap(), "{name}");
    }
}

#[test]
fn without_the_cache_every_response_is_the_same() {
    let d = plain_mirror();
    let cached = Server::start(d.path(), &[]);
    let streamed = Server::start(d.path(), &["--cache-bytes", "0", "--chunk-bytes", "4096"]);
    for (path, headers) in [
        ("/test.cvd", ""),
        ("/test.cvd", "Range: bytes=0-511\r\n"),
        ("/test.cvd", "Range: bytes=-700\r\n"),
        ("/test.cvd", "Range: bytes=4000-\r\n"),
        ("/test-3.cdiff", ""),
        ("/test-3.cdiff", ""),
    ] {
        let a = get(cached.addr, path, headers);
        let b = get(streamed.addr, path, headers);
        assert_eq!(a.status, b.status, "{path} {headers}");
        assert_eq!(a.body, b.body, "{path} {headers}");
        assert_eq!(a.header("content-range"), b.header("content-range"));
    }
    let m = streamed.metrics();
    assert_eq!(
        crate::util::metric(&m, "sigserver_file_cache_hits_total"),
        Some(0.0)
    );
}

#[test]
fn http2_prior_knowledge_serves_the_same_bytes() {
    let Some(curl) = testkit::tools::require("curl") else {
        return;
    };
    let have_h2 = std::process::Command::new(&curl)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("HTTP2"));
    if !have_h2 {
        testkit::tools::unavailable("curl with HTTP/2", "this curl lacks the HTTP2 feature");
        return;
    }
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("body");
    let o = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-r",
            "0-511",
            "-w",
            "%{http_version} %{http_code}",
            "-o",
        ])
        .arg(&file)
        .arg(s.url("/test.cvd"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "2 206");
    let want = std::fs::read(crate::util::fixture("test-6.cvd")).unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), &want[..512]);
}

fn build_time(cvd: &[u8]) -> i64 {
    cvd_format::Header::parse(&cvd[..512])
        .unwrap()
        .build_time
        .unix_timestamp()
}

/// No downgrade (issue 23): a mirror serving `test` 3, asked by a client holding 4, 5
/// or 6 (`If-Modified-Since` = its copy's build time, as freshclam sends), answers
/// `304`, never the older body, for the header probe and the whole file, whatever the
/// file's modification time; a client holding 1 or 2 gets 3.
#[test]
fn an_older_database_is_never_sent_to_a_newer_client() {
    let d = tempfile::tempdir().unwrap();
    let three = std::fs::read(crate::util::fixture("test-3.cvd")).unwrap();
    std::fs::write(d.path().join("test.cvd"), &three).unwrap(); // mtime: now
    let s = Server::start(d.path(), &[]);
    for v in 1..=6 {
        let local = std::fs::read(crate::util::fixture(&format!("test-{v}.cvd"))).unwrap();
        let ims = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(build_time(&local) as u64),
        );
        for range in ["", "Range: bytes=0-511\r\n"] {
            let r = get(
                s.addr,
                "/test.cvd",
                &format!("If-Modified-Since: {ims}\r\n{range}"),
            );
            if v >= 3 {
                assert_eq!(r.status, 304, "client at {v} {range:?}");
                assert!(r.body.is_empty());
            } else {
                assert!(
                    r.status == 200 || r.status == 206,
                    "client at {v}: {}",
                    r.status
                );
                assert_eq!(build_time(&r.body), build_time(&three));
            }
        }
    }
    // The ETag stays the file's own (not derived from the date).
    let a = get(s.addr, "/test.cvd", "");
    let etag = a.header("etag").unwrap();
    assert_eq!(
        get(s.addr, "/test.cvd", &format!("If-None-Match: {etag}\r\n")).status,
        304
    );
    std::fs::write(d.path().join("test.cvd.new"), &three).unwrap();
    std::fs::rename(d.path().join("test.cvd.new"), d.path().join("test.cvd")).unwrap();
    let b = get(s.addr, "/test.cvd", "");
    assert_ne!(
        b.header("etag"),
        a.header("etag"),
        "a new file is a new entity"
    );
    assert_eq!(b.header("last-modified"), a.header("last-modified"));
}
