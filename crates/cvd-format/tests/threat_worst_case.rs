//! Threat: inputs that maximise the work of the container and `.info` parsers within
//! their limits (issue 21 item 2). Each worst input gets its correct verdict, one more
//! than the limit is refused by name, and the work grows linearly: the same input
//! shape at 1× and 8× the size is compared with `testkit::scaling::assert_linear`
//! (best of several runs, 8× the input must cost < 40× the time; no absolute time).
//! The numbers of the benchmark (`benches/worst_case.rs`) are in the crate docs.
//! The `.sign` worst case (looping certificates) is `threat_sign_path`.

use crate::common::*;
use cvd_format::info::MAX_ENTRIES;
use cvd_format::{Check, Error, Info, Limits};

/// `n` empty members, all listed (`m0.hdb` ...).
fn empty_members(n: usize) -> Vec<u8> {
    let members: Vec<RawMember> = (0..n)
        .map(|i| RawMember::file(&format!("m{i}.hdb"), b""))
        .collect();
    let listed: Vec<_> = members.iter().map(entry_for).collect();
    cvd_with(&listed, &members)
}

/// The tar worst case: the most members, each of size 0 (a 512-byte header and a
/// `.info` line each, no data). At the limit it verifies; one more is refused.
#[test]
fn most_members_of_size_zero_verify_and_one_more_is_refused() {
    let limit = 2_000;
    let opts = test_opts().limits(Limits {
        max_members: limit,
        ..Limits::default()
    });
    // COPYING and test.info count as members.
    let at_limit = empty_members(limit - 2);
    let report = cvd_format::verify_reader(at_limit.as_slice(), &opts).unwrap();
    assert_eq!(report.members.len(), limit);
    let err = assert_rejected(&empty_members(limit - 1), &opts);
    assert!(
        matches!(err, Error::Limit { limit: l, .. } if l == limit as u64),
        "{err}"
    );
    assert_eq!(err.failed_check(), Some(Check::Limits));
}

#[test]
fn many_empty_members_cost_linear_time() {
    let opts = test_opts();
    let small = empty_members(500);
    let large = empty_members(4_000);
    testkit::scaling::assert_linear(
        "verify_reader on empty members",
        8,
        || assert!(cvd_format::verify_reader(small.as_slice(), &opts).is_ok()),
        || assert!(cvd_format::verify_reader(large.as_slice(), &opts).is_ok()),
    );
}

/// `.info` lines with the shortest unique names (`0:0:<sha>`, `1:0:<sha>`, ...).
fn info_text(entries: usize) -> String {
    use std::fmt::Write as _;
    let sha = "0748b843a1cea3242d70531083b84f877d8de398cfefe65509b5d3bb1e3bcb57";
    let mut text =
        "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:micasnyd:1624412045\n".to_string();
    for i in 0..entries {
        let _ = writeln!(text, "{i:x}:0:{sha}");
    }
    text
}

/// The `.info` worst case: `MAX_ENTRIES` entries with the shortest names parse (every
/// name checked for duplicates in a set); one more is refused.
#[test]
fn info_at_max_entries_parses_and_one_more_is_refused() {
    let info = Info::parse("t.info", info_text(MAX_ENTRIES).as_bytes()).unwrap();
    assert_eq!(info.entries.len(), MAX_ENTRIES);
    let err = Info::parse("t.info", info_text(MAX_ENTRIES + 1).as_bytes()).unwrap_err();
    assert!(err.to_string().contains(&MAX_ENTRIES.to_string()), "{err}");
}

#[test]
fn info_entries_cost_linear_time() {
    let small = info_text(MAX_ENTRIES / 8);
    let large = info_text(MAX_ENTRIES);
    testkit::scaling::assert_linear(
        ".info parse",
        8,
        || assert!(Info::parse("t.info", small.as_bytes()).is_ok()),
        || assert!(Info::parse("t.info", large.as_bytes()).is_ok()),
    );
}
