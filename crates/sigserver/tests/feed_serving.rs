//! Third-party feeds served by sigserver: a mirror synced in process (the official
//! `test` database from a local upstream, feeds from the feed simulator of
//! `testkit::feeds`), then the real `sigserver` binary: `/<feed>/<file>` and its
//! `.sig` with the upstream's `Last-Modified`, an ETag, 304s and the `.cvd` caching;
//! 404 for anything the generation's `feeds.json` does not list; 400 for hostile
//! paths; `/metrics` and `/trace` list the feeds and never show a token. With real
//! ClamAV: freshclam (`DatabaseCustomURL`; the official databases excluded with
//! `ExcludeDatabase`, since `--update-db` selects official databases only and skips
//! custom URLs) downloads a feed file, a second run gets a 304, clamscan detects with
//! the file; a broken `.ndb`, validly signed, is stopped by the load check and never
//! served.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use testkit::feeds::{FeedSim, SimKey};

use crate::util::{Server, fixture, get, metric, official_upstream_dir};

const TOKEN: &str = "s3cr3tT0ken";
const JUNK: &[u8] = b"Junk.Test.1:0:*:6a756e6b2d6f6e65\n";
/// An `.ndb` signature matching [`MARKER`] anywhere in any file.
const DETECT: &[u8] = b"FeedsInt.Test.Marker:0:*:66656564732d696e742d746573742d6d61726b6572\n";
/// What [`DETECT`] matches.
const MARKER: &[u8] = b"feeds-int-test-marker";
/// Signed like any good file, but not a signature ClamAV loads.
const BROKEN: &[u8] = b"Broken.Test:0:*:this is not hex\n";

/// A mirror directory synced in process with the feeds `ss` (OpenPGP, `files`) and
/// `si` (a token in the URL, `verify = "none"`).
struct FeedMirror {
    _up: tempfile::TempDir,
    up: testkit::http::TestServer,
    sim: FeedSim,
    token_sim: FeedSim,
    dir: tempfile::TempDir,
    config: mirror_core::SyncConfig,
}

fn feed_mirror(files: &[&str], clamscan: Option<PathBuf>) -> FeedMirror {
    let up_dir = official_upstream_dir();
    let up = testkit::http::TestServer::start_dir(up_dir.path());
    let sim = FeedSim::start("/ss");
    let token_sim = FeedSim::start(&format!("/get/{TOKEN}"));
    token_sim.publish(
        "si.hdb",
        b"44d88612fea8a8f36de82e1278abb02f:68:Si.Test\n",
        SimKey::Rsa2048,
    );
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("si.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let files: Vec<String> = files.iter().map(|f| format!("{f:?}")).collect();
    let toml = format!(
        r#"
[[feed]]
name = "ss"
url = "{base}"
files = [{files}]
verify = "openpgp"
keys = [{dsa:?}]
openpgp_digests = ["sha1"]
load_check = {load_check}

[[feed]]
name = "si"
url = "{token_base}/{{token}}"
token_file = {token_file:?}
files = ["si.hdb"]
verify = "none"
"#,
        base = sim.base_url(),
        files = files.join(", "),
        dsa = SimKey::Dsa1024.public_key_path(),
        load_check = clamscan.is_some(),
        token_base = token_sim.server().url("/get"),
    );
    let feeds = feeds::parse_feeds(&toml).unwrap();
    let roots =
        cvd_format::sign::SignRoots::from_files(&[fixture("clamav-test-root.crt")]).unwrap();
    let config = mirror_core::SyncConfig::builder(dir.path().join("m"))
        .upstream(&up.base_url())
        .database(mirror_core::DatabaseSpec::new("test").unwrap())
        .versions(mirror_core::VersionSource::NoDns)
        .sign_roots(roots)
        .verify_time(std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        .feeds(feeds)
        .load_checker(feeds::LoadChecker::with_tool(clamscan))
        .build()
        .unwrap();
    FeedMirror {
        _up: up_dir,
        up,
        sim,
        token_sim,
        dir,
        config,
    }
}

impl FeedMirror {
    fn root(&self) -> PathBuf {
        self.dir.path().join("m")
    }

    fn sync(&self) -> mirror_core::SyncReport {
        let client = fetch::Client::builder()
            .cooldown_file(self.root().join("cooldown.json"))
            .retries(0)
            .no_proxy()
            .build()
            .unwrap();
        std::fs::create_dir_all(self.root()).unwrap();
        let mut t = mirror_core::transport::HttpTransport::from_client(client);
        mirror_core::sync(&self.config, &mut t, None).unwrap()
    }
}

fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

#[test]
fn feed_files_are_served_like_cvds_with_the_upstreams_last_modified() {
    let m = feed_mirror(&["junk.ndb"], None);
    m.sim.publish("junk.ndb", JUNK, SimKey::Dsa1024);
    let r = m.sync();
    assert!(r.worst().is_none(), "{r:?}");
    let s = Server::start(&m.root(), &[]);

    let ok = get(s.addr, "/ss/junk.ndb", "");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, JUNK);
    // Last-Modified is the feed upstream's, as the simulator serves it.
    let upstream = get(m.sim.server().addr(), "/ss/junk.ndb", "");
    assert_eq!(ok.header("last-modified"), upstream.header("last-modified"));
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.root().join("current/feeds.json")).unwrap())
            .unwrap();
    let lm = listing["feeds"]["ss"]["files"]["junk.ndb"]["last_modified"]
        .as_u64()
        .unwrap();
    assert_eq!(ok.header("last-modified"), Some(http_date(lm).as_str()));
    // The caching rules of a .cvd (replaced under its name).
    let cvd = get(s.addr, "/test.cvd", "");
    assert_eq!(ok.header("cache-control"), cvd.header("cache-control"));
    assert_eq!(ok.header("content-type"), Some("application/octet-stream"));
    let etag = ok.header("etag").unwrap().to_owned();
    let r304 = get(
        s.addr,
        "/ss/junk.ndb",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(r304.status, 304);
    assert!(r304.body.is_empty());
    let r304 = get(
        s.addr,
        "/ss/junk.ndb",
        &format!("If-Modified-Since: {}\r\n", http_date(lm)),
    );
    assert_eq!(r304.status, 304);
    let older = get(
        s.addr,
        "/ss/junk.ndb",
        &format!("If-Modified-Since: {}\r\n", http_date(lm - 1)),
    );
    assert_eq!(older.status, 200);
    // The signature travels beside the file, for a downstream to re-verify.
    let sig = get(s.addr, "/ss/junk.ndb.sig", "");
    assert_eq!(sig.status, 200);
    assert_eq!(sig.body, upstream_body(&m.sim, "/ss/junk.ndb.sig"));
    // The unverified feed with a token in its URL.
    assert_eq!(get(s.addr, "/si/si.hdb", "").status, 200);

    // Only what the listing names: a stray file in the feed directory, a sidecar of
    // an OpenPGP feed, unknown feeds and files are 404.
    std::fs::write(m.root().join("current/ss/stray.ndb"), b"x").unwrap();
    for p in [
        "/ss/stray.ndb",
        "/ss/junk.ndb.sha256",
        "/ss/phish.ndb",
        "/nope/junk.ndb",
        "/ss/.feed-state.json",
        "/ss/feeds.json",
        "/generations/current",
        "/si/si.hdb.sig",
    ] {
        assert_eq!(get(s.addr, p, "").status, 404, "{p}");
    }
    // Hostile paths are 400.
    for p in [
        "/ss/..%2fjunk.ndb",
        "/ss/%2e%2e",
        "/ss/..",
        "/%2e%2e/junk.ndb",
        "/../ss/junk.ndb",
        "/ss/",
        "//junk.ndb",
        "/ss/junk.ndb%00",
        "/ss/junk%5c.ndb",
        "/ss/junk.ndb/x",
        "/ss/./junk.ndb",
    ] {
        assert_eq!(get(s.addr, p, "").status, 400, "{p}");
    }

    // /metrics: per feed file; /trace: the listing. No token anywhere.
    let metrics = s.metrics();
    assert_eq!(
        metric(
            &metrics,
            "sigserver_feed_file_published{feed=\"ss\",file=\"junk.ndb\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "sigserver_feed_unverified{feed=\"si\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "sigserver_feed_file_failures_total{feed=\"ss\",file=\"junk.ndb\"}"
        ),
        Some(0.0)
    );
    assert!(
        metric(
            &metrics,
            "sigserver_requests_total{kind=\"feed\",status=\"200\"}"
        )
        .unwrap()
            >= 3.0,
        "{metrics}"
    );
    let trace = get(s.addr, "/trace", "");
    let t: serde_json::Value = serde_json::from_slice(&trace.body).unwrap();
    assert_eq!(
        t["feeds"]["ss"]["files"]["junk.ndb"]["size"],
        JUNK.len(),
        "{t}"
    );
    assert_eq!(t["feeds"]["si"]["unverified"], true);
    let status = get(s.addr, "/status.json", "");
    let doc: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(
        doc["feeds"]["ss"]["files"]["junk.ndb"]["published"], true,
        "{doc}"
    );
    assert_eq!(doc["feeds"]["si"]["unverified"], true, "{doc}");
    let page = String::from_utf8_lossy(&get(s.addr, "/status", "").body).into_owned();
    assert!(
        page.contains("Third-party feeds") && page.contains("junk.ndb"),
        "{page}"
    );
    assert!(!page.contains(TOKEN));
    for (what, text) in [
        ("metrics", metrics.into_bytes()),
        ("trace", trace.body),
        ("status.json", status.body),
        (
            "feeds.json",
            std::fs::read(m.root().join("current/feeds.json")).unwrap(),
        ),
        (
            "DIR/status.json",
            std::fs::read(m.root().join("status.json")).unwrap(),
        ),
    ] {
        assert!(
            !String::from_utf8_lossy(&text).contains(TOKEN),
            "{what} shows the token"
        );
    }
    assert!(m.token_sim.stats().requests("si.hdb") >= 1);
    drop(m.up);
}

/// The body the simulator serves at `path`.
fn upstream_body(sim: &FeedSim, path: &str) -> Vec<u8> {
    get(sim.server().addr(), path, "").body
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run a ClamAV tool");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn freshclam_fetches_a_feed_file_clamscan_detects_with_it_and_a_broken_one_never_leaves() {
    let Some(freshclam) = testkit::tools::require("freshclam") else {
        return;
    };
    let Some(clamscan) = testkit::tools::require("clamscan") else {
        return;
    };
    let m = feed_mirror(&["detect.ndb", "broken.ndb"], Some(clamscan.clone()));
    m.sim.publish("detect.ndb", DETECT, SimKey::Dsa1024);
    m.sim.publish("broken.ndb", BROKEN, SimKey::Dsa1024);
    let report = m.sync();
    // The broken file is refused by ClamAV's engine, with its message; the good one
    // passed the load check.
    let ss = report.feeds.iter().find(|f| f.feed == "ss").unwrap();
    let broken = ss.files.iter().find(|f| f.file == "broken.ndb").unwrap();
    let e = broken
        .error
        .as_ref()
        .expect("the load check refuses broken.ndb");
    assert_eq!(e.class(), feeds::ErrorClass::Verification);
    assert!(matches!(e, feeds::Error::LoadCheck { .. }), "{}", e.chain());
    let detect = ss.files.iter().find(|f| f.file == "detect.ndb").unwrap();
    assert_eq!(detect.load_check, feeds::LoadCheck::Passed);
    assert_eq!(
        report.worst(),
        Some(mirror_core::ErrorKind::Verification),
        "exit code 1, as for a database that fails verification"
    );
    assert!(!m.root().join("current/ss/broken.ndb").exists());

    let s = Server::start(&m.root(), &[]);
    assert_eq!(get(s.addr, "/ss/broken.ndb", "").status, 404);

    let client = tempfile::tempdir().unwrap();
    let db = client.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let conf = client.path().join("freshclam.conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {db}\nUpdateLogFile {log}\nPidFile {pid}\nDatabaseOwner root\n\
             DatabaseMirror http://{addr}\nDNSDatabaseInfo no\nForeground yes\n\
             ExcludeDatabase daily\nExcludeDatabase main\nExcludeDatabase bytecode\n\
             DatabaseCustomURL http://{addr}/ss/detect.ndb\n",
            db = db.display(),
            log = client.path().join("freshclam.log").display(),
            pid = client.path().join("freshclam.pid").display(),
            addr = s.addr,
        ),
    )
    .unwrap();
    let freshclam_run = || {
        run(Command::new(&freshclam)
            .arg("--no-dns")
            .arg(format!("--config-file={}", conf.display())))
    };
    let (ok, out) = freshclam_run();
    assert!(ok, "freshclam:\n{out}\nserver log:\n{}", s.log.text());
    assert_eq!(
        std::fs::read(db.join("detect.ndb")).ok().as_deref(),
        Some(DETECT),
        "{out}"
    );
    s.log
        .wait_for("path=/ss/detect.ndb status=200")
        .expect("freshclam fetched the feed file");

    // Second run: a conditional request, answered 304; the file stays.
    let (ok, out) = freshclam_run();
    assert!(ok, "freshclam (2nd run):\n{out}");
    s.log
        .wait_for("path=/ss/detect.ndb status=304")
        .expect("the second run is answered 304");
    let log = s.log.text();
    assert_eq!(
        log.matches("path=/ss/detect.ndb status=200").count(),
        1,
        "{log}"
    );
    assert_eq!(std::fs::read(db.join("detect.ndb")).unwrap(), DETECT);

    // clamscan with the downloaded feed file detects the test signature.
    let sample = client.path().join("sample.txt");
    let mut body = b"some text around the ".to_vec();
    body.extend_from_slice(MARKER);
    body.extend_from_slice(b" and after\n");
    std::fs::write(&sample, body).unwrap();
    let out = Command::new(&clamscan)
        .arg("--no-summary")
        .arg(format!("--database={}", db.join("detect.ndb").display()))
        .arg(&sample)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FeedsInt.Test.Marker") && text.contains("FOUND"),
        "{text}"
    );
}
