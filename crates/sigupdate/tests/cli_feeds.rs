//! Third-party feeds through `sigupdate sync --config FILE` as a process, against the
//! official `test` database on a local upstream and the feed simulator
//! (`testkit::feeds`): good files published in the generation beside the databases
//! with `feeds.json`; a tampered file, a signature by another key, a missing signature
//! and a wrong sidecar are not published, the last good copy stays, the failure is
//! in `status --json` and the exit code, and nothing else is held back; unchanged
//! files cost conditional requests only; bad `[[feed]]` configuration is an error at
//! start.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;
use std::process::Output;

use testkit::feeds::{FeedSim, SimKey};

use crate::official_sync::{official_sync, sigupdate};
use crate::support::*;

const JUNK_1: &[u8] = b"Junk.Test.1:0:*:6a756e6b2d6f6e65\n";
const JUNK_2: &[u8] = b"Junk.Test.2:0:*:6a756e6b2d74776f\n";
const PHISH_1: &[u8] = b"Phish.Test.1:0:*:7068697368\n";
const URLHAUS_1: &[u8] = b"Urlhaus.Test.1:0:*:75726c6861757331\n";

/// The feed configuration: `ss` (OpenPGP: the DSA-1024/SHA-1 and RSA/SHA-256 test
/// keys, SHA-1 allowed for this feed as SaneSecurity needs) and `uh` (SHA-256
/// sidecars), both from `sim`.
fn feed_config(dir: &Path, sim: &FeedSim) -> std::path::PathBuf {
    let path = dir.join("sigupdate.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[feed]]
name = "ss"
url = "{base}"
files = ["junk.ndb", "phish.ndb"]
verify = "openpgp"
keys = [{dsa:?}, {rsa:?}]
openpgp_digests = ["sha1", "sha256"]

[[feed]]
name = "uh"
url = "{base}"
files = ["urlhaus.ndb"]
verify = "sha256"
"#,
            base = sim.base_url(),
            dsa = SimKey::Dsa1024.public_key_path(),
            rsa = SimKey::Rsa2048.public_key_path(),
        ),
    )
    .unwrap();
    path
}

/// A local official upstream at version 6, the simulator with the three files, and a
/// mirror directory.
struct Setup {
    _up: tempfile::TempDir,
    server: testkit::http::TestServer,
    sim: FeedSim,
    mirror: tempfile::TempDir,
    config: std::path::PathBuf,
}

fn setup() -> Setup {
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), 6, true);
    let server = serve(up.path());
    let sim = FeedSim::start("/feeds");
    sim.publish("junk.ndb", JUNK_1, SimKey::Dsa1024);
    sim.publish("phish.ndb", PHISH_1, SimKey::Rsa2048);
    sim.publish("urlhaus.ndb", URLHAUS_1, SimKey::Rsa2048);
    let mirror = tempfile::tempdir().unwrap();
    let config = feed_config(mirror.path(), &sim);
    Setup {
        _up: up,
        server,
        sim,
        mirror,
        config,
    }
}

impl Setup {
    fn sync(&self) -> Output {
        official_sync(&self.mirror.path().join("m"), &self.server.base_url())
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap()
    }

    fn current(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.mirror.path().join("m/current").join(path)).ok()
    }

    fn generation(&self) -> std::path::PathBuf {
        std::fs::read_link(self.mirror.path().join("m/current")).unwrap()
    }

    fn status(&self) -> serde_json::Value {
        let out = sigupdate()
            .args(["status", "--json", "--dir"])
            .arg(self.mirror.path().join("m"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The databases' part of the published generation (without the feed directories and
/// their listing), for `check_snapshot`.
fn db_tree(mirror: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let real = std::fs::canonicalize(mirror.join("current")).unwrap();
    std::fs::read_dir(real)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file() && e.file_name() != "feeds.json")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn listing(s: &Setup) -> serde_json::Value {
    serde_json::from_slice(&s.current("feeds.json").unwrap()).unwrap()
}

#[test]
fn good_feed_files_are_published_beside_the_databases_and_unchanged_ones_cost_only_304s() {
    let s = setup();
    let out = s.sync();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        check_snapshot(&db_tree(&s.mirror.path().join("m")))
            .unwrap()
            .0,
        6
    );
    assert_eq!(s.current("ss/junk.ndb").unwrap(), JUNK_1);
    assert_eq!(s.current("ss/phish.ndb").unwrap(), PHISH_1);
    assert_eq!(s.current("uh/urlhaus.ndb").unwrap(), URLHAUS_1);
    // The companions travel beside the files, so a downstream re-verifies.
    assert!(!s.current("ss/junk.ndb.sig").unwrap().is_empty());
    assert!(s.current("uh/urlhaus.ndb.sha256").is_some());
    let l = listing(&s);
    let junk = &l["feeds"]["ss"]["files"]["junk.ndb"];
    assert_eq!(junk["size"], JUNK_1.len());
    assert_eq!(junk["companion"], "junk.ndb.sig");
    assert_eq!(junk["verification"]["by"], "openpgp");
    assert_eq!(
        junk["verification"]["key"],
        SimKey::Dsa1024.fingerprint(),
        "{l}"
    );
    assert_eq!(l["feeds"]["uh"]["verify"], "sha256");
    assert_eq!(l["feeds"]["uh"]["unverified"], false);
    // The file carries the upstream's Last-Modified as its mtime.
    let mtime = std::fs::metadata(s.mirror.path().join("m/current/ss/junk.ndb"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(junk["last_modified"], mtime);
    let st = s.status();
    assert_eq!(st["feeds"]["ss"]["files"]["junk.ndb"]["published"], true);
    assert_eq!(st["feeds"]["ss"]["files"]["junk.ndb"]["outcome"], "updated");

    // Unchanged: one conditional request per file, 304, no body; no new generation.
    let generation = s.generation();
    s.sim.reset_stats();
    let out = s.sync();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.generation(), generation);
    for f in ["junk.ndb", "phish.ndb", "urlhaus.ndb"] {
        let stats = s.sim.stats();
        assert_eq!(stats.requests(f), 1, "{f}");
        assert_eq!(stats.not_modified(f), 1, "{f}");
        assert_eq!(stats.body_bytes(f), 0, "{f}");
    }
    assert_eq!(s.sim.stats().total_body_bytes(), 0);
    assert_eq!(
        s.status()["feeds"]["ss"]["files"]["junk.ndb"]["outcome"],
        "unchanged"
    );

    // A new version is published in a new generation.
    s.sim.replace("junk.ndb", JUNK_2);
    let out = s.sync();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_ne!(s.generation(), generation);
    assert_eq!(s.current("ss/junk.ndb").unwrap(), JUNK_2);
    assert_eq!(s.current("ss/phish.ndb").unwrap(), PHISH_1);
    assert!(s.current("test.cvd").unwrap().len() > 512);
}

#[test]
fn a_failing_feed_file_keeps_its_last_good_copy_is_reported_and_blocks_nothing_else() {
    let s = setup();
    let out = s.sync();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    /// What is attacked (feed, file) and how.
    type Attack = (&'static str, &'static str, &'static str, fn(&FeedSim));
    let attacks: [Attack; 4] = [
        ("tampered file", "ss", "junk.ndb", |sim| {
            sim.tamper("junk.ndb", b"Evil.Test:0:*:6576696c\n")
        }),
        ("signature by another key", "ss", "junk.ndb", |sim| {
            sim.publish_signed_by("junk.ndb", b"Evil.Test:0:*:6576696c\n", SimKey::Stranger)
        }),
        ("missing signature", "ss", "junk.ndb", |sim| {
            sim.tamper("junk.ndb", b"Evil.Test:0:*:6576696c\n");
            sim.drop_signature("junk.ndb");
        }),
        ("wrong sidecar", "uh", "urlhaus.ndb", |sim| {
            sim.tamper("urlhaus.ndb", b"Evil.Test:0:*:6576696c\n");
            sim.wrong_sidecars("urlhaus.ndb");
        }),
    ];
    for (i, (what, feed, file, attack)) in attacks.into_iter().enumerate() {
        let before = s.current(&format!("{feed}/{file}")).unwrap();
        let sha_before = listing(&s)["feeds"][feed]["files"][file]["sha256"].clone();
        attack(&s.sim);
        // Another file of the same feed changes at the same time: it goes through.
        let good_phish = format!("Phish.Test.{}:0:*:70686973{i:02x}\n", i + 2).into_bytes();
        s.sim.replace("phish.ndb", &good_phish);
        let out = s.sync();
        assert_eq!(code(&out), 1, "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("feed={feed}")), "{what}: {err}");
        assert_eq!(
            s.current(&format!("{feed}/{file}")).unwrap(),
            before,
            "{what}: the last good copy stays"
        );
        assert_eq!(s.current("ss/phish.ndb").unwrap(), good_phish, "{what}");
        assert!(s.current("test.cvd").is_some(), "{what}");
        let st = s.status();
        let fs = &st["feeds"][feed]["files"][file];
        assert_eq!(fs["published"], true, "{what}: {st}");
        assert_eq!(fs["outcome"], "kept_last_good", "{what}: {st}");
        assert_eq!(fs["last_error_kind"], "verification", "{what}: {st}");
        assert_eq!(fs["consecutive_failures"], 1, "{what}: {st}");
        let text = sigupdate()
            .args(["status", "--dir"])
            .arg(s.mirror.path().join("m"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains(&format!("feed {feed} {file}: published ("))
                && text.contains("FAILED [verification]"),
            "{what}: {text}"
        );
        assert!(
            st["last_error"].as_str().unwrap().contains(file),
            "{what}: {st}"
        );
        // The listing still describes the last good copy.
        let l = listing(&s);
        assert_eq!(
            l["feeds"][feed]["files"][file]["sha256"], sha_before,
            "{what}"
        );

        // Repaired upstream: published again, failure cleared.
        let fixed = format!("Fixed.Test.{i}:0:*:6669786564\n").into_bytes();
        let key = if feed == "ss" {
            SimKey::Dsa1024
        } else {
            SimKey::Rsa2048
        };
        s.sim.publish(file, &fixed, key);
        let out = s.sync();
        assert_eq!(code(&out), 0, "{what} repaired: {}", stderr(&out));
        assert_eq!(s.current(&format!("{feed}/{file}")).unwrap(), fixed);
        assert_eq!(
            s.status()["feeds"][feed]["files"][file]["consecutive_failures"],
            0
        );
    }
}

#[test]
fn a_feed_failing_from_the_start_does_not_hold_back_the_databases() {
    let s = setup();
    s.sim.drop_signature("junk.ndb");
    let out = s.sync();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        check_snapshot(&db_tree(&s.mirror.path().join("m")))
            .unwrap()
            .0,
        6
    );
    assert!(s.current("ss/junk.ndb").is_none());
    assert_eq!(s.current("ss/phish.ndb").unwrap(), PHISH_1);
    let l = listing(&s);
    assert!(l["feeds"]["ss"]["files"].get("junk.ndb").is_none(), "{l}");
    let st = s.status();
    assert_eq!(st["feeds"]["ss"]["files"]["junk.ndb"]["published"], false);
    assert_eq!(st["feeds"]["ss"]["files"]["junk.ndb"]["outcome"], "failed");
}

#[test]
fn bad_feed_configuration_is_an_error_at_start() {
    let s = setup();
    for (body, needle) in [
        (
            "name = \"ss\"\nurl = \"http://127.0.0.1:9\"\nfiles = [\"a.ndb\"]\nverify = \"openpgp\"\n",
            "keys",
        ),
        (
            "name = \"ss\"\nurl = \"http://127.0.0.1:9\"\nfiles = [\"a.ndb\"]\nverify = \"openpgp\"\nkeys = [\"missing.asc\"]\n",
            "missing.asc",
        ),
        (
            "name = \"../x\"\nurl = \"http://127.0.0.1:9\"\nfiles = [\"a.ndb\"]\nverify = \"none\"\n",
            "name",
        ),
        ("name = \"ss\"\nfiles = 3\n", "feed"),
    ] {
        std::fs::write(&s.config, format!("[[feed]]\n{body}")).unwrap();
        let out = s.sync();
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{body}: {err}");
        assert!(
            err.contains("feed") && err.contains(needle),
            "{body}: {err}"
        );
        assert!(!s.mirror.path().join("m/current").exists(), "{body}");
    }
}
