//! `sigupdate status` tells the truth about a mirror that is behind (issue 23): per
//! database the served version, the newest known one, since when it is behind,
//! whether provably (after the ready lag), and whether a `sigserver
//! --behind-redirect` serving the directory redirects it (`DIR/redirect.json`, from a
//! live process only).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;
use std::process::Command;

use mirror_core::status::{DatabaseStatus, MirrorStatus};

use crate::official_sync::sigupdate;

fn status(dir: &Path, extra: &[&str]) -> (String, serde_json::Value) {
    let run = |json: bool| {
        let mut c: Command = sigupdate();
        c.args(["status", "--dir"]).arg(dir).args(extra);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    (
        String::from_utf8(run(false)).unwrap(),
        serde_json::from_slice(&run(true)).unwrap(),
    )
}

#[test]
fn status_shows_served_newest_since_and_redirects() {
    let d = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut st = MirrorStatus {
        last_publish: Some(now),
        last_success: Some(now),
        ..MirrorStatus::default()
    };
    st.databases.insert(
        "test".into(),
        DatabaseStatus {
            published_version: Some(3),
            upstream_version: Some(6),
            upstream_seen_at: Some(now - 120),
            ..Default::default()
        },
    );
    st.store(d.path()).unwrap();
    let mut r = push::behind::RedirectState {
        target: "http://up.example".into(),
        since: now,
        pid: std::process::id(), // a live process
        ..Default::default()
    };
    r.redirected.insert("test".into(), (Some(3), 6));
    r.store(d.path()).unwrap();

    let (text, json) = status(d.path(), &["--ready-lag", "60"]);
    assert!(
        text.contains(&format!(
            "test: BEHIND: serves version 3, newest known version 6 since {}",
            now - 120
        )),
        "{text}"
    );
    assert!(
        text.contains("provably behind; redirects active to http://up.example"),
        "{text}"
    );
    let b = &json["behind"]["test"];
    assert_eq!(b["served_version"], 3);
    assert_eq!(b["newest_known_version"], 6);
    assert_eq!(b["behind_since"], now - 120);
    assert_eq!(b["provably_behind"], true);
    assert_eq!(b["redirect_active"], true);

    // within the lag: behind, not provably
    let (text, json) = status(d.path(), &["--ready-lag", "3600"]);
    assert!(text.contains("behind, within the lag"), "{text}");
    assert_eq!(json["behind"]["test"]["provably_behind"], false);

    // a record left by a process that is gone: no redirects
    let mut dead = Command::new("true").spawn().unwrap();
    let gone = dead.id();
    dead.wait().unwrap();
    r.pid = gone;
    r.store(d.path()).unwrap();
    let (text, json) = status(d.path(), &["--ready-lag", "60"]);
    assert!(text.contains("provably behind; no redirects"), "{text}");
    assert_eq!(json["behind"]["test"]["redirect_active"], false);

    // caught up: no BEHIND line, served = newest
    st.databases.get_mut("test").unwrap().published_version = Some(6);
    st.store(d.path()).unwrap();
    let (text, json) = status(d.path(), &["--ready-lag", "60"]);
    assert!(!text.contains("BEHIND"), "{text}");
    let b = &json["behind"]["test"];
    assert_eq!(
        (
            b["served_version"].clone(),
            b["newest_known_version"].clone()
        ),
        (6.into(), 6.into())
    );
    assert_eq!(b["behind_since"], serde_json::Value::Null);
}
