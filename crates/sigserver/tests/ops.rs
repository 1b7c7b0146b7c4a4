//! `/health`, `/ready`, `/metrics`, access log and graceful shutdown.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::{Server, get, head, plain_mirror};
use mirror_core::status::{DatabaseStatus, MirrorStatus};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn health_is_always_200_and_not_cached() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let r = get(s.addr, "/health", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(head(s.addr, "/health", "").status, 200);
}

#[test]
fn ready_for_a_plain_directory_needs_a_cvd() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("dns.txt"), b"x").unwrap();
    let s = Server::start(d.path(), &[]);
    let r = get(s.addr, "/ready", "");
    assert_eq!(r.status, 503);
    assert!(String::from_utf8_lossy(&r.body).contains("no .cvd"));
    std::fs::copy(
        crate::util::fixture("test-6.cvd"),
        d.path().join("test.cvd"),
    )
    .unwrap();
    assert_eq!(get(s.addr, "/ready", "").status, 200);
}

#[test]
fn ready_for_a_mirror_follows_status_json() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let s = Server::start(root, &["--ready-max-age", "3600"]);
    let body = |r: crate::util::Response| (r.status, String::from_utf8_lossy(&r.body).into_owned());

    // Replicating: status exists, nothing published.
    let mut st = MirrorStatus {
        last_attempt: Some(now()),
        last_error: Some("upstream unreachable".into()),
        ..Default::default()
    };
    st.store(root).unwrap();
    let (code, text) = body(get(s.addr, "/ready", ""));
    assert_eq!(code, 503);
    assert!(text.contains("nothing published"), "{text}");

    // Published and fresh.
    let g = root.join("generations/g-000001");
    std::fs::create_dir_all(&g).unwrap();
    std::fs::copy(crate::util::fixture("test-6.cvd"), g.join("test.cvd")).unwrap();
    std::os::unix::fs::symlink("generations/g-000001", root.join("current")).unwrap();
    st.generation = Some("g-000001".into());
    st.last_publish = Some(now() - 100);
    st.last_success = Some(now() - 100);
    st.last_error = None;
    st.store(root).unwrap();
    let (code, text) = body(get(s.addr, "/ready", ""));
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("g-000001"), "{text}");

    // Stale: last success beyond the threshold.
    st.last_success = Some(now() - 7200);
    st.store(root).unwrap();
    let (code, text) = body(get(s.addr, "/ready", ""));
    assert_eq!(code, 503);
    assert!(text.contains("stale"), "{text}");

    // Broken status file.
    std::fs::write(root.join("status.json"), b"{").unwrap();
    assert_eq!(get(s.addr, "/ready", "").status, 503);
}

#[test]
fn metrics_report_requests_bytes_versions_age_and_errors() {
    let d = plain_mirror();
    let root = d.path();
    let mut st = MirrorStatus {
        last_publish: Some(now() - 50),
        last_success: Some(now() - 40),
        ..Default::default()
    };
    st.databases.insert(
        "test".into(),
        DatabaseStatus {
            published_version: Some(6),
            cdiffs: vec![2, 3, 4, 5, 6],
            last_error_kind: Some("verification".into()),
            consecutive_failures: 2,
            ..Default::default()
        },
    );
    st.store(root).unwrap();
    // One worker: the small-file cache is sharded per worker, so only then is the
    // second fetch of a file sure to find the first one's cache entry.
    let s = Server::start(root, &["--workers", "1"]);
    assert_eq!(
        get(s.addr, "/test.cvd", "Range: bytes=0-511\r\n").status,
        206
    );
    assert_eq!(get(s.addr, "/test-2.cdiff", "").status, 200);
    assert_eq!(get(s.addr, "/test-2.cdiff", "").status, 200);
    assert_eq!(get(s.addr, "/nope.cvd", "").status, 404);
    let cdiff_len = std::fs::metadata(root.join("test-2.cdiff")).unwrap().len() as f64;

    let r = get(s.addr, "/metrics", "");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = String::from_utf8(r.body).unwrap();
    let v = |series: &str| {
        crate::util::metric(&m, series).unwrap_or_else(|| panic!("{series} missing in\n{m}"))
    };
    assert_eq!(
        v("sigserver_requests_total{kind=\"cvd\",status=\"206\"}"),
        1.0
    );
    assert_eq!(
        v("sigserver_requests_total{kind=\"cdiff\",status=\"200\"}"),
        2.0
    );
    assert_eq!(
        v("sigserver_requests_total{kind=\"cvd\",status=\"404\"}"),
        1.0
    );
    // The 206 probe plus the 404 body (error bodies count under the kind asked for).
    assert_eq!(
        v("sigserver_sent_bytes_total{kind=\"cvd\"}"),
        512.0 + "not found\n".len() as f64
    );
    assert_eq!(
        v("sigserver_sent_bytes_total{kind=\"cdiff\"}"),
        2.0 * cdiff_len
    );
    assert_eq!(v("sigserver_mirror_published_version{db=\"test\"}"), 6.0);
    assert_eq!(
        v("sigserver_mirror_sync_failures{db=\"test\",kind=\"verification\"}"),
        2.0
    );
    let age = v("sigserver_mirror_snapshot_age_seconds");
    assert!((50.0..3600.0).contains(&age), "{age}");
    assert!(v("sigserver_mirror_last_success_timestamp_seconds") > 0.0);
    // The second fetch of the same small file came from memory.
    assert!(v("sigserver_file_cache_hits_total") >= 1.0);
    assert!(v("sigserver_file_cache_misses_total") >= 1.0);
    // This connection at least (earlier ones may still be closing on another worker).
    assert!(v("sigserver_open_connections") >= 1.0);
    // Every non-comment line is `name{labels} value` or `name value`.
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad sample line {line:?}"));
    }
}

#[test]
fn metrics_report_unproven_cdiffs_and_chain_failures_per_database() {
    let d = plain_mirror();
    let root = d.path();
    let mut st = MirrorStatus {
        last_publish: Some(now() - 50),
        ..Default::default()
    };
    st.databases.insert(
        "test".into(),
        DatabaseStatus {
            published_version: Some(6),
            cdiffs: vec![2, 3, 4, 5, 6],
            unproven_cdiffs: vec![2, 3, 4],
            chain_failures: 7,
            ..Default::default()
        },
    );
    // A database with nothing to report still gets its zero samples.
    st.databases.insert(
        "other".into(),
        DatabaseStatus {
            published_version: Some(1),
            ..Default::default()
        },
    );
    st.store(root).unwrap();
    let s = Server::start(root, &[]);
    let r = get(s.addr, "/metrics", "");
    assert_eq!(r.status, 200);
    let m = String::from_utf8(r.body).unwrap();
    let v = |series: &str| {
        crate::util::metric(&m, series).unwrap_or_else(|| panic!("{series} missing in\n{m}"))
    };
    assert_eq!(v("sigserver_mirror_unproven_cdiffs{db=\"test\"}"), 3.0);
    assert_eq!(v("sigserver_mirror_unproven_cdiffs{db=\"other\"}"), 0.0);
    assert_eq!(v("sigserver_mirror_chain_failures_total{db=\"test\"}"), 7.0);
    assert_eq!(
        v("sigserver_mirror_chain_failures_total{db=\"other\"}"),
        0.0
    );
    for (name, kind) in [
        ("sigserver_mirror_unproven_cdiffs", "gauge"),
        ("sigserver_mirror_chain_failures_total", "counter"),
    ] {
        assert!(m.contains(&format!("# HELP {name} ")), "{m}");
        assert!(m.contains(&format!("# TYPE {name} {kind}\n")), "{m}");
    }
}

#[test]
fn access_log_has_one_line_per_request() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let _ = get(
        s.addr,
        "/test-3.cdiff",
        "User-Agent: ClamAV/1.4.6 (test)\r\n",
    );
    let line = s.log.wait_for("path=/test-3.cdiff").unwrap();
    let len = std::fs::metadata(d.path().join("test-3.cdiff"))
        .unwrap()
        .len();
    assert!(line.contains("status=200"), "{line}");
    assert!(line.contains(&format!("bytes={len}")), "{line}");
    assert!(line.contains("complete=true"), "{line}");
    assert!(line.contains("ClamAV/1.4.6"), "{line}");
    // A refused head is logged too, with its status.
    let r = crate::util::request(
        s.addr,
        "GET /test.cvd HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 400, "an HTTP/1.1 request without Host");
    let line = s.log.wait_for("method=- path=- status=400").unwrap();
    assert!(line.contains("kind=\"other\""), "{line}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &["--log-format", "json"]);
    let _ = get(s.addr, "/dns.txt", "");
    s.log.wait_for("\"path\":\"/dns.txt\"").unwrap();
    for line in s.log.text().lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v.get("level").is_some());
    }
}

#[test]
fn sigterm_finishes_the_download_in_flight_then_exits_0() {
    let d = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(d.path().join("big.cvd"), &big).unwrap();
    let mut s = Server::start(d.path(), &[]);
    let mut c = testkit::net::connect(s.addr).unwrap();
    c.write_all(b"GET /big.cvd HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let h = crate::util::read_head(&mut c);
    assert_eq!(h.status, 200);
    let mut got = vec![0u8; 1 << 20];
    c.read_exact(&mut got).unwrap();
    s.sigterm();
    s.log.wait_for("shutting down").unwrap();
    c.read_to_end(&mut got).unwrap();
    assert!(
        got == big,
        "in-flight body incomplete: {} of {}",
        got.len(),
        big.len()
    );
    let status = s.wait();
    assert_eq!(status.code(), Some(0));
    assert!(s.log.text().contains("all connections closed"));
}

#[test]
fn several_listen_addresses() {
    let d = plain_mirror();
    let mut cmd = std::process::Command::new(crate::util::BIN);
    cmd.arg("--dir")
        .arg(d.path())
        .args(["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"]);
    let s = Server::spawn(&mut cmd, 2);
    assert_eq!(s.addrs.len(), 2);
    assert_ne!(s.addrs[0], s.addrs[1]);
    for a in &s.addrs {
        assert_eq!(get(*a, "/test.cvd", "").status, 200);
    }
}
