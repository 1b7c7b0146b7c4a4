//! Syncing the official `test` vectors from a real upstream on 127.0.0.1: from empty and
//! from every older version to version 6; a second sync downloads nothing.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use crate::support::*;

#[test]
fn from_empty_reaches_version_6_and_a_second_sync_downloads_nothing() {
    for manifest in [false, true] {
        let up = tempfile::tempdir().unwrap();
        arrange_official(up.path(), 6, manifest);
        let server = serve(up.path());
        let mirror = tempfile::tempdir().unwrap();
        let ups = [server.base_url()];

        let r = sync_once(mirror.path(), &ups);
        assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
        assert_eq!(r.databases[0].after, Some(6));
        let files = tree(mirror.path());
        let (v, cdiffs) = check_snapshot(&files).unwrap();
        assert_eq!(v, 6);
        // From empty there is no published base to prove older cdiffs against: they
        // are backfilled (down to test-2, the oldest upstream has) with their .sign,
        // and listed as unproven. check_snapshot proved them against the official
        // test-1.cvd, which the engine never saw.
        assert_eq!(cdiffs, [2, 3, 4, 5, 6]);
        for k in 2..=6 {
            assert!(files.contains_key(&format!("test-{k}.cdiff.sign")), "{k}");
        }
        assert_eq!(r.databases[0].unproven_cdiffs, [2, 3, 4, 5, 6]);
        assert_eq!(db_status(mirror.path()).unproven_cdiffs, [2, 3, 4, 5, 6]);
        assert!(r.bytes_downloaded > 9952, "{}", r.bytes_downloaded);

        let before = tree(mirror.path());
        server.reset_stats();
        let r2 = sync_once(mirror.path(), &ups);
        assert!(matches!(r2.databases[0].result, Ok(false)), "{r2:?}");
        assert_eq!(r2.files_downloaded, 0);
        assert_eq!(r2.published, None, "nothing new: no new generation");
        assert_eq!(tree(mirror.path()), before);
        let stats = server.stats();
        // Only the version check went over the wire: the manifest, or a 512-byte probe.
        for rec in stats.log() {
            assert!(
                rec.path == "/dns.txt" || rec.header("range") == Some("bytes=0-511"),
                "unexpected request {} {:?}",
                rec.path,
                rec.header("range")
            );
        }
        assert!(
            stats.total_body_bytes() <= 512 + 4096,
            "{}",
            stats.total_body_bytes()
        );
        println!(
            "manifest={manifest}: first sync {} bytes, second sync {} bytes over the wire ({} files)",
            r.bytes_downloaded,
            stats.total_body_bytes(),
            r2.files_downloaded
        );
    }
}

/// Version probes are as polite as freshclam's: with no DNS and no manifest upstream,
/// a second sync with nothing new transfers at most 1 KiB of response bodies, against
/// an upstream that honours `Range` and one that ignores it (which would otherwise
/// stream the whole `test.cvd` for a 512-byte probe): the probe carries
/// `If-Modified-Since` = the build time of the `test.cvd` we publish, and an upstream
/// whose file is not newer answers `304`.
#[test]
fn second_header_probe_sync_moves_at_most_1_kib_whether_or_not_range_is_honoured() {
    use testkit::http::{Fault, Scope};
    for ignore_range in [false, true] {
        let up = tempfile::tempdir().unwrap();
        arrange_official(up.path(), 6, false);
        // The upstream's `Last-Modified` is the file's build time (its mtime here).
        let cvd = up.path().join("test.cvd");
        let head = std::fs::read(&cvd).unwrap();
        let built = cvd_format::Header::parse(&head[..512]).unwrap().build_time;
        let f = std::fs::File::options().write(true).open(&cvd).unwrap();
        f.set_modified(built.into()).unwrap();
        drop(f);
        let server = serve(up.path());
        if ignore_range {
            server.set_fault(Scope::All, Fault::IgnoreRange);
        }
        let mirror = tempfile::tempdir().unwrap();
        let ups = [server.base_url()];
        let r = sync_once(mirror.path(), &ups);
        assert_eq!(r.databases[0].after, Some(6), "{r:?}");
        let first = server.stats().body_bytes("/test.cvd");

        server.reset_stats();
        let r2 = sync_once(mirror.path(), &ups);
        assert!(matches!(r2.databases[0].result, Ok(false)), "{r2:?}");
        assert_eq!(r2.databases[0].after, Some(6));
        let stats = server.stats();
        let probes = stats.log_for("/test.cvd");
        assert_eq!(probes.len(), 1, "one probe of test.cvd");
        let since = probes[0].header("if-modified-since");
        assert_eq!(
            since.map(|s| httpdate::parse_http_date(s).unwrap()),
            Some(built.into())
        );
        println!(
            "ignore_range={ignore_range}: test.cvd body bytes: first sync {first}, \
             second sync {} ({} in all)",
            stats.body_bytes("/test.cvd"),
            stats.total_body_bytes()
        );
        assert!(
            stats.total_body_bytes() <= 1024,
            "ignore_range={ignore_range}: {} body bytes",
            stats.total_body_bytes()
        );
    }
}

#[test]
fn from_each_older_version_reaches_6_with_a_proven_chain() {
    for start in 1..=5u32 {
        let up = tempfile::tempdir().unwrap();
        arrange_official(up.path(), start, true);
        let server = serve(up.path());
        let mirror = tempfile::tempdir().unwrap();
        let ups = [server.base_url()];
        let r = sync_once(mirror.path(), &ups);
        assert_eq!(r.databases[0].after, Some(start), "{r:?}");
        assert_eq!(check_snapshot(&tree(mirror.path())).unwrap().0, start);

        arrange_official(up.path(), 6, true);
        let r = sync_once(mirror.path(), &ups);
        assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
        let (v, cdiffs) = check_snapshot(&tree(mirror.path())).unwrap();
        assert_eq!(v, 6);
        // start+1..6 proven on top of `start`; 2..start backfilled at the first sync
        assert_eq!(cdiffs, (2..=6).collect::<Vec<_>>());
        assert_eq!(
            db_status(mirror.path()).unproven_cdiffs,
            (2..=start).collect::<Vec<_>>()
        );

        let r = sync_once(mirror.path(), &ups);
        assert_eq!(r.files_downloaded, 0, "start {start}: {r:?}");
    }
}

#[test]
fn stepwise_updates_accumulate_the_chain_and_respect_keep() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = tempfile::tempdir().unwrap();
    let ups = [server.base_url()];
    for v in 1..=6u32 {
        arrange_official(up.path(), v, false);
        let r = sync_once(mirror.path(), &ups);
        assert_eq!(r.databases[0].after, Some(v), "{r:?}");
        let (got, cdiffs) = check_snapshot(&tree(mirror.path())).unwrap();
        assert_eq!(got, v);
        assert_eq!(cdiffs, (2..=v).collect::<Vec<_>>());
    }
}

#[test]
fn keep_count_prunes_old_cdiffs_and_their_sign_files() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = tempfile::tempdir().unwrap();
    for v in 1..=6u32 {
        arrange_official(up.path(), v, false);
        let cfg = mirror_core::SyncConfig::builder(mirror.path())
            .versions(mirror_core::VersionSource::NoDns)
            .database(mirror_core::DatabaseSpec::new("test").unwrap())
            .sign_roots(test_roots())
            .verify_time(pinned_time())
            .upstream(&server.base_url())
            .keep_cdiffs(2)
            .build()
            .unwrap();
        let mut t = mirror_core::transport::HttpTransport::new(mirror.path()).unwrap();
        let r = mirror_core::sync(&cfg, &mut t, None).unwrap();
        assert_eq!(r.databases[0].after, Some(v));
        let files = tree(mirror.path());
        let (_, cdiffs) = check_snapshot(&files).unwrap();
        let want: Vec<u32> = (2..=v).filter(|c| c + 2 > v).collect();
        assert_eq!(cdiffs, want, "version {v}");
        let signs = files.keys().filter(|n| n.ends_with(".cdiff.sign")).count();
        assert_eq!(signs, want.len(), "a pruned cdiff's .sign goes with it");
    }
}
