//! Publishing a new mirror snapshot: `mirror-core`'s immutable generation (unchanged
//! files hard-linked from the previous generation, new files moved in, everything
//! fsynced, one atomic symlink switch) vs the usual baselines for "make a complete new
//! copy of the mirror directory": `cp -a` of the whole tree, and `rsync -a --link-dest`
//! when `rsync` is installed. Same files, same run.
//!
//! Run: `cargo bench -p mirror-benches --bench publish`. Prints the best of five runs
//! per method and the ratios (baseline time / our time; above 1 means we are faster);
//! asserts nothing about time. Our publish fsyncs every file and directory; the
//! baselines are measured both as is and followed by `sync -f` (the durable
//! equivalent), after a global `sync` so no one pays for another's dirty pages.
//!
//! The tree is shaped like a real mirror: `main.cvd` 160 MiB, `daily.cvd` 60 MiB,
//! `bytecode.cvd` 300 KiB, 30 cdiffs of 200 KiB each for `daily` and their `.sign`
//! files. A publish replaces `daily.cvd`, adds one cdiff and drops the oldest — what
//! every daily update does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mirror_core::layout::MirrorLayout;
use mirror_core::model::MirrorFile;
use mirror_core::publish::NewGeneration;

const RUNS: usize = 5;
const MIB: usize = 1 << 20;

fn bench_dir() -> PathBuf {
    mirror_benches::bench_dir().join("publish")
}

fn files() -> Vec<(MirrorFile, usize)> {
    let mut v = vec![
        (MirrorFile::Cvd { db: "main".into() }, 160 * MIB),
        (MirrorFile::Cvd { db: "daily".into() }, 60 * MIB),
        (
            MirrorFile::Cvd {
                db: "bytecode".into(),
            },
            300 << 10,
        ),
    ];
    for c in 27_001..=27_030u32 {
        v.push((
            MirrorFile::Cdiff {
                db: "daily".into(),
                version: c,
            },
            200 << 10,
        ));
        v.push((
            MirrorFile::CdiffSign {
                db: "daily".into(),
                version: c,
            },
            5 << 10,
        ));
    }
    v
}

/// One publish with mirror-core: link the unchanged files, move in the new ones.
fn publish_ours(
    layout: &MirrorLayout,
    new_daily: &Path,
    new_cdiff: &Path,
    next: u32,
) -> Result<Duration> {
    let start = Instant::now();
    let cur = layout
        .current_generation()?
        .map(|g| layout.generation(g))
        .context("no current generation")?;
    let mut g = NewGeneration::begin(layout)?;
    let snapshot_files = std::fs::read_dir(&cur)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(MirrorFile::parse))
        .collect::<Vec<_>>();
    for f in snapshot_files {
        let drop = match &f {
            MirrorFile::Cvd { db } => db == "daily",
            MirrorFile::Cdiff { version, .. } | MirrorFile::CdiffSign { version, .. } => {
                *version + 30 <= next
            }
            _ => false,
        };
        if !drop {
            g.link_from(&cur, &f)?;
        }
    }
    g.move_in(new_daily, &MirrorFile::Cvd { db: "daily".into() })?;
    g.move_in(
        new_cdiff,
        &MirrorFile::Cdiff {
            db: "daily".into(),
            version: next,
        },
    )?;
    g.publish()?;
    Ok(start.elapsed())
}

fn run(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let st = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(start.elapsed())
}

fn main() -> Result<()> {
    let dir = bench_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let layout = MirrorLayout::new(dir.join("mirror"));
    let mut g = NewGeneration::begin(&layout)?;
    for (i, (f, len)) in files().into_iter().enumerate() {
        g.write(&f, &mirror_benches::filler(len, u64::from(i as u8)))?;
    }
    g.publish()?;
    let src_dir = dir.join("incoming");
    std::fs::create_dir_all(&src_dir)?;

    let mut ours = Vec::new();
    let mut cp = Vec::new();
    let mut cp_sync = Vec::new();
    let mut rsync = Vec::new();
    let mut rsync_sync = Vec::new();
    let have_rsync = testkit::tools::require("rsync").is_some();
    for run_no in 0..RUNS {
        let next = 27_031 + run_no as u32;
        let new_daily = src_dir.join("daily.cvd");
        let new_cdiff = src_dir.join("cdiff");
        std::fs::write(
            &new_daily,
            mirror_benches::filler(60 * MIB, u64::from(200 + run_no as u8)),
        )?;
        std::fs::write(
            &new_cdiff,
            mirror_benches::filler(200 << 10, u64::from(100 + run_no as u8)),
        )?;
        // baselines first (they copy the current snapshot, as a copy-based publisher does)
        let cur = std::fs::canonicalize(layout.current())?;
        let cp_dst = dir.join(format!("cp-{run_no}"));
        cp.push(run(Command::new("cp").arg("-a").arg(&cur).arg(&cp_dst))?);
        std::fs::remove_dir_all(&cp_dst)?;
        run(&mut Command::new("sync"))?;
        // the durable variant: copy, then flush the file system (what we guarantee)
        let cp_dst = dir.join(format!("cps-{run_no}"));
        cp_sync.push(run(Command::new("sh")
            .arg("-c")
            .arg("cp -a \"$1\" \"$2\" && sync -f \"$2\"")
            .arg("sh")
            .arg(&cur)
            .arg(&cp_dst))?);
        std::fs::remove_dir_all(&cp_dst)?;
        if have_rsync {
            let rs_dst = dir.join(format!("rsync-{run_no}"));
            rsync.push(run(Command::new("rsync")
                .arg("-a")
                .arg(format!("--link-dest={}", cur.display()))
                .arg(format!("{}/", cur.display()))
                .arg(&rs_dst))?);
            std::fs::remove_dir_all(&rs_dst)?;
            run(&mut Command::new("sync"))?;
            let rs_dst = dir.join(format!("rsyncs-{run_no}"));
            rsync_sync.push(run(Command::new("sh")
                .arg("-c")
                .arg("rsync -a --link-dest=\"$1\" \"$1/\" \"$2\" && sync -f \"$2\"")
                .arg("sh")
                .arg(&cur)
                .arg(&rs_dst))?);
            std::fs::remove_dir_all(&rs_dst)?;
        }
        run(&mut Command::new("sync"))?;
        ours.push(publish_ours(&layout, &new_daily, &new_cdiff, next)?);
        mirror_core::prune::prune_generations(
            &layout,
            &mirror_core::prune::PrunePolicy {
                keep_previous: 1,
                grace: Duration::ZERO,
            },
            std::time::SystemTime::now(),
        )?;
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let o = best(&ours);
    println!(
        "publish one daily update into a ~230 MiB mirror ({} files), best of {RUNS}:",
        files().len()
    );
    println!("  mirror-core (hard links + fsync + atomic switch): {o:>10.2?}");
    let c = best(&cp);
    println!(
        "  cp -a of the snapshot (no fsync):                 {c:>10.2?}   ratio cp/ours = {:.1}",
        c.as_secs_f64() / o.as_secs_f64()
    );
    let c = best(&cp_sync);
    println!(
        "  cp -a + sync -f (durable):                        {c:>10.2?}   ratio = {:.1}",
        c.as_secs_f64() / o.as_secs_f64()
    );
    if have_rsync {
        let r = best(&rsync);
        println!(
            "  rsync -a --link-dest (no fsync):                  {r:>10.2?}   ratio rsync/ours = {:.1}",
            r.as_secs_f64() / o.as_secs_f64()
        );
        let r = best(&rsync_sync);
        println!(
            "  rsync -a --link-dest + sync -f (durable):         {r:>10.2?}   ratio = {:.1}",
            r.as_secs_f64() / o.as_secs_f64()
        );
    } else {
        println!("  rsync not installed: rsync baseline skipped");
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
