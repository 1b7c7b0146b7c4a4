//! Entry points for `cargo fuzz` targets (not part of the public API).
//!
//! Each function must never panic, whatever the input; parse → write → parse
//! round-trips are asserted where the format allows.

use crate::{Header, Info, KeySet, Limits, VerifyOptions};

/// Header parser; a parsed header must serialize back to the same 512 bytes.
pub fn header(data: &[u8]) {
    if let Ok(h) = Header::parse(data) {
        let again = h.to_bytes();
        assert!(
            matches!(again, Ok(raw) if raw[..] == data[..]),
            "header round trip"
        );
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(h) = Header::parse_line(text)
    {
        assert_eq!(
            h.to_line().ok().as_deref(),
            Some(text),
            "header line round trip"
        );
    }
}

/// `.info` parser; a parsed `.info` without DSIG rebuilds to the same bytes.
pub fn info(data: &[u8]) {
    if let Ok(info) = Info::parse("fuzz.info", data) {
        let _ = info.verify_signature("fuzz.info", &KeySet::official().info);
        if info.dsig.is_none() && data.ends_with(b"\n") {
            let rebuilt = Info::build(&info.header, &info.entries, None);
            // `build` writes MD5/signature as `X` and hashes in lowercase.
            if let Ok(rebuilt) = rebuilt
                && info.header.md5.is_none()
                && info.header.dsig.is_none()
            {
                assert_eq!(
                    data.to_ascii_lowercase(),
                    rebuilt.to_ascii_lowercase(),
                    "info round trip"
                );
            }
        }
    }
}

/// Whole-container verification with small limits (official keys: random inputs only
/// exercise parsing, so the legacy check is bypassed by also trying the `.cld` path).
pub fn container(data: &[u8]) {
    static OPTS: std::sync::OnceLock<VerifyOptions> = std::sync::OnceLock::new();
    let opts = OPTS.get_or_init(|| {
        VerifyOptions::new().limits(Limits {
            max_body_size: 1 << 20,
            max_unpacked_size: 4 << 20,
            max_member_size: 1 << 20,
            max_members: 64,
            max_info_size: 64 << 10,
        })
    });
    let _ = crate::verify_reader(data, opts);
    // Without the DSIG requirement, unsigned `.cld` inputs reach the `.info` checks.
    if let Ok(contents) = crate::read_members(data, &opts.clone().allow_unsigned_info(true)) {
        // Whatever verified must be internally consistent.
        assert_eq!(contents.members.len(), contents.report.members.len());
        assert!(!contents.report.header.is_signed() || contents.report.is_signed());
    }
}

/// `.sign` files: text parsing, then full verification of every line (CMS decoding,
/// attribute checks, signer lookup, chain search) against fixed content. Input that
/// does not start with `#clamsign` is also tried as the raw DER of one signature line.
pub fn sign(data: &[u8]) {
    crate::sign::fuzz(data);
}
