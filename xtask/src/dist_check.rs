//! `cargo xtask dist-check` and `cargo xtask image-check`: prove the artefacts of
//! `cargo xtask dist` by using them as an administrator would.
//!
//! * `dist-check` (root, Debian): `dpkg -i` the package; the installed binaries answer
//!   `--version`; man pages, completions, units (`systemd-analyze verify`, and the
//!   `systemd-analyze security --offline` exposure of each unit, printed) and
//!   conffiles are where they belong; `sigupdate sync` with the installed
//!   `/etc/clamav-mirror/sigupdate.toml` mirrors the official `test` database from a
//!   local upstream into `/var/lib/clamav-mirror`; the installed `sigserver` with its
//!   installed configuration serves it (the bytes of `test.cvd` and `/ready` 200);
//!   `dpkg -r` removes the programs and keeps the configuration; `dpkg -P` removes the
//!   configuration too, and nothing of the package is left but the state directory.
//! * `image-check` (root, `unshare`): unpacks the OCI archive's layers (index.json →
//!   manifest → layer blobs) into a fresh root file system, and in a new network, PID
//!   and mount namespace with only a loopback runs the image's entrypoint as the
//!   image's user, chrooted into that tree alone, with the image's environment plus a
//!   test upstream; it syncs from an upstream in the same namespace and serves:
//!   `test.cvd` comes back byte for byte.
//!
//! The test upstream is a plain directory holding the official vectors as upstream
//! publishes them (`test.cvd`, cdiffs, `.sign` files), served by `sigserver` itself.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::dist::{self, BINS, NAME, UNITS, VERSION, output, run};

/// Where the official test vectors are (one place to change once they are vendored).
pub fn fixtures(root: &Path) -> PathBuf {
    let vendored = root.join("testdata/clamav-official");
    if vendored.join("test-6.cvd").exists() {
        vendored
    } else {
        root.join("../shared/fixtures/clamav-official")
    }
}

/// Fills `dir` as the official upstream publishes the `test` database.
fn upstream_dir(fx: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let cp = |from: &str, to: &str| {
        std::fs::copy(fx.join(from), dir.join(to))
            .with_context(|| format!("copying {from} from {}", fx.display()))
    };
    cp("test-6.cvd", "test.cvd")?;
    cp("test-6.cvd.sign", "test-6.cvd.sign")?;
    for v in 2..=6 {
        for ext in ["cdiff", "cdiff.sign"] {
            let n = format!("test-{v}.{ext}");
            cp(&n, &n)?;
        }
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `GET` over HTTP/1.0: status and body.
fn get(addr: SocketAddr, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no response head")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok((status, buf[end + 4..].to_vec()))
}

/// Polls `addr` until `path` answers 200 (or the child exits, or 120 s pass).
fn wait_ok(addr: SocketAddr, path: &str, child: &mut Child) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Ok((200, _)) = get(addr, path) {
            return Ok(());
        }
        if let Some(st) = child.try_wait()? {
            bail!("the server exited before {path} answered 200: {st}");
        }
        ensure!(
            start.elapsed() < Duration::from_secs(120),
            "{path} did not answer 200 within 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn step(what: &str) {
    println!("-- {what}");
}

const STATE: &str = "/var/lib/clamav-mirror";
/// Marks a state directory this check created (so a rerun may remove it).
const MARK: &str = ".xtask-dist-check";

/// `cargo xtask dist-check`.
pub fn dist_check(root: &Path) -> Result<()> {
    let t0 = Instant::now();
    let deb = dist::deb_path(root)?;
    ensure!(
        deb.exists(),
        "{} is missing: run `cargo xtask dist` first",
        deb.display()
    );
    let fx = fixtures(root);
    let state = Path::new(STATE);
    if state.exists() {
        ensure!(
            state.join(MARK).exists(),
            "{STATE} exists and was not made by this check: not touching it"
        );
        std::fs::remove_dir_all(state)?;
    }
    if Command::new("dpkg")
        .args(["-s", NAME])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        step("purging an installed clamav-mirror first");
        run(Command::new("dpkg").args(["-P", NAME]))?;
    }
    let files: Vec<String> = output(Command::new("dpkg-deb").arg("-c").arg(&deb))?
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_owned())
        .collect();
    ensure!(
        files.len() > 10,
        "the package lists too few files: {files:?}"
    );

    step(&format!("dpkg -i {}", deb.display()));
    run(Command::new("dpkg").arg("-i").arg(&deb))?;
    for b in BINS {
        let v = output(Command::new(format!("/usr/bin/{b}")).arg("--version"))?;
        ensure!(v.trim() == format!("{b} {VERSION}"), "{b} --version: {v:?}");
        println!("   {}", v.trim());
    }
    for p in [
        "/usr/share/man/man1/sigupdate.1.gz",
        "/usr/share/man/man1/sigupdate-sync.1.gz",
        "/usr/share/man/man1/sigserver.1.gz",
        "/usr/share/bash-completion/completions/sigupdate",
        "/usr/share/zsh/vendor-completions/_sigserver",
        "/usr/share/fish/vendor_completions.d/sigserver.fish",
        "/usr/share/doc/clamav-mirror/README.Debian",
        "/usr/share/doc/clamav-mirror/copyright",
    ] {
        ensure!(Path::new(p).exists(), "{p} is not installed");
    }
    let page = output(Command::new("man").args(["-P", "cat", "sigserver"]))
        .or_else(|_| output(Command::new("zcat").arg("/usr/share/man/man1/sigserver.1.gz")))?;
    ensure!(
        page.contains("rate-limit"),
        "the man page lacks --rate-limit"
    );
    let conffiles = output(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", NAME]))?;
    for c in ["sigserver.toml", "sigupdate.toml"] {
        ensure!(
            conffiles.contains(&format!("/etc/clamav-mirror/{c}")),
            "{c} is not a conffile: {conffiles}"
        );
    }
    let units: Vec<String> = UNITS
        .iter()
        .map(|u| format!("/usr/lib/systemd/system/{u}"))
        .collect();
    step("systemd-analyze verify");
    run(Command::new("systemd-analyze").arg("verify").args(&units))?;
    for u in &units {
        let text = output(Command::new("systemd-analyze").args([
            "security",
            "--offline=true",
            "--no-pager",
            u,
        ]))?;
        let line = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .context("no exposure level")?;
        println!("   {}", line.trim_start_matches(['→', ' ']));
    }

    let tmp = std::env::temp_dir().join(format!("xtask-dist-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let up = tmp.join("upstream");
    upstream_dir(&fx, &up)?;
    let up_port = free_port()?;
    let mut upstream = Killed(
        Command::new("/usr/bin/sigserver")
            .arg("--dir")
            .arg(&up)
            .args(["--listen", &format!("127.0.0.1:{up_port}")])
            .args(["--access-log", "false"])
            .stderr(Stdio::null())
            .spawn()?,
    );
    let up_addr: SocketAddr = format!("127.0.0.1:{up_port}").parse()?;
    wait_ok(up_addr, "/health", &mut upstream.0)?;

    step("sigupdate sync with /etc/clamav-mirror/sigupdate.toml from the test upstream");
    std::fs::create_dir_all(state)?;
    std::fs::write(state.join(MARK), "")?;
    run(Command::new("/usr/bin/sigupdate")
        .args(["sync", "--config", "/etc/clamav-mirror/sigupdate.toml"])
        .args(["--upstream", &format!("http://{up_addr}")])
        .args(["--db", "test", "--no-dns", "--retries", "0"])
        .arg("--sign-root")
        .arg(fx.join("clamav-test-root.crt")))?;
    let status =
        output(Command::new("/usr/bin/sigupdate").args(["status", "--dir", STATE, "--json"]))?;
    ensure!(
        status.contains("\"published_version\": 6") || status.contains("\"published_version\":6"),
        "status: {status}"
    );

    step("sigserver with /etc/clamav-mirror/sigserver.toml serves it");
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut server = Killed(
        Command::new("/usr/bin/sigserver")
            .args(["--config", "/etc/clamav-mirror/sigserver.toml"])
            .args(["--listen", &addr.to_string()])
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_ok(addr, "/ready", &mut server.0)?;
    let (code, body) = get(addr, "/test.cvd")?;
    ensure!(code == 200, "GET /test.cvd: {code}");
    ensure!(
        body == std::fs::read(fx.join("test-6.cvd"))?,
        "GET /test.cvd: not test-6.cvd"
    );
    run(Command::new("kill").args(["-TERM", &server.0.id().to_string()]))?;
    let st = server.0.wait()?;
    ensure!(st.code() == Some(0), "sigserver after SIGTERM: {st}");
    drop(upstream);
    let _ = std::fs::remove_dir_all(&tmp);

    step("dpkg -r");
    run(Command::new("dpkg").args(["-r", NAME]))?;
    for b in BINS {
        ensure!(!Path::new("/usr/bin").join(b).exists(), "{b} left after -r");
    }
    ensure!(
        Path::new("/etc/clamav-mirror/sigserver.toml").exists(),
        "-r removed the configuration"
    );
    step("dpkg -P");
    run(Command::new("dpkg").args(["-P", NAME]))?;
    let left: Vec<&String> = files.iter().filter(|f| Path::new(f).exists()).collect();
    ensure!(left.is_empty(), "left after purge: {left:?}");
    ensure!(
        !Path::new("/etc/clamav-mirror").exists(),
        "/etc/clamav-mirror left after purge"
    );
    ensure!(
        state.join("current/test.cvd").exists(),
        "the state directory did not survive the purge"
    );
    println!("   only {STATE} is left, as intended");
    std::fs::remove_dir_all(state)?;
    println!("== dist-check passed in {:.1?}", t0.elapsed());
    Ok(())
}

/// The parts of an OCI image configuration the check uses.
struct ImageConfig {
    entrypoint: Vec<String>,
    env: Vec<String>,
    user: String,
}

fn json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> Result<PathBuf> {
    let (alg, hex) = digest.split_once(':').context("digest without algorithm")?;
    ensure!(
        alg == "sha256" && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "unexpected digest {digest}"
    );
    Ok(layout.join("blobs").join(alg).join(hex))
}

/// Unpacks the OCI archive into `rootfs`; returns the image configuration.
fn unpack(archive: &Path, work: &Path, rootfs: &Path) -> Result<ImageConfig> {
    let layout = work.join("layout");
    std::fs::create_dir_all(&layout)?;
    std::fs::create_dir_all(rootfs)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(&layout))?;
    let index = json(&layout.join("index.json"))?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("index.json: no manifest")?;
    let manifest = json(&blob(&layout, manifest_digest)?)?;
    let layers = manifest["layers"]
        .as_array()
        .context("manifest: no layers")?;
    for l in layers {
        let digest = l["digest"].as_str().context("layer without digest")?;
        // GNU tar recognises gzip and zstd layers by their content.
        run(Command::new("tar")
            .arg("-xf")
            .arg(blob(&layout, digest)?)
            .arg("-C")
            .arg(rootfs))?;
    }
    let cfg = json(&blob(
        &layout,
        manifest["config"]["digest"]
            .as_str()
            .context("manifest: no config")?,
    )?)?;
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let c = &cfg["config"];
    Ok(ImageConfig {
        entrypoint: strings(&c["Entrypoint"]),
        env: strings(&c["Env"]),
        user: c["User"].as_str().unwrap_or("").to_owned(),
    })
}

/// `cargo xtask image-check`.
pub fn image_check(root: &Path) -> Result<()> {
    let t0 = Instant::now();
    let archive = dist::image_path(root);
    ensure!(
        archive.exists(),
        "{} is missing: run `cargo xtask dist` first (with buildah installed)",
        archive.display()
    );
    let fx = fixtures(root);
    let work = std::env::temp_dir().join(format!("xtask-image-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let rootfs = work.join("rootfs");
    let cfg = unpack(&archive, &work, &rootfs)?;
    step(&format!(
        "unpacked {} into {}: entrypoint {:?}, user {:?}",
        archive.display(),
        rootfs.display(),
        cfg.entrypoint,
        cfg.user
    ));
    for forbidden in [
        "bin/sh",
        "usr/bin/sh",
        "bin/bash",
        "usr/bin/apt",
        "usr/bin/dpkg",
    ] {
        ensure!(
            !rootfs.join(forbidden).exists(),
            "the image holds /{forbidden}"
        );
    }
    ensure!(
        !cfg.user.is_empty() && !cfg.user.starts_with("0") && cfg.user != "root",
        "the image runs as root ({:?})",
        cfg.user
    );
    ensure!(!cfg.entrypoint.is_empty(), "the image has no entrypoint");
    // The test's own trust root, inside the image's tree (a test-only addition).
    std::fs::copy(
        fx.join("clamav-test-root.crt"),
        rootfs.join("etc/test-root.crt"),
    )?;
    let up = work.join("upstream");
    upstream_dir(&fx, &up)?;
    let out_file = work.join("test.cvd.served");
    let upstream_bin = rootfs.join("usr/bin/sigserver");
    // The image's environment, then the test's upstream and trust root.
    let mut env: Vec<String> = cfg.env.clone();
    env.extend([
        "SIGSERVER_UPSTREAM=http://127.0.0.1:8000".to_owned(),
        "SIGSERVER_DB=test".to_owned(),
        "SIGSERVER_NO_DNS=true".to_owned(),
        "SIGSERVER_SIGN_ROOT=/etc/test-root.crt".to_owned(),
    ]);
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let env_args: Vec<String> = env.iter().map(|e| quote(e)).collect();
    let entry: Vec<String> = cfg.entrypoint.iter().map(|e| quote(e)).collect();
    let served_port = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("SIGSERVER_LISTEN="))
        .and_then(|l| l.rsplit(':').next())
        .unwrap_or("8080")
        .to_owned();
    let script = format!(
        r#"set -eu
ip link set lo up
chroot=$(command -v chroot)
{upstream} --dir {up} --listen 127.0.0.1:8000 --access-log false 2>{work}/upstream.log &
env -i {env} "$chroot" --userspec={user} {rootfs} {entry} 2>{work}/server.log &
server=$!
for i in $(seq 1 600); do
  if curl -fsS -o /dev/null http://127.0.0.1:{port}/ready 2>/dev/null; then break; fi
  kill -0 $server 2>/dev/null || {{ echo "the entrypoint exited"; cat {work}/server.log; exit 1; }}
  sleep 0.2
done
curl -fsS -o {out} http://127.0.0.1:{port}/test.cvd
curl -fsS http://127.0.0.1:{port}/ready
kill -TERM $server
wait $server
"#,
        upstream = quote(&upstream_bin.display().to_string()),
        up = quote(&up.display().to_string()),
        work = quote(&work.display().to_string()),
        env = env_args.join(" "),
        user = quote(&cfg.user),
        rootfs = quote(&rootfs.display().to_string()),
        entry = entry.join(" "),
        port = served_port,
        out = quote(&out_file.display().to_string()),
    );
    step("running the entrypoint chrooted into the image alone, in a new network namespace");
    let st = Command::new("unshare")
        .args(["--net", "--pid", "--mount", "--fork", "--kill-child"])
        .args(["bash", "-c", &script])
        .status()?;
    let server_log = std::fs::read_to_string(work.join("server.log")).unwrap_or_default();
    ensure!(st.success(), "the image run failed: {st}\n{server_log}");
    ensure!(
        server_log.contains("sync finished"),
        "no finished sync in the log:\n{server_log}"
    );
    ensure!(
        std::fs::read(&out_file)? == std::fs::read(fx.join("test-6.cvd"))?,
        "the image served something else than test-6.cvd"
    );
    println!("   synced from the upstream and served test.cvd byte for byte");
    let _ = std::fs::remove_dir_all(&work);
    println!("== image-check passed in {:.1?}", t0.elapsed());
    Ok(())
}
