//! Interop: the real `freshclam` (ClamAV 1.4, Debian `clamav-freshclam`) updates a
//! database from version 1 to 6 through sigserver, via the cdiffs.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

use crate::util::{Server, plain_mirror};

fn run_freshclam(freshclam: &std::path::Path, conf: &std::path::Path) -> (bool, String) {
    let out = Command::new(freshclam)
        .arg("--no-dns")
        .arg(format!("--config-file={}", conf.display()))
        .arg("--update-db=test")
        .output()
        .expect("run freshclam");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn freshclam_updates_from_1_to_6_through_the_cdiffs() {
    let Some(freshclam) = testkit::tools::require("freshclam") else {
        return;
    };
    let mirror = plain_mirror();
    let client = tempfile::tempdir().unwrap();
    let db = client.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::copy(crate::util::fixture("test-1.cvd"), db.join("test.cvd")).unwrap();

    let s = Server::start(mirror.path(), &[]);
    let conf = client.path().join("freshclam.conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {db}\nUpdateLogFile {log}\nPidFile {pid}\nDatabaseOwner root\n\
             DatabaseMirror http://{addr}\nDNSDatabaseInfo no\nScriptedUpdates yes\nForeground yes\n",
            db = db.display(),
            log = client.path().join("freshclam.log").display(),
            pid = client.path().join("freshclam.pid").display(),
            addr = s.addr,
        ),
    )
    .unwrap();

    let (ok, out) = run_freshclam(&freshclam, &conf);
    assert!(
        ok,
        "freshclam failed:\n{out}\nserver log:\n{}",
        s.log.text()
    );
    assert!(out.contains("local version: 1, remote version: 6"), "{out}");
    assert!(out.contains("test.cld updated (version: 6"), "{out}");
    let cld = std::fs::read(db.join("test.cld")).unwrap();
    let header = String::from_utf8_lossy(&cld[..512]);
    assert_eq!(header.split(':').nth(2), Some("6"), "{header}");

    // It probed the header with a range, then fetched every cdiff, never the full cvd.
    for v in 2..=6 {
        s.log
            .wait_for(&format!("path=/test-{v}.cdiff status=200"))
            .unwrap();
    }
    let log = s.log.text();
    assert!(log.contains("path=/test.cvd status=206"), "{log}");
    assert!(!log.contains("path=/test.cvd status=200"), "{log}");
    let m = s.metrics();
    assert_eq!(
        crate::util::metric(
            &m,
            "sigserver_requests_total{kind=\"cdiff\",status=\"200\"}"
        ),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        crate::util::metric(&m, "sigserver_requests_total{kind=\"cvd\",status=\"200\"}"),
        None,
        "{m}"
    );

    // A second run finds it up to date.
    let (ok, out) = run_freshclam(&freshclam, &conf);
    assert!(ok, "{out}");
    assert!(out.contains("test.cld database is up-to-date"), "{out}");
}
