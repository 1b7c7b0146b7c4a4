//! Endless or oversized bodies: every download has a size cap known in advance; a body
//! above it is cut off and nothing is published.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use crate::support::*;
use mirror_core::{DatabaseSpec, ErrorKind, Limits, SyncConfig, VersionSource};
use testkit::http::{Fault, Scope};

fn cfg(mirror: &std::path::Path, url: &str) -> SyncConfig {
    SyncConfig::builder(mirror)
        .versions(VersionSource::NoDns)
        .database(DatabaseSpec::new("test").unwrap())
        .sign_roots(test_roots())
        .verify_time(pinned_time())
        .upstream(url)
        .limits(Limits {
            cvd: 64 << 10,
            cdiff: 16 << 10,
            sign: 8 << 10,
            ..Limits::default()
        })
        .build()
        .unwrap()
}

#[test]
fn oversized_files_are_cut_off_and_never_published() {
    let t = held_4_offered_6();
    let c = cfg(t.mirror.path(), &t.server.base_url());
    for (path, file) in [
        ("/test.cvd", "test.cvd"),
        ("/test-5.cdiff", "test-5.cdiff"),
        ("/test-6.cvd.sign", "test-6.cvd.sign"),
    ] {
        t.server.clear_faults();
        t.server
            .set_fault(Scope::path(path), Fault::Oversized(64 << 20));
        t.server.reset_stats();
        let r = sync_with(&c);
        let err = r.databases[0].result.as_ref().unwrap_err();
        assert!(err.to_string().contains(file), "{err}");
        assert!(
            matches!(err.kind(), ErrorKind::Upstream | ErrorKind::Verification),
            "{err}"
        );
        assert_eq!(tree(t.mirror.path()), t.before);
        // the client gave up early: the server could not even push the whole 64 MiB body
        // (what it did push is mostly socket buffers)
        assert!(
            t.server.stats().body_bytes(path) < 64 << 20,
            "{}",
            t.server.stats().body_bytes(path)
        );
    }
    t.server.clear_faults();
    let r = sync_with(&c);
    assert_eq!(r.databases[0].after, Some(6), "{r:?}");
}
