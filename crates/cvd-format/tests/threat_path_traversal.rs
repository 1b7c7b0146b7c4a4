//! Threat: member names that escape the unpack directory or are not flat file names.
//! Each container is otherwise fully and correctly signed.

use crate::common::*;
use cvd_format::{Check, Error};

fn names() -> Vec<(&'static [u8], &'static str)> {
    vec![
        (b"../evil.hdb", "parent directory"),
        (b"..", "dot-dot"),
        (b".", "dot"),
        (b"/etc/passwd", "absolute path"),
        (b"sub/evil.hdb", "slash"),
        (b"sub\\evil.hdb", "backslash"),
        (b".hidden", "hidden file"),
        (b"evil\x01.hdb", "control character"),
        (b"evil\xff.hdb", "non-ASCII"),
        (b"evil hdb", "space"),
    ]
}

#[test]
fn traversal_names_are_rejected_before_anything_is_written() {
    let opts = test_opts();
    for (name, what) in names() {
        let member = RawMember {
            name: name.to_vec(),
            ..RawMember::file("x", b"payload\n")
        };
        let bytes = cvd_with(&[], &[member]);
        let err = assert_rejected(&bytes, &opts);
        assert!(
            matches!(err, Error::UnsafeName { .. }),
            "{what}: wrong error {err}"
        );
        assert_eq!(err.failed_check(), Some(Check::Archive), "{what}");

        // Unpacking leaves the destination (and its parent) untouched.
        let outer = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dest = outer.path().join("dest");
        std::fs::create_dir(&dest).unwrap_or_else(|e| panic!("{e}"));
        let res = cvd_format::unpack_reader(bytes.as_slice(), &dest, &opts);
        assert!(res.is_err(), "{what}: unpack accepted it");
        assert_eq!(
            std::fs::read_dir(&dest).map(|d| d.count()).ok(),
            Some(0),
            "{what}"
        );
        assert_eq!(
            std::fs::read_dir(outer.path()).map(|d| d.count()).ok(),
            Some(1),
            "{what}"
        );
    }
}

#[test]
fn nul_inside_the_name_field_is_rejected() {
    // "good.hdb\0../../x": a reader that stops at NUL sees a safe name; the bytes after
    // it are a smuggling attempt and must not be ignored.
    let member = RawMember {
        name: b"good.hdb\0../../x".to_vec(),
        ..RawMember::file("x", b"payload\n")
    };
    let err = assert_rejected(&cvd_with(&[], &[member]), &test_opts());
    assert!(matches!(err, Error::UnsafeName { .. }), "{err}");
}

#[test]
fn ustar_prefix_paths_are_rejected() {
    let member = RawMember {
        prefix: Some(b"../../etc".to_vec()),
        ..RawMember::file("evil.hdb", b"payload\n")
    };
    let entry = entry_for(&member);
    let err = assert_rejected(&cvd_with(&[entry], &[member]), &test_opts());
    assert!(matches!(err, Error::UnsafeName { .. }), "{err}");
}

#[test]
fn unsafe_names_in_info_are_rejected() {
    // The .info itself may not list an unsafe name (even if it is signed).
    let header = sample_header(5);
    let bad_info = format!(
        "{}\n../x.hdb:1:{}\n",
        header.to_line().unwrap_or_default(),
        "00".repeat(32)
    );
    let err = cvd_format::Info::parse("test.info", bad_info.as_bytes()).err();
    assert!(matches!(err, Some(Error::InfoSyntax { .. })), "{err:?}");
}
