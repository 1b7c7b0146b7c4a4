//! Truncated files: a short file served as complete, and a transfer cut off midway.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod support;

use mirror_core::ErrorKind;
use support::*;
use testkit::http::{Fault, Scope};

#[test]
fn a_short_cvd_served_as_complete_is_refused() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    let p = up.path().join("test.cvd");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() / 2]).unwrap();
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
fn a_short_cdiff_served_as_complete_is_refused() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    let p = up.path().join("test-6.cdiff");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 40]).unwrap();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Verification,
        &["test-6.cdiff"],
    );
}

#[test]
fn a_transfer_cut_off_every_time_keeps_the_last_good_state() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    server.set_fault(Scope::path("/test.cvd"), Fault::DropAfter(3000));
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Upstream,
        &["test.cvd"],
    );
    // once the upstream behaves, the next sync completes (resuming the partial file)
    server.clear_faults();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
    assert!(db_status(mirror.path()).last_error.is_none());
}
