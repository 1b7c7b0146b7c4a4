//! Atomic publish, hard-linking of unchanged files, crash leftovers, pruning.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use mirror_core::layout::{GenerationId, MirrorLayout};
use mirror_core::model::MirrorFile;
use mirror_core::prune::{PrunePolicy, prune_generations};
use mirror_core::publish::{NewGeneration, clean_staging};

fn cdiff(v: u32) -> MirrorFile {
    MirrorFile::Cdiff {
        db: "x".into(),
        version: v,
    }
}

fn publish_one(l: &MirrorLayout, versions: &[u32]) -> GenerationId {
    let prev = l.current_generation().unwrap().map(|g| l.generation(g));
    let mut g = NewGeneration::begin(l).unwrap();
    for &v in versions {
        let f = cdiff(v);
        match &prev {
            Some(p) if p.join(f.to_string()).exists() => g.link_from(p, &f).unwrap(),
            _ => g.write(&f, format!("content {v}").as_bytes()).unwrap(),
        }
    }
    g.publish().unwrap()
}

#[test]
fn publish_switches_current_and_shares_unchanged_files() {
    let tmp = tempfile::tempdir().unwrap();
    let l = MirrorLayout::new(tmp.path().join("m"));
    let g1 = publish_one(&l, &[1, 2]);
    assert_eq!(g1, GenerationId(1));
    assert_eq!(l.current_generation().unwrap(), Some(g1));
    assert_eq!(
        std::fs::read(l.current().join("x-2.cdiff")).unwrap(),
        b"content 2"
    );
    let g2 = publish_one(&l, &[2, 3]);
    assert_eq!(g2, GenerationId(2));
    assert_eq!(
        std::fs::read_link(l.current()).unwrap(),
        std::path::Path::new("generations/g-000002")
    );
    let a = std::fs::metadata(l.generation(g1).join("x-2.cdiff")).unwrap();
    let b = std::fs::metadata(l.generation(g2).join("x-2.cdiff")).unwrap();
    assert_eq!(a.ino(), b.ino(), "unchanged file is hard-linked");
    assert!(!l.current().join("x-1.cdiff").exists());
    // the old generation is untouched
    assert_eq!(
        std::fs::read(l.generation(g1).join("x-1.cdiff")).unwrap(),
        b"content 1"
    );
    // no temp symlink or build directory left
    assert!(!l.root().join(".current.tmp").exists());
    assert_eq!(std::fs::read_dir(l.staging()).unwrap().count(), 0);
}

#[test]
fn adding_a_file_twice_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let l = MirrorLayout::new(tmp.path());
    let mut g = NewGeneration::begin(&l).unwrap();
    g.write(&cdiff(1), b"a").unwrap();
    assert!(g.write(&cdiff(1), b"b").is_err());
}

#[test]
fn crash_leftovers_never_become_current_and_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let l = MirrorLayout::new(tmp.path());
    let g1 = publish_one(&l, &[1]);
    // A sync killed after renaming its generation into place but before the switch,
    // and one killed while building.
    let orphan = NewGeneration::begin(&l).unwrap();
    let orphan_id = orphan.id();
    std::fs::create_dir(l.generation(orphan_id)).unwrap();
    std::fs::write(l.generation(orphan_id).join("x-9.cdiff"), b"half").unwrap();
    assert_eq!(l.current_generation().unwrap(), Some(g1));
    // Next sync: a fresh number above the orphan, staging cleaned, orphan pruned.
    let next = NewGeneration::begin(&l).unwrap();
    assert!(next.id() > orphan_id);
    drop(next);
    let dl = l.staging().join("downloads").join("test");
    std::fs::create_dir_all(&dl).unwrap();
    for f in [
        "test.cvd",
        "test.cvd.part",
        "test.cvd.part.meta",
        "x-2.cdiff",
    ] {
        std::fs::write(dl.join(f), b"x").unwrap();
    }
    clean_staging(&l).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&dl)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["test.cvd.part", "test.cvd.part.meta"],
        "only partial downloads survive"
    );
    assert_eq!(std::fs::read_dir(l.staging()).unwrap().count(), 1);
    let removed = prune_generations(&l, &PrunePolicy::default(), SystemTime::now()).unwrap();
    assert_eq!(removed, vec![orphan_id]);
    assert_eq!(l.list_generations().unwrap(), vec![g1]);
}

#[test]
fn prune_keeps_current_previous_n_and_recent_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let l = MirrorLayout::new(tmp.path());
    let ids: Vec<_> = (0..6).map(|i| publish_one(&l, &[i])).collect();
    let policy = PrunePolicy {
        keep_previous: 2,
        grace: Duration::from_secs(600),
    };
    // Everything is recent: nothing goes.
    assert!(
        prune_generations(&l, &policy, SystemTime::now())
            .unwrap()
            .is_empty()
    );
    assert_eq!(l.list_generations().unwrap(), ids);
    // An hour later: only current + two previous stay.
    let later = SystemTime::now() + Duration::from_secs(3600);
    let removed = prune_generations(&l, &policy, later).unwrap();
    assert_eq!(removed, ids[..3].to_vec());
    assert_eq!(l.list_generations().unwrap(), ids[3..].to_vec());
    assert_eq!(l.current_generation().unwrap(), Some(ids[5]));
    assert_eq!(
        std::fs::read(l.current().join("x-5.cdiff")).unwrap(),
        b"content 5"
    );
}

/// No downgrade (issue 23): a published `.cvd` is dated by its header's build time, so
/// `Last-Modified` of any web server in front of the generation is that time.
#[test]
fn a_published_cvd_has_its_build_time_as_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let l = MirrorLayout::new(tmp.path().join("m"));
    let cvd = std::fs::read(testkit::official_vectors().join("test-4.cvd")).unwrap();
    let built = cvd_format::Header::parse(&cvd[..512])
        .unwrap()
        .build_time
        .unix_timestamp();
    let mut g = NewGeneration::begin(&l).unwrap();
    let f = MirrorFile::Cvd { db: "test".into() };
    g.write(&f, &cvd).unwrap();
    g.write(&cdiff(4), b"not a database").unwrap();
    let id = g.publish().unwrap();
    let mtime = |name: &str| {
        std::fs::metadata(l.generation(id).join(name))
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    assert_eq!(mtime("test.cvd"), built);
    assert!(
        mtime("x-4.cdiff") > built,
        "other files keep their own time"
    );
}
