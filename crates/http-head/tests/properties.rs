//! Properties over generated heads: well-formed heads parse back to what was written,
//! every proper prefix is "more bytes needed", Content-Length is read exactly when it
//! is digits, and any bytes at all give an answer within the limits.

use http_head::{Body, Error, HeadScan, MAX_HEADERS, parse_request};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn value() -> impl Strategy<Value = String> {
    // Visible ASCII and inner spaces (no leading or trailing whitespace).
    "[!-~]([ -~]{0,20}[!-~])?"
}

/// A well-formed head: method, path, HTTP/1.1, Host, other fields (never framing or
/// Host), an optional Content-Length.
fn head() -> impl Strategy<Value = (String, String, Vec<(String, String)>, Option<u64>)> {
    (
        "[A-Z]{1,7}",
        "/[a-z0-9._-]{0,20}",
        proptest::collection::vec((token(), value()), 0..20),
        proptest::option::of(any::<u64>().prop_map(|n| n % 10_000_000_000_000_000_000)),
    )
        .prop_map(|(m, p, fields, cl)| {
            let fields = fields
                .into_iter()
                .filter(|(n, _)| {
                    !["host", "content-length", "transfer-encoding", "connection"]
                        .contains(&n.to_ascii_lowercase().as_str())
                })
                .collect();
            (m, p, fields, cl)
        })
}

fn render(method: &str, path: &str, fields: &[(String, String)], cl: Option<u64>) -> String {
    let mut s = format!("{method} {path}?q HTTP/1.1\r\nHost: example\r\n");
    for (n, v) in fields {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(n) = cl {
        s.push_str(&format!("Content-Length: {n}\r\n"));
    }
    s.push_str("\r\n");
    s
}

proptest! {
    #[test]
    fn written_heads_parse_back((method, path, fields, cl) in head(), tail in proptest::collection::vec(any::<u8>(), 0..16)) {
        let text = render(&method, &path, &fields, cl);
        let mut raw = text.clone().into_bytes();
        raw.extend_from_slice(&tail);
        let mut seen = Vec::new();
        let head = parse_request(&raw, 1 << 16, |n, v| seen.push((n.to_owned(), String::from_utf8(v.to_vec()).unwrap())))
            .unwrap()
            .unwrap();
        prop_assert_eq!(head.method, method.as_str());
        prop_assert_eq!(head.path, path.as_str());
        prop_assert_eq!(head.len, text.len());
        prop_assert_eq!(head.body, cl.map_or(Body::None, Body::Length));
        prop_assert_eq!(head.keep_alive, cl.is_none_or(|n| n == 0));
        let mut want = vec![("Host".to_owned(), "example".to_owned())];
        want.extend(fields.iter().cloned());
        if let Some(n) = cl {
            want.push(("Content-Length".to_owned(), n.to_string()));
        }
        prop_assert_eq!(seen, want);
        // Every proper prefix needs more bytes; the incremental scan, fed byte by
        // byte, finds the end exactly at its last byte, in linear work.
        let mut scan = HeadScan::default();
        for end in 1..text.len() {
            prop_assert_eq!(parse_request(&raw[..end], 1 << 16, |_, _| {}), Ok(None));
            prop_assert!(!scan.complete(&raw, 0, end));
        }
        prop_assert!(scan.complete(&raw, 0, text.len()));
        prop_assert!(scan.examined() <= 3 * text.len());
    }

    #[test]
    fn content_length_is_read_exactly_when_it_is_digits(v in "[ -~]{0,22}") {
        let raw = format!("POST / HTTP/1.1\r\nHost: m\r\nContent-Length: {v}\r\n\r\n");
        let t = v.trim_matches([' ', '\t']);
        let digits = !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit());
        match parse_request(raw.as_bytes(), 8192, |_, _| {}) {
            Ok(Some(h)) => {
                prop_assert!(digits, "{:?} accepted", v);
                prop_assert_eq!(h.body, Body::Length(t.parse().unwrap()));
            }
            Ok(None) => prop_assert!(false, "complete head reported partial"),
            // A value httparse already refuses as a field (control bytes) is malformed.
            Err(e) => prop_assert!(!digits && matches!(e, Error::ContentLength | Error::Malformed), "{:?}: {:?}", v, e),
        }
    }

    #[test]
    fn any_bytes_get_an_answer_within_the_limits(raw in proptest::collection::vec(any::<u8>(), 0..400), max in 1usize..400) {
        let mut fields = 0;
        match parse_request(&raw, max, |_, _| fields += 1) {
            Ok(Some(h)) => {
                prop_assert!(h.len <= raw.len() && h.len <= max);
                prop_assert!(fields <= MAX_HEADERS);
            }
            Ok(None) => prop_assert!(raw.len() < max),
            Err(e) => prop_assert!(matches!(e.status(), 400 | 431 | 505)),
        }
    }
}
