//! Threats: stripping the legacy signature (turning a `.cvd` into a `.cld`-looking
//! file), half-signed headers, and data smuggled after or around the gzip stream.

use crate::common::*;
use cvd_format::{Check, CheckStatus, Error, Header, VerifyOptions};

fn strip_signature(bytes: &[u8]) -> Vec<u8> {
    let mut h = Header::parse(&bytes[..512]).unwrap_or_else(|e| panic!("{e}"));
    h.md5 = None;
    h.dsig = None;
    let mut out = h.to_bytes().unwrap_or_else(|e| panic!("{e}")).to_vec();
    out.extend_from_slice(&bytes[512..]);
    out
}

#[test]
fn stripped_signature_is_reported_and_refused_when_signatures_are_required() {
    let stripped = strip_signature(&read_official("test-6.cvd"));
    // The members are still authenticated by the official `.info` DSIG, which is what
    // the reference client relies on for a `.cld`; the report says nothing more.
    let report = cvd_format::verify_reader(stripped.as_slice(), &VerifyOptions::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.checks.legacy_signature, CheckStatus::NotPresent);
    assert_eq!(report.checks.md5, CheckStatus::NotPresent);
    assert_eq!(report.checks.info_signature, CheckStatus::Passed);
    assert!(!report.is_signed());
    // A mirror verifying upstream `.cvd` files requires the signature.
    let err = assert_rejected(&stripped, &VerifyOptions::new().require_signed(true));
    assert!(matches!(err, Error::Unsigned), "{err}");
    assert_eq!(err.failed_check(), Some(Check::LegacySignature));
}

#[test]
fn half_signed_headers_are_rejected() {
    let original = read_official("test-6.cvd");
    let base = Header::parse(&original[..512]).unwrap_or_else(|e| panic!("{e}"));
    for (md5, dsig) in [(true, false), (false, true)] {
        let mut h = base.clone();
        if !md5 {
            h.md5 = None;
        }
        if !dsig {
            h.dsig = None;
        }
        let mut bytes = h.to_bytes().unwrap_or_else(|e| panic!("{e}")).to_vec();
        bytes.extend_from_slice(&original[512..]);
        let err = assert_rejected(&bytes, &VerifyOptions::new());
        assert!(matches!(err, Error::LegacySignature { .. }), "{err}");
    }
}

#[test]
fn data_after_the_gzip_stream_is_rejected_even_when_signed() {
    // The MD5/signature cover the appended bytes (we sign them), so only the
    // structural rule catches them.
    let (listed, members) = good_members();
    let good = cvd_with(&listed, &members);
    let header = Header::parse(&good[..512]).unwrap_or_else(|e| panic!("{e}"));
    for extra in [&b"trailing garbage"[..], &good[512..]] {
        let mut body = good[512..].to_vec();
        body.extend_from_slice(extra); // garbage, or a second gzip member
        let err = assert_rejected(&resign(&header, &body), &test_opts());
        assert!(matches!(err, Error::Gzip { .. }), "{err}");
    }
}

#[test]
fn plain_body_must_start_with_copying() {
    let (listed, members) = good_members();
    let header = sample_header(5);
    let info = signed_info(&header, &listed);
    let mut all = vec![RawMember::file("test.info", &info)];
    all.extend(members);
    let tar = raw_tar(&all);
    let err = assert_rejected(&resign(&header, &tar), &test_opts());
    assert!(matches!(err, Error::Gzip { .. }), "{err}");
}

/// A container with `body` as is, MD5 and legacy signature made with the TEST key.
fn resign(header: &Header, body: &[u8]) -> Vec<u8> {
    use md5::Digest;
    let md5: [u8; 16] = md5::Md5::digest(body).into();
    let mut h = header.clone();
    h.md5 = Some(md5);
    h.dsig = Some(
        cvd_format::legacy::sign_md5(&test_keys().cvd, &md5).unwrap_or_else(|e| panic!("{e}")),
    );
    let mut out = h.to_bytes().unwrap_or_else(|e| panic!("{e}")).to_vec();
    out.extend_from_slice(body);
    out
}
