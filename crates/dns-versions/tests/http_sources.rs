//! Versions without DNS: header probes and `dns.txt` manifests over HTTP, against the
//! official signed vectors served by `testkit::http` on 127.0.0.1, cross-checked with
//! ClamAV's own `sigtool`.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use dns_versions::{
    Error, MANIFEST_NAME, ProbedHeader, VersionRecord, fetch_manifest, probe_header,
    probe_header_from, read_manifest, write_manifest,
};
use fetch::{Client, Upstreams};
use testkit::http::{Fault, Scope, TestServer};

fn fixtures() -> PathBuf {
    testkit::official_vectors()
}

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .unwrap()
}

/// `sigtool -i` on a file: (version, signatures, flevel) as ClamAV sees them.
fn sigtool_info(path: &std::path::Path) -> Option<(u32, u32, u32)> {
    let sigtool = testkit::tools::require("sigtool")?;
    let out = Command::new(sigtool)
        .arg("-i")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("running sigtool: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| -> u32 {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("sigtool output lacks {k}: {text}"))
    };
    Some((
        field("Version:"),
        field("Signatures:"),
        field("Functionality level:"),
    ))
}

#[test]
fn probe_reads_the_version_of_official_files_like_sigtool() {
    let server = TestServer::start();
    let c = client();
    for name in ["test-1.cvd", "test-3.cvd", "test-6.cvd", "bytecode.cvd"] {
        let path = fixtures().join(name);
        let bytes = std::fs::read(&path).unwrap();
        server.put("/probe.cvd", bytes.clone());
        server.reset_stats();
        let p = probe_header(&c, &server.base_url(), "probe").unwrap();
        let st = server.stats();
        assert_eq!(st.log()[0].header("range"), Some("bytes=0-511"));
        assert_eq!(st.body_bytes("/probe.cvd"), 512, "only the header travels");
        assert_eq!(p, ProbedHeader::parse(&bytes, name).unwrap());
        if let Some((v, s, f)) = sigtool_info(&path) {
            assert_eq!((p.version, p.signatures, p.flevel), (v, s, f), "{name}");
        }
    }
}

#[test]
fn probe_rejects_what_is_not_a_header() {
    let server = TestServer::start();
    server.put("/short.cvd", b"ClamAV-VDB:x:1:2:3:".to_vec());
    let mut bad = b"ClamAV-VDB:22 Jun 2021 21-34 -0400:abc:14:81:".to_vec();
    bad.resize(600, b' ');
    server.put("/bad.cvd", bad);
    let mut html = b"<html>".to_vec();
    html.resize(600, b' ');
    server.put("/html.cvd", html);
    let c = client();
    for db in ["short", "bad", "html"] {
        let e = probe_header(&c, &server.base_url(), db).unwrap_err();
        assert!(matches!(e, Error::Header { .. }), "{db}: {e}");
        assert!(e.to_string().contains(&format!("/{db}.cvd")), "{e}");
    }
    let e = probe_header(&c, &server.base_url(), "missing").unwrap_err();
    assert!(matches!(e, Error::Fetch(ref f) if f.is_not_found()), "{e}");
}

#[test]
fn probe_fails_over_across_upstreams() {
    let down = TestServer::start();
    down.set_fault(Scope::All, Fault::Status(500));
    let up = TestServer::start();
    up.put(
        "/test.cvd",
        std::fs::read(fixtures().join("test-4.cvd")).unwrap(),
    );
    let ups = Upstreams::new([down.base_url(), up.base_url()]).unwrap();
    let c = Client::builder().no_proxy().retries(0).build().unwrap();
    let (p, url) = probe_header_from(&c, &ups, "test").unwrap();
    assert_eq!(p.version, 4);
    assert_eq!(url, up.url("/test.cvd"));
}

#[test]
fn manifest_written_by_one_tier_is_read_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MANIFEST_NAME);
    let mut rec = VersionRecord::new(SystemTime::now(), 62, 27466, 335);
    rec.set_version("custom_db", 17).unwrap();
    write_manifest(&path, &rec).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with(":custom_db=17\n"), "{text}");
    assert_eq!(text.matches('\n').count(), 1);
    assert_eq!(read_manifest(&path).unwrap(), rec);
    // no temp file left behind
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let server = TestServer::start_dir(dir.path());
    let got = fetch_manifest(&client(), &server.base_url()).unwrap();
    assert_eq!(got, rec);
    assert_eq!(got.version_of("custom_db"), Some(17));

    // broken manifests are errors naming the field
    std::fs::write(&path, "1.4.3:62:27466\n").unwrap();
    let e = read_manifest(&path).unwrap_err();
    assert!(matches!(e, Error::Field { field: 3, .. }), "{e}");
    std::fs::write(&path, "1.4.3:62:27466:1:0:90:0:335\nsecond line\n").unwrap();
    assert!(matches!(read_manifest(&path), Err(Error::Record { .. })));
    std::fs::write(&path, vec![b'1'; 10_000]).unwrap();
    assert!(matches!(read_manifest(&path), Err(Error::Io { .. })));
    assert!(matches!(
        fetch_manifest(&client(), &server.base_url()),
        Err(Error::Record { .. })
    ));
    let e = read_manifest(&dir.path().join("nope.txt")).unwrap_err();
    assert!(e.to_string().contains("nope.txt"), "{e}");
}
