//! Crash safety: `sigupdate sync` runs as a child process and is SIGKILLed at random
//! moments (during download — a slow upstream makes kills land mid-transfer —, verify,
//! publish and prune). After every kill the published snapshot must be complete and
//! consistent (every served file verifies, the cdiffs lead to the `.cvd`) and either
//! exactly the previous state or the complete new one; the next sync must recover.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::official_sync::official_sync;
use crate::support::*;
use testkit::http::{Fault, Scope};

/// Kills required (the issue asks for at least 200).
const KILLS: usize = 200;

fn sync_cmd(mirror: &Path, upstream: &str, aggressive_prune: bool) -> Command {
    let mut c = official_sync(mirror, upstream);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    if aggressive_prune {
        // every older generation goes at once: kills land in pruning too
        c.args(["--keep-generations", "0", "--grace-secs", "0"]);
    }
    c
}

/// What a killed sync left behind (for the report).
fn generations(mirror: &Path) -> usize {
    std::fs::read_dir(mirror.join("generations"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

fn phase(mirror: &Path, before_gen: Option<String>, before_gens: usize) -> &'static str {
    let cur = std::fs::read_link(mirror.join("current"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let staging: Vec<String> = std::fs::read_dir(mirror.join("staging"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let gens = generations(mirror);
    let switched = cur != before_gen;
    if !switched {
        if staging.iter().any(|s| s.starts_with("build-")) {
            "building the generation"
        } else if gens > before_gens {
            "generation renamed, not yet switched"
        } else if staging.iter().any(|s| s == "downloads") {
            "downloading/verifying"
        } else {
            "before any download"
        }
    } else if staging.iter().any(|s| s.starts_with("trash-")) || gens > before_gens.min(1) + 1 {
        "switched; pruning/status pending"
    } else {
        "switched, pruned; status/cleanup pending"
    }
}

#[test]
fn sigkill_at_random_moments_never_breaks_the_published_snapshot() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let url = server.base_url();
    // SIGKILL does not lose the page cache, so fsync latency only slows this test down:
    // work on tmpfs when there is one (the fsync calls still run).
    let shm = Path::new("/dev/shm");
    let work = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };

    // Templates: mirrors at versions 1..=5 built step by step (several generations
    // each, so pruning has work), and an empty one.
    let mut templates: Vec<(Option<u32>, std::path::PathBuf)> =
        vec![(None, work.path().join("t-empty"))];
    std::fs::create_dir_all(work.path().join("t-empty")).unwrap();
    let stepper = work.path().join("stepper");
    for v in 1..=5u32 {
        arrange_official(up.path(), v, true);
        let st = sync_cmd(&stepper, &url, false).status().unwrap();
        assert_eq!(st.code(), Some(0));
        let t = work.path().join(format!("t-{v}"));
        copy_tree(&stepper, &t);
        templates.push((Some(v), t));
    }
    arrange_official(up.path(), 6, true);
    let expected_trees: BTreeMap<Option<u32>, BTreeMap<String, Vec<u8>>> =
        templates.iter().map(|(v, p)| (*v, tree(p))).collect();
    for (v, t) in &expected_trees {
        if v.is_some() {
            // an unchanged snapshot after a kill is byte-identical to this checked one
            check_snapshot(t).unwrap();
        }
    }

    // Calibrate: how long an unkilled sync takes (kills are spread over 0..1.2x that).
    let mut total = Duration::ZERO;
    for (i, (_, t)) in templates.iter().enumerate() {
        let m = work.path().join(format!("calib-{i}"));
        copy_tree(t, &m);
        let start = Instant::now();
        assert_eq!(sync_cmd(&m, &url, true).status().unwrap().code(), Some(0));
        total += start.elapsed();
    }
    let span = (total / templates.len() as u32)
        .mul_f64(1.2)
        .max(Duration::from_millis(5));

    let mut rng = oorandom(0x5eed_2026);
    let mut kills = 0usize;
    let mut finished_before_kill = 0usize;
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    let mut round = 0usize;
    while kills < KILLS {
        round += 1;
        assert!(
            round < KILLS * 4,
            "too few kills landed: {kills} in {round} rounds"
        );
        let (start_v, template) = &templates[rng.below(templates.len() as u64) as usize];
        let mirror = work.path().join(format!("m-{round}"));
        copy_tree(template, &mirror);
        let before_gen = std::fs::read_link(mirror.join("current"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        let before_gens = generations(&mirror);
        let slow = rng.below(3) == 0;
        if slow {
            server.set_fault(
                Scope::path("/test.cvd"),
                Fault::Slow {
                    chunk: 1024,
                    delay: Duration::from_millis(2),
                },
            );
        }
        let aggressive = rng.below(2) == 0;
        let span = if slow {
            span + Duration::from_millis(25)
        } else {
            span
        };
        let delay = span.mul_f64(rng.below(10_000) as f64 / 10_000.0);
        // Where to aim: a random moment after start (mostly download/verify), or just
        // after the log line that starts the publish or the prune phase.
        let aim = rng.below(3);
        let mut cmd = sync_cmd(&mirror, &url, aggressive);
        cmd.arg("-v").env("RUST_LOG", "info").stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let marker = match aim {
            1 => Some("verified update"),
            2 => Some("published"),
            _ => None,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if marker.is_some_and(|m| line.contains(m)) {
                    let _ = tx.send(());
                }
            }
        });
        let delay = match marker {
            None => delay,
            Some(_) => {
                // wait for the marker (or the end of the process), then a few hundred µs
                let _ = rx.recv_timeout(Duration::from_secs(30));
                Duration::from_micros(rng.below(400))
            }
        };
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        server.clear_faults();
        if running {
            kills += 1;
            *phases
                .entry(phase(&mirror, before_gen, before_gens))
                .or_default() += 1;
        } else {
            finished_before_kill += 1;
        }

        // The published snapshot: the old one exactly, or a complete consistent new one.
        let now = tree(&mirror);
        let old = &expected_trees[start_v];
        if &now != old {
            let (v, cdiffs) = check_snapshot(&now).unwrap_or_else(|e| {
                panic!("round {round} (from {start_v:?}, killed after {delay:?}): {e}")
            });
            assert_eq!(v, 6, "round {round}");
            // the stepwise templates hold cdiffs 2..=s; from empty the older cdiffs
            // are backfilled (bootstrap, chain-unproven): 2..=6 either way
            let want: Vec<u32> = (2..=6).collect();
            assert_eq!(cdiffs, want, "round {round}");
        }

        // The next sync recovers (lock free, leftovers cleaned) and reaches 6.
        let st = sync_cmd(&mirror, &url, aggressive).status().unwrap();
        assert_eq!(st.code(), Some(0), "round {round}: recovery sync failed");
        let (v, _) = check_snapshot(&tree(&mirror))
            .unwrap_or_else(|e| panic!("round {round} after recovery: {e}"));
        assert_eq!(v, 6);
        let staging_left: Vec<_> = std::fs::read_dir(mirror.join("staging"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .filter(|n| n != "downloads")
            .collect();
        assert!(
            staging_left.is_empty(),
            "round {round}: staging left {staging_left:?}"
        );
        std::fs::remove_dir_all(&mirror).unwrap();
    }
    println!(
        "crash safety: {kills} SIGKILLs landed mid-sync ({finished_before_kill} syncs finished before their kill) in {round} rounds; kill span {span:?}"
    );
    for (p, n) in &phases {
        println!("  {n:4} killed with state: {p}");
    }
}

/// A tiny deterministic PRNG (xorshift64*), so a failure can be replayed.
struct Rng(u64);

fn oorandom(seed: u64) -> Rng {
    Rng(seed | 1)
}

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}
