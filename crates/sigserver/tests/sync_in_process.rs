//! `sigserver --sync`: one process that mirrors an upstream and serves the result.
//! The upstream is another sigserver on loopback serving the official vectors.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use crate::util::{Server, fixture, get};

/// `sigserver --sync` of `mirror` from `upstream`, once its first sync finished.
fn syncing_server(mirror: &std::path::Path, upstream: &Server) -> Server {
    let root = fixture("clamav-test-root.crt");
    let s = Server::start(
        mirror,
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
    s
}

#[test]
fn sync_mirrors_the_upstream_then_serves_the_published_snapshot() {
    let up_dir = crate::util::official_upstream_dir();
    let upstream = Server::start(up_dir.path(), &[]);
    let mirror = tempfile::tempdir().unwrap();
    let s = syncing_server(mirror.path(), &upstream);

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
        crate::util::metric(&m, "sigserver_mirror_published_version{db=\"test\"}"),
        Some(6.0),
        "{m}"
    );
    // It fetched from the upstream.
    assert!(upstream.log.text().contains("path=/test.cvd status=200"));
}

#[test]
fn a_lost_or_damaged_status_file_never_lowers_the_unproven_cdiffs_metric() {
    let up_dir = crate::util::official_upstream_dir();
    let upstream = Server::start(up_dir.path(), &[]);
    let mirror = tempfile::tempdir().unwrap();
    let unproven = |s: &Server| {
        let m = s.metrics();
        crate::util::metric(&m, "sigserver_mirror_unproven_cdiffs{db=\"test\"}")
            .unwrap_or_else(|| panic!("no unproven gauge in\n{m}"))
    };
    let s = syncing_server(mirror.path(), &upstream);
    // From empty: 2..6 backfilled, chain-unproven.
    assert_eq!(unproven(&s), 5.0);
    // The generation's trust record is never served.
    assert_eq!(get(s.addr, "/.trust.json", "").status, 404);
    for how in testkit::STATUS_DAMAGES {
        testkit::damage_status(mirror.path(), how);
        // The running server reads them from the published generation.
        assert_eq!(unproven(&s), 5.0, "{how}");
        let m = s.metrics();
        let readable = crate::util::metric(&m, "sigserver_mirror_status_readable");
        assert_eq!(
            readable,
            Some(if how == "emptied" { 1.0 } else { 0.0 }),
            "{how}"
        );
        // A new process syncs (nothing new), logs the damage and rebuilds the file.
        let again = syncing_server(mirror.path(), &upstream);
        if how != "emptied" {
            let log = again.log.text();
            assert!(
                log.contains("ERROR") && log.contains("status file"),
                "{how}: {log}"
            );
        }
        assert_eq!(unproven(&again), 5.0, "{how}");
        let st = mirror_core::status::MirrorStatus::load(mirror.path()).unwrap();
        assert_eq!(
            st.databases["test"].unproven_cdiffs,
            [2, 3, 4, 5, 6],
            "{how}"
        );
    }
}
