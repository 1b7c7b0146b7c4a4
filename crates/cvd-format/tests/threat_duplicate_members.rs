//! Threat: a second member with the same name replacing a verified one.

use crate::common::*;
use cvd_format::{Check, Error};

#[test]
fn duplicate_database_member_is_rejected() {
    let (listed, mut members) = good_members();
    // Same name and same contents: still refused (a reader keeping the last one would
    // otherwise be exposed to a different second copy).
    members.push(members[0].clone());
    let err = assert_rejected(&cvd_with(&listed, &members), &test_opts());
    assert!(
        matches!(err, Error::DuplicateMember { ref name } if name == "test.hdb"),
        "{err}"
    );
    assert_eq!(err.failed_check(), Some(Check::Archive));
}

#[test]
fn duplicate_with_different_contents_is_rejected() {
    let (listed, mut members) = good_members();
    members.push(RawMember::file("test.hdb", b"evil:1:Override\n"));
    let err = assert_rejected(&cvd_with(&listed, &members), &test_opts());
    assert!(matches!(err, Error::DuplicateMember { .. }), "{err}");
}

#[test]
fn second_info_member_is_rejected() {
    let (listed, mut members) = good_members();
    let header = sample_header(5);
    members.push(RawMember::file(
        "other.info",
        &signed_info(&header, &listed),
    ));
    let err = assert_rejected(&cvd_with(&listed, &members), &test_opts());
    assert!(matches!(err, Error::InfoMember { .. }), "{err}");
}

#[test]
fn duplicate_info_entries_are_rejected() {
    let (mut listed, members) = good_members();
    listed.push(listed[0].clone());
    // Info::build refuses duplicates, so write the .info by hand (then sign it).
    let header = sample_header(5);
    let mut text = format!("{}\n", header.to_line().unwrap_or_default());
    for e in &listed {
        text.push_str(&format!(
            "{}:{}:{}\n",
            e.name,
            e.size,
            cvd_format::hex(&e.sha256)
        ));
    }
    let err = cvd_format::Info::parse("test.info", text.as_bytes()).err();
    assert!(matches!(err, Some(Error::InfoSyntax { .. })), "{err:?}");
    let _ = members;
}
