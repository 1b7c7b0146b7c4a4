//! `sigserver --sync`: one process that mirrors an upstream and serves the result.
//! The upstream is another sigserver on loopback serving the official vectors.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod util;

use util::{Server, fixture, get};

#[test]
fn sync_mirrors_the_upstream_then_serves_the_published_snapshot() {
    let up_dir = util::official_upstream_dir();
    let upstream = Server::start(up_dir.path(), &[]);

    let mirror = tempfile::tempdir().unwrap();
    let root = fixture("clamav-test-root.crt");
    let s = Server::start(
        mirror.path(),
        &[
            "--sync",
            "--upstream",
            &format!("http://{}", upstream.addr),
            "--db",
            "test",
            "--no-dns",
            "--sign-root",
            root.to_str().unwrap(),
        ],
    );
    // The first run starts at once; wait for its outcome in the log.
    let line = s.log.wait_for("sync f").unwrap();
    assert!(
        line.starts_with("inished"),
        "sync failed: {line}\n{}",
        s.log.text()
    );

    let r = get(s.addr, "/test.cvd", "");
    assert_eq!(r.status, 200);
    assert!(r.body == std::fs::read(fixture("test-6.cvd")).unwrap());
    assert_eq!(get(s.addr, "/test-6.cvd.sign", "").status, 200);
    let ready = get(s.addr, "/ready", "");
    assert_eq!(
        ready.status,
        200,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );
    let m = s.metrics();
    assert_eq!(
        util::metric(&m, "sigserver_mirror_published_version{db=\"test\"}"),
        Some(6.0),
        "{m}"
    );
    // It fetched from the upstream.
    assert!(upstream.log.text().contains("path=/test.cvd status=200"));
}
