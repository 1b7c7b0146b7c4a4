//! Threat: scripts that maximise the work of the parser and the engine within the
//! limits (issue 21 item 2).
//!
//! - Engine: every `OPEN`/`DEL`/`CLOSE` block (and every `MOVE`) copies the whole
//!   file, so `n` tiny blocks on one big file cost `n` × its size: quadratic in the
//!   script. `Limits::max_rewrites_per_file` (16) bounds it; the 17th rewrite is
//!   refused by name, whatever follows, and nothing is changed. This is a
//!   deterministic work bound (a count), not a timing.
//! - Parser: the most lines (one-word commands) and the longest line; linear time is
//!   checked by comparing 1× and 8× the input (`testkit::scaling::assert_linear`, best
//!   of several runs, 8× the input must cost < 40× the time).

use cdiff::{Database, Error, Limits, Script};

/// A database with one file of `lines` numbered lines.
fn db(lines: usize) -> Database {
    let mut text = Vec::new();
    for i in 1..=lines {
        text.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    let mut db = Database::new();
    db.insert("a.db", text);
    db.insert("b.db", b"b\n".to_vec());
    db
}

/// `blocks` × `OPEN a.db` / `XCHG 1 line` / `CLOSE`: each block rewrites the file.
fn rewrite_blocks(blocks: usize) -> Vec<u8> {
    b"OPEN a.db\nXCHG 1 line line 1\nCLOSE\n".repeat(blocks)
}

#[test]
fn repeated_rewrites_of_one_file_stop_at_the_limit() {
    let limits = Limits::default();
    let max = limits.max_rewrites_per_file;
    assert_eq!(max, 16);
    let mut ok = db(1000);
    let before = ok.clone();
    ok.apply_with_limits(&Script::parse(&rewrite_blocks(max)).unwrap(), &limits)
        .unwrap();
    assert_eq!(ok, before, "exchanging line 1 for itself changes nothing");

    // The worst case: as many blocks as the script limits allow would copy the file
    // once per block. The 17th rewrite is refused, at its `CLOSE` (script line 51).
    for blocks in [max + 1, 100_000] {
        let script = Script::parse(&rewrite_blocks(blocks)).unwrap();
        let mut d = db(1000);
        let err = d.apply_with_limits(&script, &limits).unwrap_err();
        match &err {
            Error::Limit { what, limit } => {
                assert_eq!(*limit, max as u64);
                assert!(what.contains("a.db") && what.contains("line 51"), "{err}");
            }
            other => panic!("expected the rewrite limit, got {other}"),
        }
        assert_eq!(d, before, "a refused script changes nothing");
    }
    // Appending blocks (no DEL/XCHG) do not copy the file and are not counted.
    let mut d = db(10);
    d.apply_with_limits(
        &Script::parse(&b"OPEN a.db\nADD x\nCLOSE\n".repeat(100)).unwrap(),
        &limits,
    )
    .unwrap();
    // The limit can be raised for a caller that needs it.
    let mut d = db(10);
    d.apply_with_limits(
        &Script::parse(&rewrite_blocks(40)).unwrap(),
        &limits.clone().max_rewrites_per_file(40),
    )
    .unwrap();
}

#[test]
fn moves_count_as_rewrites_of_both_files() {
    let limits = Limits::default().max_rewrites_per_file(3);
    // Each MOVE takes line 1..2 of a.db to the end of b.db.
    let script = b"MOVE a.db b.db 1 line 2 line\n".repeat(4);
    let mut d = db(100);
    let err = d
        .apply_with_limits(&Script::parse(&script).unwrap(), &limits)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Limit { what, limit: 3 } if what.contains("line 4")),
        "{err}"
    );
    let mut d = db(100);
    d.apply_with_limits(
        &Script::parse(&script[..script.len() / 4 * 3]).unwrap(),
        &limits,
    )
    .unwrap();
}

#[test]
fn script_parse_is_linear_in_lines_and_line_length() {
    let limits = Limits::default();
    // The most lines per byte: one-word commands.
    let small = b"CLOSE\n".repeat(20_000);
    let large = b"CLOSE\n".repeat(160_000);
    testkit::scaling::assert_linear(
        "script of one-word lines",
        8,
        || assert!(Script::parse_with_limits(&small, &limits).is_ok()),
        || assert!(Script::parse_with_limits(&large, &limits).is_ok()),
    );
    // The longest line (up to `max_line_len`, 10 MiB by default).
    let line = |n: usize| {
        let mut s = b"OPEN a.db\nADD ".to_vec();
        s.resize(s.len() + n, b'x');
        s.extend_from_slice(b"\nCLOSE\n");
        s
    };
    let (small, large) = (line(256 << 10), line(2 << 20));
    testkit::scaling::assert_linear(
        "one long ADD line",
        8,
        || assert!(Script::parse_with_limits(&small, &limits).is_ok()),
        || assert!(Script::parse_with_limits(&large, &limits).is_ok()),
    );
    let too_long = line(limits.max_line_len + 1);
    assert!(matches!(
        Script::parse_with_limits(&too_long, &limits),
        Err(Error::Syntax { line: 2, .. })
    ));
}
