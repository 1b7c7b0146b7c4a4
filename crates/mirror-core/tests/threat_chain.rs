//! The 2013 case: upstream publishes a correctly signed `.cvd` that the published
//! cdiffs do not lead to. The mirror must refuse to publish that database, keep serving
//! the last good one and report it loudly (status kind `chain`, a counter, the report).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use crate::support::*;
use mirror_core::{DatabaseSpec, ErrorKind, SyncConfig, VersionSource};
use testkit::upstream::{History, Misbehaviour, PublisherKeys, Upstream};

fn config(mirror: &std::path::Path, up: &Upstream, keys: &PublisherKeys) -> SyncConfig {
    demo_config(mirror, up, keys).build().unwrap()
}

#[test]
fn inconsistent_cvd_and_cdiff_set_is_not_published() {
    let keys = PublisherKeys::test();
    let history = History::synthetic("demo", 6, &keys).unwrap();
    let mut up = Upstream::builder().database(history, 3).start().unwrap();
    let mirror = tempfile::tempdir().unwrap();
    let cfg = config(mirror.path(), &up, &keys);

    let r = sync_with(&cfg);
    assert_eq!(r.databases[0].after, Some(3), "{r:?}");
    up.advance().unwrap();
    let r = sync_with(&cfg);
    assert_eq!(r.databases[0].after, Some(4), "{r:?}");
    // 4 proven on top of 3; 2 and 3 backfilled (unproven) when the mirror started
    assert_eq!(r.databases[0].cdiffs, vec![2, 3, 4]);
    assert_eq!(r.databases[0].unproven_cdiffs, vec![2, 3]);
    let before = tree(mirror.path());

    // Version 5: a signed, valid .cvd — but not what 4 + demo-5.cdiff produce.
    up.advance().unwrap();
    up.misbehave(Misbehaviour::InconsistentSet { db: "demo".into() })
        .unwrap();
    let r = sync_with(&cfg);
    let err = r.databases[0].result.as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Chain, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("demo-5.cdiff") && msg.contains("demo.cvd") && msg.contains("version 5"),
        "{msg}"
    );
    // The chain check first compares against the verified `.cvd`'s member digests;
    // on a difference it re-reads the file to name the first differing line.
    let chain = mirror_core::Chain(err).to_string();
    assert!(chain.contains("demo.hdb line "), "{chain}");
    assert!(r.published.is_none());
    assert_eq!(
        tree(mirror.path()),
        before,
        "the last good state stays, byte for byte"
    );
    let st = mirror_core::status::MirrorStatus::load(mirror.path()).unwrap();
    let d = &st.databases["demo"];
    assert_eq!(d.last_error_kind.as_deref(), Some("chain"));
    assert_eq!(d.chain_failures, 1);
    assert_eq!(d.published_version, Some(4));
    assert_eq!(d.upstream_version, Some(5));
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("chain"))
    );

    // Still inconsistent on the next run: still refused, counter goes up.
    let r = sync_with(&cfg);
    assert_eq!(r.worst(), Some(ErrorKind::Chain));
    assert_eq!(tree(mirror.path()), before);
    let st = mirror_core::status::MirrorStatus::load(mirror.path()).unwrap();
    assert_eq!(st.databases["demo"].chain_failures, 2);
    assert_eq!(st.databases["demo"].consecutive_failures, 2);

    // Upstream repairs itself: the mirror moves on and the error clears.
    up.behave().unwrap();
    up.advance().unwrap();
    let r = sync_with(&cfg);
    assert_eq!(r.databases[0].after, Some(6), "{r:?}");
    assert_eq!(r.databases[0].cdiffs, vec![2, 3, 4, 5, 6]);
    assert_eq!(r.databases[0].unproven_cdiffs, vec![2, 3]);
    let st = mirror_core::status::MirrorStatus::load(mirror.path()).unwrap();
    assert!(st.databases["demo"].last_error.is_none());
    assert_eq!(st.databases["demo"].consecutive_failures, 0);
}

#[test]
fn one_bad_database_does_not_block_the_others() {
    let keys = PublisherKeys::test();
    let demo = History::synthetic("demo", 3, &keys).unwrap();
    let other = History::synthetic("other", 3, &keys).unwrap();
    let mut up = Upstream::builder()
        .database(demo, 1)
        .database(other, 1)
        .start()
        .unwrap();
    let mirror = tempfile::tempdir().unwrap();
    let spec = |n: &str| {
        DatabaseSpec::new(n)
            .unwrap()
            .keys(keys.key_set())
            .signs(false)
    };
    let cfg = SyncConfig::builder(mirror.path())
        .versions(VersionSource::NoDns)
        .database(spec("demo"))
        .database(spec("other"))
        .upstream(&up.base_url())
        .build()
        .unwrap();
    sync_with(&cfg);
    let demo_before: Vec<_> = tree(mirror.path())
        .into_iter()
        .filter(|(n, _)| n.starts_with("demo"))
        .collect();
    up.advance().unwrap();
    up.misbehave(Misbehaviour::InconsistentSet { db: "demo".into() })
        .unwrap();
    let r = sync_with(&cfg);
    assert_eq!(r.worst(), Some(ErrorKind::Chain));
    assert_eq!(r.databases[1].after, Some(2), "{r:?}");
    assert!(r.published.is_some(), "the good database is published");
    let after = tree(mirror.path());
    let demo_after: Vec<_> = after
        .iter()
        .filter(|(n, _)| n.starts_with("demo"))
        .map(|(n, b)| (n.clone(), b.clone()))
        .collect();
    assert_eq!(
        demo_after, demo_before,
        "the bad database keeps its last good files"
    );
    let rec = dns_versions::parse_manifest(&after["dns.txt"]).unwrap();
    assert_eq!(
        (rec.version_of("demo"), rec.version_of("other")),
        (Some(1), Some(2))
    );
}
