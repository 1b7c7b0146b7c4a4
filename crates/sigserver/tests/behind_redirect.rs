//! `--behind-redirect` (issue 23): a mirror stuck at `test` 3 while upstream has
//! announced 6 redirects what it lacks (the `.cvd`, cdiffs above 3, their `.sign`
//! files) with `302`, serves what it holds, says so in `/metrics` and logs the state
//! once; once it has caught up it serves everything itself.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;

use mirror_core::status::{DatabaseStatus, MirrorStatus};

use crate::util::{Server, fixture, get, metric};

/// A mirror directory (one generation) serving the official `test` at `version`
/// (`.cvd`, its `.sign`, cdiffs 2..=version with theirs), whose `status.json` says
/// upstream has announced `upstream` since `ago` seconds.
pub fn stuck_mirror(version: u32, upstream: u32, ago: i64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    publish(d.path(), 1, version);
    set_status(d.path(), version, upstream, ago);
    d
}

/// Publishes generation `n` holding `test` at `version` and points `current` at it.
pub fn publish(dir: &Path, n: u32, version: u32) {
    let name = format!("g-{n:06}");
    let g = dir.join("generations").join(&name);
    std::fs::create_dir_all(&g).unwrap();
    let copy = |from: &str, to: &str| std::fs::copy(fixture(from), g.join(to)).unwrap();
    copy(&format!("test-{version}.cvd"), "test.cvd");
    let sign = format!("test-{version}.cvd.sign");
    copy(&sign, &sign);
    for v in 2..=version {
        for ext in ["cdiff", "cdiff.sign"] {
            let f = format!("test-{v}.{ext}");
            copy(&f, &f);
        }
    }
    let tmp = dir.join(".current.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("generations/{name}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("current")).unwrap();
}

/// Writes `status.json` as the sync engine would: serving `version`, upstream has
/// announced `upstream` since `ago` seconds, last sync just now.
pub fn set_status(dir: &Path, version: u32, upstream: u32, ago: i64) {
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
            published_version: Some(version),
            upstream_version: Some(upstream),
            upstream_seen_at: Some(now - ago),
            cdiffs: (2..=version).collect(),
            ..Default::default()
        },
    );
    st.store(dir).unwrap();
}

#[test]
fn a_provably_behind_mirror_redirects_only_what_it_lacks() {
    let d = stuck_mirror(3, 6, 120);
    let s = Server::start(
        d.path(),
        &[
            "--ready-lag",
            "60",
            "--behind-redirect",
            "http://up.example:8080/",
        ],
    );
    assert_eq!(get(s.addr, "/ready", "").status, 503);
    for lacks in [
        "/test.cvd",
        "/test.cld",
        "/test-4.cdiff",
        "/test-6.cdiff",
        "/test-6.cdiff.sign",
        "/test-6.cvd.sign",
        "/test-7.cdiff",
    ] {
        let r = get(s.addr, lacks, "");
        assert_eq!(r.status, 302, "{lacks}");
        assert_eq!(
            r.header("location"),
            Some(format!("http://up.example:8080{lacks}").as_str())
        );
        assert_eq!(r.header("cache-control"), Some("no-store"), "{lacks}");
        assert!(r.header("last-modified").is_none());
    }
    // A HEAD (freshclam's probe style) is redirected the same way.
    let r = crate::util::head(s.addr, "/test.cvd", "");
    assert_eq!(r.status, 302);
    for held in [
        "/test-2.cdiff",
        "/test-3.cdiff",
        "/test-3.cdiff.sign",
        "/test-3.cvd.sign",
    ] {
        assert_eq!(get(s.addr, held, "").status, 200, "{held}");
    }
    assert_eq!(get(s.addr, "/test-1.cdiff", "").status, 404);
    let m = s.metrics();
    assert_eq!(
        metric(&m, "sigserver_db_served_version{db=\"test\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric(&m, "sigserver_db_newest_known_version{db=\"test\"}"),
        Some(6.0)
    );
    assert_eq!(
        metric(&m, "sigserver_db_provably_behind{db=\"test\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "sigserver_db_redirect_active{db=\"test\"}"),
        Some(1.0)
    );
    let since = metric(&m, "sigserver_db_behind_since_seconds{db=\"test\"}").unwrap();
    assert!(since > 0.0);
    assert_eq!(
        metric(
            &m,
            "sigserver_behind_redirects_total{target=\"http://up.example:8080\"}"
        ),
        Some(8.0)
    );
    assert_eq!(
        metric(&m, "sigserver_requests_total{kind=\"cvd\",status=\"302\"}"),
        Some(2.0),
        "{m}"
    );
    // Logged once per state change, not per request.
    let log = s.log.text();
    assert_eq!(
        log.matches("behind-redirect: provably behind").count(),
        1,
        "{log}"
    );

    // Recorded for `sigupdate status`.
    let rec = push::behind::RedirectState::read(d.path())
        .unwrap()
        .unwrap();
    assert_eq!(rec.target, "http://up.example:8080");
    assert_eq!(rec.redirected.get("test"), Some(&(Some(3), 6)));
    assert_eq!(rec.pid, s.child.id());

    // Caught up: everything is served here, nothing redirected, logged once.
    publish(d.path(), 2, 6);
    set_status(d.path(), 6, 6, 120);
    testkit::wait::until(
        "the mirror ready again",
        std::time::Duration::from_secs(30),
        || get(s.addr, "/ready", "").status == 200,
    );
    for path in [
        "/test.cvd",
        "/test-4.cdiff",
        "/test-6.cdiff.sign",
        "/test-6.cvd.sign",
    ] {
        assert_eq!(get(s.addr, path, "").status, 200, "{path}");
    }
    s.log.wait_for("behind-redirect: caught up").unwrap();
    let rec = push::behind::RedirectState::read(d.path())
        .unwrap()
        .unwrap();
    assert!(rec.redirected.is_empty(), "{rec:?}");
    let m = s.metrics();
    assert_eq!(
        metric(&m, "sigserver_db_redirect_active{db=\"test\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "sigserver_db_behind_since_seconds{db=\"test\"}"),
        Some(0.0)
    );
}

#[test]
fn within_the_lag_or_without_a_target_nothing_is_redirected() {
    // behind, but not for longer than the lag
    let d = stuck_mirror(3, 6, 0);
    let s = Server::start(
        d.path(),
        &[
            "--ready-lag",
            "3600",
            "--behind-redirect",
            "http://up.example",
        ],
    );
    assert_eq!(get(s.addr, "/test.cvd", "").status, 200);
    assert_eq!(get(s.addr, "/test-4.cdiff", "").status, 404);
    // provably behind, no target: served as held (404 for what it lacks)
    let d = stuck_mirror(3, 6, 120);
    let s = Server::start(d.path(), &["--ready-lag", "60"]);
    assert_eq!(get(s.addr, "/ready", "").status, 503);
    assert_eq!(get(s.addr, "/test.cvd", "").status, 200);
    assert_eq!(get(s.addr, "/test-4.cdiff", "").status, 404);
    let m = s.metrics();
    assert_eq!(
        metric(&m, "sigserver_db_redirect_active{db=\"test\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "sigserver_db_provably_behind{db=\"test\"}"),
        Some(1.0)
    );
    assert!(!m.contains("sigserver_behind_redirects_total"));
}

#[test]
fn a_bad_redirect_target_is_refused_at_start() {
    let d = stuck_mirror(3, 6, 0);
    let out = std::process::Command::new(crate::util::BIN)
        .arg("--dir")
        .arg(d.path())
        .args(["--listen", "127.0.0.1:0", "--behind-redirect", "ftp://x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("behind_redirect"), "{err}");
}

/// Our DNS steers: the per-database record announces the newest known version while
/// redirects are on and the mirror is provably behind; without a redirect target, and
/// once caught up, it announces what is served.
#[test]
fn the_dns_record_announces_the_newest_known_only_with_a_redirect_target() {
    use hickory_proto::rr::RecordType;
    let version = |dns| {
        let t = crate::dns::txt(&crate::dns::udp(
            dns,
            "test.cvd.clamav.net",
            RecordType::TXT,
        ));
        t.split(':').next().unwrap().parse::<u32>().unwrap()
    };
    let d = stuck_mirror(3, 6, 120);
    let (_s, dns) = crate::dns::start(d.path(), &["--ready-lag", "60"]);
    assert_eq!(version(dns), 3, "no target: what is served");
    let (r, dns) = crate::dns::start(
        d.path(),
        &[
            "--ready-lag",
            "60",
            "--behind-redirect",
            "http://up.example",
        ],
    );
    assert_eq!(version(dns), 6, "redirecting: the newest known");
    publish(d.path(), 2, 6);
    set_status(d.path(), 6, 6, 120);
    // (the record follows the published generation at once; the redirect state within
    // its refresh)
    testkit::wait::until(
        "test.cvd served here, not redirected",
        std::time::Duration::from_secs(30),
        || get(r.addr, "/test.cvd", "").status == 200,
    );
    assert_eq!(version(dns), 6);
    // caught up at 6, upstream announces 7 (within the lag): the record says 6
    set_status(d.path(), 6, 7, 0);
    assert_eq!(version(dns), 6);
}
