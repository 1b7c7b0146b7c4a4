//! Every official vector verifies, with the header fields `sigtool -i` reports.

use crate::common::official;
use cvd_format::{CheckStatus, Compression, VerifyOptions, verify_file};

#[test]
fn all_official_cvds_verify() {
    for name in crate::common::OFFICIAL_CVDS {
        let report = verify_file(&official(name), &VerifyOptions::new())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.compression, Compression::Gzip, "{name}");
        assert_eq!(report.checks.md5, CheckStatus::Passed, "{name}");
        assert_eq!(
            report.checks.legacy_signature,
            CheckStatus::Passed,
            "{name}"
        );
        assert_eq!(report.checks.info_signature, CheckStatus::Passed, "{name}");
        assert_eq!(report.checks.info_header, CheckStatus::Passed, "{name}");
        assert_eq!(report.checks.info_entries, CheckStatus::Passed, "{name}");
        assert!(report.is_signed());
        assert_eq!(report.members[0].name, "COPYING", "{name}");
    }
}

/// versig2 is also the `.cdiff` signature: every official cdiff verifies with the CDIFF
/// key (digest = SHA-256 of the bytes before the last `:`), and not with the INFO key.
#[test]
fn official_cdiff_signatures_verify_with_versig2() {
    use sha2::Digest;
    let keys = cvd_format::KeySet::official();
    for v in 2..=6 {
        let name = format!("test-{v}.cdiff");
        let bytes = crate::common::read_official(&name);
        let colon = bytes
            .iter()
            .rposition(|&b| b == b':')
            .unwrap_or_else(|| panic!("{name}: no ':'"));
        let sig = std::str::from_utf8(&bytes[colon + 1..])
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .trim_end();
        let digest: [u8; 32] = sha2::Sha256::digest(&bytes[..colon]).into();
        cvd_format::versig2::verify(&keys.cdiff, &digest, sig)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(cvd_format::versig2::verify(&keys.info, &digest, sig).is_err());
        let mut other = digest;
        other[0] ^= 1;
        assert!(cvd_format::versig2::verify(&keys.cdiff, &other, sig).is_err());
    }
}

/// The legacy signature recovers exactly the header MD5 for every official file, and
/// the `.info` of each lists every member but `COPYING` and itself.
#[test]
fn legacy_signature_and_info_listing_of_official_files() {
    let keys = cvd_format::KeySet::official();
    for name in crate::common::OFFICIAL_CVDS {
        let report = verify_file(&official(name), &VerifyOptions::new())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (Some(md5), Some(dsig)) = (report.header.md5, report.header.dsig.as_deref()) else {
            panic!("{name}: unsigned header");
        };
        assert_eq!(
            cvd_format::legacy::recover_md5(&keys.cvd, dsig).ok(),
            Some(md5)
        );
        assert_eq!(report.body_md5, md5);
        let info_name = format!("{}.info", report.name);
        let mut members: Vec<_> = report
            .members
            .iter()
            .map(|m| m.name.as_str())
            .filter(|n| *n != "COPYING" && *n != info_name)
            .collect();
        let mut listed: Vec<_> = report
            .info
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        members.sort();
        listed.sort();
        assert_eq!(members, listed, "{name}");
        // The .info first line is the container header without MD5/signature.
        let mut h = report.header.clone();
        h.md5 = None;
        h.dsig = None;
        assert_eq!(report.info.header, h, "{name}");
    }
}
