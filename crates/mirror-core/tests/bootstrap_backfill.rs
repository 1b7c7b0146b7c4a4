//! Bootstrap backfill: a mirror that starts from empty (or whose chain restarts, or an
//! earlier run kept fewer cdiffs) also publishes the older cdiffs upstream still has,
//! fully signature-verified but chain-unproven, so that freshclam clients a few
//! versions behind are not stranded. Every cdiff published on top of a held base stays
//! chain-proven.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;

use crate::support::*;
use mirror_core::status::{DatabaseStatus, MirrorStatus, MirrorView};
use mirror_core::trust::{TRUST_FILE, TrustRecord};
use mirror_core::{ErrorKind, SyncConfig, VersionSource};
use testkit::upstream::{History, PublisherKeys, Upstream};

fn official_config(mirror: &Path, upstream: &str, bootstrap: bool) -> SyncConfig {
    config_builder(mirror, &[upstream.to_owned()])
        .versions(VersionSource::NoDns)
        .bootstrap_cdiffs(bootstrap)
        .build()
        .unwrap()
}

/// An upstream arranged at `version` and an empty mirror synced from it once, with
/// cdiff backfill on or off; the report of that first sync.
fn first_sync(
    version: u32,
    backfill: bool,
) -> (
    tempfile::TempDir,
    testkit::http::TestServer,
    tempfile::TempDir,
    mirror_core::SyncReport,
) {
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), version, true);
    let server = serve(up.path());
    let mirror = tempfile::tempdir().unwrap();
    let r = sync_with(&official_config(
        mirror.path(),
        &server.base_url(),
        backfill,
    ));
    (up, server, mirror, r)
}

/// An upstream arranged at version 4 and a mirror that published v4 from it with
/// backfill off: the `.cvd` alone, as an earlier mirror (or an older release) left it.
fn v4_alone() -> (
    tempfile::TempDir,
    testkit::http::TestServer,
    tempfile::TempDir,
) {
    let (up, server, mirror, _) = first_sync(4, false);
    (up, server, mirror)
}

/// An upstream arranged at version 6 without its file `missing` (whose bytes are
/// returned, to put back), and an empty mirror synced from it once.
fn first_sync_without(
    missing: &str,
) -> (
    tempfile::TempDir,
    Vec<u8>,
    testkit::http::TestServer,
    tempfile::TempDir,
    mirror_core::SyncReport,
) {
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), 6, true);
    let saved = std::fs::read(up.path().join(missing)).unwrap();
    std::fs::remove_file(up.path().join(missing)).unwrap();
    let server = serve(up.path());
    let mirror = tempfile::tempdir().unwrap();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    (up, saved, server, mirror, r)
}

/// Edits database `db`'s entry in `status.json`.
fn edit_status(mirror: &Path, db: &str, edit: impl FnOnce(&mut DatabaseStatus)) {
    let mut status = mirror_core::status::MirrorStatus::load(mirror).unwrap();
    edit(status.databases.get_mut(db).unwrap());
    status.store(mirror).unwrap();
}

/// Rewrites when database `test`'s `backfill_missing` was recorded, in `status.json`.
fn set_backfill_recorded_at(mirror: &Path, at: impl FnOnce(Option<i64>) -> Option<i64>) {
    edit_status(mirror, "test", |db| {
        db.backfill_missing_at = at(db.backfill_missing_at);
    });
}

/// The published generation's own record of its unproven cdiffs.
fn trust_record(mirror: &Path) -> Option<TrustRecord> {
    TrustRecord::read(&std::fs::canonicalize(mirror.join("current")).unwrap()).unwrap()
}

/// The unproven cdiffs of `db` as readers (`sigupdate status`, `sigserver`) see them.
fn view_unproven(mirror: &Path, db: &str) -> Vec<u32> {
    MirrorView::read(mirror).unwrap().status.databases[db]
        .unproven_cdiffs
        .clone()
}

/// The served files of the published snapshot (its trust record left out).
fn names(mirror: &Path) -> Vec<String> {
    tree(mirror)
        .into_keys()
        .filter(|n| n != mirror_core::trust::TRUST_FILE && n != mirror_core::trace::TRACE_FILE)
        .collect()
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let at = at.min(b.len() - 1);
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

#[test]
fn from_empty_publishes_the_cvd_and_every_older_cdiff_with_its_sign_as_unproven() {
    let (_up, server, mirror, r) = first_sync(6, true);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    let mut want = vec!["dns.txt".to_owned(), "test-6.cvd.sign".to_owned()];
    for k in 2..=6 {
        want.push(format!("test-{k}.cdiff"));
        want.push(format!("test-{k}.cdiff.sign"));
    }
    want.push("test.cvd".into());
    want.sort();
    assert_eq!(names(mirror.path()), want);
    // The engine could not prove them; this test can, with the official test-1.cvd.
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
    assert_eq!(r.databases[0].cdiffs, [2, 3, 4, 5, 6]);
    assert_eq!(r.databases[0].unproven_cdiffs, [2, 3, 4, 5, 6]);
    let st = db_status(mirror.path());
    assert_eq!(st.cdiffs, [2, 3, 4, 5, 6]);
    assert_eq!(st.unproven_cdiffs, [2, 3, 4, 5, 6]);
    // test-1.cdiff was asked for (keep window 30) and was not there: that ended it.
    assert_eq!(server.stats().requests("/test-1.cdiff"), 1);
    assert_eq!(server.stats().requests("/test-1.cdiff.sign"), 0);
}

#[test]
fn with_backfill_off_only_the_cvd_is_published() {
    let (_up, server, mirror, r) = first_sync(6, false);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(
        names(mirror.path()),
        ["dns.txt", "test-6.cvd.sign", "test.cvd"]
    );
    assert!(db_status(mirror.path()).unproven_cdiffs.is_empty());
    assert!(
        server
            .stats()
            .log()
            .iter()
            .all(|r| !r.path.contains("cdiff"))
    );
}

#[test]
fn an_old_cdiff_missing_upstream_ends_the_backfill_and_the_sync_succeeds() {
    for missing in ["test-3.cdiff", "test-3.cdiff.sign"] {
        let (_up, _, server, mirror, r) = first_sync_without(missing);
        assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
        let files = tree(mirror.path());
        assert_eq!(
            check_snapshot(&files).unwrap(),
            (6, vec![4, 5, 6]),
            "{missing}"
        );
        assert!(!files.contains_key("test-3.cdiff"), "{missing}");
        assert!(!files.contains_key("test-3.cdiff.sign"), "{missing}");
        assert_eq!(db_status(mirror.path()).unproven_cdiffs, [4, 5, 6]);
        assert_eq!(db_status(mirror.path()).backfill_missing, Some(3));
        assert!(db_status(mirror.path()).last_error.is_none());
        // nothing below the gap was asked for
        assert_eq!(server.stats().requests("/test-2.cdiff"), 0, "{missing}");
    }
}

#[test]
fn a_tampered_old_cdiff_or_sign_fails_that_database_and_publishes_nothing() {
    for (file, at) in [("test-3.cdiff", 200), ("test-2.cdiff.sign", 300)] {
        let up = tempfile::tempdir().unwrap();
        arrange_official(up.path(), 6, true);
        flip(&up.path().join(file), at);
        let server = serve(up.path());

        // from empty: nothing at all is published
        let mirror = tempfile::tempdir().unwrap();
        let r = sync_once(mirror.path(), &[server.base_url()]);
        let err = r.databases[0].result.as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Verification, "{err}");
        assert!(err.to_string().contains(file), "{err}");
        assert!(r.published.is_none());
        assert!(tree(mirror.path()).is_empty());
        let st = db_status(mirror.path());
        assert_eq!(st.last_error_kind.as_deref(), Some("verification"));
        assert!(st.last_error.unwrap_or_default().contains(file));
        assert!(st.unproven_cdiffs.is_empty());
    }

    // from a published state (held 4 without cdiffs, backfill wanted on the update):
    // the last good state stays byte for byte
    let (up, server, mirror) = v4_alone();
    let before = tree(mirror.path());
    assert_eq!(check_snapshot(&before).unwrap(), (4, vec![]));
    arrange_official(up.path(), 6, true);
    flip(&up.path().join("test-3.cdiff"), 200);
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_kept(
        mirror.path(),
        &before,
        &r,
        ErrorKind::Verification,
        &["test-3.cdiff"],
    );
}

#[test]
fn a_partially_backfilled_database_is_completed_while_up_to_date_and_the_404_is_remembered() {
    // An earlier mirror published test v4 alone (backfill off, or an older release).
    let (up, server, mirror) = v4_alone();
    assert_eq!(check_snapshot(&tree(mirror.path())).unwrap(), (4, vec![]));

    // Still v4 upstream: the next sync backfills 2..4 (test-1.cdiff: 404).
    server.reset_stats();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(r.databases[0].after, Some(4));
    assert!(r.published.is_some());
    assert!(
        server.stats().body_bytes("/test.cvd") <= 512,
        "the held .cvd is not downloaded again"
    );
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (4, vec![2, 3, 4])
    );
    assert_eq!(r.databases[0].unproven_cdiffs, [2, 3, 4]);
    let st = db_status(mirror.path());
    assert_eq!(st.unproven_cdiffs, [2, 3, 4]);
    assert_eq!(st.backfill_missing, Some(1));
    assert_eq!(server.stats().requests("/test-1.cdiff"), 1);

    // Up to date and complete: nothing fetched, nothing published, no new 404 probe.
    server.reset_stats();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(matches!(r.databases[0].result, Ok(false)), "{r:?}");
    assert_eq!(r.files_downloaded, 0);
    assert!(r.published.is_none());
    assert_eq!(server.stats().requests("/test-1.cdiff"), 0);

    // The next version is proven on top of 4; the unproven ones stay listed.
    arrange_official(up.path(), 6, true);
    server.reset_stats();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
    assert_eq!(r.databases[0].unproven_cdiffs, [2, 3, 4]);
    assert_eq!(db_status(mirror.path()).unproven_cdiffs, [2, 3, 4]);
    assert_eq!(server.stats().requests("/test-1.cdiff"), 0);
}

#[test]
fn a_remembered_missing_cdiff_is_asked_for_again_after_a_day() {
    let (up, saved, server, mirror, r) = first_sync_without("test-3.cdiff");
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    let st = db_status(mirror.path());
    assert_eq!(st.backfill_missing, Some(3));
    assert!(st.backfill_missing_at.is_some());
    // Upstream has it again; within the day it is not asked for (nothing changes).
    std::fs::write(up.path().join("test-3.cdiff"), saved).unwrap();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| !u), "{r:?}");
    assert_eq!(server.stats().requests("/test-3.cdiff"), 1);
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![4, 5, 6])
    );
    // A day later (the record aged by hand) the backfill asks once more and completes.
    let at = db_status(mirror.path()).backfill_missing_at.unwrap();
    set_backfill_recorded_at(mirror.path(), |_| {
        Some(at - mirror_core::status::BACKFILL_RETRY_SECS - 1)
    });
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(server.stats().requests("/test-3.cdiff"), 2);
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
    let st = db_status(mirror.path());
    assert_eq!(st.unproven_cdiffs, [2, 3, 4, 5, 6]);
    // Below 2 upstream has nothing: that is the new, fresh record.
    assert_eq!(st.backfill_missing, Some(1));
    assert!(st.backfill_missing_at.unwrap() > at - 60);
}

#[test]
fn an_expired_record_costs_one_request_and_is_renewed() {
    let (_up, server, mirror, r) = first_sync(6, true);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(db_status(mirror.path()).backfill_missing, Some(1));
    assert_eq!(server.stats().requests("/test-1.cdiff"), 1);
    // In force: the next sync does not ask.
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| !u), "{r:?}");
    assert_eq!(server.stats().requests("/test-1.cdiff"), 1);
    // A record from an older release (no time) counts as expired: asked once more,
    // still missing, recorded again with its time.
    set_backfill_recorded_at(mirror.path(), |_| None);
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| !u), "{r:?}");
    assert_eq!(server.stats().requests("/test-1.cdiff"), 2);
    let st = db_status(mirror.path());
    assert_eq!(st.backfill_missing, Some(1));
    assert!(st.backfill_missing_at.is_some());
}

#[test]
fn an_expired_record_is_dropped_when_no_backfill_needs_it() {
    let (_up, server, mirror, _) = first_sync(6, true);
    assert_eq!(db_status(mirror.path()).backfill_missing, Some(1));
    set_backfill_recorded_at(mirror.path(), |at| {
        at.map(|t| t - mirror_core::status::BACKFILL_RETRY_SECS)
    });
    // Keeping 3 cdiffs, the held chain fills the window: no backfill walk, no request,
    // and the expired record is forgotten.
    let cfg = config_builder(mirror.path(), &[server.base_url()])
        .versions(VersionSource::NoDns)
        .keep_cdiffs(3)
        .build()
        .unwrap();
    let r = sync_with(&cfg);
    assert!(r.databases[0].result.is_ok(), "{r:?}");
    assert_eq!(server.stats().requests("/test-1.cdiff"), 1);
    let st = db_status(mirror.path());
    assert_eq!((st.backfill_missing, st.backfill_missing_at), (None, None));
}

#[test]
fn a_lagging_sign_of_the_new_version_is_not_remembered_as_missing() {
    let (up, saved, server, mirror, r) = first_sync_without("test-6.cdiff.sign");
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(check_snapshot(&tree(mirror.path())).unwrap(), (6, vec![]));
    assert_eq!(db_status(mirror.path()).backfill_missing, None);
    // upstream catches up with its .sign: the next sync, still at 6, backfills
    std::fs::write(up.path().join("test-6.cdiff.sign"), saved).unwrap();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
    assert_eq!(db_status(mirror.path()).unproven_cdiffs, [2, 3, 4, 5, 6]);
    assert_eq!(db_status(mirror.path()).backfill_missing, Some(1));
}

#[test]
fn an_update_completes_a_short_chain_too() {
    let (up, server, mirror) = v4_alone();
    arrange_official(up.path(), 6, true);
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
    // 5 and 6 proven against the published v4; 2..4 backfilled
    assert_eq!(r.databases[0].unproven_cdiffs, [2, 3, 4]);
}

fn synthetic_config(mirror: &Path, up: &Upstream, keys: &PublisherKeys, keep: u32) -> SyncConfig {
    demo_config(mirror, up, keys)
        .keep_cdiffs(keep)
        .build()
        .unwrap()
}

#[test]
fn later_versions_are_chain_proven_and_unproven_ones_age_out() {
    let keys = PublisherKeys::test();
    let history = History::synthetic("demo", 9, &keys).unwrap();
    let mut up = Upstream::builder().database(history, 5).start().unwrap();
    let mirror = tempfile::tempdir().unwrap();
    let cfg = synthetic_config(mirror.path(), &up, &keys, 4);

    let r = sync_with(&cfg);
    assert_eq!(r.databases[0].after, Some(5), "{r:?}");
    // keep 4: 2..5 backfilled, all unproven
    assert_eq!(r.databases[0].cdiffs, [2, 3, 4, 5]);
    assert_eq!(r.databases[0].unproven_cdiffs, [2, 3, 4, 5]);

    for v in 6..=9u32 {
        up.advance().unwrap();
        // status.json is not what decides: a lie in either direction changes nothing.
        edit_status(mirror.path(), "demo", |d| {
            d.unproven_cdiffs = if v % 2 == 0 {
                vec![]
            } else {
                (1..=9).collect()
            };
        });
        let r = sync_with(&cfg);
        assert_eq!(r.databases[0].after, Some(v), "{r:?}");
        let cdiffs: Vec<u32> = (v - 3..=v).collect();
        assert_eq!(r.databases[0].cdiffs, cdiffs, "v{v}");
        let unproven: Vec<u32> = cdiffs.iter().copied().filter(|c| *c <= 5).collect();
        assert_eq!(r.databases[0].unproven_cdiffs, unproven, "v{v}");
        let st = mirror_core::status::MirrorStatus::load(mirror.path()).unwrap();
        assert_eq!(st.databases["demo"].unproven_cdiffs, unproven, "v{v}");
        let record = trust_record(mirror.path()).unwrap();
        assert_eq!(record.unproven_cdiffs["demo"], unproven, "v{v}");
        assert!(!unproven.contains(&v), "v{v} is proven against v{}", v - 1);
        // every published cdiff is genuinely consistent with the published .cvd
        let files = tree(mirror.path());
        let base = |b: u32| -> Result<Vec<u8>, String> {
            Ok(up
                .history("demo")
                .unwrap()
                .release(b)
                .unwrap()
                .cvd()
                .to_vec())
        };
        let (got, published) = check_db(&files, "demo", &keys.key_set(), None, &base).unwrap();
        assert_eq!((got, published), (v, cdiffs));
    }
    // by v9 the unproven ones have aged out through normal pruning
    let st = mirror_core::status::MirrorStatus::load(mirror.path()).unwrap();
    assert!(st.databases["demo"].unproven_cdiffs.is_empty());
}

#[test]
fn a_lost_or_damaged_status_file_never_makes_unproven_cdiffs_proven() {
    let (_up, server, mirror, r) = first_sync(6, true);
    assert_eq!(r.databases[0].unproven_cdiffs, [2, 3, 4, 5, 6]);
    // What the generation proves is recorded inside it.
    let record = trust_record(mirror.path()).unwrap();
    assert_eq!(record.unproven_cdiffs["test"], [2, 3, 4, 5, 6]);
    for how in testkit::STATUS_DAMAGES {
        testkit::damage_status(mirror.path(), how);
        // Readers overlay the generation's record before any sync.
        assert_eq!(
            view_unproven(mirror.path(), "test"),
            [2, 3, 4, 5, 6],
            "{how}"
        );
        let view = MirrorView::read(mirror.path()).unwrap();
        assert_eq!(view.status_error.is_some(), how != "emptied", "{how}");
        // A sync with nothing new rebuilds status.json from the generation.
        let r = sync_once(mirror.path(), &[server.base_url()]);
        assert!(matches!(r.databases[0].result, Ok(false)), "{how}: {r:?}");
        assert!(r.published.is_none(), "{how}: the generation is left alone");
        assert_eq!(r.databases[0].unproven_cdiffs, [2, 3, 4, 5, 6], "{how}");
        let st = MirrorStatus::load(mirror.path()).unwrap();
        let db = &st.databases["test"];
        assert_eq!(db.unproven_cdiffs, [2, 3, 4, 5, 6], "{how}");
        assert_eq!(db.cdiffs, [2, 3, 4, 5, 6], "{how}");
        assert_eq!(db.published_version, Some(6), "{how}");
        assert!(st.generation.is_some(), "{how}");
        assert_eq!(trust_record(mirror.path()), Some(record.clone()), "{how}");
    }
}

#[test]
fn a_generation_without_a_record_takes_a_readable_status_list_or_counts_all_unproven() {
    // A generation published by an older release: no record, the list in status.json.
    let (_up, server, mirror, _) = first_sync(6, true);
    let gen_dir = std::fs::canonicalize(mirror.path().join("current")).unwrap();
    std::fs::remove_file(gen_dir.join(TRUST_FILE)).unwrap();
    edit_status(mirror.path(), "test", |d| d.unproven_cdiffs = vec![5, 6]);
    assert_eq!(view_unproven(mirror.path(), "test"), [5, 6]);
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(matches!(r.databases[0].result, Ok(false)), "{r:?}");
    assert_eq!(r.databases[0].unproven_cdiffs, [5, 6]);
    // ... is superseded by a generation that records it, with the same files.
    assert!(
        r.published.is_some(),
        "a generation with a record is published"
    );
    assert_eq!(
        trust_record(mirror.path()).unwrap().unproven_cdiffs["test"],
        [5, 6]
    );
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
    // From now on status.json is not believed.
    edit_status(mirror.path(), "test", |d| d.unproven_cdiffs.clear());
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.published.is_none());
    assert_eq!(r.databases[0].unproven_cdiffs, [5, 6]);

    // No record and no usable status.json: every cdiff counts as unproven.
    let gen_dir = std::fs::canonicalize(mirror.path().join("current")).unwrap();
    std::fs::remove_file(gen_dir.join(TRUST_FILE)).unwrap();
    testkit::damage_status(mirror.path(), "garbage");
    assert_eq!(view_unproven(mirror.path(), "test"), [2, 3, 4, 5, 6]);
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert!(r.published.is_some());
    assert_eq!(r.databases[0].unproven_cdiffs, [2, 3, 4, 5, 6]);
    assert_eq!(
        trust_record(mirror.path()).unwrap().unproven_cdiffs["test"],
        [2, 3, 4, 5, 6]
    );
}

#[test]
fn a_corrupt_trust_record_counts_every_published_cdiff_unproven() {
    // 4 alone, then 5 and 6 on top of it: both chain-proven.
    let (up, server, mirror) = v4_alone();
    arrange_official(up.path(), 6, true);
    let cfg = official_config(mirror.path(), &server.base_url(), false);
    let r = sync_with(&cfg);
    assert_eq!(r.databases[0].cdiffs, [5, 6], "{r:?}");
    assert!(r.databases[0].unproven_cdiffs.is_empty());
    assert_eq!(
        trust_record(mirror.path()).unwrap().unproven_cdiffs["test"],
        [0u32; 0]
    );
    // A proven cdiff stays proven from one generation to the next.
    let gen_dir = std::fs::canonicalize(mirror.path().join("current")).unwrap();
    for bad in [
        &b"{\"format\":1,"[..],
        b"[]",
        b"{\"format\":7,\"unproven_cdiffs\":{}}",
    ] {
        std::fs::write(gen_dir.join(TRUST_FILE), bad).unwrap();
        assert_eq!(view_unproven(mirror.path(), "test"), [5, 6]);
    }
    // status.json (intact, listing none) does not override a damaged record.
    let r = sync_with(&cfg);
    assert!(matches!(r.databases[0].result, Ok(false)), "{r:?}");
    assert_eq!(r.databases[0].unproven_cdiffs, [5, 6]);
    assert!(r.published.is_some());
    assert_eq!(
        trust_record(mirror.path()).unwrap().unproven_cdiffs["test"],
        [5, 6]
    );
    assert_eq!(db_status(mirror.path()).unproven_cdiffs, [5, 6]);
}
