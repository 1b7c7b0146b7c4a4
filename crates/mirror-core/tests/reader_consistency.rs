//! A reader that keeps resolving `DIR/current` and reading the whole snapshot while the
//! mirror syncs over and over (updates, no-op syncs, refused bad updates) never sees a
//! mixed or partial state: every snapshot it reads is complete and chain-consistent.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::*;
use testkit::upstream::{History, Misbehaviour, PublisherKeys, Upstream};

const VERSIONS: u32 = 25;

#[test]
fn readers_only_ever_see_complete_consistent_snapshots() {
    let keys = PublisherKeys::test();
    let history = History::synthetic("demo", VERSIONS, &keys).unwrap();
    let bases: BTreeMap<u32, Vec<u8>> = history
        .releases()
        .iter()
        .map(|r| (r.version(), r.cvd().to_vec()))
        .collect();
    let bases_for_path_reader = bases.clone();
    let mut up = Upstream::builder().database(history, 1).start().unwrap();
    let mirror = tempfile::tempdir().unwrap();
    let cfg = demo_config(mirror.path(), &up, &keys)
        .keep_cdiffs(5)
        .build()
        .unwrap();
    sync_with(&cfg);

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        let dir = mirror.path().to_path_buf();
        let key_set = keys.key_set();
        std::thread::spawn(move || {
            let base = |v: u32| bases.get(&v).cloned().ok_or(format!("no base {v}"));
            let mut reads = 0u64;
            let mut seen = std::collections::BTreeSet::new();
            let mut last = 0;
            loop {
                let stopping = stop.load(Ordering::SeqCst);
                // A reader resolves `current` once and reads that snapshot (as sigserver
                // does per request): the generation never changes under it.
                let generation = std::fs::canonicalize(dir.join("current")).unwrap();
                let files = read_tree(&generation);
                let (v, cdiffs) = check_db(&files, "demo", &key_set, None, &base)
                    .unwrap_or_else(|e| panic!("read #{reads} of {}: {e}", generation.display()));
                check_only(&files, &["demo"]).unwrap();
                assert!(v >= last, "version went down: {last} -> {v}");
                assert!(cdiffs.len() <= 5);
                last = v;
                seen.insert(v);
                reads += 1;
                if stopping {
                    break;
                }
            }
            (reads, seen, last)
        })
    };

    // A naive reader that goes through the `current` path for every file (as rsync
    // does): whenever `current` pointed at the same generation before and after its
    // pass (generation names are never reused), what it read must be one snapshot.
    let path_reader = {
        let stop = Arc::clone(&stop);
        let dir = mirror.path().to_path_buf();
        let key_set = keys.key_set();
        let bases = bases_for_path_reader.clone();
        std::thread::spawn(move || {
            let base = |v: u32| bases.get(&v).cloned().ok_or(format!("no base {v}"));
            let (mut stable, mut moved) = (0u64, 0u64);
            while !stop.load(Ordering::SeqCst) {
                let g1 = std::fs::read_link(dir.join("current")).unwrap();
                let files = try_read_tree(&dir.join("current"));
                let g2 = std::fs::read_link(dir.join("current")).unwrap();
                match files {
                    Some(files) if g1 == g2 => {
                        check_db(&files, "demo", &key_set, None, &base)
                            .unwrap_or_else(|e| panic!("path read of {}: {e}", g1.display()));
                        stable += 1;
                    }
                    _ => moved += 1,
                }
            }
            (stable, moved)
        })
    };

    let mut syncs = 0;
    for v in 2..=VERSIONS {
        up.advance().unwrap();
        if v % 7 == 0 {
            // a refused update in between: the published state must not move
            up.misbehave(Misbehaviour::InconsistentSet { db: "demo".into() })
                .unwrap();
            let r = sync_with(&cfg);
            assert!(r.databases[0].result.is_err());
            up.behave().unwrap();
            syncs += 1;
        }
        let r = sync_with(&cfg);
        assert_eq!(r.databases[0].after, Some(v), "{r:?}");
        let r = sync_with(&cfg); // no-op
        assert!(matches!(r.databases[0].result, Ok(false)));
        syncs += 2;
    }
    stop.store(true, Ordering::SeqCst);
    let (reads, seen, last) = reader.join().unwrap();
    let (stable, moved) = path_reader.join().unwrap();
    println!("path reader: {stable} consistent passes, {moved} passes across a switch (discarded)");
    assert!(stable > 0);
    println!(
        "reader: {reads} complete snapshot reads during {syncs} syncs; versions seen: {seen:?}"
    );
    assert_eq!(
        last, VERSIONS,
        "the read after the last sync sees the final state"
    );
}

/// Like `read_tree`, but a file vanishing under a moving `current` is `None`, not a panic.
fn try_read_tree(dir: &std::path::Path) -> Option<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).ok()? {
        let e = e.ok()?;
        out.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).ok()?,
        );
    }
    Some(out)
}
