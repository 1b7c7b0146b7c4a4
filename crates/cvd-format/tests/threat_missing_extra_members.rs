//! Threat: members smuggled in without a `.info` entry, members dropped, or no `.info`.

use crate::common::*;
use cvd_format::{Check, Error};

#[test]
fn member_not_listed_in_info_is_rejected() {
    let (listed, mut members) = good_members();
    members.push(RawMember::file("extra.ldb", b"Smuggled;Engine:51-255\n"));
    let err = assert_rejected(&cvd_with(&listed, &members), &test_opts());
    assert!(
        matches!(err, Error::MemberNotInInfo { ref name } if name == "extra.ldb"),
        "{err}"
    );
    assert_eq!(err.failed_check(), Some(Check::InfoEntries));
}

#[test]
fn listed_member_missing_from_archive_is_rejected() {
    let (listed, mut members) = good_members();
    members.pop();
    let err = assert_rejected(&cvd_with(&listed, &members), &test_opts());
    assert!(
        matches!(err, Error::MissingMember { ref name } if name == "test.ndb"),
        "{err}"
    );
}

#[test]
fn archive_without_info_is_rejected() {
    let (_, members) = good_members();
    let err = assert_rejected(
        &signed_cvd(&sample_header(5), &raw_tar(&members)),
        &test_opts(),
    );
    assert!(matches!(err, Error::InfoMember { .. }), "{err}");
}

#[test]
fn good_container_passes() {
    // The control case for every threat test above.
    let (listed, members) = good_members();
    let report = cvd_format::verify_reader(cvd_with(&listed, &members).as_slice(), &test_opts())
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = report.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["COPYING", "test.info", "test.hdb", "test.ndb"]);
    assert_eq!(report.name, "test");
}
