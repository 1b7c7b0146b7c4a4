//! Each rule of the crate's table: what is refused, with which status, and what
//! nearby input is accepted.

use http_head::{
    Body, Error, HeadScan, MAX_HEADERS, RequestHead, Version, parse_request, target_path,
};

fn parse(raw: &[u8]) -> Result<Option<RequestHead<'_>>, Error> {
    parse_request(raw, 8192, |_, _| {})
}

fn refused(raw: &[u8]) -> Error {
    match parse(raw) {
        Err(e) => e,
        other => panic!("{:?} accepted: {other:?}", String::from_utf8_lossy(raw)),
    }
}

#[test]
fn reads_request_line_fields_and_body_framing() {
    let raw = b"POST http://m:8080/push?x#f HTTP/1.1\r\nHost: m\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\n\r\n{}GET /next";
    let mut fields = Vec::new();
    let head = parse_request(raw, 8192, |n, v| fields.push((n, v)))
        .unwrap()
        .unwrap();
    assert_eq!(head.method, "POST");
    assert_eq!(head.target, "http://m:8080/push?x#f");
    assert_eq!(head.path, "/push");
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.body, Body::Length(2));
    assert_eq!(head.body.content_length(), Some(2));
    assert!(!head.keep_alive, "a request with a body");
    assert_eq!(&raw[head.len..], b"{}GET /next");
    assert_eq!(
        fields,
        [
            ("Host", &b"m"[..]),
            ("X-A", b"1"),
            ("x-a", b"2"),
            ("Content-Length", b"2")
        ]
    );
}

#[test]
fn keep_alive_follows_version_connection_and_body() {
    let cases: [(&[u8], bool); 8] = [
        (b"GET / HTTP/1.1\r\nHost: m\r\n\r\n", true),
        (
            b"GET / HTTP/1.1\r\nHost: m\r\nConnection: Close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: m\r\nConnection: te, close\r\n\r\n",
            false,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        (
            b"GET / HTTP/1.1\r\nHost: m\r\nContent-Length: 3\r\n\r\nabc",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n\r\n",
            true,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            false,
        ),
    ];
    for (raw, keep) in cases {
        let head = parse(raw).unwrap().unwrap();
        assert_eq!(head.keep_alive, keep, "{}", String::from_utf8_lossy(raw));
    }
    let chunked = parse(b"POST / HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        (chunked.body, chunked.body.content_length()),
        (Body::Chunked, None)
    );
    let none = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert_eq!((none.body, none.version), (Body::None, Version::Http10));
}

#[test]
fn content_length_is_digits_only() {
    for v in [
        "+5",
        "-5",
        "0x10",
        "5 5",
        "5,5",
        "",
        " ",
        "1e3",
        "٥",
        "99999999999999999999",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: m\r\nContent-Length: {v}\r\n\r\n");
        assert_eq!(refused(raw.as_bytes()), Error::ContentLength, "{v:?}");
        assert_eq!(Error::ContentLength.status(), 400);
    }
    for (v, n) in [
        ("5", 5),
        (" 5 ", 5),
        ("0", 0),
        ("007", 7),
        ("9999999999999999999", 9_999_999_999_999_999_999),
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: m\r\nContent-Length: {v}\r\n\r\n");
        assert_eq!(
            parse(raw.as_bytes()).unwrap().unwrap().body,
            Body::Length(n),
            "{v:?}"
        );
    }
}

#[test]
fn ambiguous_framing_is_refused() {
    let conflicting =
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(refused(conflicting), Error::ConflictingContentLength);
    // Repeated equal values are one value (RFC 9112 §6.3).
    let same = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\ncontent-length: 01\r\n\r\n";
    assert_eq!(parse(same).unwrap().unwrap().body, Body::Length(1));
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    ] {
        assert_eq!(refused(raw), Error::LengthAndEncoding);
    }
}

#[test]
fn obs_fold_and_malformed_fields_are_refused() {
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nX-Push-Sender: a\r\n b\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHo\x01st: a\r\n\r\n",
        b"POST  / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(
            refused(raw),
            Error::Malformed,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn http11_needs_exactly_one_host() {
    assert_eq!(refused(b"GET / HTTP/1.1\r\n\r\n"), Error::Host);
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
        Error::Host
    );
    assert!(parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
}

#[test]
fn versions_other_than_1_0_and_1_1_get_505() {
    for raw in [
        &b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    ] {
        let e = refused(raw);
        assert_eq!((e, e.status()), (Error::Version, 505));
    }
}

#[test]
fn oversized_heads_get_431() {
    let many = format!(
        "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
        "X: y\r\n".repeat(MAX_HEADERS)
    );
    let e = refused(many.as_bytes());
    assert_eq!((e, e.status()), (Error::TooManyFields, 431));
    let fits = format!(
        "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
        "X: y\r\n".repeat(MAX_HEADERS - 1)
    );
    assert!(parse(fits.as_bytes()).unwrap().is_some());
    // Incomplete: more bytes may come below the limit, not at it.
    let partial = format!("GET / HTTP/1.1\r\nX: {}", "y".repeat(100));
    assert_eq!(parse_request(partial.as_bytes(), 200, |_, _| {}), Ok(None));
    let e = parse_request(partial.as_bytes(), 100, |_, _| {}).unwrap_err();
    assert_eq!((e, e.status()), (Error::TooLarge, 431));
    // Complete but over the limit.
    let complete = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(
        parse_request(complete, complete.len() - 1, |_, _| {}),
        Err(Error::TooLarge)
    );
    assert!(
        parse_request(complete, complete.len(), |_, _| {})
            .unwrap()
            .is_some()
    );
}

#[test]
fn target_forms() {
    assert_eq!(target_path("/a.cvd?q#f"), Ok("/a.cvd"));
    assert_eq!(target_path("http://h:1/a.cvd?x"), Ok("/a.cvd"));
    assert_eq!(target_path("http://h"), Ok("/"));
    assert_eq!(target_path("*"), Ok("*"));
    assert_eq!(target_path("?x"), Err(Error::EmptyPath));
    assert_eq!(
        refused(b"GET ?x HTTP/1.1\r\nHost: a\r\n\r\n"),
        Error::EmptyPath
    );
}

#[test]
fn leading_blank_lines_are_skipped_and_counted() {
    let raw = b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
    let head = parse(raw).unwrap().unwrap();
    assert_eq!(&raw[head.len..], b"rest");
    let mut scan = HeadScan::default();
    assert!(scan.complete(raw, 3, raw.len()));
}
