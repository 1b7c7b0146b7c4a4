//! Downloading a large file over loopback: `fetch` (streaming to a `.part` file, fsync,
//! rename) vs `curl` (the same bytes to a file), in the same run, from the same
//! `testkit::http` server on 127.0.0.1.
//!
//! Run: `cargo bench -p mirror-benches --bench fetch_download`. Prints times and
//! ratios; asserts nothing about time. Every side's output must be byte-identical to
//! the source (the SHA-256 of each is compared), or the benchmark fails.
//!
//! Each side is timed as the best of three runs. The server is the same for both, so
//! its own cost (it serves from memory) is common to both sides. `fetch` also fsyncs
//! the file before renaming it; `curl` does not.
//!
//! When `curl` is missing the baseline is skipped with a message (it fails when
//! `CI=true`).
//!
//! ureq → reqwest (issue 22), side by side before ureq left: main's build (ureq 3) and
//! this one (reqwest 0.12 blocking), dev profile, run alternately in one script
//! (`fetch_download-ureq`, `fetch_download-reqwest`, five runs each) on the shared
//! 2-core VM under a load average of 11–15: fetch, median of the five best-of-3
//! figures, ureq 2857 ms (45 MiB/s) vs reqwest 2696 ms (47 MiB/s), reqwest/ureq =
//! 0.94; fetch/curl in the same run, median, ureq 1.40 vs reqwest 0.81. The load makes
//! single figures vary by 2x (ureq 2222–5920 ms, reqwest 1580–3752 ms); reqwest was
//! faster in four of the five interleaved pairs.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

const RUNS: usize = 3;
const SIZE: usize = 128 * 1024 * 1024;

fn best<F: FnMut() -> Result<()>>(mut f: F) -> Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed());
    }
    Ok(best)
}

use cvd_format::hex;

fn sha256_file(path: &Path) -> Result<String> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    Ok(hex(&Sha256::digest(&data)))
}

fn main() -> Result<()> {
    let src = tempfile::tempdir()?;
    let out = tempfile::tempdir()?;
    // Incompressible-looking, deterministic content.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = Vec::with_capacity(SIZE);
    while data.len() < SIZE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let want = hex(&Sha256::digest(&data));
    std::fs::write(src.path().join("big.cvd"), &data)?;
    drop(data);
    let server = testkit::http::TestServer::start_dir(src.path());
    let url = server.url("/big.cvd");

    let client = fetch::Client::builder().no_proxy().build()?;
    let ours = best(|| {
        let o = client.download(
            &url,
            out.path(),
            "ours.cvd",
            &fetch::Conditional::none(),
            &mut |_| {},
        )?;
        let fetch::Outcome::Downloaded(_) = o else {
            bail!("unexpected 304");
        };
        Ok(())
    })?;
    ensure!(
        sha256_file(&out.path().join("ours.cvd"))? == want,
        "fetch produced different bytes"
    );
    let mb = SIZE as f64 / (1024.0 * 1024.0);
    println!(
        "fetch download+fsync of {mb:.0} MiB: {:>8.1} ms ({:.0} MiB/s)",
        ours.as_secs_f64() * 1e3,
        mb / ours.as_secs_f64()
    );

    if testkit::tools::require("curl").is_none() {
        return Ok(());
    }
    let target = out.path().join("curl.cvd");
    let curl = |target: &Path| -> Result<()> {
        let st = Command::new("curl")
            .args(["-sS", "--fail", "--noproxy", "*", "-o"])
            .arg(target)
            .arg(&url)
            .status()?;
        ensure!(st.success(), "curl failed: {st}");
        Ok(())
    };
    let plain = best(|| curl(&target))?;
    ensure!(
        sha256_file(&target)? == want,
        "curl produced different bytes"
    );
    println!(
        "curl download                          : {:>8.1} ms  -> fetch/curl = {:.2}",
        plain.as_secs_f64() * 1e3,
        ours.as_secs_f64() / plain.as_secs_f64()
    );
    Ok(())
}
