//! Truncated files: a short file served as complete, and a transfer cut off midway.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use crate::support::*;
use mirror_core::ErrorKind;
use testkit::http::{Fault, Scope};

#[test]
fn a_short_cvd_served_as_complete_is_refused() {
    let t = held_4_offered_6();
    let p = t.up.path().join("test.cvd");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    let r = t.sync();
    t.assert_kept(
        &r,
        ErrorKind::Verification,
        &["test.cvd", &t.server.url("/test.cvd")],
    );
}

#[test]
fn a_short_cdiff_served_as_complete_is_refused() {
    let t = held_4_offered_6();
    let p = t.up.path().join("test-6.cdiff");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 40]).unwrap();
    let r = t.sync();
    t.assert_kept(&r, ErrorKind::Verification, &["test-6.cdiff"]);
}

#[test]
fn a_transfer_cut_off_every_time_keeps_the_last_good_state() {
    let t = held_4_offered_6();
    t.server
        .set_fault(Scope::path("/test.cvd"), Fault::DropAfter(3000));
    let r = t.sync();
    t.assert_kept(&r, ErrorKind::Upstream, &["test.cvd"]);
    // once the upstream behaves, the next sync completes (resuming the partial file)
    t.server.clear_faults();
    let r = t.sync();
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(
        check_snapshot(&tree(t.mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
    assert!(db_status(t.mirror.path()).last_error.is_none());
}
