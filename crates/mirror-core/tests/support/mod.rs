//! Shared helpers: the official vectors arranged as an upstream on 127.0.0.1, mirror
//! configurations, tree snapshots and a consistency checker.
#![allow(dead_code, clippy::unwrap_used)] // not every test binary uses every helper

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mirror_core::{DatabaseSpec, SyncConfig, VersionSource};

/// The official vectors (vendored in `testdata/clamav-official`).
pub fn fixtures() -> PathBuf {
    testkit::official_vectors()
}

/// 2026-01-01T00:00:00Z: inside the test root's validity.
pub fn pinned_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// Test root certificate set.
pub fn test_roots() -> cvd_format::sign::SignRoots {
    let pem = std::fs::read(fixtures().join("clamav-test-root.crt")).unwrap();
    cvd_format::sign::SignRoots::from_pem(&pem).unwrap()
}

/// Arranges the official `test` vectors in `dir` as an upstream holding version `n`:
/// `test.cvd` (= test-n.cvd), `test-n.cvd.sign`, `test-K.cdiff` and
/// `test-K.cdiff.sign` for K in 2..=n, and (when `manifest`) a `dns.txt`.
pub fn arrange_official(dir: &Path, n: u32, manifest: bool) {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let fx = fixtures();
    let copy = |from: String, to: String| {
        // write to a temp name and rename: the server never serves a half file
        let tmp = dir.join(format!(".{to}.tmp"));
        std::fs::copy(fx.join(&from), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(to)).unwrap();
    };
    copy(format!("test-{n}.cvd"), "test.cvd".into());
    copy(format!("test-{n}.cvd.sign"), format!("test-{n}.cvd.sign"));
    for k in 2..=n {
        copy(format!("test-{k}.cdiff"), format!("test-{k}.cdiff"));
        copy(
            format!("test-{k}.cdiff.sign"),
            format!("test-{k}.cdiff.sign"),
        );
    }
    if manifest {
        write_manifest(dir, &BTreeMap::from([("test".to_owned(), n)]));
    }
}

/// Writes an upstream `dns.txt` for the given versions.
pub fn write_manifest(dir: &Path, versions: &BTreeMap<String, u32>) {
    let text = mirror_core::manifest::render(versions, SystemTime::now());
    assert!(text.starts_with("0.0.0:"), "{text}");
    std::fs::write(dir.join("dns.txt"), text).unwrap();
}

/// The engine configuration for the `test` database against `upstreams`.
pub fn config(mirror: &Path, upstreams: &[String]) -> SyncConfig {
    config_builder(mirror, upstreams)
        .versions(VersionSource::NoDns)
        .build()
        .unwrap()
}

/// A configuration builder for the `test` database against `upstreams`, trusting the
/// test `.sign` root at the pinned time; versions as the builder's default (DNS).
pub fn config_builder(mirror: &Path, upstreams: &[String]) -> mirror_core::SyncConfigBuilder {
    let mut b = SyncConfig::builder(mirror)
        .database(DatabaseSpec::new("test").unwrap())
        .sign_roots(test_roots())
        .verify_time(pinned_time());
    for u in upstreams {
        b = b.upstream(u);
    }
    b
}

/// Every file under `DIR/current` (resolved once), name → bytes.
pub fn tree(mirror: &Path) -> BTreeMap<String, Vec<u8>> {
    let cur = mirror.join("current");
    let Ok(real) = std::fs::canonicalize(&cur) else {
        return BTreeMap::new();
    };
    read_tree(&real)
}

/// Every file in `dir`, name → bytes.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        out.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        );
    }
    out
}

/// Sign verifier for the official vectors' `.sign` files.
pub fn sign_verifier() -> cvd_format::sign::SignVerifier {
    cvd_format::sign::SignVerifier::new()
        .roots(test_roots())
        .at(time::OffsetDateTime::from(pinned_time()))
}

/// Checks that a snapshot of the official `test` database is complete and consistent
/// (see [`check_db`]); the base of the oldest cdiff comes from the official vectors.
pub fn check_snapshot(files: &BTreeMap<String, Vec<u8>>) -> Result<(u32, Vec<u32>), String> {
    let base =
        |v: u32| std::fs::read(fixtures().join(format!("test-{v}.cvd"))).map_err(|e| e.to_string());
    check_only(files, &["test"])?;
    check_db(
        files,
        "test",
        &cvd_format::KeySet::official(),
        Some(&sign_verifier()),
        &base,
    )
}

/// Fails on any file that does not belong to one of `dbs` (or is the manifest, or the
/// generation's trust or trace record, which must be a valid one naming only `dbs`).
pub fn check_only(files: &BTreeMap<String, Vec<u8>>, dbs: &[&str]) -> Result<(), String> {
    for (name, bytes) in files {
        if name == mirror_core::trust::TRUST_FILE {
            let r: mirror_core::trust::TrustRecord =
                serde_json::from_slice(bytes).map_err(|e| format!("{name}: {e}"))?;
            if r.format != mirror_core::trust::TRUST_FORMAT {
                return Err(format!("{name}: format {}", r.format));
            }
            continue;
        }
        if name == mirror_core::trace::TRACE_FILE {
            let r: mirror_core::trace::TraceRecord =
                serde_json::from_slice(bytes).map_err(|e| format!("{name}: {e}"))?;
            if r.format != mirror_core::trace::TRACE_FORMAT {
                return Err(format!("{name}: format {}", r.format));
            }
            if let Some(d) = r.databases.keys().find(|d| !dbs.contains(&d.as_str())) {
                return Err(format!("{name}: unexpected database {d}"));
            }
            continue;
        }
        match mirror_core::model::MirrorFile::parse(name) {
            Some(mirror_core::model::MirrorFile::Manifest) => {}
            Some(f) if f.db().is_some_and(|d| dbs.contains(&d)) => {}
            _ => return Err(format!("unexpected file {name}")),
        }
    }
    Ok(())
}

/// Checks one database in a snapshot: the `.cvd` and every cdiff verify, every file has
/// its verifying `.sign` (when `signs` is given), the cdiffs form an unbroken chain
/// ending at the `.cvd`'s version and, applied to `base(oldest - 1)`, reproduce the
/// `.cvd`'s members byte for byte; `dns.txt` advertises the version. Returns the
/// version and the cdiff versions.
pub fn check_db(
    files: &BTreeMap<String, Vec<u8>>,
    db: &str,
    keys: &cvd_format::KeySet,
    signs: Option<&cvd_format::sign::SignVerifier>,
    base: &dyn Fn(u32) -> Result<Vec<u8>, String>,
) -> Result<(u32, Vec<u32>), String> {
    use mirror_core::model::MirrorFile;
    let cvd_name = format!("{db}.cvd");
    let cvd = files.get(&cvd_name).ok_or(format!("{cvd_name} missing"))?;
    let opts = cvd_format::VerifyOptions::new()
        .keys(keys.clone())
        .require_signed(true);
    let report =
        cvd_format::verify_reader(&cvd[..], &opts).map_err(|e| format!("{cvd_name}: {e}"))?;
    let v = report.header.version;
    let check_sign = |name: &str, content: &[u8]| -> Result<(), String> {
        let Some(sv) = signs else { return Ok(()) };
        let sign_name = format!("{name}.sign");
        let sign = files
            .get(&sign_name)
            .ok_or(format!("{sign_name} missing"))?;
        let sf =
            cvd_format::sign::SignFile::parse(sign).map_err(|e| format!("{sign_name}: {e}"))?;
        sv.verify(&sf, content)
            .map(drop)
            .map_err(|e| format!("{sign_name}: {e}"))
    };
    check_sign(&format!("{db}-{v}.cvd"), cvd)?;
    let mut cdiffs = Vec::new();
    for (name, bytes) in files {
        match MirrorFile::parse(name) {
            Some(MirrorFile::Cdiff { db: d, version }) if d == db => {
                let p = cdiff::Patch::verify(name, bytes.clone(), &keys.cdiff)
                    .map_err(|e| format!("{name}: {e}"))?;
                if p.version() != version {
                    return Err(format!("{name}: says version {}", p.version()));
                }
                check_sign(name, bytes)?;
                cdiffs.push(version);
            }
            Some(MirrorFile::CvdSign { db: d, version }) if d == db && version != v => {
                return Err(format!(
                    "{name}: stale .sign next to {cvd_name} version {v}"
                ));
            }
            Some(MirrorFile::CdiffSign { db: d, .. })
                if d == db && !files.contains_key(name.trim_end_matches(".sign")) =>
            {
                return Err(format!("{name} without its cdiff"));
            }
            _ => {}
        }
    }
    cdiffs.sort_unstable();
    for pair in cdiffs.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(format!("cdiff gap between {} and {}", pair[0], pair[1]));
        }
    }
    if let (Some(&lo), Some(&hi)) = (cdiffs.first(), cdiffs.last()) {
        if hi != v {
            return Err(format!("newest cdiff is {hi}, {cvd_name} is {v}"));
        }
        let base = base(lo - 1)?;
        let patches: Vec<_> = cdiffs
            .iter()
            .map(|c| {
                let n = format!("{db}-{c}.cdiff");
                cdiff::chain::PatchInput::new(n.clone(), files[&n].clone())
            })
            .collect();
        let opts = cdiff::chain::ChainOptions::new().keys(keys.clone());
        match cdiff::chain::check(&cvd[..], &base[..], &patches, &opts) {
            Ok(cdiff::chain::Consistency::Consistent { .. }) => {}
            other => {
                return Err(format!(
                    "chain {lo}..{hi} does not lead to {cvd_name}: {other:?}"
                ));
            }
        }
    }
    let manifest = files.get("dns.txt").ok_or("dns.txt missing")?;
    let record = dns_versions::parse_manifest(manifest).map_err(|e| format!("dns.txt: {e}"))?;
    if record.version_of(db) != Some(v) {
        return Err(format!(
            "dns.txt says {:?}, {cvd_name} is {v}",
            record.version_of(db)
        ));
    }
    Ok((v, cdiffs))
}

/// Copies a mirror directory (files, directories, the `current` symlink as a symlink).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        let dst = to.join(e.file_name());
        if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else if t.is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Starts an upstream serving `dir`.
pub fn serve(dir: &Path) -> testkit::http::TestServer {
    testkit::http::TestServer::start_dir(dir)
}

/// The real HTTP transport with quick retries (tests must not wait out backoffs).
pub fn transport(mirror: &Path) -> mirror_core::transport::HttpTransport {
    std::fs::create_dir_all(mirror).unwrap();
    let client = fetch::Client::builder()
        .cooldown_file(mirror.join("cooldown.json"))
        .retries(1)
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .no_proxy()
        .build()
        .unwrap();
    mirror_core::transport::HttpTransport::from_client(client)
}

/// Syncs once with the real HTTP transport.
pub fn sync_once(mirror: &Path, upstreams: &[String]) -> mirror_core::SyncReport {
    sync_with(&config(mirror, upstreams))
}

/// Syncs once with a given configuration.
pub fn sync_with(cfg: &SyncConfig) -> mirror_core::SyncReport {
    let mut t = transport(cfg.layout().root());
    mirror_core::sync(cfg, &mut t, None).unwrap()
}

/// A mirror at version `start` of `test`, synced from `up` (which is left arranged at
/// `start`).
pub fn mirror_at(up: &Path, server: &testkit::http::TestServer, start: u32) -> tempfile::TempDir {
    arrange_official(up, start, true);
    let mirror = tempfile::tempdir().unwrap();
    let r = sync_once(mirror.path(), &[server.base_url()]);
    assert_eq!(r.databases[0].after, Some(start), "{r:?}");
    mirror
}

/// The `test` database's status entry.
pub fn db_status(mirror: &Path) -> mirror_core::status::DatabaseStatus {
    mirror_core::status::MirrorStatus::load(mirror)
        .unwrap()
        .databases["test"]
        .clone()
}

/// Asserts that a sync failed for `test` with `kind`, left the published tree exactly
/// as `before`, and recorded an error mentioning every string in `mentions`.
pub fn assert_kept(
    mirror: &Path,
    before: &BTreeMap<String, Vec<u8>>,
    r: &mirror_core::SyncReport,
    kind: mirror_core::ErrorKind,
    mentions: &[&str],
) {
    let err = r.databases[0].result.as_ref().expect_err("sync must fail");
    assert_eq!(err.kind(), kind, "{err}");
    assert!(r.published.is_none(), "nothing may be published: {r:?}");
    assert_eq!(
        &tree(mirror),
        before,
        "published tree must stay byte for byte"
    );
    check_snapshot(before).unwrap();
    let st = db_status(mirror);
    let msg = st.last_error.clone().unwrap_or_default();
    assert_eq!(st.last_error_kind.as_deref(), Some(kind.as_str()), "{msg}");
    for m in mentions {
        assert!(msg.contains(m), "status error {msg:?} should mention {m:?}");
    }
    assert!(st.consecutive_failures >= 1);
}

/// A mirror holding version 4 of `test`, synced from an upstream on 127.0.0.1 that now
/// offers version 6 (cdiffs, `.sign`s and a manifest), with the mirror's published
/// files as they were before the next sync.
pub struct HeldBehind {
    /// The upstream directory (arranged at version 6).
    pub up: tempfile::TempDir,
    /// The server for `up`.
    pub server: testkit::http::TestServer,
    /// The mirror, at version 4.
    pub mirror: tempfile::TempDir,
    /// The mirror's published tree at version 4.
    pub before: BTreeMap<String, Vec<u8>>,
}

/// Sets up a [`HeldBehind`]: the mirror at 4, the upstream then arranged at 6.
pub fn held_4_offered_6() -> HeldBehind {
    let up = tempfile::tempdir().unwrap();
    let server = serve(up.path());
    let mirror = mirror_at(up.path(), &server, 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    HeldBehind {
        up,
        server,
        mirror,
        before,
    }
}

impl HeldBehind {
    /// Syncs the mirror once from the upstream.
    pub fn sync(&self) -> mirror_core::SyncReport {
        sync_once(self.mirror.path(), &[self.server.base_url()])
    }

    /// [`assert_kept`] for this mirror and its tree before the sync.
    pub fn assert_kept(
        &self,
        r: &mirror_core::SyncReport,
        kind: mirror_core::ErrorKind,
        mentions: &[&str],
    ) {
        assert_kept(self.mirror.path(), &self.before, r, kind, mentions);
    }
}

/// A configuration builder for the synthetic `demo` database served by `up`, signed
/// with `keys` and without `.sign` files, versions taken from the upstream itself.
pub fn demo_config(
    mirror: &Path,
    up: &testkit::upstream::Upstream,
    keys: &testkit::upstream::PublisherKeys,
) -> mirror_core::SyncConfigBuilder {
    SyncConfig::builder(mirror)
        .versions(VersionSource::NoDns)
        .database(
            DatabaseSpec::new("demo")
                .unwrap()
                .keys(keys.key_set())
                .signs(false),
        )
        .upstream(&up.base_url())
}
