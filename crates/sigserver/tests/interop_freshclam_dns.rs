//! A real client over real DNS: `freshclam` runs in a network namespace created here,
//! whose `/etc/netns/<name>/resolv.conf` names sigserver's DNS address (so
//! `ip netns exec` gives freshclam that resolver), with `DatabaseMirror` = sigserver
//! over HTTP and `DNSDatabaseInfo` = our zone.
//!
//! - freshclam 1.4.6 (Debian) updates `test` 1 → 6 through the cdiffs with the version
//!   from `test.cvd.clamav.net` (`--dns-extra-zone clamav.net`; libfreshclam
//!   hard-codes that domain for databases the main record does not list), without any
//!   header probe of `test.cvd`; the official `bytecode.cvd` (version 19) comes from
//!   the main record's bytecode field: the first run downloads it, a second run makes
//!   no HTTP request at all.
//! - freshclam 1.5.3 in strict mode (`CLAMAV15_BIN`, skipped when unset outside CI)
//!   does the same update of `test`. (`bytecode.cvd` has no `.sign`, which strict mode
//!   needs for a full download, so it is not part of that run.)
//!
//! Needs root (network namespaces); with `CI=true` a missing capability or tool fails.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Server, fixture};

pub(crate) const ZONE: &str = "current.cvd.mirror.test";

/// Skips (outside CI) or fails (in CI) when `what` is unavailable (the one rule of
/// `testkit::tools`).
pub(crate) fn require(ok: bool, what: &str) -> bool {
    if !ok {
        testkit::tools::unavailable(what, "needed by the DNS namespace test");
    }
    ok
}

pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

pub(crate) fn can_use_netns() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let ip = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        root && ip,
        "root and iproute2 (`ip netns`) for the DNS namespace test",
    )
}

/// A network namespace joined to the host by a veth pair, with its own resolv.conf;
/// everything is removed on drop, also when the test fails.
pub(crate) struct Netns {
    name: String,
    host_if: String,
    pub(crate) host_ip: String,
}

impl Netns {
    pub(crate) fn new(tag: u8) -> Netns {
        let pid = std::process::id();
        let net = (pid % 250) as u8;
        let ns = Netns {
            name: format!("sigdns-{pid}-{tag}"),
            host_if: format!("sd{}{tag}h", pid % 1_000_000),
            host_ip: format!("10.123.{net}.{}", 4 * u32::from(tag) + 1),
        };
        let ns_if = format!("sd{}{tag}n", pid % 1_000_000);
        let ns_ip = format!("10.123.{net}.{}", 4 * u32::from(tag) + 2);
        ip(&["netns", "add", &ns.name]);
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &ns.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.host_ip),
            "dev",
            &ns.host_if,
        ]);
        ip(&["link", "set", &ns.host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut a = vec!["netns", "exec", &ns.name, "ip"];
            a.extend_from_slice(args);
            ip(&a);
        };
        inside(&["addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        inside(&["link", "set", &ns_if, "up"]);
        inside(&["link", "set", "lo", "up"]);
        std::fs::create_dir_all(ns.etc()).unwrap();
        std::fs::write(
            ns.etc().join("resolv.conf"),
            format!("nameserver {}\noptions timeout:5 attempts:2\n", ns.host_ip),
        )
        .unwrap();
        ns
    }

    fn etc(&self) -> PathBuf {
        Path::new("/etc/netns").join(&self.name)
    }

    /// A command run inside the namespace.
    pub(crate) fn exec(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pair; the second command is for a set-up
        // that failed half-way.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = std::fs::remove_dir_all(self.etc());
    }
}

/// The mirror: one published generation with the official `test` 6 (`.cvd`, its
/// `.sign`, cdiffs 2..6 with theirs) and `bytecode.cvd` (19).
pub(crate) fn mirror() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let g = d.path().join("generations/g-000001");
    std::fs::create_dir_all(&g).unwrap();
    let copy = |from: &str, to: &str| std::fs::copy(fixture(from), g.join(to)).unwrap();
    copy("test-6.cvd", "test.cvd");
    copy("test-6.cvd.sign", "test-6.cvd.sign");
    for v in 2..=6 {
        for ext in ["cdiff", "cdiff.sign"] {
            let n = format!("test-{v}.{ext}");
            copy(&n, &n);
        }
    }
    copy("bytecode.cvd", "bytecode.cvd");
    std::os::unix::fs::symlink("generations/g-000001", d.path().join("current")).unwrap();
    d
}

fn start(ns: &Netns, dir: &Path) -> Server {
    let http = format!("{}:0", ns.host_ip);
    let dns = format!("{}:53", ns.host_ip);
    let s = Server::start(
        dir,
        &[
            "--listen",
            &http,
            "--dns-listen",
            &dns,
            "--dns-zone",
            ZONE,
            "--dns-extra-zone",
            "clamav.net",
        ],
    );
    s.log.wait_for("DNS: answering on udp+tcp ").unwrap();
    s
}

/// A client directory holding `test-1.cvd` as `test.cvd` (and its `.sign`), and its
/// freshclam.conf.
fn client(s: &Server, extra_conf: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let c = tempfile::tempdir().unwrap();
    let db = c.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::copy(fixture("test-1.cvd"), db.join("test.cvd")).unwrap();
    // strict mode trusts a local .cvd only with its .sign (without, it downloads all)
    std::fs::copy(fixture("test-1.cvd.sign"), db.join("test-1.cvd.sign")).unwrap();
    let conf = c.path().join("freshclam.conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {db}\nUpdateLogFile {log}\nPidFile {pid}\nDatabaseOwner root\n\
             DatabaseMirror http://{addr}\nDNSDatabaseInfo {ZONE}\nScriptedUpdates yes\n\
             Foreground yes\n{extra_conf}",
            db = db.display(),
            log = c.path().join("freshclam.log").display(),
            pid = c.path().join("freshclam.pid").display(),
            addr = s.addr,
        ),
    )
    .unwrap();
    (c, db, conf)
}

/// The access-log lines so far: a sentinel request made after everything else is
/// waited for, so every earlier request's line is in.
pub(crate) fn access_lines(s: &Server, sentinel: &str) -> Vec<String> {
    let r = crate::util::get(s.addr, sentinel, "");
    assert_eq!(r.status, 404);
    s.log.wait_for(&format!("path={sentinel} ")).unwrap();
    s.log
        .text()
        .lines()
        .filter(|l| l.contains("sigserver::access") && !l.contains("path=/sentinel"))
        .map(str::to_owned)
        .collect()
}

pub(crate) fn cld_version(db: &Path, out: &str) -> String {
    let cld = std::fs::read(db.join("test.cld")).unwrap_or_else(|e| panic!("test.cld: {e}\n{out}"));
    let header = String::from_utf8_lossy(&cld[..512]).into_owned();
    header.split(':').nth(2).unwrap().to_owned()
}

#[test]
fn freshclam_1_4_learns_versions_from_our_dns_and_updates_through_the_mirror() {
    if testkit::tools::require("freshclam").is_none() || !can_use_netns() {
        return;
    }
    let ns = Netns::new(1);
    let dir = mirror();
    let s = start(&ns, dir.path());
    let (_c, db, conf) = client(&s, "");
    let freshclam = |conf: &Path| {
        run(ns
            .exec(Path::new("freshclam"))
            .arg(format!("--config-file={}", conf.display()))
            .args([
                "--update-db=test",
                "--update-db=bytecode",
                "--verbose",
                "--debug",
            ]))
    };

    let out = freshclam(&conf);
    println!("--- freshclam 1.4 (first run), DNS lines ---");
    for l in out
        .lines()
        .filter(|l| l.contains("DNS") || l.contains("Querying"))
    {
        println!("{l}");
    }
    // The main record (bytecode field 7) and the per-database record of `test`.
    assert!(out.contains(&format!("Querying {ZONE}")), "{out}");
    assert!(out.contains("bytecode.cvd version from DNS: 19"), "{out}");
    assert!(out.contains("Querying test.cvd.clamav.net"), "{out}");
    assert!(out.contains("test.cvd version from DNS: 6"), "{out}");
    assert!(!out.contains("older than"), "{out}");
    assert!(out.contains("test.cld updated (version: 6"), "{out}");
    assert_eq!(cld_version(&db, &out), "6");
    assert!(db.join("bytecode.cvd").exists());
    let first = access_lines(&s, "/sentinel-1");
    let paths: Vec<&str> = first
        .iter()
        .filter_map(|l| l.split("path=").nth(1)?.split_whitespace().next())
        .collect();
    assert_eq!(
        paths.iter().filter(|p| p.starts_with("/test-")).count(),
        5,
        "{paths:?}"
    );
    assert!(
        !paths.contains(&"/test.cvd"),
        "no header probe: the version came from DNS: {paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| **p == "/bytecode.cvd").count(),
        1,
        "{paths:?}"
    );
    for v in 2..=6 {
        assert!(
            first
                .iter()
                .any(|l| l.contains(&format!("path=/test-{v}.cdiff status=200"))),
            "{first:?}"
        );
    }

    // Second run: DNS says both are current; no HTTP request at all.
    let out = freshclam(&conf);
    assert!(out.contains("bytecode.cvd version from DNS: 19"), "{out}");
    assert!(out.contains("test.cvd version from DNS: 6"), "{out}");
    assert!(out.contains("bytecode.cvd database is up-to-date"), "{out}");
    assert!(out.contains("test.cld database is up-to-date"), "{out}");
    let second = access_lines(&s, "/sentinel-2");
    assert_eq!(second, first, "the second run made HTTP requests");
    let m = s.metrics();
    let answered = crate::util::metric(
        &m,
        "sigserver_dns_queries_total{transport=\"udp\",outcome=\"answered\"}",
    )
    .unwrap();
    assert!(answered >= 4.0, "{m}");
}

#[test]
fn freshclam_1_5_strict_learns_versions_from_our_dns() {
    let Some(freshclam15) = testkit::tools::require_clamav15("freshclam") else {
        return;
    };
    let bin = freshclam15
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if !can_use_netns() {
        return;
    }
    let ns = Netns::new(2);
    let dir = mirror();
    let s = start(&ns, dir.path());
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("clamav-test-root.crt"),
        certs.path().join("clamav-test-root.crt"),
    )
    .unwrap();
    let (_c, db, conf) = client(
        &s,
        &format!(
            "CVDCertsDirectory {}\nFIPSCryptoHashLimits yes\n",
            certs.path().display()
        ),
    );
    let out = run(ns
        .exec(&bin.join("freshclam"))
        .env("CVD_CERTS_DIR", certs.path())
        .arg(format!("--config-file={}", conf.display()))
        .args(["--update-db=test", "--verbose", "--debug"]));
    println!("--- freshclam 1.5.3 strict, DNS lines ---");
    for l in out
        .lines()
        .filter(|l| l.contains("DNS") || l.contains("Querying"))
    {
        println!("{l}");
    }
    assert!(out.contains(&format!("Querying {ZONE}")), "{out}");
    assert!(out.contains("Querying test.cvd.clamav.net"), "{out}");
    assert!(out.contains("test.cvd version from DNS: 6"), "{out}");
    assert_eq!(cld_version(&db, &out), "6");
    let lines = access_lines(&s, "/sentinel-1");
    for v in 2..=6 {
        for f in [
            format!("/test-{v}.cdiff "),
            format!("/test-{v}.cdiff.sign "),
        ] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains(&format!("path={f}status=200"))),
                "{f}: {lines:?}"
            );
        }
    }
    assert!(
        !lines.iter().any(|l| l.contains("path=/test.cvd ")),
        "{lines:?}"
    );
}
