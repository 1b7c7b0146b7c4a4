//! `sigupdate sync` / `status` as a process against a real upstream on 127.0.0.1:
//! exit codes, `status --json`, and the published state kept on every failure.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;
use std::process::Output;

use crate::official_sync::{official_sync_from, sigupdate};
use crate::support::*;
use testkit::http::{Fault, RetryAfter, Scope};

fn sync(mirror: &Path, upstreams: &[String]) -> Output {
    official_sync_from(mirror, upstreams).output().unwrap()
}

/// `sigupdate status --dir MIRROR`, its human-readable output.
fn status_text(mirror: &Path) -> String {
    let out = sigupdate()
        .arg("status")
        .arg("--dir")
        .arg(mirror)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_json(mirror: &Path) -> serde_json::Value {
    let out = sigupdate()
        .arg("status")
        .arg("--dir")
        .arg(mirror)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The official history at 6 upstream, and a first sync of an empty mirror from it
/// (which succeeds).
fn first_official_sync() -> (
    tempfile::TempDir,
    testkit::http::TestServer,
    tempfile::TempDir,
    Output,
) {
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), 6, true);
    let server = serve(up.path());
    let mirror = tempfile::tempdir().unwrap();
    let out = sync(mirror.path(), &[server.base_url()]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    (up, server, mirror, out)
}

#[test]
fn sync_from_empty_then_status() {
    let (_up, server, mirror, out) = first_official_sync();
    assert_eq!(check_snapshot(&tree(mirror.path())).unwrap().0, 6);
    let st = status_json(mirror.path());
    let published = st["published_dir"].as_str().unwrap();
    assert!(Path::new(published).is_absolute());
    assert_eq!(
        std::fs::canonicalize(published).unwrap(),
        std::fs::canonicalize(mirror.path().join("current")).unwrap()
    );
    assert_eq!(st["databases"]["test"]["published_version"], 6);
    assert!(st["databases"]["test"]["last_error"].is_null());
    // a fresh mirror backfills the older cdiffs, chain-unproven, and says so
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap().1,
        [2, 3, 4, 5, 6]
    );
    assert_eq!(
        st["databases"]["test"]["unproven_cdiffs"],
        serde_json::json!([2, 3, 4, 5, 6])
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("CHAIN-UNPROVEN").count(),
        1,
        "warned once: {stderr}"
    );
    let text = status_text(mirror.path());
    assert!(
        text.contains("test: version 6 (upstream 6), 5 cdiffs (5 signature-verified but chain-unproven: 2..6), ok"),
        "{text}"
    );
    // up to date: still 0, nothing downloaded
    server.reset_stats();
    let out = sync(mirror.path(), &[server.base_url()]);
    assert_eq!(code(&out), 0);
    assert_eq!(server.stats().requests("/test.cvd"), 0);
    // A sync killed before writing its status: `status` reads the truth from `current`.
    std::fs::remove_file(mirror.path().join("status.json")).unwrap();
    let st = status_json(mirror.path());
    assert!(st["published_dir"].is_string());
    assert_eq!(st["generation"], "g-000001");
    assert_eq!(st["databases"]["test"]["published_version"], 6);
    // human output
    let text = status_text(mirror.path());
    assert!(
        text.contains("published_dir:") && text.contains("test: version 6"),
        "{text}"
    );
}

#[test]
fn exit_codes_for_each_failure_keep_the_published_state() {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    arrange_official(up.path(), 4, true);
    let mirror = tempfile::tempdir().unwrap();
    assert_eq!(code(&sync(mirror.path(), &[server.base_url()])), 0);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);

    // 1: verification failure (tampered .cvd)
    let p = up.path().join("test.cvd");
    let good = std::fs::read(&p).unwrap();
    let mut bad = good.clone();
    bad[5000] ^= 1;
    std::fs::write(&p, &bad).unwrap();
    let out = sync(mirror.path(), &[server.base_url()]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tree(mirror.path()), before);
    let st = status_json(mirror.path());
    assert_eq!(st["databases"]["test"]["last_error_kind"], "verification");
    assert!(
        st["databases"]["test"]["last_error"]
            .as_str()
            .unwrap()
            .contains(&server.url("/test.cvd"))
    );
    assert_eq!(st["databases"]["test"]["published_version"], 4);
    std::fs::write(&p, &good).unwrap();

    // 3: upstream unreachable
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    assert_eq!(code(&sync(mirror.path(), &[down])), 3);
    assert_eq!(tree(mirror.path()), before);
    assert_eq!(
        status_json(mirror.path())["databases"]["test"]["last_error_kind"],
        "upstream"
    );

    // 5: another sync holds the lock
    let lock = mirror_core::lock::SyncLock::acquire(&mirror.path().join("sync.lock")).unwrap();
    assert_eq!(code(&sync(mirror.path(), &[server.base_url()])), 5);
    drop(lock);

    // 2: configuration error
    let out = sigupdate()
        .args(["sync", "--db", "test", "--no-dns"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "no --dir");
    let out = sigupdate()
        .arg("sync")
        .arg("--dir")
        .arg(mirror.path())
        .args(["--db", "../x"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);

    // 4: rate-limited (and the cool-down persists for the next process)
    server.set_fault(
        Scope::All,
        Fault::RateLimit(Some(RetryAfter::Seconds(3600))),
    );
    assert_eq!(code(&sync(mirror.path(), &[server.base_url()])), 4);
    server.clear_faults();
    server.reset_stats();
    assert_eq!(code(&sync(mirror.path(), &[server.base_url()])), 4);
    assert_eq!(server.stats().total_requests(), 0);
    assert_eq!(tree(mirror.path()), before);
    assert_eq!(
        status_json(mirror.path())["databases"]["test"]["last_error_kind"],
        "rate_limited"
    );
}

#[test]
fn no_bootstrap_cdiffs_by_flag_environment_or_file_publishes_the_cvd_only() {
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), 6, true);
    let server = serve(up.path());
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("sigupdate.toml");
    std::fs::write(&cfg, "bootstrap-cdiffs = false\n").unwrap();
    for how in ["flag", "env", "file"] {
        let mirror = tmp.path().join(how);
        let mut c = official_sync_from(&mirror, &[server.base_url()]);
        match how {
            "flag" => c.arg("--no-bootstrap-cdiffs"),
            "env" => c.env("SIGUPDATE_BOOTSTRAP_CDIFFS", "false"),
            _ => c.arg("--config").arg(&cfg),
        };
        let out = c.output().unwrap();
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            check_snapshot(&tree(&mirror)).unwrap(),
            (6, vec![]),
            "{how}"
        );
        let st = status_json(&mirror);
        assert_eq!(
            st["databases"]["test"]["unproven_cdiffs"],
            serde_json::json!([]),
            "{how}"
        );
    }
    // and the flag beats an environment asking for it
    let mirror = tmp.path().join("both");
    let mut c = official_sync_from(&mirror, &[server.base_url()]);
    c.arg("--no-bootstrap-cdiffs")
        .env("SIGUPDATE_BOOTSTRAP_CDIFFS", "true");
    assert_eq!(code(&c.output().unwrap()), 0);
    assert_eq!(check_snapshot(&tree(&mirror)).unwrap(), (6, vec![]));
}

#[test]
fn config_file_and_environment_are_used() {
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), 3, false);
    let server = serve(up.path());
    let mirror = tempfile::tempdir().unwrap();
    let cfg = mirror.path().join("sigupdate.toml");
    std::fs::write(
        &cfg,
        format!(
            "dir = {:?}\nupstream = [{:?}]\ndb = [\"test\"]\nno-dns = true\nsign-root = [{:?}]\nverify-time = 1767225600\nretries = 0\n",
            mirror.path().join("m"),
            server.base_url(),
            fixtures().join("clamav-test-root.crt")
        ),
    )
    .unwrap();
    let out = sigupdate()
        .args(["sync", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        check_snapshot(&tree(&mirror.path().join("m"))).unwrap().0,
        3
    );
    // environment beats the file: another directory
    let out = sigupdate()
        .args(["sync", "--config"])
        .arg(&cfg)
        .env("SIGUPDATE_DIR", mirror.path().join("env"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    assert!(mirror.path().join("env/current").exists());
    // and a flag beats the environment
    let out = sigupdate()
        .args(["sync", "--config"])
        .arg(&cfg)
        .env("SIGUPDATE_DIR", mirror.path().join("env"))
        .arg("--dir")
        .arg(mirror.path().join("flag"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    assert!(mirror.path().join("flag/current").exists());
}

#[test]
fn versions_from_a_dns_server_given_on_the_command_line() {
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), 5, true);
    let server = serve(up.path());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ns = crate::dns_server::start_dns(&format!("1.4.3:0:0:{now}:0:0:0:0:test=5"));
    let mirror = tempfile::tempdir().unwrap();
    let out = sigupdate()
        .arg("sync")
        .arg("--dir")
        .arg(mirror.path())
        .args([
            "--db",
            "test",
            "--retries",
            "0",
            "--upstream",
            &server.base_url(),
        ])
        .args([
            "--dns-name",
            "current.cvd.test.",
            "--dns-server",
            &ns.to_string(),
        ])
        .arg("--sign-root")
        .arg(fixtures().join("clamav-test-root.crt"))
        .args(["--verify-time", "1767225600"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(check_snapshot(&tree(mirror.path())).unwrap().0, 5);
    assert_eq!(
        server.stats().requests("/dns.txt"),
        0,
        "the version came from DNS"
    );
    let bad = sigupdate()
        .arg("sync")
        .arg("--dir")
        .arg(mirror.path())
        .args(["--db", "test", "--dns-server", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(code(&bad), 2);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not-an-address"));
}

#[test]
fn a_lost_or_damaged_status_file_is_an_error_and_unproven_cdiffs_stay_unproven() {
    let (_up, server, mirror, _) = first_official_sync();
    let path = mirror.path().join("status.json");
    let unproven = "5 cdiffs (5 signature-verified but chain-unproven: 2..6)";
    for how in testkit::STATUS_DAMAGES {
        testkit::damage_status(mirror.path(), how);
        // `status` reads the unproven cdiffs from the published generation.
        let out = sigupdate()
            .args(["status", "--dir"])
            .arg(mirror.path())
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(stdout.contains(unproven), "{how}: {stdout}");
        assert_eq!(
            stderr.contains("error"),
            how != "emptied",
            "{how}: {stderr}"
        );
        // A sync with nothing new logs the damage as an error and rebuilds the file.
        let out = sync(mirror.path(), &[server.base_url()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 0, "{how}: {stderr}");
        if how != "emptied" {
            assert!(
                stderr.contains("ERROR") && stderr.contains("status file"),
                "{how}: {stderr}"
            );
        }
        let st = status_json(mirror.path());
        assert_eq!(
            st["databases"]["test"]["unproven_cdiffs"],
            serde_json::json!([2, 3, 4, 5, 6]),
            "{how}"
        );
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            on_disk["databases"]["test"]["unproven_cdiffs"],
            serde_json::json!([2, 3, 4, 5, 6]),
            "{how}: rebuilt"
        );
        assert!(status_text(mirror.path()).contains(unproven), "{how}");
    }
    // A generation without its trust record and no usable status.json: every published
    // cdiff counts as unproven, said as an error, and a generation with a record follows.
    let current = std::fs::canonicalize(mirror.path().join("current")).unwrap();
    std::fs::remove_file(current.join(".trust.json")).unwrap();
    std::fs::write(&path, b"{").unwrap();
    let out = sync(mirror.path(), &[server.base_url()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert!(stderr.contains("no trust record"), "{stderr}");
    let now = std::fs::canonicalize(mirror.path().join("current")).unwrap();
    assert_ne!(
        now, current,
        "a generation carrying the record is published"
    );
    assert!(now.join(".trust.json").is_file());
    assert!(status_text(mirror.path()).contains(unproven));
}
