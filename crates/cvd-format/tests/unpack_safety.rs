//! `unpack` writes only fresh regular files, only after the whole container verified,
//! and leaves nothing behind on failure.

use crate::common::*;
use cvd_format::VerifyOptions;

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| {
            e.map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn official_vector_unpacks_to_exactly_its_members() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report = cvd_format::unpack(&official("test-6.cvd"), dir.path(), &VerifyOptions::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<String> = report.members.iter().map(|m| m.name.clone()).collect();
    names.sort();
    assert_eq!(entries(dir.path()), names);
    for m in &report.members {
        let data = std::fs::read(dir.path().join(&m.name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sha256(&data), m.sha256, "{}", m.name);
    }
}

#[test]
fn late_failure_leaves_nothing_behind() {
    // Damage the very end of the body: every member streams out before the MD5
    // mismatch is found.
    let mut bytes = read_official("test-6.cvd");
    let n = bytes.len();
    bytes[n - 5] ^= 0x10;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cvd_format::unpack_reader(bytes.as_slice(), dir.path(), &VerifyOptions::new()).is_err()
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[test]
fn existing_files_are_never_replaced() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("test.hdb"), b"precious").unwrap_or_else(|e| panic!("{e}"));
    let err = cvd_format::unpack(&official("test-6.cvd"), dir.path(), &VerifyOptions::new()).err();
    assert!(err.is_some());
    assert!(
        !err.as_ref().is_some_and(|e| e.is_verification_failure()),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("test.hdb")).unwrap_or_default(),
        b"precious"
    );
    // Everything the failed call linked was removed again.
    assert_eq!(entries(dir.path()), ["test.hdb"]);
}

#[cfg(unix)]
#[test]
fn symlink_in_destination_is_not_followed() {
    let outside = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = outside.path().join("victim");
    std::os::unix::fs::symlink(&target, dir.path().join("test.ndb"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cvd_format::unpack(&official("test-6.cvd"), dir.path(), &VerifyOptions::new()).is_err()
    );
    assert!(!target.exists(), "wrote through a symlink");
}

#[test]
fn missing_destination_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let err = cvd_format::unpack(
        &official("test-1.cvd"),
        &dir.path().join("nope"),
        &VerifyOptions::new(),
    )
    .err();
    assert!(
        matches!(err, Some(ref e) if !e.is_verification_failure()),
        "{err:?}"
    );
}

#[test]
fn read_members_matches_unpack() {
    let contents = cvd_format::read_members_file(&official("bytecode.cvd"), &VerifyOptions::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(contents.report.name, "bytecode");
    assert_eq!(contents.members.len(), contents.report.members.len());
    for (m, info) in contents.members.iter().zip(&contents.report.members) {
        assert_eq!(m.name, info.name);
        assert_eq!(sha256(&m.data), info.sha256);
    }
}
