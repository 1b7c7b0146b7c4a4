//! `cargo xtask s3-crash [--kills N] [--seed S]`: the publisher (a real `sigupdate
//! sync --publish s3://...` process) killed with SIGKILL at random moments while it
//! publishes a series of versions to a real S3-compatible store (SeaweedFS,
//! `testkit::s3`), the bucket checked after every kill.
//!
//! Each cycle starts an upstream simulator at `test` version 1, a fresh mirror
//! directory and a fresh prefix in the bucket, then walks the official versions 1..6.
//! For each version, after upstream moves: two runs killed after a random delay (one
//! uniform up to the duration of the last unkilled run, one in its later half, so kills
//! land in the local sync, in the uploads and between the pointer moves), and after
//! every kill:
//!
//! * our client-view check: what the bucket shows is usable by every client that saw
//!   an earlier state of it: the visible `test.cvd` is exactly upstream's release `V`
//!   with its `test-V.cvd.sign`; for every version `u` the bucket showed before, the
//!   cdiffs `u+1..=V` and their `.sign` are there byte for byte; `V` never goes down;
//!   `dns.txt`, when present, parses;
//! * every tenth kill, a real freshclam 1.4 holding the oldest version the bucket
//!   showed (or nothing) updates from the bucket's HTTP endpoint and must reach `V`;
//!
//! then one unkilled run must converge: exit 0, the bucket holding exactly the files
//! of `DIR/current`, `DIR/targets.json` saying the target holds that generation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use e2e::{Binaries, Freshclam};
use testkit::s3::{SeaweedFs, request};
use testkit::upstream::{History, Upstream};

const BUCKET: &str = "crash";
const VERIFY_TIME: i64 = 1_767_225_600;
/// Killed runs per version step.
const KILLS_PER_VERSION: u32 = 2;

/// Parses `--kills N` and `--seed S`.
pub fn parse(args: &[String]) -> Result<(u32, u64)> {
    let mut kills = 100;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--kills" => kills = it.next().context("--kills N")?.parse()?,
            "--seed" => seed = it.next().context("--seed S")?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok((kills, seed.max(1)))
}

/// xorshift64: enough for kill times, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        if n == 0 { 0 } else { x % n }
    }
}

#[derive(Debug, Default)]
struct Counts {
    kills: u32,
    client_checks: u32,
    freshclam_checks: u32,
    converged: u32,
    /// What the bucket showed after a kill: nothing yet, the previous pointer, a newer one.
    empty: u32,
    old_pointer: u32,
    new_pointer: u32,
}

struct Cycle<'a> {
    weed: &'a SeaweedFs,
    bins: &'a Binaries,
    history: &'a History,
    prefix: String,
    dir: PathBuf,
    upstream: Upstream,
    /// Every version of `test.cvd` the bucket has shown.
    seen: BTreeSet<u32>,
}

impl Cycle<'_> {
    fn target(&self) -> String {
        format!("s3://{BUCKET}/{}", self.prefix)
    }

    /// One `sigupdate sync --publish`, SIGKILLed after `kill_after` if still running.
    fn sync(&self, kill_after: Option<Duration>) -> Result<(Option<i32>, Duration)> {
        let mut cmd = Command::new(&self.bins.sigupdate);
        cmd.args(["sync", "--no-dns", "--db", "test", "--upstream"])
            .arg(self.upstream.base_url())
            .arg("--dir")
            .arg(&self.dir)
            .arg("--sign-root")
            .arg(e2e::official_vectors().join("clamav-test-root.crt"))
            .arg(format!("--verify-time={VERIFY_TIME}"))
            .arg("--publish")
            .arg(self.target())
            .arg("--publish-retry-secs=5")
            .envs(self.weed.aws_env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().context("starting sigupdate")?;
        if let Some(d) = kill_after {
            while child.try_wait()?.is_none() && start.elapsed() < d {
                std::thread::sleep(Duration::from_micros(300));
            }
            let _ = child.kill(); // SIGKILL
        }
        let out = child.wait_with_output()?;
        if kill_after.is_none() && out.status.code() != Some(0) {
            bail!(
                "unkilled sync failed ({:?}):\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok((out.status.code(), start.elapsed()))
    }

    fn get(&self, name: &str) -> Result<(u16, Vec<u8>)> {
        let (status, body) = request(
            self.weed.addr(),
            "GET",
            &format!("/{BUCKET}/{}/{name}", self.prefix),
            &[],
            b"",
        )?;
        let code = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no status")?;
        Ok((code, body))
    }

    fn expect(&self, name: &str, want: Option<&[u8]>) -> Result<()> {
        let (code, body) = self.get(name)?;
        ensure!(code == 200, "{name}: HTTP {code} in {}", self.target());
        if let Some(w) = want {
            ensure!(body == w, "{name} in the bucket differs from upstream's");
        }
        Ok(())
    }

    /// The client-view check; returns the visible version.
    fn check_view(&mut self) -> Result<Option<u32>> {
        let (code, cvd) = self.get("test.cvd")?;
        if code == 404 {
            ensure!(
                self.seen.is_empty(),
                "test.cvd vanished after {:?}",
                self.seen
            );
            return Ok(None);
        }
        ensure!(code == 200, "test.cvd: HTTP {code}");
        let v = e2e::file_version_bytes(&cvd).context("test.cvd header")?;
        let rel = self.history.release(v).context("unknown version")?;
        ensure!(cvd == rel.cvd(), "test.cvd {v} is not upstream's");
        if let Some(&top) = self.seen.last() {
            ensure!(v >= top, "the bucket went back from {top} to {v}");
        }
        self.expect(&format!("test-{v}.cvd.sign"), rel.cvd_sign())?;
        if let Some(&oldest) = self.seen.first() {
            for k in oldest + 1..=v {
                let r = self.history.release(k).context("release")?;
                self.expect(&format!("test-{k}.cdiff"), r.cdiff())?;
                self.expect(&format!("test-{k}.cdiff.sign"), r.cdiff_sign())?;
            }
        }
        let (code, dns) = self.get("dns.txt")?;
        if code == 200 {
            dns_versions::parse_manifest(&dns).context("dns.txt in the bucket")?;
        }
        self.seen.insert(v);
        Ok(Some(v))
    }

    /// A real freshclam holding the oldest version seen (or nothing) reaches `want`.
    fn freshclam(&self, program: &Path, root: &Path, want: u32) -> Result<()> {
        let mirror = format!("{}/{BUCKET}/{}", self.weed.endpoint(), self.prefix);
        let fc = Freshclam::new(program, root, &mirror)?;
        let from = self.seen.first().copied().filter(|&u| u < want);
        if let Some(u) = from {
            fc.install(
                "test.cvd",
                self.history.release(u).context("release")?.cvd(),
            )?;
        }
        let out = fc.update("test")?;
        ensure!(
            out.code == Some(0) && fc.version("test") == Some(want),
            "freshclam from {from:?} did not reach {want} from {mirror}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        Ok(())
    }

    /// After an unkilled run: the bucket holds exactly `DIR/current`, the record says so.
    fn check_converged(&self) -> Result<()> {
        let current = self.dir.join("current");
        let generation = std::fs::read_link(&current)?
            .file_name()
            .context("current")?
            .to_string_lossy()
            .into_owned();
        for e in std::fs::read_dir(&current)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                self.expect(&name, Some(&std::fs::read(e.path())?))?;
            }
        }
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("targets.json"))?)?;
        let held = &record["targets"][self.target()]["published_generation"];
        ensure!(
            held.as_str() == Some(generation.as_str()),
            "targets.json: the target holds {held}, not {generation}"
        );
        Ok(())
    }
}

/// Runs the kill loop (see the module docs).
pub fn run(kills: u32, seed: u64) -> Result<()> {
    let weed = SeaweedFs::start()?.context("SeaweedFS weed not found (set WEED_BIN)")?;
    weed.create_bucket(BUCKET)?;
    let bins = Binaries::build()?;
    let history = History::official(&e2e::official_vectors())?;
    let freshclam = testkit::tools::require("freshclam");
    let work = std::env::temp_dir().join(format!("xtask-s3-crash-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    println!(
        "s3-crash: {kills} SIGKILLs, seed {seed}, store {}",
        weed.endpoint()
    );
    let mut rng = Rng(seed);
    let mut c = Counts::default();
    let started = Instant::now();
    let result = (|| -> Result<()> {
        let mut full = Duration::from_millis(500);
        let mut n = 0;
        while c.kills < kills {
            n += 1;
            let mut cy = Cycle {
                weed: &weed,
                bins: &bins,
                history: &history,
                prefix: format!("cycle-{n}"),
                dir: work.join(format!("cycle-{n}")),
                upstream: Upstream::builder().database(history.clone(), 1).start()?,
                seen: BTreeSet::new(),
            };
            for version in 1..=6u32 {
                cy.upstream.publish("test", version)?;
                for k in 0..KILLS_PER_VERSION {
                    if c.kills >= kills {
                        break;
                    }
                    // the first kill anywhere in a run, the second in its later half,
                    // where the uploads and the pointer moves are
                    let span = full.as_micros() as u64;
                    let from = if k == 0 { 0 } else { span / 2 };
                    let delay = Duration::from_micros(from + rng.below(span - from));
                    cy.sync(Some(delay))?;
                    c.kills += 1;
                    let before = cy.seen.last().copied();
                    let v = cy.check_view().with_context(|| {
                        format!(
                            "client view after kill {} (cycle {n}, version {version}, {delay:?})",
                            c.kills
                        )
                    })?;
                    c.client_checks += 1;
                    match (v, before) {
                        (None, _) => c.empty += 1,
                        (Some(v), Some(b)) if v == b => c.old_pointer += 1,
                        _ => c.new_pointer += 1,
                    }
                    if c.kills % 10 == 0
                        && let (Some(fc), Some(v)) = (&freshclam, v)
                    {
                        cy.freshclam(fc, &work.join(format!("fc-{}", c.kills)), v)
                            .with_context(|| format!("freshclam after kill {}", c.kills))?;
                        c.freshclam_checks += 1;
                    }
                }
                let (_, d) = cy.sync(None)?;
                full = d;
                cy.check_converged().with_context(|| {
                    format!("converging after the kills (cycle {n}, version {version})")
                })?;
                let v = cy.check_view()?;
                ensure!(v == Some(version), "converged to {v:?}, not {version}");
                c.converged += 1;
                if c.kills >= kills {
                    break;
                }
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    result?;
    println!(
        "s3-crash: {} SIGKILLs, {} client-view checks passed ({} empty bucket, {} old pointer, {} new pointer), \
         {} freshclam 1.4 updates from the bucket passed, {} publishes converged after kills, in {:.0?}",
        c.kills,
        c.client_checks,
        c.empty,
        c.old_pointer,
        c.new_pointer,
        c.freshclam_checks,
        c.converged,
        started.elapsed()
    );
    Ok(())
}
