//! Per-hop cost: what one mirror tier spends on one update of a `daily`-sized database.
//!
//! Run: `cargo bench -p mirror-benches --bench hop`. Prints wall and CPU time of one
//! `mirror_core::sync` from version N to N+1, the ratio to the 1.5 s budget and to a
//! baseline measured in the same run; asserts nothing about time.
//!
//! - Data (built once, cached under `target/bench-data/hop/`): `daily` version N, a
//!   signed `.cvd` of about 60 MB (about 140 MB of signature-like text in four members,
//!   TEST keys from `testkit::keys`), and version N+1 = N with 20 lines deleted and
//!   4 000 lines appended, plus the signed `.cdiff` between them (made with `cdiff`'s
//!   generator, like `testkit::upstream`'s synthetic histories).
//! - Each run: a fresh mirror is synced to N from a `testkit::http` server on
//!   127.0.0.1 serving a directory (`dns.txt` + `daily.cvd`); then the directory
//!   switches to N+1 (`daily.cvd`, `daily-<N+1>.cdiff`, `dns.txt`) and **one sync is
//!   timed**: manifest, download of the `.cvd` and `.cdiff` over real HTTP, full
//!   verification, `.cdiff` verification, chain check against the published N, publish
//!   of a new generation (fsyncs) and status. The timed sync runs in a child process
//!   (this binary re-executed with `MIRROR_BENCH_HOP`), which reports its wall time and
//!   its CPU time (user + system, all its threads, from `/proc/self/stat`; 10 ms
//!   ticks). The server runs in the parent, so its cost is not in the CPU figure.
//!   Median of three runs. The database has no `.sign` files (the CMS root is
//!   ClamAV's), so the hop has no `.sign` check; on official databases that adds one
//!   SHA-256 pass over the `.cvd` (about 30 ms at 60 MB).
//! - Split: the same library calls timed one by one in this process on the same files
//!   (median of three): full verification (`cvd_format::verify_file`), chain check as
//!   the engine runs it (`cdiff::chain::check_verified`: N verified and patched in
//!   memory, compared with the member digests of N+1's verification report). "Rest" is
//!   the sync wall time minus those two (download, `.cdiff` check, publish, status).
//!   Also printed: the stand-alone `cdiff::chain::check`, which reads and verifies
//!   N+1 itself (on a second thread) and compares byte for byte.
//! - Baseline: `curl -o F URL && tail -c +513 F | gzip -dc | md5sum` on the same `.cvd`
//!   from the same server: download plus the least any verifier must do.
//! - Measured on the 2-core development VM (shared, load about 2.3): before the
//!   hashing thread and the report-based chain check, 2.30 s wall / 2.17 s CPU
//!   (verify 0.60 s, chain check 1.52 s); after, 1.30 s wall / 1.53 s CPU (verify
//!   0.45 s, chain check 0.68 s), baseline 1.07 s.
//! - ureq → reqwest (issue 22), side by side before ureq left: main's build and this
//!   one, dev profile, back to back, twice, under a load average of about 12 on the
//!   2-core VM (wall times then vary by 2x, so CPU is the figure to compare): sync CPU
//!   ureq 4.22 s and 3.98 s, reqwest 3.94 s and 3.95 s (reqwest/ureq about 0.96);
//!   wall (median of three) ureq 14.9 s and 11.7 s, reqwest 23.1 s and 11.1 s.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use cvd_format::{CvdBuilder, KeySet, VerifyOptions};
use mirror_benches::{Rng, bench_dir, signature_line, write_signatures};
use mirror_core::{DatabaseSpec, SyncConfig, VersionSource};

const CHILD_ENV: &str = "MIRROR_BENCH_HOP";
const URL_ENV: &str = "MIRROR_BENCH_HOP_URL";
const RUNS: usize = 3;
const BUDGET: Duration = Duration::from_millis(1500);
const DB: &str = "daily";
const N: u32 = 27_000;
/// Signature text per member (four members).
const MEMBER_BYTES: u64 = 35_000_000;
const MEMBERS: [&str; 4] = ["hdb", "hsb", "mdb", "ndb"];

fn data_dir() -> PathBuf {
    bench_dir().join("hop")
}

fn cvd_path(v: u32) -> PathBuf {
    data_dir().join(format!("{DB}-{v}.cvd"))
}

fn cdiff_path(v: u32) -> PathBuf {
    data_dir().join(format!("{DB}-{v}.cdiff"))
}

fn keys() -> KeySet {
    testkit::keys::test_key_set()
}

/// Version N+1's text of one member: N's lines with 5 deleted (spread over the file)
/// and 1 000 new lines appended, as a daily update does.
fn next_member(old: &[u8], seed: u64, tag: &str) -> Vec<u8> {
    let lines: Vec<&[u8]> = old.split_inclusive(|&b| b == b'\n').collect();
    let step = (lines.len() / 6).max(1);
    let mut out = Vec::with_capacity(old.len() + 100_000);
    for (i, l) in lines.iter().enumerate() {
        if i > 0 && i % step == 0 {
            continue;
        }
        out.extend_from_slice(l);
    }
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut line = Vec::with_capacity(96);
    for n in 0..1000 {
        signature_line(&mut line, &mut rng, &format!("{tag}.New"), n);
        out.extend_from_slice(&line);
    }
    out
}

fn write_cvd(path: &Path, version: u32, members: &[(String, Vec<u8>)]) -> Result<()> {
    let at = time::OffsetDateTime::from_unix_timestamp(1_767_225_600 + i64::from(version))?;
    let mut b = CvdBuilder::new(DB, version)
        .flevel(90)
        .builder("mirror-benches")
        .build_time(at)
        .sign_time(Some(at.unix_timestamp()));
    for (name, data) in members {
        b = b.member(name, data.clone());
    }
    let tmp = path.with_extension("part");
    let out = std::fs::File::create(&tmp)?;
    b.write_cvd(
        BufWriter::with_capacity(1 << 20, out),
        &testkit::keys::test_signing_keys(),
    )?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Builds (or reuses) `daily-N.cvd`, `daily-N+1.cvd` and `daily-N+1.cdiff`.
fn build_data() -> Result<()> {
    if cvd_path(N).is_file() && cvd_path(N + 1).is_file() && cdiff_path(N + 1).is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(data_dir())?;
    eprintln!(
        "building the hop data in {} (once; cached)...",
        data_dir().display()
    );
    let started = Instant::now();
    let mut old = vec![(
        "COPYING".to_owned(),
        b"Synthetic benchmark database.\n".to_vec(),
    )];
    let mut new = old.clone();
    for (i, ext) in MEMBERS.iter().enumerate() {
        let mut text = Vec::new();
        write_signatures(&mut text, MEMBER_BYTES, 0x9e37_79b9 + i as u64, "Hop")?;
        new.push((format!("{DB}.{ext}"), next_member(&text, i as u64, ext)));
        old.push((format!("{DB}.{ext}"), text));
    }
    write_cvd(&cvd_path(N), N, &old)?;
    drop(old);
    write_cvd(&cvd_path(N + 1), N + 1, &new)?;
    drop(new);
    let opts = cdiff::chain::ChainOptions::new().keys(keys());
    let read = |v: u32| -> Result<cdiff::Database> {
        let f = std::fs::File::open(cvd_path(v))?;
        Ok(cdiff::chain::read_base(std::io::BufReader::new(f), &opts)?.2)
    };
    let (a, b) = (read(N)?, read(N + 1)?);
    let patch = cdiff::generate::cdiff(&a, &b, N + 1, &testkit::keys::test_cdiff_key())?;
    std::fs::write(cdiff_path(N + 1), patch)?;
    eprintln!("  built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Points the upstream directory at version `v` (symlinks to the cached files).
fn serve_version(up: &Path, v: u32) -> Result<()> {
    let link = |target: &Path, name: &str| -> Result<()> {
        let path = up.join(name);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(target, &path)
            .with_context(|| format!("linking {}", path.display()))
    };
    link(&cvd_path(v), &format!("{DB}.cvd"))?;
    if v > N {
        link(&cdiff_path(v), &format!("{DB}-{v}.cdiff"))?;
    }
    let versions = [(DB.to_owned(), v)].into_iter().collect();
    std::fs::write(
        up.join("dns.txt"),
        mirror_core::manifest::render(&versions, SystemTime::now()),
    )?;
    Ok(())
}

fn config(mirror: &Path, url: &str) -> Result<SyncConfig> {
    Ok(SyncConfig::builder(mirror)
        .versions(VersionSource::NoDns)
        .database(DatabaseSpec::new(DB)?.keys(keys()).signs(false))
        .upstream(url)
        .build()?)
}

fn sync(mirror: &Path, url: &str) -> Result<mirror_core::SyncReport> {
    let client = fetch::Client::builder()
        .cooldown_file(mirror.join("cooldown.json"))
        .no_proxy()
        .build()?;
    let mut t = mirror_core::transport::HttpTransport::from_client(client);
    Ok(mirror_core::sync(&config(mirror, url)?, &mut t, None)?)
}

fn expect_version(report: &mirror_core::SyncReport, v: u32) -> Result<()> {
    let db = report
        .databases
        .first()
        .context("no database in the report")?;
    ensure!(db.after == Some(v), "sync did not reach {v}: {report:?}");
    Ok(())
}

/// This process's CPU time (user, system) from `/proc/self/stat`, every thread
/// included (also finished ones). Ticks are USER_HZ, 100 per second on Linux.
fn cpu_times() -> Result<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').context("/proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `)`.
    let tick = |i: usize| -> Result<Duration> {
        let t: u64 = fields.get(i).context("/proc/self/stat")?.parse()?;
        Ok(Duration::from_millis(t * 10))
    };
    Ok((tick(11)?, tick(12)?))
}

/// Child mode: one sync of the mirror at `mirror`; prints `wall_ns user_ns sys_ns`.
fn child(mirror: &Path) -> Result<()> {
    let url = std::env::var(URL_ENV).context(URL_ENV)?;
    let (u0, s0) = cpu_times()?;
    let started = Instant::now();
    let report = sync(mirror, &url)?;
    let wall = started.elapsed();
    let (u1, s1) = cpu_times()?;
    expect_version(&report, N + 1)?;
    println!(
        "{} {} {}",
        wall.as_nanos(),
        (u1 - u0).as_nanos(),
        (s1 - s0).as_nanos()
    );
    Ok(())
}

struct Hop {
    wall: Duration,
    user: Duration,
    sys: Duration,
}

fn one_hop(work: &Path, up: &Path, url: &str, run: usize) -> Result<Hop> {
    let mirror = work.join(format!("mirror-{run}"));
    serve_version(up, N)?;
    expect_version(&sync(&mirror, url)?, N)?;
    serve_version(up, N + 1)?;
    let out = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, &mirror)
        .env(URL_ENV, url)
        .output()?;
    std::fs::remove_dir_all(&mirror)?;
    if !out.status.success() {
        bail!("hop child failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("child output {text:?}"))?;
    ensure!(v.len() == 3, "child output {text:?}");
    Ok(Hop {
        wall: Duration::from_nanos(v[0]),
        user: Duration::from_nanos(v[1]),
        sys: Duration::from_nanos(v[2]),
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed(mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    Ok(median(times))
}

fn baseline(url: &str, out: &Path) -> Result<Duration> {
    timed(|| {
        let st = Command::new("sh")
            .arg("-c")
            .arg("curl -sS --fail --noproxy '*' -o \"$2\" \"$1\" && tail -c +513 \"$2\" | gzip -dc | md5sum >/dev/null")
            .arg("sh")
            .arg(url)
            .arg(out)
            .status()?;
        ensure!(st.success(), "baseline failed: {st}");
        Ok(())
    })
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() -> Result<()> {
    if let Some(mirror) = std::env::var_os(CHILD_ENV) {
        return child(Path::new(&mirror));
    }
    build_data()?;
    let cvd_mb = std::fs::metadata(cvd_path(N + 1))?.len() as f64 / 1e6;
    let cdiff_kb = std::fs::metadata(cdiff_path(N + 1))?.len() as f64 / 1e3;
    let work = tempfile::tempdir_in(data_dir())?;
    let up = work.path().join("upstream");
    std::fs::create_dir_all(&up)?;
    let server = testkit::http::TestServer::start_dir(&up);
    let url = server.base_url();

    let mut hops = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        hops.push(one_hop(work.path(), &up, &url, run)?);
    }
    let wall = median(hops.iter().map(|h| h.wall).collect());
    let user = median(hops.iter().map(|h| h.user).collect());
    let sys = median(hops.iter().map(|h| h.sys).collect());

    // The split: the same library calls, one by one, on the same files.
    let opts = VerifyOptions::new().keys(keys()).require_signed(true);
    let verify = timed(|| {
        cvd_format::verify_file(&cvd_path(N + 1), &opts)?;
        Ok(())
    })?;
    let chain_opts = cdiff::chain::ChainOptions::new().keys(keys());
    let limits = cdiff::Limits::default();
    let report = cvd_format::verify_file(&cvd_path(N + 1), &opts)?;
    let open = |p: PathBuf| -> Result<_> { Ok(std::io::BufReader::new(std::fs::File::open(p)?)) };
    let consistent = |c: cdiff::chain::Consistency| {
        ensure!(
            matches!(c, cdiff::chain::Consistency::Consistent { .. }),
            "chain check: {c:?}"
        );
        Ok(())
    };
    // What the engine runs: against the report of the verification it just did.
    let chain = timed(|| {
        let patch = cdiff::chain::PatchInput::read(&cdiff_path(N + 1), &limits)?;
        consistent(cdiff::chain::check_verified(
            &report,
            open(cvd_path(N))?,
            &[patch],
            &chain_opts,
        )?)
    })?;
    // The stand-alone check (`sigupdate check-chain`): reads and verifies the target too.
    let chain_full = timed(|| {
        let patch = cdiff::chain::PatchInput::read(&cdiff_path(N + 1), &limits)?;
        consistent(cdiff::chain::check(
            open(cvd_path(N + 1))?,
            open(cvd_path(N))?,
            &[patch],
            &chain_opts,
        )?)
    })?;

    println!(
        "per-hop cost: one sync of `{DB}` {N} -> {} ({cvd_mb:.1} MB .cvd, {cdiff_kb:.0} kB .cdiff) over HTTP on 127.0.0.1",
        N + 1
    );
    println!(
        "  sync wall {:.3} s   CPU {:.2} s (user {:.2} + sys {:.2})   wall/budget {:.2}x (budget {:.1} s)",
        secs(wall),
        secs(user + sys),
        secs(user),
        secs(sys),
        secs(wall) / secs(BUDGET),
        secs(BUDGET)
    );
    println!(
        "  runs (wall s): {}",
        hops.iter()
            .map(|h| format!("{:.3}", secs(h.wall)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  split: verify {:.3} s, chain check {:.3} s, rest (download, .cdiff, publish, status) {:.3} s",
        secs(verify),
        secs(chain),
        secs(wall.saturating_sub(verify + chain))
    );
    println!(
        "  stand-alone chain check re-reading the target (cdiff::chain::check): {:.3} s",
        secs(chain_full)
    );
    if testkit::tools::require("curl").is_some() {
        let base = baseline(&format!("{url}/{DB}.cvd"), &work.path().join("curl.cvd"))?;
        println!(
            "  baseline `curl -o F && tail -c +513 F | gzip -dc | md5sum`: {:.3} s   sync/baseline {:.2}x",
            secs(base),
            secs(wall) / secs(base)
        );
    }
    // Other work on the machine shows in the wall times (not in the CPU times).
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!(
            "  load average during the run: {} ({} cores)",
            load.join(" "),
            std::thread::available_parallelism().map_or(0, usize::from)
        );
    }
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "(wall and CPU of the sync are the median of {RUNS} runs in a child process; the split is measured separately)"
    )?;
    Ok(())
}
