//! Under systemd (`Type=notify`): `READY=1` once the listener is bound and a snapshot
//! is there to serve, `STATUS=` with the published versions, `WATCHDOG=1` when
//! `WATCHDOG_USEC` is set, `RELOADING=1` on `SIGHUP`. systemd is played by a datagram
//! socket named in `NOTIFY_SOCKET`.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;

use crate::util::{BIN, Server, fixture, get, plain_mirror};

/// The fake service manager's socket.
fn manager(dir: &Path) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    // A guard against a hang, not a timing assertion.
    sock.set_read_timeout(Some(crate::util::WAIT_GUARD))
        .unwrap();
    (sock, path)
}

/// Receives notifications until one contains `needle`; returns all received so far.
fn until(sock: &UnixDatagram, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {needle:?} after {seen:?}: {e}"));
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = msg.contains(needle);
        seen.push(msg);
        if done {
            return seen;
        }
    }
}

#[test]
fn plain_directory_is_ready_at_once_with_status_watchdog_and_reload() {
    let mirror = plain_mirror();
    let sockdir = tempfile::tempdir().unwrap();
    let (sock, path) = manager(sockdir.path());
    let mut cmd = Command::new(BIN);
    cmd.arg("--dir")
        .arg(mirror.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000");
    let server = Server::spawn(&mut cmd, 1);
    let seen = until(&sock, "READY=1");
    // Ready means serving: the listener answers.
    assert_eq!(get(server.addr, "/test.cvd", "").status, 200, "{seen:?}");
    until(&sock, "STATUS=serving the plain directory");
    until(&sock, "WATCHDOG=1");
    server.hup();
    until(&sock, "RELOADING=1");
    until(&sock, "READY=1");
}

#[test]
fn with_sync_ready_comes_after_the_first_publish_and_status_names_the_versions() {
    let up_dir = plain_mirror();
    std::fs::remove_file(up_dir.path().join("dns.txt")).unwrap();
    let upstream = Server::start(up_dir.path(), &[]);
    let mirror = tempfile::tempdir().unwrap();
    let (sock, path) = manager(mirror.path());
    let root = fixture("clamav-test-root.crt");
    let mut cmd = Command::new(BIN);
    cmd.arg("--dir")
        .arg(mirror.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--sync",
            "--no-dns",
            "--db",
            "test",
        ])
        .arg("--upstream")
        .arg(format!("http://{}", upstream.addr))
        .arg("--sign-root")
        .arg(&root)
        .env("NOTIFY_SOCKET", &path);
    let _server = Server::spawn(&mut cmd, 1);
    let seen = until(&sock, "READY=1");
    assert!(
        mirror.path().join("current").exists(),
        "READY=1 before a snapshot was published: {seen:?}"
    );
    until(&sock, "STATUS=serving test 6 (g-");
}
