//! `sigupdate watch`: syncs at start, again at once on SIGHUP / SIGUSR1 (long before
//! the interval), and stops cleanly on SIGTERM. Also a custom database with its own keys
//! from the config file.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::official_sync::sigupdate;
use crate::support::*;
use testkit::upstream::{History, PublisherKeys, Upstream};

fn signal(child: &Child, sig: &str) {
    // the shell's built-in `kill` (no dependency on a `kill` binary)
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{sig} {}", child.id()))
        .status()
        .unwrap();
    assert!(st.success());
}

fn published(mirror: &Path) -> Option<u32> {
    let files = tree(mirror);
    let cvd = files.get("demo.cvd")?;
    cvd_format::Header::parse(&cvd[..512])
        .ok()
        .map(|h| h.version)
}

/// Waits (bounded) until the published version is `v`.
fn wait_for(mirror: &Path, v: u32, child: &mut Child) {
    for _ in 0..3000 {
        if published(mirror) == Some(v) {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "watch exited early");
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("version {v} never published (have {:?})", published(mirror));
}

#[test]
fn watch_syncs_on_signal_and_stops_on_sigterm_with_a_custom_database() {
    let keys = PublisherKeys::test();
    let history = History::synthetic("demo", 4, &keys).unwrap();
    let mut up = Upstream::builder().database(history, 1).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("demo-keys.pem");
    std::fs::write(&key_file, keys.public_pem().unwrap()).unwrap();
    let mirror = dir.path().join("mirror");
    let cfg = dir.path().join("sigupdate.toml");
    std::fs::write(
        &cfg,
        format!(
            "dir = {mirror:?}\nupstream = [{:?}]\ndb = [\"demo\"]\nno-dns = true\nretries = 0\n\
             interval-secs = 3600\njitter-secs = 0\n[custom.demo]\nkeys = {key_file:?}\nsign = false\n",
            up.base_url()
        ),
    )
    .unwrap();
    let mut child = sigupdate()
        .args(["watch", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&mirror, 1, &mut child);
    up.advance().unwrap();
    signal(&child, "HUP");
    wait_for(&mirror, 2, &mut child);
    up.advance().unwrap();
    signal(&child, "USR1");
    wait_for(&mirror, 3, &mut child);
    signal(&child, "TERM");
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    let base = |v: u32| {
        Ok(up
            .history("demo")
            .unwrap()
            .release(v)
            .unwrap()
            .cvd()
            .to_vec())
    };
    let (v, cdiffs) = check_db(&tree(&mirror), "demo", &keys.key_set(), None, &base).unwrap();
    assert_eq!((v, cdiffs), (3, vec![2, 3]));
}

#[test]
fn a_custom_database_with_the_wrong_keys_is_refused() {
    let keys = PublisherKeys::test();
    let history = History::synthetic("demo", 2, &keys).unwrap();
    let up = Upstream::builder().database(history, 1).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // the official keys do not verify the test publisher's database
    let out = sigupdate()
        .arg("sync")
        .arg("--dir")
        .arg(dir.path())
        .args([
            "--db",
            "demo",
            "--no-dns",
            "--retries",
            "0",
            "--upstream",
            &up.base_url(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("current").exists());
}

/// Under systemd (`Type=notify`, systemd played by a datagram socket in
/// `NOTIFY_SOCKET`): `READY=1` after the first sync, with a `STATUS=` line naming the
/// published version.
#[test]
fn watch_tells_systemd_it_is_ready_with_the_published_versions() {
    use std::os::unix::net::UnixDatagram;
    let keys = PublisherKeys::test();
    let history = History::synthetic("demo", 2, &keys).unwrap();
    let up = Upstream::builder().database(history, 2).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("demo-keys.pem");
    std::fs::write(&key_file, keys.public_pem().unwrap()).unwrap();
    let mirror = dir.path().join("mirror");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap(); // a hang guard
    let cfg = dir.path().join("sigupdate.toml");
    std::fs::write(
        &cfg,
        format!(
            "dir = {mirror:?}\nupstream = [{:?}]\ndb = [\"demo\"]\nno-dns = true\nretries = 0\n\
             interval-secs = 0\njitter-secs = 0\n[custom.demo]\nkeys = {key_file:?}\nsign = false\n",
            up.base_url()
        ),
    )
    .unwrap();
    let st = sigupdate()
        .args(["watch", "--max-syncs", "2", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let mut buf = vec![0u8; 4096];
    let n = sock.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    assert!(
        msg.contains("STATUS=publishing demo 2; last sync ok"),
        "{msg}"
    );
}
