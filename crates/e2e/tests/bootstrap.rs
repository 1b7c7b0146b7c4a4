//! A freshly deployed mirror must not strand clients: synced from empty straight to
//! `test` v6, it also publishes the older cdiffs (signature-verified, chain-unproven),
//! and a real `freshclam` holding `test-3.cvd` reaches v6 through `test-4..6.cdiff`
//! served by `sigserver`. With `bootstrap-cdiffs = false` the same client gets a 404
//! for `test-4.cdiff` (and then, depending on the freshclam version and configuration,
//! stays stranded on v3 or retries and downloads the whole `.cvd`), which is why
//! backfill is on by default.
//!
//! `freshclam` comes from Debian's `clamav-freshclam`; without it the freshclam steps
//! are skipped with a message, except under `CI=true`, where a missing tool fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use e2e::{Binaries, Freshclam, Sigserver, SyncOptions};
use testkit::upstream::{History, Upstream};

/// 2026-01-01T00:00:00Z: the official test root expires in 2027.
const VERIFY_TIME: i64 = 1_767_225_600;

fn opts(upstream: &str, config: Option<&Path>) -> SyncOptions {
    SyncOptions {
        upstreams: vec![upstream.to_owned()],
        dbs: vec!["test".to_owned()],
        sign_roots: vec![e2e::official_vectors().join("clamav-test-root.crt")],
        verify_time: Some(VERIFY_TIME),
        config: config.map(Path::to_path_buf),
        ..SyncOptions::default()
    }
}

/// The files the published snapshot serves (its `.trust.json` record, a dot file
/// outside the served grammar, left out).
fn published_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("current"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Runs freshclam holding `test-3.cvd` against `server`; returns the version it ends
/// on and the paths it requested with their status.
fn freshclam_from_v3(
    fc_bin: &Path,
    root: &Path,
    server: &Sigserver,
    history: &History,
) -> (Option<u32>, Vec<(String, u16)>) {
    let fc = Freshclam::new(fc_bin, root, &server.url()).unwrap();
    fc.install("test.cvd", history.release(3).unwrap().cvd())
        .unwrap();
    let before = server.access_log().len();
    let out = fc.update("test").unwrap();
    let gets = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("> GET "))
        .count();
    let log = server.wait_access(before + gets, std::time::Duration::from_secs(60));
    let mine = log[before..]
        .iter()
        .filter(|a| a.user_agent.starts_with("ClamAV/"))
        .map(|a| (a.path.clone(), a.status))
        .collect();
    println!(
        "freshclam (exit {:?}) requested: {mine:?}\n{}",
        out.code,
        out.stdout
            .lines()
            .filter(|l| !l.starts_with('>') && !l.starts_with('<'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    (fc.version("test"), mine)
}

#[test]
fn a_mirror_synced_from_empty_to_v6_lets_freshclam_at_v3_update_through_cdiffs() {
    let bins = Binaries::build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let history = History::official(&e2e::official_vectors()).unwrap();
    let upstream = Upstream::builder()
        .database(history.clone(), 6)
        .start()
        .unwrap();

    // One sync, from empty, straight to v6.
    let dir = tmp.path().join("mirror");
    let out = e2e::sync(&bins, &dir, &opts(&upstream.base_url(), None)).unwrap();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("CHAIN-UNPROVEN"),
        "the backfill is logged: {}",
        out.stderr
    );
    let names = published_names(&dir);
    for v in 2..=6 {
        for f in [format!("test-{v}.cdiff"), format!("test-{v}.cdiff.sign")] {
            assert!(names.contains(&f), "{f} not published: {names:?}");
            // byte for byte what upstream serves
            assert_eq!(
                std::fs::read(dir.join("current").join(&f)).unwrap(),
                upstream.files("test")[&f],
                "{f}"
            );
        }
    }
    let st = e2e::status(&bins, &dir).unwrap();
    assert_eq!(st.databases["test"].published_version, Some(6));
    assert_eq!(
        st.databases["test"].unproven_cdiffs,
        [2, 3, 4, 5, 6],
        "{}",
        st.json
    );
    // ... recorded as such inside the generation itself
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("current/.trust.json")).unwrap()).unwrap();
    assert_eq!(
        record["unproven_cdiffs"]["test"],
        serde_json::json!([2, 3, 4, 5, 6])
    );
    println!(
        "checked: sync from empty published test.cvd v6 + test-2..6.cdiff (+ .sign), listed unproven"
    );

    // The same from empty with backfill off: the cvd only.
    let cfg = tmp.path().join("strict.toml");
    std::fs::write(&cfg, "bootstrap-cdiffs = false\n").unwrap();
    let strict = tmp.path().join("strict");
    let out = e2e::sync(&bins, &strict, &opts(&upstream.base_url(), Some(&cfg))).unwrap();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        published_names(&strict),
        ["dns.txt", "test-6.cvd.sign", "test.cvd"]
    );
    println!("checked: with bootstrap-cdiffs = false only test.cvd v6 is published");

    let Some(fc_bin) = testkit::tools::require("freshclam") else {
        return;
    };
    let server = Sigserver::start(&bins, &dir, &[]).unwrap();
    let (version, requests) = freshclam_from_v3(&fc_bin, &tmp.path().join("fc"), &server, &history);
    assert_eq!(version, Some(6), "freshclam at v3 reaches v6");
    let cdiffs: Vec<&str> = requests
        .iter()
        .filter(|(p, s)| p.ends_with(".cdiff") && *s == 200)
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(cdiffs, ["/test-4.cdiff", "/test-5.cdiff", "/test-6.cdiff"]);
    assert!(
        !requests.iter().any(|(p, s)| p == "/test.cvd" && *s == 200),
        "no full download: {requests:?}"
    );
    server.stop().unwrap();
    println!(
        "checked: freshclam at v3 -> v6 through test-4..6.cdiff from sigserver, no full download"
    );

    // The stranding this prevents: the strict mirror answers 404 for test-4.cdiff.
    let server = Sigserver::start(&bins, &strict, &[]).unwrap();
    let (version, requests) =
        freshclam_from_v3(&fc_bin, &tmp.path().join("fc-strict"), &server, &history);
    assert!(
        requests
            .iter()
            .any(|(p, s)| p == "/test-4.cdiff" && *s == 404),
        "{requests:?}"
    );
    // What the client does next depends on its version and configuration (reported
    // stranded on v3 with DNS; this freshclam, without DNS, retries the cdiff and then
    // downloads the whole .cvd): either way it does not get the cdiffs.
    let full = requests.iter().any(|(p, s)| p == "/test.cvd" && *s == 200);
    server.stop().unwrap();
    println!(
        "checked: against a cvd-only mirror the same client got 404 for test-4.cdiff, then ended on {version:?} (full test.cvd downloaded: {full})"
    );
}
