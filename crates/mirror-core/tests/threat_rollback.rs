//! Rollback protection: a download older than advertised is never published (the
//! upstream is marked stale and the next one tried), an upstream behind us never makes
//! the mirror go down, and a stale DNS record does not mean "nothing new".
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::collections::BTreeMap;

use crate::support::*;
use mirror_core::ErrorKind;

#[test]
fn older_than_advertised_is_refused() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    // the manifest says 6, but the CDN node still serves 5
    arrange_official(up.path(), 5, false);
    write_manifest(up.path(), &BTreeMap::from([("test".to_owned(), 6)]));
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Rollback,
        &["test.cvd", "version 5", "6"],
    );
}

#[test]
fn older_than_advertised_fails_over_to_the_next_upstream() {
    let stale = tempfile::tempdir().unwrap();
    let good = tempfile::tempdir().unwrap();
    let stale_server = serve(stale.path());
    let good_server = serve(good.path());
    let mirror = mirror_at(good.path(), &good_server, 4);
    arrange_official(stale.path(), 5, false);
    write_manifest(stale.path(), &BTreeMap::from([("test".to_owned(), 6)]));
    arrange_official(good.path(), 6, true);
    let r = sync_once(
        mirror.path(),
        &[stale_server.base_url(), good_server.base_url()],
    );
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
    assert_eq!(
        stale_server.stats().requests("/test-6.cdiff"),
        0,
        "stale upstream skipped"
    );
}

#[test]
fn an_upstream_behind_us_never_lowers_the_version() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 6);
    let before = tree(mirror.path());
    for older in [5, 2] {
        arrange_official(up.path(), older, true);
        let r = sync_once(mirror.path(), &[server.base_url()]);
        assert!(matches!(r.databases[0].result, Ok(false)), "{r:?}");
        assert_eq!(r.databases[0].after, Some(6));
        assert_eq!(tree(mirror.path()), before);
        // also without the manifest (header probe)
        std::fs::remove_file(up.path().join("dns.txt")).unwrap();
        let r = sync_once(mirror.path(), &[server.base_url()]);
        assert_eq!(r.databases[0].after, Some(6));
        assert_eq!(tree(mirror.path()), before);
    }
}

/// A DNS source that returns fixed versions.
struct FixedDns(BTreeMap<String, u32>);

impl mirror_core::DnsVersions for FixedDns {
    fn lookup(&mut self, _name: &str) -> Result<BTreeMap<String, u32>, mirror_core::BoxError> {
        Ok(self.0.clone())
    }
}

#[test]
fn a_stale_dns_record_does_not_mean_nothing_new() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    arrange_official(up.path(), 6, false);
    let cfg = config_builder(mirror.path(), &[server.base_url()])
        .versions(mirror_core::VersionSource::Dns {
            name: "current.cvd.example".into(),
        })
        .build()
        .unwrap();
    // DNS still says 4 (what we hold): the engine must look at upstream itself.
    let mut dns = FixedDns(BTreeMap::from([("test".to_owned(), 4)]));
    let mut t = transport(mirror.path());
    let r = mirror_core::sync(&cfg, &mut t, Some(&mut dns)).unwrap();
    assert_eq!(r.databases[0].after, Some(6), "{r:?}");
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
}

#[test]
fn dns_ahead_of_the_cdn_is_a_stale_upstream_not_an_update() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 5, false);
    let cfg = config_builder(mirror.path(), &[server.base_url()])
        .build()
        .unwrap();
    let mut dns = FixedDns(BTreeMap::from([("test".to_owned(), 6)]));
    let mut t = transport(mirror.path());
    let r = mirror_core::sync(&cfg, &mut t, Some(&mut dns)).unwrap();
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Rollback,
        &["test.cvd"],
    );
}
