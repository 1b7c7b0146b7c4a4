//! Tampered upstream files (a flipped byte in the `.cvd`, a cdiff or a `.sign`, a
//! `.sign` for another file): never published; the last good state stays, byte for
//! byte, and the status names the file, the URL and the failed check.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod support;

use mirror_core::ErrorKind;
use support::*;

fn flip(path: &std::path::Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn flipped_byte_in_the_cvd_body() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    flip(&up.path().join("test.cvd"), 4000);
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Verification,
        &["test.cvd", &server.url("/test.cvd")],
    );
}

#[test]
fn flipped_byte_in_the_cvd_header_signature() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    flip(&up.path().join("test.cvd"), 200);
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Verification,
        &["test.cvd"],
    );
}

#[test]
fn flipped_byte_in_a_cdiff() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    flip(&up.path().join("test-5.cdiff"), 100);
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Verification,
        &["test-5.cdiff", &server.url("/test-5.cdiff")],
    );
}

#[test]
fn flipped_byte_in_a_sign_file() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    flip(&up.path().join("test-6.cvd.sign"), 3000);
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Verification,
        &["test-6.cvd.sign"],
    );
}

#[test]
fn valid_sign_for_another_file() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    std::fs::copy(
        fixtures().join("test-5.cdiff.sign"),
        up.path().join("test-6.cdiff.sign"),
    )
    .unwrap();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Verification,
        &["test-6.cdiff.sign", &server.url("/test-6.cdiff.sign")],
    );
}

#[test]
fn sign_from_an_untrusted_root_fails_with_the_official_default() {
    // The official vectors' .sign files chain to the TEST root: with the default
    // (production) root they must not verify.
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    let cfg = mirror_core::SyncConfig::builder(mirror.path())
        .versions(mirror_core::VersionSource::NoDns)
        .database(mirror_core::DatabaseSpec::new("test").unwrap())
        .verify_time(pinned_time())
        .upstream(&server.base_url())
        .build()
        .unwrap();
    let r = sync_with(&cfg);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Verification,
        &["test-6.cvd.sign"],
    );
}

#[test]
fn a_missing_required_sign_is_a_verification_failure() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    std::fs::remove_file(up.path().join("test-6.cvd.sign")).unwrap();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Verification,
        &["test-6.cvd.sign", "missing"],
    );
}

#[test]
fn a_good_second_upstream_is_used_after_a_tampered_first() {
    let bad = tempfile::tempdir().unwrap();
    let good = tempfile::tempdir().unwrap();
    let bad_server = serve(bad.path());
    let good_server = serve(good.path());
    let mirror = mirror_at(good.path(), &good_server, 4);
    arrange_official(bad.path(), 6, true);
    arrange_official(good.path(), 6, true);
    flip(&bad.path().join("test.cvd"), 4000);
    let r = sync_once(
        mirror.path(),
        &[bad_server.base_url(), good_server.base_url()],
    );
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    let (v, cdiffs) = check_snapshot(&tree(mirror.path())).unwrap();
    assert_eq!((v, cdiffs), (6, vec![2, 3, 4, 5, 6]));
    // after rejecting the bad upstream, every later file came from the good one
    assert_eq!(bad_server.stats().requests("/test-5.cdiff"), 0);
}
