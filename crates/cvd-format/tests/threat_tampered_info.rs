//! Threat: a `.info` that was changed after signing, signed by someone else, or that
//! disagrees with the container header.

use crate::common::*;
use cvd_format::{Check, Error, HeaderField, SigningKey};

#[test]
fn modified_info_fails_its_dsig() {
    let (listed, members) = good_members();
    let header = sample_header(5);
    let info = signed_info(&header, &listed);
    // Flip one hex digit in the first entry's hash.
    let mut tampered = info.clone();
    let pos = tampered.iter().position(|&b| b == b'\n').unwrap_or(0) + 20;
    tampered[pos] = if tampered[pos] == b'0' { b'1' } else { b'0' };
    let mut all = vec![RawMember::file("test.info", &tampered)];
    all.extend(members);
    let err = assert_rejected(&signed_cvd(&header, &raw_tar(&all)), &test_opts());
    assert!(
        matches!(err, Error::InfoSignature { .. } | Error::InfoSyntax { .. }),
        "{err}"
    );
}

#[test]
fn info_signed_by_another_key_is_rejected() {
    let (listed, members) = good_members();
    let header = sample_header(5);
    let stranger = SigningKey::from_pkcs8_pem(testkit::keys::TEST_CDIFF_KEY_PEM)
        .unwrap_or_else(|e| panic!("{e}"));
    let info = cvd_format::Info::build(&header, &listed, Some(&stranger))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut all = vec![RawMember::file("test.info", &info)];
    all.extend(members);
    let err = assert_rejected(&signed_cvd(&header, &raw_tar(&all)), &test_opts());
    assert!(matches!(err, Error::InfoSignature { .. }), "{err}");
    assert_eq!(err.failed_check(), Some(Check::InfoSignature));
}

#[test]
fn unsigned_info_is_rejected_unless_allowed() {
    let (listed, members) = good_members();
    let header = sample_header(5);
    let info = cvd_format::Info::build(&header, &listed, None).unwrap_or_else(|e| panic!("{e}"));
    let mut all = vec![RawMember::file("test.info", &info)];
    all.extend(members);
    let bytes = signed_cvd(&header, &raw_tar(&all));
    let err = assert_rejected(&bytes, &test_opts());
    assert!(matches!(err, Error::InfoSignature { .. }), "{err}");
    let report =
        cvd_format::verify_reader(bytes.as_slice(), &test_opts().allow_unsigned_info(true))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.checks.info_signature,
        cvd_format::CheckStatus::NotPresent
    );
}

type Change = Box<dyn Fn(&mut cvd_format::Header)>;

#[test]
fn info_header_must_match_container_header() {
    let (listed, members) = good_members();
    let container = sample_header(5);
    let variants: Vec<(HeaderField, Change)> = vec![
        (HeaderField::Version, Box::new(|h| h.version += 1)),
        (HeaderField::Signatures, Box::new(|h| h.signatures += 1)),
        (HeaderField::FunctionalityLevel, Box::new(|h| h.flevel += 1)),
        (HeaderField::SignTime, Box::new(|h| h.sign_time = Some(1))),
        (
            HeaderField::BuildTime,
            Box::new(|h| h.build_time += time::Duration::minutes(1)),
        ),
        (HeaderField::Builder, Box::new(|h| h.builder.push('x'))),
    ];
    for (field, change) in variants {
        let mut info_header = container.clone();
        change(&mut info_header);
        let info = signed_info(&info_header, &listed);
        let mut all = vec![RawMember::file("test.info", &info)];
        all.extend(members.clone());
        let err = assert_rejected(&signed_cvd(&container, &raw_tar(&all)), &test_opts());
        assert!(
            matches!(err, Error::InfoHeaderMismatch { field: f, .. } if f == field),
            "{field}: {err}"
        );
        assert_eq!(err.failed_check(), Some(Check::InfoHeader));
    }
}

#[test]
fn wrong_size_or_hash_in_info_is_rejected() {
    let (mut listed, members) = good_members();
    listed[0].size += 1;
    let err = assert_rejected(&cvd_with(&listed, &members), &test_opts());
    assert!(matches!(err, Error::MemberMismatch { .. }), "{err}");

    let (mut listed, members) = good_members();
    listed[1].sha256[0] ^= 1;
    let err = assert_rejected(&cvd_with(&listed, &members), &test_opts());
    assert!(matches!(err, Error::MemberMismatch { .. }), "{err}");
    assert_eq!(err.failed_check(), Some(Check::InfoEntries));
}
