//! The whole pipeline as users run it: upstream simulator (`testkit::upstream`) →
//! `sigupdate sync` → `sigserver` → a real `freshclam`, all on `127.0.0.1`, with
//! failures injected at the upstream. Every test prints what it checked.
//!
//! `freshclam` comes from Debian's `clamav-freshclam` (1.4) and, for a ClamAV 1.5
//! client in strict mode, from the directory in `CLAMAV15_BIN` (`testkit::tools`);
//! without them the freshclam steps are skipped with a message, except under CI, where
//! a missing tool fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{Binaries, Freshclam, Sigserver, SyncOptions};
use testkit::tools::ClamavTool;
use testkit::upstream::{History, Misbehaviour, PublisherKeys, Upstream};

/// 2026-01-01T00:00:00Z: the official test root expires in 2027, so the `.sign`
/// files are verified at a pinned time.
const VERIFY_TIME: i64 = 1_767_225_600;

fn official() -> History {
    History::official(&e2e::official_vectors()).expect("official vectors in testdata/")
}

fn test_root() -> PathBuf {
    e2e::official_vectors().join("clamav-test-root.crt")
}

/// `sigupdate sync` options for the official `test` database from `upstream`.
fn official_opts(upstream: &str) -> SyncOptions {
    SyncOptions {
        upstreams: vec![upstream.to_owned()],
        dbs: vec!["test".to_owned()],
        sign_roots: vec![test_root()],
        verify_time: Some(VERIFY_TIME),
        ..SyncOptions::default()
    }
}

/// Runs a sync and checks its exit code, printing its log when it differs.
fn sync_expect(bins: &Binaries, dir: &Path, opts: &SyncOptions, code: i32) -> e2e::RunOutput {
    let out = e2e::sync(bins, dir, opts).unwrap();
    assert_eq!(
        out.code,
        Some(code),
        "sigupdate sync exit code\n--- stderr ---\n{}\n--- stdout ---\n{}",
        out.stderr,
        out.stdout
    );
    out
}

/// The names and contents of the files in `DIR/current`.
fn published(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let cur = dir.join("current");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&cur)
        .unwrap_or_else(|e| panic!("{}: {e}", cur.display()))
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(n, _)| n.as_str()).collect()
}

fn published_version(dir: &Path, db: &str) -> Option<u32> {
    e2e::file_version(&dir.join("current").join(format!("{db}.cvd")))
}

/// A counter's value, 0 when the sample is absent (never incremented).
fn counter(server: &Sigserver, name: &str, labels: &str) -> f64 {
    server.metric(name, labels).unwrap().unwrap_or(0.0)
}

/// Sleeps until every cool-down recorded in `DIR/cooldown.json` (Unix seconds per
/// upstream, written by `fetch`) has passed.
fn wait_for_cooldowns(dir: &Path) {
    let text = std::fs::read_to_string(dir.join("cooldown.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let until = v["cooldowns"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(serde_json::Value::as_u64)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    println!("waiting for the upstream cool-down to end (Unix time {until})");
    let end = std::time::UNIX_EPOCH + Duration::from_secs(until) + Duration::from_millis(50);
    if let Ok(d) = end.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(d);
    }
}

/// Debian's freshclam 1.4 (on `PATH`), if present.
fn freshclam() -> Option<ClamavTool> {
    testkit::tools::require("freshclam").map(|program| ClamavTool {
        version: "1.4",
        program,
        certs: None,
    })
}

/// Every freshclam available: Debian's 1.4 on `PATH`, and ClamAV 1.5.3 from
/// `CLAMAV15_BIN`, run in strict mode (`FIPSCryptoHashLimits yes`, the TEST root in
/// `CVDCertsDirectory` under `tmp`). A missing one is skipped (outside CI) or fails
/// the test (in CI).
fn freshclam_clients(tmp: &Path) -> Vec<ClamavTool> {
    let certs = testkit::tools::test_root_certs_dir(tmp).unwrap();
    testkit::tools::clamav_versions("freshclam", &certs)
}

/// Updates a fresh freshclam (holding `start`, or nothing) from `mirror` and checks that
/// it reaches `want`; returns the metric deltas (full `.cvd` downloads, cdiff
/// downloads) seen at `server`. A strict (1.5) client holding a version also holds its
/// `.cvd.sign`, as one that downloaded it would; it must fetch every `.sign` it needs
/// with a 200.
fn freshclam_reaches(
    client: &ClamavTool,
    root: &Path,
    server: &Sigserver,
    start: Option<(u32, &testkit::upstream::Release)>,
    want: u32,
) -> (f64, f64) {
    let fc = Freshclam::for_client(client, root, &server.url()).unwrap();
    if let Some((from, release)) = start {
        fc.install("test.cvd", release.cvd()).unwrap();
        if fc.is_strict() {
            let sign = release
                .cvd_sign()
                .expect("official vectors have .sign files");
            fc.install(&format!("test-{from}.cvd.sign"), sign).unwrap();
        }
    }
    let full0 = counter(
        server,
        "sigserver_requests_total",
        "kind=\"cvd\",status=\"200\"",
    );
    let cd0 = counter(
        server,
        "sigserver_requests_total",
        "kind=\"cdiff\",status=\"200\"",
    );
    let log_before = server.access_log().len();
    let out = fc.update("test").unwrap();
    let got = fc.version("test");
    let note = client.note();
    assert_eq!(
        got,
        Some(want),
        "freshclam {} from {:?} should reach version {want}{note}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        client.version,
        start.map(|s| s.0),
        out.stdout,
        out.stderr
    );
    assert_eq!(
        out.code,
        Some(0),
        "freshclam {} exit code{note}\n{}",
        client.version,
        out.stdout
    );
    let full = counter(
        server,
        "sigserver_requests_total",
        "kind=\"cvd\",status=\"200\"",
    ) - full0;
    let cdiffs = counter(
        server,
        "sigserver_requests_total",
        "kind=\"cdiff\",status=\"200\"",
    ) - cd0;
    // The access log agrees: one record per request freshclam made (its verbose
    // output shows each `> GET`), and, for a client that held a version, exactly the
    // cdiffs from the next version up to `want`.
    let gets = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("> GET "))
        .count();
    let log = server.wait_access(log_before + gets, Duration::from_secs(60));
    let mine: Vec<&e2e::Access> = log[log_before..]
        .iter()
        .filter(|a| a.user_agent.starts_with("ClamAV/"))
        .collect();
    assert_eq!(
        mine.len(),
        gets,
        "access log vs freshclam's requests: {mine:?}"
    );
    if let Some((from, _)) = start {
        // The access log is in completion order: when freshclam opens a connection per
        // file, the line of one cdiff can land after the next one's. Compare as sets
        // in version order (each cdiff once).
        let mut cdiffs: Vec<&str> = mine
            .iter()
            .filter(|a| a.path.ends_with(".cdiff") && a.status == 200)
            .map(|a| a.path.as_str())
            .collect();
        cdiffs.sort_by_key(|p| version_in(p));
        let expected: Vec<String> = (from + 1..=want)
            .map(|v| format!("/test-{v}.cdiff"))
            .collect();
        assert_eq!(
            cdiffs, expected,
            "freshclam {} at v{from} fetched exactly these cdiffs",
            client.version
        );
    }
    if fc.is_strict() {
        // Strict mode: every download came with its .sign, all served.
        let mut signs: Vec<&str> = mine
            .iter()
            .filter(|a| a.path.ends_with(".sign"))
            .map(|a| a.path.as_str())
            .collect();
        signs.sort_by_key(|p| version_in(p));
        let expected: Vec<String> = match start {
            Some((from, _)) => (from + 1..=want)
                .map(|v| format!("/test-{v}.cdiff.sign"))
                .collect(),
            None => vec![format!("/test-{want}.cvd.sign")],
        };
        assert_eq!(
            signs, expected,
            "freshclam {} fetched these .sign files",
            client.version
        );
        assert!(
            mine.iter()
                .filter(|a| a.path.ends_with(".sign"))
                .all(|a| a.status == 200),
            "every .sign request of a strict client is served: {mine:?}"
        );
    }
    (full, cdiffs)
}

#[test]
fn freshclam_from_empty_and_from_each_older_version_reaches_6_through_the_mirror() {
    let bins = Binaries::build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    let history = official();
    // A mirror proves every cdiff it publishes against the base it held before, so it
    // follows upstream from version 1 (from empty it publishes only the .cvd).
    let mut upstream = Upstream::builder()
        .database(history.clone(), 1)
        .start()
        .unwrap();
    sync_expect(&bins, &dir, &official_opts(&upstream.base_url()), 0);
    assert_eq!(published_version(&dir, "test"), Some(1));
    upstream.publish("test", 6).unwrap();
    sync_expect(&bins, &dir, &official_opts(&upstream.base_url()), 0);
    assert_eq!(published_version(&dir, "test"), Some(6));
    let files = published(&dir);
    for v in 2..=6 {
        for f in [format!("test-{v}.cdiff"), format!("test-{v}.cdiff.sign")] {
            assert!(
                names(&files).contains(&f.as_str()),
                "{f} not published: {:?}",
                names(&files)
            );
        }
    }
    println!(
        "checked: sigupdate sync published test.cvd v6 + test-2..6.cdiff (+ .sign): {:?}",
        names(&files)
    );
    // Every published byte is upstream's byte.
    for (name, bytes) in &files {
        if let Some(up) = upstream.files("test").get(name) {
            assert_eq!(up, bytes, "{name} differs from upstream's");
        }
    }

    let server = Sigserver::start(&bins, &dir, &[]).unwrap();
    let ready = server.get("/ready").unwrap();
    assert_eq!(ready.status, 200, "/ready: {}", ready.text());
    println!("checked: sigserver /ready = 200 ({})", ready.text().trim());

    for client in freshclam_clients(tmp.path()) {
        let mode = if client.certs.is_some() {
            " strict"
        } else {
            ""
        };
        let name = format!("{}{mode}", client.version);
        let base = tmp.path().join(format!("fc-{}", client.version));
        let (full, cdiffs) = freshclam_reaches(&client, &base.join("empty"), &server, None, 6);
        assert_eq!(
            full, 1.0,
            "an empty client ({name}) downloads the full test.cvd once"
        );
        assert_eq!(cdiffs, 0.0);
        println!(
            "checked: freshclam {name} from empty -> test v6 (1 full test.cvd download, 0 cdiffs)"
        );
        for k in 1..=5u32 {
            let release = history.release(k).unwrap();
            let (full, cdiffs) = freshclam_reaches(
                &client,
                &base.join(format!("v{k}")),
                &server,
                Some((k, release)),
                6,
            );
            assert_eq!(
                full,
                0.0,
                "freshclam {name} at v{k} must not download the full test.cvd{}",
                client.note()
            );
            assert_eq!(
                cdiffs,
                f64::from(6 - k),
                "freshclam {name} at v{k} downloads test-{}..6.cdiff",
                k + 1
            );
            println!(
                "checked: freshclam {name} from v{k} -> test v6 through {} cdiffs, no full download",
                6 - k
            );
        }
    }
    let log = server.access_log();
    println!(
        "sigserver access log: {} requests, {} of them cdiffs",
        log.len(),
        log.iter().filter(|a| a.path.ends_with(".cdiff")).count()
    );
    server.stop().unwrap();
}

/// A synthetic custom database `demo` signed with the test keys, mirrored beside the
/// official `test` database: config file with its keys and without `.sign` files.
fn demo_config(root: &Path, keys: &PublisherKeys) -> PathBuf {
    let key_file = root.join("demo-keys.pem");
    std::fs::write(&key_file, keys.public_pem().unwrap()).unwrap();
    let cfg = root.join("sigupdate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[custom.demo]\nkeys = \"{}\"\nsign = false\n",
            key_file.display()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn inconsistent_upstream_set_is_refused_and_clients_keep_working() {
    let bins = Binaries::build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    let keys = PublisherKeys::test();
    let demo = History::synthetic("demo", 4, &keys).unwrap();
    let mut upstream = Upstream::builder()
        .database(official(), 1)
        .database(demo, 2)
        .start()
        .unwrap();
    let mut opts = official_opts(&upstream.base_url());
    opts.dbs.push("demo".into());
    opts.config = Some(demo_config(tmp.path(), &keys));
    sync_expect(&bins, &dir, &opts, 0);
    assert_eq!(published_version(&dir, "test"), Some(1));
    assert_eq!(published_version(&dir, "demo"), Some(2));
    println!("checked: mirror holds test v1 and demo v2");

    // Upstream moves on; demo v3 is a hand-built .cvd the cdiff does not lead to.
    upstream.advance().unwrap();
    upstream.publish("test", 6).unwrap();
    upstream
        .misbehave(Misbehaviour::InconsistentSet { db: "demo".into() })
        .unwrap();
    let before_demo: Vec<(String, Vec<u8>)> = published(&dir)
        .into_iter()
        .filter(|(n, _)| n.starts_with("demo"))
        .collect();
    let out = sync_expect(&bins, &dir, &opts, 1);
    assert!(
        out.stderr.to_ascii_lowercase().contains("chain"),
        "the log names the chain failure:\n{}",
        out.stderr
    );
    assert_eq!(
        published_version(&dir, "demo"),
        Some(2),
        "demo stays at the last good version"
    );
    assert_eq!(
        published_version(&dir, "test"),
        Some(6),
        "test is updated regardless"
    );
    let after_demo: Vec<(String, Vec<u8>)> = published(&dir)
        .into_iter()
        .filter(|(n, _)| n.starts_with("demo"))
        .collect();
    assert_eq!(
        before_demo, after_demo,
        "demo's published files are exactly the last good ones"
    );
    println!(
        "checked: sync exit 1, log names the chain failure; demo still v2 byte for byte, test v6"
    );

    let st = e2e::status(&bins, &dir).unwrap();
    let demo_st = &st.databases["demo"];
    assert_eq!(demo_st.published_version, Some(2), "status: {}", st.json);
    assert_eq!(
        demo_st.last_error_kind.as_deref(),
        Some("chain"),
        "status: {}",
        st.json
    );
    println!(
        "checked: sigupdate status: demo published_version 2, last_error = {:?}",
        demo_st.last_error
    );

    let server = Sigserver::start(&bins, &dir, &[]).unwrap();
    let metrics = server.get("/metrics").unwrap().text();
    let failures = metrics
        .lines()
        .find(|l| l.starts_with("sigserver_mirror_sync_failures{db=\"demo\""))
        .unwrap_or_else(|| panic!("no sync failure metric for demo:\n{metrics}"));
    assert!(failures.contains("kind=\"chain\""), "{failures}");
    assert!(!failures.ends_with(" 0"), "{failures}");
    assert_eq!(
        e2e::metric_value(&metrics, "sigserver_mirror_last_sync_failed", ""),
        Some(1.0)
    );
    assert_eq!(
        e2e::metric_value(
            &metrics,
            "sigserver_mirror_published_version",
            "db=\"demo\""
        ),
        Some(2.0)
    );
    println!("checked: /metrics: {failures}, last_sync_failed 1, published_version{{demo}} 2");
    let ready = server.get("/ready").unwrap();
    println!(
        "checked: /ready = {} ({})",
        ready.status,
        ready.text().trim()
    );
    // The mirror still serves a complete, consistent state: it stays in rotation.
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(
        ready
            .text()
            .contains("degraded: demo: chain, serving version 2"),
        "/ready must name the refused database: {}",
        ready.text()
    );
    let served = server.get("/demo.cvd").unwrap();
    assert_eq!(served.status, 200);
    assert_eq!(e2e::file_version_bytes(&served.body), Some(2));
    println!("checked: sigserver serves demo.cvd v2 (the last good one)");

    if let Some(fc) = freshclam() {
        let v1 = upstream.history("test").unwrap().release(1).unwrap();
        let (full, cdiffs) =
            freshclam_reaches(&fc, &tmp.path().join("fc"), &server, Some((1, v1)), 6);
        assert_eq!((full, cdiffs), (0.0, 5.0));
        println!("checked: a freshclam client at test v1 still reaches v6 through 5 cdiffs");
    }

    // Upstream repairs the set: the mirror takes demo v3 and then v4.
    upstream.behave().unwrap();
    upstream.advance().unwrap();
    sync_expect(&bins, &dir, &opts, 0);
    assert_eq!(published_version(&dir, "demo"), Some(4));
    println!("checked: after upstream repaired its set, the mirror follows to demo v4");
    server.stop().unwrap();
}

#[test]
fn upstream_outage_and_rate_limit_clients_keep_being_served_and_the_mirror_catches_up() {
    let bins = Binaries::build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    let mut upstream = Upstream::builder().database(official(), 1).start().unwrap();
    let opts = official_opts(&upstream.base_url());
    sync_expect(&bins, &dir, &opts, 0);
    upstream.advance().unwrap();
    sync_expect(&bins, &dir, &opts, 0);
    assert_eq!(published_version(&dir, "test"), Some(2));
    let server = Sigserver::start(&bins, &dir, &[]).unwrap();
    let fc_client = freshclam();
    let history = official();

    // Outage while upstream has a new version.
    upstream.advance().unwrap();
    upstream.misbehave(Misbehaviour::Outage).unwrap();
    let good = published(&dir);
    sync_expect(&bins, &dir, &opts, 3);
    assert_eq!(published(&dir), good, "an outage changes nothing published");
    println!("checked: upstream down (503): sync exit 3, published snapshot unchanged (test v2)");
    if let Some(fc) = &fc_client {
        let v1 = history.release(1).unwrap();
        freshclam_reaches(fc, &tmp.path().join("fc-outage"), &server, Some((1, v1)), 2);
        println!("checked: during the outage a freshclam at v1 is served up to v2");
    }

    // Rate limiting.
    upstream.behave().unwrap();
    upstream.advance().unwrap();
    upstream
        .misbehave(Misbehaviour::RateLimit {
            retry_after_secs: 1,
        })
        .unwrap();
    sync_expect(&bins, &dir, &opts, 4);
    assert_eq!(published(&dir), good, "a 429 changes nothing published");
    println!("checked: upstream 429 Retry-After: 1: sync exit 4, published snapshot unchanged");
    if let Some(fc) = &fc_client {
        let v1 = history.release(1).unwrap();
        freshclam_reaches(fc, &tmp.path().join("fc-429"), &server, Some((1, v1)), 2);
        println!("checked: while rate-limited, a freshclam at v1 is served up to v2");
    }

    // Upstream recovers; the mirror catches up, fetching each new file exactly once.
    upstream.behave().unwrap();
    // Let the Retry-After cool-down the mirror recorded (about 1 s) run out.
    wait_for_cooldowns(&dir);
    upstream.reset_stats();
    sync_expect(&bins, &dir, &opts, 0);
    assert_eq!(published_version(&dir, "test"), Some(4));
    let stats = upstream.stats();
    let up_files = upstream.files("test");
    let new_files = [
        "test.cvd",
        "test-4.cvd.sign",
        "test-3.cdiff",
        "test-3.cdiff.sign",
        "test-4.cdiff",
        "test-4.cdiff.sign",
    ];
    let mut expected_bytes = 0;
    for f in new_files {
        let p = format!("/{f}");
        let body = &up_files[f];
        assert_eq!(
            stats.requests(&p),
            1,
            "{f} requested once: {:?}",
            stats.log_for(&p)
        );
        assert_eq!(
            stats.body_bytes(&p),
            body.len() as u64,
            "{f} downloaded once, whole"
        );
        expected_bytes += body.len() as u64;
    }
    for old in ["test-2.cdiff", "test-2.cdiff.sign"] {
        assert_eq!(
            stats.requests(&format!("/{old}")),
            0,
            "{old} is already held"
        );
    }
    let manifest = stats.body_bytes("/dns.txt");
    assert_eq!(
        stats.total_body_bytes(),
        expected_bytes + manifest,
        "nothing else was downloaded: {:?}",
        stats.log().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    println!(
        "checked: after recovery the mirror caught up to v4 downloading only the 6 new files once ({expected_bytes} bytes + {manifest} bytes of dns.txt)"
    );
    if let Some(fc) = &fc_client {
        let v2 = history.release(2).unwrap();
        let (full, cdiffs) =
            freshclam_reaches(fc, &tmp.path().join("fc-after"), &server, Some((2, v2)), 4);
        assert_eq!((full, cdiffs), (0.0, 2.0));
        println!("checked: a freshclam at v2 reaches v4 through 2 cdiffs");
    }
    server.stop().unwrap();
}

#[test]
fn two_tiers_reach_the_same_state_and_serve_freshclam() {
    let bins = Binaries::build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir1 = tmp.path().join("tier1");
    let dir2 = tmp.path().join("tier2");
    let mut upstream = Upstream::builder().database(official(), 1).start().unwrap();
    sync_expect(&bins, &dir1, &official_opts(&upstream.base_url()), 0);
    let tier1 = Sigserver::start(&bins, &dir1, &[]).unwrap();
    let same = |a: &Path, b: &Path| {
        let strip = |v: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
            // dns.txt holds its writing time; .trace.json says where each tier got its
            // files from (and when): both differ by design and are not database files.
            v.into_iter()
                .filter(|(n, _)| n != "dns.txt" && n != ".trace.json")
                .collect()
        };
        let (x, y) = (strip(published(a)), strip(published(b)));
        assert_eq!(names(&x), names(&y), "both tiers publish the same files");
        assert_eq!(x, y, "byte for byte");
        names(&x).len()
    };
    for target in [1, 4, 6] {
        upstream.publish("test", target).unwrap();
        sync_expect(&bins, &dir1, &official_opts(&upstream.base_url()), 0);
        sync_expect(&bins, &dir2, &official_opts(&tier1.url()), 0);
        assert_eq!(published_version(&dir1, "test"), Some(target));
        assert_eq!(published_version(&dir2, "test"), Some(target));
        let n = same(&dir1, &dir2);
        println!(
            "checked: upstream at v{target}: tier 1 syncs from upstream, tier 2 from tier 1's sigserver; both publish the same {n} files byte for byte"
        );
    }
    let m1 = tier1.get("/dns.txt").unwrap().text();
    println!(
        "checked: tier 1 serves its manifest to tier 2: dns.txt = {}",
        m1.trim()
    );

    let tier2 = Sigserver::start(&bins, &dir2, &[]).unwrap();
    if let Some(fc) = freshclam() {
        let history = official();
        let v3 = history.release(3).unwrap();
        let (full, cdiffs) =
            freshclam_reaches(&fc, &tmp.path().join("fc"), &tier2, Some((3, v3)), 6);
        assert_eq!((full, cdiffs), (0.0, 3.0));
        println!("checked: freshclam at v3 reaches v6 from tier 2 through 3 cdiffs");
    }
    tier2.stop().unwrap();
    tier1.stop().unwrap();
}

#[test]
fn tampered_truncated_and_stale_upstream_files_are_never_published() {
    let bins = Binaries::build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    let mut upstream = Upstream::builder().database(official(), 2).start().unwrap();
    let opts = official_opts(&upstream.base_url());
    sync_expect(&bins, &dir, &opts, 0);
    let good = published(&dir);
    upstream.advance().unwrap();
    let cases = [
        Misbehaviour::Tamper {
            file: "test.cvd".into(),
        },
        Misbehaviour::Truncate {
            file: "test.cvd".into(),
        },
        Misbehaviour::Tamper {
            file: "test-3.cdiff".into(),
        },
        Misbehaviour::Truncate {
            file: "test-3.cdiff".into(),
        },
        Misbehaviour::Tamper {
            file: "test-3.cvd.sign".into(),
        },
        Misbehaviour::OlderThanAdvertised { db: "test".into() },
    ];
    for m in cases {
        upstream.misbehave(m.clone()).unwrap();
        let out = e2e::sync(&bins, &dir, &opts).unwrap();
        assert_ne!(
            out.code,
            Some(0),
            "{m:?} must fail the sync:\n{}",
            out.stderr
        );
        assert_eq!(
            published(&dir),
            good,
            "{m:?}: the published snapshot stays the last good one"
        );
        let st = e2e::status(&bins, &dir).unwrap();
        let kind = st.databases["test"].last_error_kind.clone();
        assert!(kind.is_some(), "{m:?}: status names the error: {}", st.json);
        println!(
            "checked: {m:?}: sync exit {:?}, published state unchanged (test v2), status error kind {kind:?}",
            out.code
        );
        upstream.behave().unwrap();
    }
    sync_expect(&bins, &dir, &opts, 0);
    assert_eq!(published_version(&dir, "test"), Some(3));
    println!("checked: once upstream serves good files again, the mirror moves to v3");
}

/// The version in a served path like `/test-5.cdiff` or `/test-5.cdiff.sign` (0 when
/// there is none), for ordering access-log lines.
fn version_in(path: &str) -> u32 {
    path.rsplit_once('-')
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
