//! Threat: absurd sizes and counts (decompression bombs, lying size fields, huge
//! `.info`), all refused by explicit limits before the data is buffered.

use crate::common::*;
use cvd_format::{Check, Error, Limits};

#[test]
fn size_field_larger_than_member_limit() {
    let mut m = RawMember::file("big.hdb", b"x\n");
    m.size_field = Some(3 << 30);
    let err = assert_rejected(&cvd_with(&[], &[m]), &test_opts());
    assert!(matches!(err, Error::Limit { .. }), "{err}");
    assert_eq!(err.failed_check(), Some(Check::Limits));
}

#[test]
fn base256_size_field_is_rejected() {
    let mut m = RawMember::file("big.hdb", b"x\n");
    m.size_field = Some(1 << 40); // needs GNU base-256
    let err = assert_rejected(&cvd_with(&[], &[m]), &test_opts());
    assert!(matches!(err, Error::Tar { .. }), "{err}");
}

#[test]
fn size_field_beyond_the_data_is_truncation() {
    let mut m = RawMember::file("big.hdb", b"x\n");
    m.size_field = Some(1 << 20);
    let err = assert_rejected(&cvd_with(&[], &[m]), &test_opts());
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn decompression_bomb_hits_the_unpacked_limit() {
    // 8 MiB of zeros compresses to a few tens of KiB (how few depends on flate2's
    // backend: miniz_oxide, or zlib-rs once rPGP turns it on): far below the 1 MiB
    // unpacked limit it must hit.
    let m = RawMember::file("bomb.hdb", &vec![0u8; 8 << 20]);
    let entry = entry_for(&m);
    let bytes = cvd_with(&[entry], &[m]);
    assert!(bytes.len() < 256 << 10, "{} bytes", bytes.len());
    let opts = test_opts().limits(Limits {
        max_unpacked_size: 1 << 20,
        ..Limits::default()
    });
    let err = assert_rejected(&bytes, &opts);
    assert!(matches!(err, Error::Limit { .. }), "{err}");
    // With the default limits the same container is fine.
    assert!(cvd_format::verify_reader(bytes.as_slice(), &test_opts()).is_ok());
}

#[test]
fn too_many_members() {
    let members: Vec<RawMember> = (0..20)
        .map(|i| RawMember::file(&format!("m{i}.hdb"), b"x\n"))
        .collect();
    let listed: Vec<_> = members.iter().map(entry_for).collect();
    let bytes = cvd_with(&listed, &members);
    let opts = test_opts().limits(Limits {
        max_members: 10,
        ..Limits::default()
    });
    let err = assert_rejected(&bytes, &opts);
    assert!(matches!(err, Error::Limit { .. }), "{err}");
    assert!(cvd_format::verify_reader(bytes.as_slice(), &test_opts()).is_ok());
}

#[test]
fn oversized_info_member() {
    let (listed, members) = good_members();
    let bytes = cvd_with(&listed, &members);
    let opts = test_opts().limits(Limits {
        max_info_size: 64,
        ..Limits::default()
    });
    let err = assert_rejected(&bytes, &opts);
    assert!(matches!(err, Error::Limit { .. }), "{err}");
}

#[test]
fn oversized_body() {
    let (listed, members) = good_members();
    let bytes = cvd_with(&listed, &members);
    let opts = test_opts().limits(Limits {
        max_body_size: 100,
        ..Limits::default()
    });
    let err = assert_rejected(&bytes, &opts);
    assert!(matches!(err, Error::Limit { .. }), "{err}");
}

#[test]
fn non_zero_trailer_after_the_archive() {
    let (listed, members) = good_members();
    let header = sample_header(5);
    let info = signed_info(&header, &listed);
    let mut all = vec![RawMember::file("test.info", &info)];
    all.extend(members);
    let mut tar = raw_tar(&all);
    tar.extend_from_slice(b"hidden payload after the end of the archive");
    let err = assert_rejected(&signed_cvd(&header, &tar), &test_opts());
    assert!(matches!(err, Error::Tar { .. }), "{err}");
}
