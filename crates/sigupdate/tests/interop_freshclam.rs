//! Real peers: what `sigupdate sync` publishes is accepted by ClamAV's own tools.
//! `sigtool --info` verifies every published `.cvd`, and a real `freshclam` holding
//! version 1 updates to version 6 from our `DIR/current` through the cdiffs we proved.
//! Needs `freshclam` and `sigtool` (Debian `clamav`, `clamav-freshclam`), found with
//! `testkit::tools`: skipped with a message when missing, a failure in CI.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;
use std::process::Command;

use crate::official_sync::official_sync;
use crate::support::*;

fn sync(mirror: &Path, upstream: &str) {
    let out = official_sync(mirror, upstream).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn freshclam_updates_through_the_published_chain_and_sigtool_verifies() {
    let (Some(freshclam), Some(sigtool)) = (
        testkit::tools::require("freshclam"),
        testkit::tools::require("sigtool"),
    ) else {
        return;
    };
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = tempfile::tempdir().unwrap();
    for v in 1..=6 {
        arrange_official(up.path(), v, true);
        sync(mirror.path(), &server.base_url());
    }
    let published = std::fs::canonicalize(mirror.path().join("current")).unwrap();
    assert_eq!(
        check_snapshot(&read_tree(&published)).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );

    let out = Command::new(sigtool)
        .arg("--info")
        .arg(published.join("test.cvd"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Verification OK"),
        "{text}"
    );

    // Serve the published snapshot (HTTP with Range, as freshclam needs) and update a
    // client holding version 1.
    let mirror_server = serve(&published);
    let client = tempfile::tempdir().unwrap();
    let db = client.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::copy(fixtures().join("test-1.cvd"), db.join("test.cvd")).unwrap();
    let conf = client.path().join("freshclam.conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {}\nUpdateLogFile {}\nPidFile {}\nDatabaseOwner root\n\
             DatabaseMirror {}\nDNSDatabaseInfo no\nScriptedUpdates yes\nForeground yes\n",
            db.display(),
            client.path().join("freshclam.log").display(),
            client.path().join("freshclam.pid").display(),
            mirror_server.base_url(),
        ),
    )
    .unwrap();
    let out = Command::new(freshclam)
        .arg("--no-dns")
        .arg(format!("--config-file={}", conf.display()))
        .arg("--update-db=test")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("test.cld updated (version: 6"), "{text}");
    let stats = mirror_server.stats();
    for v in 2..=6 {
        assert_eq!(stats.requests(&format!("/test-{v}.cdiff")), 1, "{text}");
    }
    // incremental: the full .cvd body was never sent, only the header probe
    assert!(
        stats.body_bytes("/test.cvd") <= 512,
        "{}",
        stats.body_bytes("/test.cvd")
    );
}
