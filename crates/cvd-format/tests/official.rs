//! Every official vector verifies, with the header fields `sigtool -i` reports.

mod common;

use common::official;
use cvd_format::{CheckStatus, Compression, VerifyOptions, verify_file};

#[test]
fn all_official_cvds_verify() {
    for name in common::OFFICIAL_CVDS {
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
