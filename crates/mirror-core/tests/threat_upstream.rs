//! Upstream down and rate-limiting: the last good state stays published, the status
//! says why, and a `Retry-After` cool-down is honoured across runs.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use crate::support::*;
use mirror_core::ErrorKind;
use testkit::http::{Fault, RetryAfter, Scope};

fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

#[test]
fn upstream_down() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    let down = closed_port_url();
    let r = sync_once(mirror.path(), std::slice::from_ref(&down));
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Upstream,
        &["test.cvd", &down],
    );
}

#[test]
fn server_errors_everywhere() {
    let t = held_4_offered_6();
    t.server.set_fault(Scope::All, Fault::Status(500));
    let r = t.sync();
    t.assert_kept(&r, ErrorKind::Upstream, &["500"]);
}

#[test]
fn rate_limited_and_the_cool_down_is_honoured_by_the_next_run() {
    let t = held_4_offered_6();
    t.server.set_fault(
        Scope::All,
        Fault::RateLimit(Some(RetryAfter::Seconds(3600))),
    );
    let r = t.sync();
    t.assert_kept(&r, ErrorKind::RateLimited, &["rate-limited"]);
    assert!(t.mirror.path().join("cooldown.json").exists());
    // The next run (a new process would read cooldown.json the same way) sends nothing.
    t.server.clear_faults();
    t.server.reset_stats();
    let r = t.sync();
    t.assert_kept(&r, ErrorKind::RateLimited, &[]);
    assert_eq!(
        t.server.stats().total_requests(),
        0,
        "no request into a cool-down"
    );
}

#[test]
fn a_rate_limited_first_tier_fails_over_to_the_second() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = serve(a.path());
    let sb = serve(b.path());
    let mirror = mirror_at(b.path(), &sb, 4);
    arrange_official(a.path(), 6, true);
    arrange_official(b.path(), 6, true);
    sa.set_fault(Scope::All, Fault::RateLimit(Some(RetryAfter::Seconds(600))));
    let r = sync_once(mirror.path(), &[sa.base_url(), sb.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(check_snapshot(&tree(mirror.path())).unwrap().0, 6);
}
