//! Real clients and a mirror that is behind (issue 23), with the clients' DNS in a
//! network namespace created here (as `interop_freshclam_dns` does).
//!
//! The stuck mirror serves the official `test` at version 3 while version 6 is known
//! (its `status.json` says upstream has announced 6 for longer than `--ready-lag`, as
//! the sync engine records it when upstream's files are unusable); the current mirror
//! serves 6.
//!
//! - Without a redirect target, DNS (the current mirror's) saying 6: freshclam 1.4
//!   clients at 4 and 5 keep 4 and 5 (the whole `.cvd` is answered `304`, never the
//!   older body), with and without DNS.
//! - With `--behind-redirect` to the current mirror, the stuck mirror's own DNS
//!   announcing 6: freshclam 1.4 clients from empty, 3, 4 and 5, with and without DNS,
//!   end at 6; freshclam 1.5.3 in strict mode from empty and from 4 ends at 6 having
//!   fetched every `.sign` it needs.
//! - Once the stuck mirror has caught up, it serves every file itself (no `302`).
//! - No answer of the stuck mirror is a `403`.
//!
//! Needs root (network namespaces); with `CI=true` a missing capability or tool fails.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use crate::behind_redirect::{publish, set_status, stuck_mirror};
use crate::interop_freshclam_dns::{Netns, ZONE, can_use_netns, mirror};
use crate::util::{Server, fixture};

/// freshclam's view of `test` in a database directory: the version in `test.cld` or
/// `test.cvd`.
fn local_version(db: &Path) -> Option<u32> {
    let bytes = std::fs::read(db.join("test.cld"))
        .or_else(|_| std::fs::read(db.join("test.cvd")))
        .ok()?;
    let h = cvd_format::Header::parse(bytes.get(..512)?).ok()?;
    Some(h.version)
}

/// A client of `mirror` at `version` (`None`: empty), with or without `dns`.
struct Client {
    _dir: tempfile::TempDir,
    db: PathBuf,
    conf: PathBuf,
    dns: bool,
}

impl Client {
    fn new(mirror: &str, version: Option<u32>, dns: bool, extra: &str) -> Client {
        let c = tempfile::tempdir().unwrap();
        let db = c.path().join("db");
        std::fs::create_dir(&db).unwrap();
        if let Some(v) = version {
            std::fs::copy(fixture(&format!("test-{v}.cvd")), db.join("test.cvd")).unwrap();
            let sign = format!("test-{v}.cvd.sign");
            std::fs::copy(fixture(&sign), db.join(&sign)).unwrap();
        }
        let conf = c.path().join("freshclam.conf");
        let info = if dns { ZONE } else { "no" };
        std::fs::write(
            &conf,
            format!(
                "DatabaseDirectory {db}\nUpdateLogFile {log}\nPidFile {pid}\nDatabaseOwner root\n\
                 DatabaseMirror http://{mirror}\nDNSDatabaseInfo {info}\nScriptedUpdates yes\n\
                 MaxAttempts 1\nForeground yes\n{extra}",
                db = db.display(),
                log = c.path().join("freshclam.log").display(),
                pid = c.path().join("freshclam.pid").display(),
            ),
        )
        .unwrap();
        Client {
            _dir: c,
            db,
            conf,
            dns,
        }
    }

    /// Runs `program` (freshclam) in `ns` for `test`; its output (it may fail).
    fn update(&self, ns: &Netns, program: &Path, env: &[(&str, &Path)]) -> String {
        let mut cmd = ns.exec(program);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.arg(format!("--config-file={}", self.conf.display()))
            .args(["--update-db=test", "--verbose", "--debug"]);
        if !self.dns {
            cmd.arg("--no-dns");
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        format!(
            "exit {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

/// `sigserver` on the namespace's host address: HTTP on a free port, and DNS on port
/// 53 when `dns`.
fn serve(ns: &Netns, dir: &Path, dns: bool, extra: &[&str]) -> Server {
    let http = format!("{}:0", ns.host_ip);
    let dns_addr = format!("{}:53", ns.host_ip);
    let mut args = vec!["--listen", &http];
    if dns {
        args.extend([
            "--dns-listen",
            &dns_addr,
            "--dns-zone",
            ZONE,
            "--dns-extra-zone",
            "clamav.net",
        ]);
    }
    args.extend_from_slice(extra);
    let s = Server::start(dir, &args);
    if dns {
        s.log.wait_for("DNS: answering on udp+tcp ").unwrap();
    }
    s
}

/// The stuck mirror's access-log lines so far (a sentinel request is waited for).
fn lines(s: &Server, sentinel: &str) -> Vec<String> {
    crate::interop_freshclam_dns::access_lines(s, sentinel)
}

#[test]
fn without_a_redirect_target_clients_ahead_of_the_mirror_are_never_downgraded() {
    if testkit::tools::require("freshclam").is_none() || !can_use_netns() {
        return;
    }
    let ns = Netns::new(3);
    let current = mirror(); // test 6; its DNS is the clients' resolver: "6 is out"
    let cur = serve(&ns, current.path(), true, &[]);
    let stuck = stuck_mirror(3, 6, 120);
    let s = serve(&ns, stuck.path(), false, &["--ready-lag", "60"]);
    assert_eq!(crate::util::get(s.addr, "/ready", "").status, 503);
    for v in [4, 5] {
        for dns in [true, false] {
            let c = Client::new(&s.addr.to_string(), Some(v), dns, "");
            let out = c.update(&ns, Path::new("freshclam"), &[]);
            assert_eq!(
                local_version(&c.db),
                Some(v),
                "client at {v}, dns {dns}:\n{out}"
            );
        }
    }
    let log = lines(&s, "/sentinel-a");
    // The whole test.cvd was asked for and answered 304, never 200.
    assert!(
        log.iter().any(|l| l.contains("path=/test.cvd status=304")),
        "{log:?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("path=/test.cvd status=200")
                || l.contains("path=/test.cvd status=206")),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains("status=403")), "{log:?}");
    drop(cur);
}

#[test]
fn with_a_redirect_target_every_client_ends_at_the_newest_version() {
    if testkit::tools::require("freshclam").is_none() || !can_use_netns() {
        return;
    }
    let freshclam15 = testkit::tools::require_clamav15("freshclam");
    let ns = Netns::new(4);
    let current = mirror();
    let cur = serve(&ns, current.path(), false, &[]);
    let target = format!("http://{}", cur.addr);
    let stuck = stuck_mirror(3, 6, 120);
    // the stuck mirror's own DNS announces 6 while it redirects what it lacks
    let s = serve(
        &ns,
        stuck.path(),
        true,
        &["--ready-lag", "60", "--behind-redirect", &target],
    );
    let mirror_addr = s.addr.to_string();
    for v in [None, Some(3), Some(4), Some(5)] {
        for dns in [true, false] {
            let c = Client::new(&mirror_addr, v, dns, "");
            let out = c.update(&ns, Path::new("freshclam"), &[]);
            assert_eq!(
                local_version(&c.db),
                Some(6),
                "client at {v:?}, dns {dns}:\n{out}"
            );
            if dns {
                assert!(out.contains("test.cvd version from DNS: 6"), "{out}");
            }
        }
    }
    let log = lines(&s, "/sentinel-b");
    let redirected = log.iter().filter(|l| l.contains("status=302")).count();
    println!(
        "freshclam 1.4, 8 clients: {redirected} redirects of {} requests",
        log.len()
    );
    assert!(redirected > 0, "{log:?}");
    if let Some(f15) = &freshclam15 {
        let certs = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixture("clamav-test-root.crt"),
            certs.path().join("clamav-test-root.crt"),
        )
        .unwrap();
        let extra = format!(
            "CVDCertsDirectory {}\nFIPSCryptoHashLimits yes\n",
            certs.path().display()
        );
        for v in [None, Some(4)] {
            let c = Client::new(&mirror_addr, v, true, &extra);
            let out = c.update(&ns, f15, &[("CVD_CERTS_DIR", certs.path())]);
            assert_eq!(
                local_version(&c.db),
                Some(6),
                "1.5 strict from {v:?}:\n{out}"
            );
            let signs: Vec<String> = std::fs::read_dir(&c.db)
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".sign"))
                .collect();
            println!("freshclam 1.5.3 strict from {v:?}: at 6; .sign files kept: {signs:?}");
            if v.is_none() {
                // a full download keeps its detached signature
                assert_eq!(signs, ["test-6.cvd.sign"], "{out}");
            }
        }
        // every .sign a strict client needed came, through a redirect, from the
        // current mirror
        let cur_log = lines(&cur, "/sentinel-c");
        for f in [
            "/test-6.cvd.sign ",
            "/test-5.cdiff.sign ",
            "/test-6.cdiff.sign ",
        ] {
            assert!(
                cur_log
                    .iter()
                    .any(|l| l.contains(&format!("path={f}status=200"))),
                "{f}: {cur_log:?}"
            );
        }
    }
    let before = lines(&s, "/sentinel-d").len();

    // Caught up: the stuck mirror now holds 6 and serves every file itself.
    publish(stuck.path(), 2, 6);
    set_status(stuck.path(), 6, 6, 120);
    testkit::wait::until(
        "the mirror ready again",
        std::time::Duration::from_secs(30),
        || crate::util::get(s.addr, "/ready", "").status == 200,
    );
    let cur_before = lines(&cur, "/sentinel-e").len();
    for v in [None, Some(3)] {
        for dns in [true, false] {
            let c = Client::new(&mirror_addr, v, dns, "");
            let out = c.update(&ns, Path::new("freshclam"), &[]);
            assert_eq!(
                local_version(&c.db),
                Some(6),
                "caught up, client at {v:?}:\n{out}"
            );
        }
    }
    let after = lines(&s, "/sentinel-f");
    let new: Vec<&String> = after[before..]
        .iter()
        .filter(|l| l.contains("path=/test"))
        .collect();
    assert!(!new.is_empty());
    assert!(!new.iter().any(|l| l.contains("status=302")), "{new:?}");
    assert_eq!(
        lines(&cur, "/sentinel-g").len(),
        cur_before,
        "the current mirror got requests after the catch-up"
    );
    assert!(!after.iter().any(|l| l.contains("status=403")), "{after:?}");
}
