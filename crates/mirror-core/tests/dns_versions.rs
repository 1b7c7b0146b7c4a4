//! Versions from a real DNS server (hickory, UDP on 127.0.0.1) through `SystemDns`: a
//! fresh record that says "newer" is used without asking upstream for versions; a
//! stale record is ignored and the manifest consulted instead.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::dns_server::start_dns;
use crate::support::*;
use mirror_core::{DatabaseSpec, SyncConfig, SystemDns, VersionSource};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sync_with_dns(
    mirror: &std::path::Path,
    upstream: &str,
    ns: SocketAddr,
) -> mirror_core::SyncReport {
    let cfg = SyncConfig::builder(mirror)
        .versions(VersionSource::Dns {
            name: "current.cvd.test.".into(),
        })
        .database(DatabaseSpec::new("test").unwrap())
        .sign_roots(test_roots())
        .verify_time(pinned_time())
        .upstream(upstream)
        .build()
        .unwrap();
    let mut t = transport(mirror);
    let mut dns = SystemDns {
        nameservers: vec![ns],
    };
    mirror_core::sync(&cfg, &mut t, Some(&mut dns)).unwrap()
}

#[test]
fn a_fresh_record_saying_newer_is_trusted_for_the_version() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    arrange_official(up.path(), 6, true);
    let ns = start_dns(&format!("1.4.3:0:0:{}:0:0:0:0:test=6", now()));
    server.reset_stats();
    let r = sync_with_dns(mirror.path(), &server.base_url(), ns);
    assert_eq!(r.databases[0].after, Some(6), "{r:?}");
    let stats = server.stats();
    assert_eq!(
        stats.requests("/dns.txt"),
        0,
        "DNS answered: no manifest needed"
    );
    assert!(
        stats
            .log_for("/test.cvd")
            .iter()
            .all(|r| r.header("range").is_none()),
        "no header probe"
    );
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6]),
        "5 and 6 proven on top of 4, 2..4 backfilled when the mirror started at 4"
    );
}

#[test]
fn a_stale_record_is_ignored_and_the_manifest_consulted() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    arrange_official(up.path(), 6, true);
    // a day old, and claiming nothing changed since 4
    let ns = start_dns(&format!("1.4.3:0:0:{}:0:0:0:0:test=4", now() - 86_400));
    server.reset_stats();
    let r = sync_with_dns(mirror.path(), &server.base_url(), ns);
    assert_eq!(r.databases[0].after, Some(6), "{r:?}");
    assert_eq!(server.stats().requests("/dns.txt"), 1);
}
