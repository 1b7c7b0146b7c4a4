//! Threat: links, directories, devices, FIFOs and tar extensions (long names, PAX)
//! inside the archive.

use crate::common::*;
use cvd_format::{Check, Error};

#[test]
fn every_non_regular_type_is_rejected() {
    for flag in [
        b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'L', b'K', b'x', b'g', b'S',
    ] {
        let m = RawMember {
            typeflag: flag,
            ..RawMember::file("link.hdb", b"")
        };
        let err = assert_rejected(&cvd_with(&[], &[m]), &test_opts());
        assert!(
            matches!(err, Error::NonRegularMember { typeflag, .. } if typeflag == char::from(flag)),
            "type {}: {err}",
            char::from(flag)
        );
        assert_eq!(err.failed_check(), Some(Check::Archive));
    }
}

#[test]
fn regular_types_zero_and_nul_are_accepted() {
    for flag in [b'0', 0] {
        let (listed, mut members) = good_members();
        members[0].typeflag = flag;
        let bytes = cvd_with(&listed, &members);
        let report = cvd_format::verify_reader(bytes.as_slice(), &test_opts());
        assert!(report.is_ok(), "type {flag}: {:?}", report.err());
    }
}

#[test]
fn bad_header_checksum_is_rejected() {
    let (listed, members) = good_members();
    let header = sample_header(5);
    let info = signed_info(&header, &listed);
    let mut all = vec![RawMember::file("test.info", &info)];
    all.extend(members);
    let mut tar = raw_tar(&all);
    tar[100] ^= 1; // mode field of the first header, checksum not updated
    let err = assert_rejected(&signed_cvd(&header, &tar), &test_opts());
    assert!(matches!(err, Error::Tar { .. }), "{err}");
}
