//! Publishing one daily update to an S3-compatible store (a real SeaweedFS on
//! loopback, `testkit::s3`): our publisher (`publish-target`: compare by content,
//! ordered upload, conditional writes, read-back) against `rclone sync` (Debian's
//! rclone, a general-purpose sync tool, with its defaults) to another prefix of the
//! same bucket. Side by side in one run; prints time, requests and bytes sent for each.
//!
//! Run: `cargo bench -p mirror-benches --bench s3_publish` (needs `weed`, see
//! `WEED_BIN`, and `rclone`). Not part of CI.
//!
//! The mirror: `main.cvd` 100 MiB, `daily.cvd` 60 MiB, `bytecode.cvd` 300 KiB, 30
//! daily cdiffs of 200 KiB with their `.sign`, `daily-N.cvd.sign`, `dns.txt`. Both
//! tools first bring their prefix to that generation (not measured); the measured step
//! is the daily update: a new `daily.cvd`, one new cdiff and its `.sign`, a new
//! `daily-N.cvd.sign` and `dns.txt`, the oldest cdiff dropped (our publisher keeps it
//! for its grace period; rclone deletes it at once).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mirror_core::layout::GenerationId;
use mirror_core::targets::TargetState;
use publish_target::{LocalGeneration, PublishSettings, Publisher, TargetSpec};
use testkit::s3::SeaweedFs;

const MIB: usize = 1 << 20;
const BUCKET: &str = "bench";

/// Writes generation `n` (daily at `27029 + n`) and points `current` at it; files that
/// did not change are hard links into the previous generation, as mirror-core makes
/// them (same inode, same modification time).
fn generation(dir: &Path, n: u32) -> Result<PathBuf> {
    let gen_dir = |n: u32| {
        dir.join("generations")
            .join(GenerationId(u64::from(n)).dir_name())
    };
    let g = gen_dir(n);
    let prev = gen_dir(n - 1);
    std::fs::create_dir_all(&g)?;
    let top = 27_029 + n;
    let write = |name: &str, len: usize, seed: u64| -> Result<()> {
        if prev.join(name).exists() && name != "daily.cvd" && name != "dns.txt" {
            std::fs::hard_link(prev.join(name), g.join(name))?;
        } else {
            std::fs::write(
                g.join(name),
                mirror_benches::filler(len, seed.wrapping_mul(2654435761)),
            )?;
        }
        Ok(())
    };
    write("main.cvd", 100 * MIB, 1)?;
    write("bytecode.cvd", 300 << 10, 2)?;
    write("daily.cvd", 60 * MIB, u64::from(top))?;
    write(
        &format!("daily-{top}.cvd.sign"),
        5 << 10,
        u64::from(top) + 7,
    )?;
    for v in top - 29..=top {
        write(&format!("daily-{v}.cdiff"), 200 << 10, u64::from(v) * 3)?;
        write(&format!("daily-{v}.cdiff.sign"), 5 << 10, u64::from(v) * 5)?;
    }
    std::fs::write(g.join("dns.txt"), format!("daily:{top}\n"))?;
    let tmp = dir.join("current.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(
        format!("generations/{}", GenerationId(u64::from(n)).dir_name()),
        &tmp,
    )?;
    std::fs::rename(&tmp, dir.join("current"))?;
    Ok(g)
}

struct Measure {
    time: Duration,
    requests: u64,
    puts: u64,
    bytes: u64,
}

fn ours(weed: &SeaweedFs, local: &LocalGeneration, state: &mut TargetState) -> Result<Measure> {
    let spec = TargetSpec {
        url: format!("s3://{BUCKET}/ours"),
    };
    let opts = weed.store_options();
    let opts: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (store, prefix, s3) = spec.open(&opts)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let r = rt.block_on(Publisher::new(store, prefix, s3).publish(
        local,
        state,
        &PublishSettings::default(),
        0,
    ));
    let time = start.elapsed();
    if let Some(e) = r.error {
        bail!("publish: {e}");
    }
    Ok(Measure {
        time,
        requests: r.counters.requests,
        puts: r.counters.puts,
        bytes: r.counters.bytes_sent,
    })
}

fn rclone(weed: &SeaweedFs, rclone: &Path, src: &Path, log: &Path) -> Result<Measure> {
    let _ = std::fs::remove_file(log);
    let mut cmd = Command::new(rclone);
    cmd.arg("sync")
        .arg(src)
        .arg(format!("s3b:{BUCKET}/rclone"))
        .args(["--dump", "headers", "--log-level", "DEBUG", "--log-file"])
        .arg(log)
        .env("RCLONE_CONFIG_S3B_TYPE", "s3")
        .env("RCLONE_CONFIG_S3B_PROVIDER", "SeaweedFS")
        .env("RCLONE_CONFIG_S3B_ENDPOINT", weed.endpoint())
        .env("RCLONE_CONFIG_S3B_ACCESS_KEY_ID", "testkit")
        .env("RCLONE_CONFIG_S3B_SECRET_ACCESS_KEY", "testkit-secret")
        .env("RCLONE_CONFIG_S3B_REGION", "us-east-1")
        .env("RCLONE_CONFIG", "/dev/null")
        // a host-wide CA bundle for AWS tools makes rclone refuse its plain-HTTP client
        .env_remove("AWS_CA_BUNDLE");
    let start = Instant::now();
    let st = cmd.status().context("running rclone")?;
    let time = start.elapsed();
    if !st.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        bail!(
            "rclone sync failed: {st}\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    // Count the requests in rclone's header dump: each request's first line, and the
    // Content-Length of every PUT.
    let text = std::fs::read_to_string(log)?;
    let (mut requests, mut puts, mut bytes, mut in_put) = (0u64, 0u64, 0u64, false);
    for line in text.lines() {
        let l = line.trim_start();
        let method = ["GET ", "PUT ", "HEAD ", "POST ", "DELETE "]
            .iter()
            .find(|m| l.contains(**m) && l.contains(" HTTP/1.1"));
        if let Some(m) = method {
            requests += 1;
            in_put = *m == "PUT ";
            puts += u64::from(in_put);
        } else if in_put && let Some(v) = l.strip_prefix("Content-Length: ") {
            bytes += v.trim().parse::<u64>().unwrap_or(0);
            in_put = false;
        } else if l.starts_with("HTTP RESPONSE") {
            in_put = false;
        }
    }
    Ok(Measure {
        time,
        requests,
        puts,
        bytes,
    })
}

fn main() -> Result<()> {
    let Some(weed) = SeaweedFs::start()? else {
        println!("skipped: no weed");
        return Ok(());
    };
    let Some(rclone_bin) = testkit::tools::require("rclone") else {
        return Ok(());
    };
    weed.create_bucket(BUCKET)?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("mirror");
    let g1 = generation(&dir, 1)?;
    let l1 = LocalGeneration::read(&dir)?.context("g1")?;
    let mut state = TargetState::default();
    let log = tmp.path().join("rclone.log");
    ours(&weed, &l1, &mut state)?;
    rclone(&weed, &rclone_bin, &g1, &log)?;
    let g2 = generation(&dir, 2)?;
    let l2 = LocalGeneration::read(&dir)?.context("g2")?;
    let new_bytes: u64 = l2
        .files
        .iter()
        .filter(|f| {
            l1.files
                .iter()
                .find(|o| o.name == f.name)
                .is_none_or(|o| o.sha256 != f.sha256)
        })
        .map(|f| f.size)
        .sum();
    let a = ours(&weed, &l2, &mut state)?;
    let b = rclone(&weed, &rclone_bin, &g2, &log)?;
    println!(
        "one daily update ({} new or changed bytes) to SeaweedFS on loopback:",
        new_bytes
    );
    println!(
        "{:<14} {:>10} {:>9} {:>6} {:>12} {:>10}",
        "tool", "time", "requests", "PUTs", "bytes sent", "sent/new"
    );
    for (name, m) in [("publish-target", &a), ("rclone sync", &b)] {
        println!(
            "{name:<14} {:>10.3?} {:>9} {:>6} {:>12} {:>10.2}",
            m.time,
            m.requests,
            m.puts,
            m.bytes,
            m.bytes as f64 / new_bytes as f64
        );
    }
    println!(
        "time ratio rclone/ours: {:.2}; requests ratio rclone/ours: {:.2}",
        b.time.as_secs_f64() / a.time.as_secs_f64(),
        b.requests as f64 / a.requests.max(1) as f64
    );
    Ok(())
}
