//! Tampered upstream files (a flipped byte in the `.cvd`, a cdiff or a `.sign`, a
//! `.sign` for another file): never published; the last good state stays, byte for
//! byte, and the status names the file, the URL and the failed check.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use crate::support::*;
use mirror_core::ErrorKind;

fn flip(path: &std::path::Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn flipped_byte_in_the_cvd_body() {
    let t = held_4_offered_6();
    flip(&t.up.path().join("test.cvd"), 4000);
    let r = t.sync();
    t.assert_kept(
        &r,
        ErrorKind::Verification,
        &["test.cvd", &t.server.url("/test.cvd")],
    );
}

#[test]
fn flipped_byte_in_the_cvd_header_signature() {
    let t = held_4_offered_6();
    flip(&t.up.path().join("test.cvd"), 200);
    let r = t.sync();
    t.assert_kept(&r, ErrorKind::Verification, &["test.cvd"]);
}

#[test]
fn flipped_byte_in_a_cdiff() {
    let t = held_4_offered_6();
    flip(&t.up.path().join("test-5.cdiff"), 100);
    let r = t.sync();
    t.assert_kept(
        &r,
        ErrorKind::Verification,
        &["test-5.cdiff", &t.server.url("/test-5.cdiff")],
    );
}

#[test]
fn flipped_byte_in_a_sign_file() {
    let t = held_4_offered_6();
    flip(&t.up.path().join("test-6.cvd.sign"), 3000);
    let r = t.sync();
    t.assert_kept(&r, ErrorKind::Verification, &["test-6.cvd.sign"]);
}

#[test]
fn valid_sign_for_another_file() {
    let t = held_4_offered_6();
    std::fs::copy(
        fixtures().join("test-5.cdiff.sign"),
        t.up.path().join("test-6.cdiff.sign"),
    )
    .unwrap();
    let r = t.sync();
    t.assert_kept(
        &r,
        ErrorKind::Verification,
        &["test-6.cdiff.sign", &t.server.url("/test-6.cdiff.sign")],
    );
}

#[test]
fn sign_from_an_untrusted_root_fails_with_the_official_default() {
    // The official vectors' .sign files chain to the TEST root: with the default
    // (production) root they must not verify.
    let t = held_4_offered_6();
    let cfg = mirror_core::SyncConfig::builder(t.mirror.path())
        .versions(mirror_core::VersionSource::NoDns)
        .database(mirror_core::DatabaseSpec::new("test").unwrap())
        .verify_time(pinned_time())
        .upstream(&t.server.base_url())
        .build()
        .unwrap();
    let r = sync_with(&cfg);
    t.assert_kept(&r, ErrorKind::Verification, &["test-6.cvd.sign"]);
}

#[test]
fn a_missing_required_sign_is_a_verification_failure() {
    let t = held_4_offered_6();
    std::fs::remove_file(t.up.path().join("test-6.cvd.sign")).unwrap();
    let r = t.sync();
    t.assert_kept(&r, ErrorKind::Verification, &["test-6.cvd.sign", "missing"]);
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

/// Issue 21: a `.sign` whose embedded certificates are 15 CA certificates with one
/// subject and one key (each validly "issues" every other one) plus a leaf, three
/// lines, 53 KB. The unbounded path search took hours; now the sync refuses it at
/// once and keeps the last good state.
#[test]
fn a_sign_with_looping_same_key_cas_is_refused_and_the_old_state_kept() {
    use cvd_format::fuzzing::pki::Kit;
    let t = held_4_offered_6();
    let kit = Kit::generate(2, 2048).unwrap();
    let cvd = std::fs::read(t.up.path().join("test.cvd")).unwrap();
    let text = kit.looping_sign_file(&cvd, 15, 3, 0, 1).unwrap();
    assert!(
        text.len() < 64 * 1024,
        "under the download limit: {}",
        text.len()
    );
    std::fs::write(t.up.path().join("test-6.cvd.sign"), text).unwrap();
    let r = t.sync();
    t.assert_kept(&r, ErrorKind::Verification, &["test-6.cvd.sign", "Loop CA"]);
}
