//! Threat: JSON state files that maximise the parser's work within the limits (issue
//! 21 item 2). `status.json` is read through `json_file::read` (at most
//! `MAX_DOCUMENT_LEN`, 64 MiB); `.trace.json` and `.trust.json` use the same reader
//! with smaller caps. serde_json stops nesting at depth 128, so the worst inputs are
//! the largest documents: the tests check the verdicts and that the work grows
//! linearly (1× and 8× the input, `testkit::scaling::assert_linear`: best of several
//! runs, 8× the input must cost < 40× the time).

use std::io::ErrorKind;

use mirror_core::json_file::MAX_DOCUMENT_LEN;
use mirror_core::status::{DatabaseStatus, MirrorStatus, STATUS_FILE};

fn write_status(bytes: &[u8]) -> (tempfile::TempDir, std::io::Result<Option<MirrorStatus>>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(STATUS_FILE), bytes).unwrap();
    let r = MirrorStatus::read(dir.path());
    (dir, r)
}

#[test]
fn deep_nesting_and_oversize_are_refused() {
    // An unknown field whose value nests 1 MiB deep: refused at serde's depth limit.
    let mut nested = br#"{"extra":"#.to_vec();
    nested.resize(nested.len() + (1 << 20), b'[');
    let (_d, r) = write_status(&nested);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidData);
    // One byte over the document limit is refused before parsing.
    let mut big = br#"{"databases":{},"last_error":""#.to_vec();
    big.resize(MAX_DOCUMENT_LEN as usize - 2, b'a');
    big.extend_from_slice(br#""}"#);
    let (_d, r) = write_status(&big);
    assert_eq!(
        r.unwrap().unwrap().last_error.map(|e| e.len()),
        Some(big.len() - 32)
    );
    big.push(b' ');
    let (_d, r) = write_status(&big);
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("larger than"), "{err}");
}

/// A `status.json` whose `last_error` is `n` `\u` escapes (6 input bytes, 2 output).
fn escapes(n: usize) -> Vec<u8> {
    let mut s = br#"{"databases":{},"last_error":""#.to_vec();
    for _ in 0..n {
        s.extend_from_slice(br"\u00e9");
    }
    s.extend_from_slice(br#""}"#);
    s
}

/// A `status.json` with `n` databases, each with a list of 100 cdiffs.
fn databases(n: u32) -> Vec<u8> {
    let mut status = MirrorStatus::default();
    for i in 0..n {
        status.databases.insert(
            format!("database-{i}"),
            DatabaseStatus {
                published_version: Some(27_000 + i),
                cdiffs: (26_900..27_000).collect(),
                ..DatabaseStatus::default()
            },
        );
    }
    mirror_core::json_file::pretty(&status).unwrap()
}

#[test]
fn json_state_costs_linear_time() {
    let parse = |b: &[u8]| serde_json::from_slice::<MirrorStatus>(b).is_ok();
    let (small, large) = (escapes(64 << 10), escapes(512 << 10));
    testkit::scaling::assert_linear(
        "status.json string of escapes",
        8,
        || assert!(parse(&small)),
        || assert!(parse(&large)),
    );
    let (small, large) = (databases(200), databases(1600));
    testkit::scaling::assert_linear(
        "status.json with many databases",
        8,
        || assert!(parse(&small)),
        || assert!(parse(&large)),
    );
}
