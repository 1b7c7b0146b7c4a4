//! Threat: version records (DNS TXT and `dns.txt`) that maximise the parser's work
//! within its limits (issue 21 item 2). A record is at most `MAX_RECORD_LEN` (4096)
//! bytes, checked before it is split, and has at most `MAX_EXTRA` (128) extension
//! fields: the work per record is bounded by a constant. These tests feed the worst
//! records and check the verdict.

use dns_versions::{Error, MAX_EXTRA, MAX_RECORD_LEN, VersionRecord, parse_manifest};

const BASE: &str = "1.4.3:62:27850:1764000000:1:90:7:339";

/// The official fields and `n` extension fields `x<i>=4294967295`.
fn with_extras(n: usize) -> String {
    let mut s = BASE.to_string();
    for i in 0..n {
        s.push_str(&format!(":x{i:0>16}=4294967295"));
    }
    s
}

#[test]
fn most_extension_fields_parse_and_one_more_is_refused() {
    let worst = with_extras(MAX_EXTRA);
    assert!(worst.len() <= MAX_RECORD_LEN);
    let r = VersionRecord::parse(&worst).unwrap();
    assert_eq!(r.extra.len(), MAX_EXTRA);
    assert_eq!(parse_manifest(format!("{worst}\n").as_bytes()).unwrap(), r);
    let err = VersionRecord::parse(&with_extras(MAX_EXTRA + 1)).unwrap_err();
    assert!(matches!(err, Error::Record { .. }), "{err}");
    assert!(err.to_string().contains("128"), "{err}");
}

#[test]
fn the_most_fields_per_byte_and_oversize_are_refused() {
    // 4096 colons: 4097 empty fields, the most a record can split into.
    let colons = ":".repeat(MAX_RECORD_LEN);
    assert!(VersionRecord::parse(&colons).is_err());
    // One byte over the limit is refused before splitting, and its error quotes only
    // an excerpt.
    let long = format!("{BASE}:{}", "a".repeat(MAX_RECORD_LEN));
    let err = VersionRecord::parse(&long).unwrap_err();
    assert!(err.to_string().contains("4096"), "{err}");
    assert!(err.to_string().len() < 400, "{err}");
    // A manifest holds one line; the check does not depend on the record.
    let two = format!("{BASE}\n{BASE}\n");
    assert!(parse_manifest(two.as_bytes()).is_err());
}
