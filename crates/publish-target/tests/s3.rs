//! The publisher against a real S3-compatible store (SeaweedFS, started per test on
//! free loopback ports): publish from empty, incremental updates (bytes sent = bytes
//! new), nothing new = no PUT, racing publishers, pruning with grace, an unreachable
//! store; and a `file://` target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mirror_core::layout::GenerationId;
use mirror_core::targets::TargetState;
use publish_target::object_store::{self, ObjectStore};
use publish_target::{LocalGeneration, PublishError, PublishSettings, Publisher, TargetSpec};
use testkit::s3::{SeaweedFs, request};

const BUCKET: &str = "mirror";
const PREFIX: &str = "clamav/db";

/// Writes generation `n` of the official `test` database into `dir/generations` and
/// points `dir/current` at it: `test.cvd` version `n`, its `.sign`, the cdiffs (and
/// their `.sign`) of versions `from..=n`, and a `dns.txt`.
fn generation(dir: &Path, n: u32, from: u32) -> LocalGeneration {
    let v = testkit::official_vectors();
    let id = GenerationId(u64::from(n));
    let g = dir.join("generations").join(id.dir_name());
    std::fs::create_dir_all(&g).unwrap();
    std::fs::copy(v.join(format!("test-{n}.cvd")), g.join("test.cvd")).unwrap();
    std::fs::copy(
        v.join(format!("test-{n}.cvd.sign")),
        g.join(format!("test-{n}.cvd.sign")),
    )
    .unwrap();
    for k in from.max(2)..=n {
        for ext in ["cdiff", "cdiff.sign"] {
            std::fs::copy(
                v.join(format!("test-{k}.{ext}")),
                g.join(format!("test-{k}.{ext}")),
            )
            .unwrap();
        }
    }
    std::fs::write(g.join("dns.txt"), format!("test:{n}\n")).unwrap();
    let cur = dir.join("current");
    let tmp = dir.join("current.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("generations/{}", id.dir_name()), &tmp).unwrap();
    std::fs::rename(&tmp, &cur).unwrap();
    LocalGeneration::read(dir).unwrap().unwrap()
}

struct Env {
    weed: SeaweedFs,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

fn env() -> Option<Env> {
    let weed = SeaweedFs::start().unwrap()?;
    weed.create_bucket(BUCKET).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    std::fs::create_dir_all(&dir).unwrap();
    Some(Env {
        weed,
        _tmp: tmp,
        dir,
    })
}

impl Env {
    fn store(&self) -> (Arc<dyn ObjectStore>, String, bool) {
        let spec = TargetSpec {
            url: format!("s3://{BUCKET}/{PREFIX}"),
        };
        let opts = self.weed.store_options();
        let opts: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (*k, v.as_str())).collect();
        spec.open(&opts).unwrap()
    }

    fn publisher(&self) -> Publisher {
        let (store, prefix, s3) = self.store();
        Publisher::new(store, prefix, s3)
    }

    /// An anonymous GET of an object through the bucket's HTTP endpoint (as a client).
    fn get(&self, name: &str) -> (String, Vec<u8>) {
        request(
            self.weed.addr(),
            "GET",
            &format!("/{BUCKET}/{PREFIX}/{name}"),
            &[],
            b"",
        )
        .unwrap()
    }

    fn head(&self, name: &str) -> String {
        let mut s = testkit::net::connect(self.weed.addr()).unwrap();
        use std::io::{Read, Write};
        write!(
            s,
            "HEAD /{BUCKET}/{PREFIX}/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// Every object under the prefix the bucket shows, with its content.
    fn listing(&self) -> BTreeMap<String, Vec<u8>> {
        let (status, body) = request(
            self.weed.addr(),
            "GET",
            &format!("/{BUCKET}?list-type=2&prefix={PREFIX}/"),
            &[],
            b"",
        )
        .unwrap();
        assert!(status.contains(" 200"), "{status}");
        let text = String::from_utf8(body).unwrap();
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>"))
            .map(|(k, _)| {
                let name = k.strip_prefix(&format!("{PREFIX}/")).unwrap().to_owned();
                let body = self.get(&name).1;
                (name, body)
            })
            .collect()
    }
}

fn files_of(g: &LocalGeneration) -> BTreeMap<String, Vec<u8>> {
    g.files
        .iter()
        .map(|f| (f.name.clone(), std::fs::read(&f.path).unwrap()))
        .collect()
}

fn settings() -> PublishSettings {
    PublishSettings {
        retry_budget: Duration::from_secs(5),
        prune_grace: Duration::from_secs(3600),
        ..Default::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn position(uploaded: &[String], name: &str) -> usize {
    uploaded
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name} not uploaded: {uploaded:?}"))
}

#[test]
fn publish_from_empty_then_only_what_changed_then_nothing() {
    let Some(e) = env() else { return };
    let rt = rt();
    let mut state = TargetState::default();
    let mut p = e.publisher();

    // From empty: everything, immutable objects first, the pointers last.
    let g1 = generation(&e.dir, 3, 2);
    let r = rt.block_on(p.publish(&g1, &mut state, &settings(), 1_000));
    assert!(r.error.is_none(), "{:?}", r.error);
    let total: u64 = g1.files.iter().map(|f| f.size).sum();
    assert_eq!(r.counters.puts, g1.files.len() as u64);
    assert_eq!(
        (r.counters.bytes_sent, r.counters.bytes_new),
        (total, total)
    );
    let cvd = position(&r.uploaded, "test.cvd");
    assert_eq!(position(&r.uploaded, "dns.txt"), r.uploaded.len() - 1);
    for imm in [
        "test-2.cdiff",
        "test-3.cdiff",
        "test-3.cdiff.sign",
        "test-3.cvd.sign",
    ] {
        assert!(
            position(&r.uploaded, imm) < cvd,
            "{imm} after test.cvd: {:?}",
            r.uploaded
        );
    }
    assert_eq!(e.listing(), files_of(&g1));
    // CDN-ready objects: per-kind Cache-Control and Content-Type; a missing key is 404.
    let h = e.head("test-3.cdiff").to_ascii_lowercase();
    assert!(
        h.contains("cache-control: public, max-age=31536000, immutable"),
        "{h}"
    );
    assert!(h.contains("content-type: application/octet-stream"), "{h}");
    let h = e.head("test.cvd").to_ascii_lowercase();
    assert!(
        h.contains("cache-control: public, max-age=60, must-revalidate"),
        "{h}"
    );
    // S3 dates objects by upload: the build time travels as metadata for a CDN
    // (no downgrade, issue 23).
    let built = g1
        .files
        .iter()
        .find(|f| f.name == "test.cvd")
        .and_then(|f| f.cvd_build_time)
        .unwrap();
    let date = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(built as u64),
    );
    assert!(
        h.contains(&format!(
            "x-amz-meta-cvd-build-time: {}",
            date.to_ascii_lowercase()
        )),
        "{h}"
    );
    let h = e.head("dns.txt").to_ascii_lowercase();
    assert!(h.contains("content-type: text/plain; charset=utf-8"), "{h}");
    assert!(e.get("test-9.cdiff").0.contains(" 404"));

    // An update: exactly the new and changed files, bytes sent / bytes new = 1.00.
    let g2 = generation(&e.dir, 5, 2);
    let old = files_of(&g1);
    let new_bytes: u64 = files_of(&g2)
        .iter()
        .filter(|(n, b)| old.get(*n) != Some(b))
        .map(|(_, b)| b.len() as u64)
        .sum();
    let r = rt.block_on(p.publish(&g2, &mut state, &settings(), 2_000));
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.counters.bytes_new, new_bytes);
    assert_eq!(
        r.counters.bytes_sent, new_bytes,
        "bytes sent / bytes new must be 1.00"
    );
    let mut up = r.uploaded.clone();
    up.sort();
    let mut want: Vec<String> = files_of(&g2)
        .into_iter()
        .filter(|(n, b)| old.get(n) != Some(b))
        .map(|(n, _)| n)
        .collect();
    want.sort();
    assert_eq!(up, want);
    // the superseded test-3.cvd.sign waits out its grace; everything else is g2
    let mut expect = files_of(&g2);
    expect.insert("test-3.cvd.sign".into(), old["test-3.cvd.sign"].clone());
    assert_eq!(e.listing(), expect);
    assert_eq!(state.pending_deletes.get("test-3.cvd.sign"), Some(&2_000));

    // Nothing new: no PUT, one LIST.
    let r = rt.block_on(p.publish(&g2, &mut state, &settings(), 2_001));
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(
        (r.counters.puts, r.counters.bytes_sent, r.counters.requests),
        (0, 0, 1)
    );

    // The publisher's record lost: still no PUT (contents compared through metadata).
    let mut fresh = TargetState::default();
    let mut p2 = e.publisher();
    let r = rt.block_on(p2.publish(&g2, &mut fresh, &settings(), 2_002));
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.counters.puts, 0);
    assert!(r.counters.requests > 1, "HEADs compare the contents");
}

#[test]
fn pruning_waits_for_the_grace_period() {
    let Some(e) = env() else { return };
    let rt = rt();
    let mut state = TargetState::default();
    let mut p = e.publisher();
    let g1 = generation(&e.dir, 4, 2);
    assert!(
        rt.block_on(p.publish(&g1, &mut state, &settings(), 10_000))
            .error
            .is_none()
    );
    // g2 keeps cdiffs 4..6 only: 2, 3 and the old .cvd.sign leave it
    let g2 = generation(&e.dir, 6, 4);
    let gone = [
        "test-2.cdiff",
        "test-2.cdiff.sign",
        "test-3.cdiff",
        "test-3.cdiff.sign",
        "test-4.cvd.sign",
    ];
    let r = rt.block_on(p.publish(&g2, &mut state, &settings(), 20_000));
    assert!(r.error.is_none() && r.deleted.is_empty(), "{r:?}");
    for n in gone {
        assert!(e.get(n).0.contains(" 200"), "{n} deleted before its grace");
    }
    let r = rt.block_on(p.publish(&g2, &mut state, &settings(), 20_000 + 3599));
    assert!(r.deleted.is_empty(), "{r:?}");
    let r = rt.block_on(p.publish(&g2, &mut state, &settings(), 20_000 + 3600));
    assert!(r.error.is_none(), "{:?}", r.error);
    let mut deleted = r.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, gone);
    assert_eq!(e.listing(), files_of(&g2));
    for n in gone {
        assert!(e.get(n).0.contains(" 404"), "{n}");
    }
    assert!(state.pending_deletes.is_empty());
}

#[test]
fn an_unreachable_store_backs_off_within_its_budget_and_reports() {
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let g = generation(tmp.path(), 2, 2);
    let spec = TargetSpec {
        url: "s3://mirror/p".into(),
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let opts = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_allow_http", "true"),
        ("aws_region", "us-east-1"),
        ("aws_access_key_id", "k"),
        ("aws_secret_access_key", "s"),
    ];
    let (store, prefix, s3) = spec.open(&opts).unwrap();
    let mut p = Publisher::new(store, prefix, s3);
    let mut state = TargetState::default();
    let settings = PublishSettings {
        retry_budget: Duration::from_secs(2),
        ..settings()
    };
    let r = rt().block_on(p.publish(&g, &mut state, &settings, 1));
    assert!(
        matches!(r.error, Some(PublishError::Store { op: "LIST", .. })),
        "{:?}",
        r.error
    );
    assert!(
        r.attempts >= 3,
        "backed off and retried: {} attempts",
        r.attempts
    );
    assert_eq!(r.counters.puts, 0);
}

/// A store that holds the first PUT of `test.cvd` until `release` is notified, after
/// telling `reached`: the other publisher runs in between.
#[derive(Debug)]
struct Gate {
    inner: Arc<dyn ObjectStore>,
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
    armed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gate({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Gate {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        if location.as_ref().ends_with("/test.cvd")
            && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.reached.notify_one();
            self.release.notified().await;
        }
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: futures_util::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures_util::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>
    {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures_util::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
    {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Two publishers race on one bucket: A plans from the bucket at version 3, B moves
/// it meanwhile; A's conditional write of `test.cvd` is refused, A reports the lost
/// race and starts again from a fresh view. Both orders: B newer (A must not roll the
/// bucket back) and B older (A's fresh view replaces B's pointer with A's newer one).
#[test]
fn racing_publishers_cannot_interleave() {
    let Some(e) = env() else { return };
    let rt = rt();
    let base_dir = e.dir.join("base");
    let a_dir = e.dir.join("a");
    let b_dir = e.dir.join("b");
    let g3 = generation(&base_dir, 3, 2);
    let mut s0 = TargetState::default();
    assert!(
        rt.block_on(e.publisher().publish(&g3, &mut s0, &settings(), 1))
            .error
            .is_none()
    );

    for (a_version, b_version) in [(4u32, 6u32), (6, 4)] {
        // reset the bucket's pointer to version 3
        let mut s = TargetState::default();
        let back = generation(&base_dir, 3, 2);
        let mut force = e.publisher();
        // (a plain overwrite of test.cvd to 3: not through the publisher, which refuses rollback)
        let (store, _, _) = e.store();
        rt.block_on(async {
            let cvd = std::fs::read(
                back.files
                    .iter()
                    .find(|f| f.name == "test.cvd")
                    .unwrap()
                    .path
                    .clone(),
            )
            .unwrap();
            let mut attrs = object_store::Attributes::new();
            attrs.insert(
                object_store::Attribute::Metadata("cvd-version".into()),
                "3".into(),
            );
            attrs.insert(
                object_store::Attribute::Metadata("sha256".into()),
                back.files
                    .iter()
                    .find(|f| f.name == "test.cvd")
                    .unwrap()
                    .sha256
                    .clone()
                    .into(),
            );
            store
                .put_opts(
                    &object_store::path::Path::from(format!("{PREFIX}/test.cvd")),
                    cvd.into(),
                    object_store::PutOptions {
                        attributes: attrs,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        });
        assert!(
            rt.block_on(force.publish(&back, &mut s, &settings(), 2))
                .error
                .is_none()
        );

        let ga = generation(&a_dir, a_version, 2);
        let gb = generation(&b_dir, b_version, 2);
        let (inner, prefix, s3) = e.store();
        let gate = Arc::new(Gate {
            inner,
            reached: Arc::new(tokio::sync::Notify::new()),
            release: Arc::new(tokio::sync::Notify::new()),
            armed: true.into(),
        });
        let mut a = Publisher::new(gate.clone(), prefix, s3);
        let mut b = e.publisher();
        let (mut sa, mut sb) = (TargetState::default(), TargetState::default());
        let set = settings();
        let (ra, rb) = rt.block_on(async {
            let run_a = a.publish(&ga, &mut sa, &set, 3);
            let run_b = async {
                gate.reached.notified().await;
                let rb = b.publish(&gb, &mut sb, &set, 3).await;
                gate.release.notify_one();
                rb
            };
            tokio::join!(run_a, run_b)
        });
        assert!(rb.error.is_none(), "B: {:?}", rb.error);
        assert!(ra.conflicts >= 1, "A lost the race and reported it: {ra:?}");
        let top = a_version.max(b_version);
        let want = if a_version > b_version { &ga } else { &gb };
        if a_version > b_version {
            assert!(
                ra.error.is_none(),
                "A retried from a fresh view: {:?}",
                ra.error
            );
        } else {
            assert!(
                matches!(ra.error, Some(PublishError::TargetAhead { remote, .. }) if remote == b_version),
                "A must not roll the bucket back: {:?}",
                ra.error
            );
        }
        let cvd = e.get("test.cvd").1;
        assert_eq!(
            cvd,
            std::fs::read(
                want.files
                    .iter()
                    .find(|f| f.name == "test.cvd")
                    .unwrap()
                    .path
                    .clone()
            )
            .unwrap(),
            "bucket at {top}"
        );
        // every cdiff a client at 3 needs to reach the bucket's version is there
        for k in 4..=top {
            assert!(
                e.get(&format!("test-{k}.cdiff")).0.contains(" 200"),
                "cdiff {k}"
            );
            assert!(
                e.get(&format!("test-{k}.cdiff.sign")).0.contains(" 200"),
                "cdiff.sign {k}"
            );
        }
        assert!(e.get(&format!("test-{top}.cvd.sign")).0.contains(" 200"));
    }
}

#[test]
fn file_targets_get_the_same_files_and_skip_unchanged_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    let out = tmp.path().join("out");
    let spec: TargetSpec = format!("file://{}", out.display()).parse().unwrap();
    let rt = rt();
    let mut state = TargetState::default();
    let g1 = generation(&dir, 3, 2);
    let (store, prefix, s3) = spec.open(&[]).unwrap();
    let mut p = Publisher::new(store, prefix, s3);
    assert!(
        rt.block_on(p.publish(&g1, &mut state, &settings(), 1))
            .error
            .is_none()
    );
    let g2 = generation(&dir, 4, 2);
    let r = rt.block_on(p.publish(&g2, &mut state, &settings(), 2));
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.counters.bytes_sent, r.counters.bytes_new);
    for f in &g2.files {
        assert_eq!(
            std::fs::read(out.join(&f.name)).unwrap(),
            std::fs::read(&f.path).unwrap(),
            "{}",
            f.name
        );
    }
    let r = rt.block_on(p.publish(&g2, &mut state, &settings(), 3));
    assert_eq!(r.counters.puts, 0);
    // lost record: contents compared by reading them, still no write
    let r = rt.block_on(p.publish(&g2, &mut TargetState::default(), &settings(), 4));
    assert_eq!(r.counters.puts, 0, "{r:?}");
}

/// A store answering 503 (overloaded) or 429 (throttling) to everything: the publisher
/// backs off and tries again within its budget (the server counts the attempts), then
/// reports the store error; nothing was written.
#[test]
fn a_5xx_or_throttling_store_is_retried_with_backoff_then_reported() {
    use testkit::http::{Fault, Scope, TestServer};
    for fault in [
        Fault::Unavailable(None),
        Fault::RateLimit(None),
        Fault::Status(500),
    ] {
        let server = TestServer::start();
        server.set_fault(Scope::All, fault.clone());
        let tmp = tempfile::tempdir().unwrap();
        let g = generation(tmp.path(), 2, 2);
        let spec = TargetSpec {
            url: "s3://mirror/p".into(),
        };
        let endpoint = server.base_url();
        let opts = [
            ("aws_endpoint", endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_region", "us-east-1"),
            ("aws_access_key_id", "k"),
            ("aws_secret_access_key", "s"),
        ];
        let (store, prefix, s3) = spec.open(&opts).unwrap();
        let mut p = Publisher::new(store, prefix, s3);
        let settings = PublishSettings {
            retry_budget: Duration::from_secs(2),
            ..settings()
        };
        let r = rt().block_on(p.publish(&g, &mut TargetState::default(), &settings, 1));
        assert!(
            matches!(r.error, Some(PublishError::Store { op: "LIST", .. })),
            "{fault:?}: {:?}",
            r.error
        );
        let seen = server.stats().total_requests();
        assert!(r.attempts >= 3, "{fault:?}: {} attempts", r.attempts);
        assert_eq!(
            seen,
            u64::from(r.attempts),
            "{fault:?}: one LIST per attempt reached the store"
        );
        assert_eq!(r.counters.puts, 0);
    }
}

/// Adds a feed `ss` with `a.ndb` (`content`) and its `.sig` to the generation
/// `DIR/current` points at, with the `feeds.json` listing them.
fn add_feed(dir: &Path, content: &[u8]) -> LocalGeneration {
    let g = std::fs::canonicalize(dir.join("current")).unwrap();
    std::fs::create_dir_all(g.join("ss")).unwrap();
    std::fs::write(g.join("ss/a.ndb"), content).unwrap();
    std::fs::write(g.join("ss/a.ndb.sig"), b"signature bytes").unwrap();
    let listing = format!(
        r#"{{"format":1,"feeds":{{"ss":{{"verify":"openpgp","unverified":false,"files":{{"a.ndb":{{"size":{},"sha256":"{}","last_modified":1,"etag":null,"verification":{{"by":"unverified"}},"companion":"a.ndb.sig"}}}}}}}}}}"#,
        content.len(),
        // a stand-in digest that changes with the content, as the real one does
        content
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    std::fs::write(g.join("feeds.json"), listing).unwrap();
    LocalGeneration::read(dir).unwrap().unwrap()
}

#[test]
fn feed_files_land_before_the_listing_that_names_them() {
    let Some(e) = env() else { return };
    let rt = rt();
    let mut state = TargetState::default();
    let mut p = e.publisher();
    generation(&e.dir, 3, 2);
    let g1 = add_feed(&e.dir, b"Sig.A:0:*:61\n");
    assert!(g1.files.iter().any(|f| f.name == "ss/a.ndb.sig"), "{g1:?}");
    let r = rt.block_on(p.publish(&g1, &mut state, &settings(), 1_000));
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(position(&r.uploaded, "feeds.json"), r.uploaded.len() - 1);
    for f in ["ss/a.ndb", "ss/a.ndb.sig"] {
        assert!(position(&r.uploaded, f) < position(&r.uploaded, "feeds.json"));
        assert!(position(&r.uploaded, f) > position(&r.uploaded, "test.cvd"));
    }
    assert_eq!(e.listing(), files_of(&g1));
    let h = e.head("ss/a.ndb").to_ascii_lowercase();
    assert!(
        h.contains("cache-control: public, max-age=60, must-revalidate"),
        "{h}"
    );
    let h = e.head("feeds.json").to_ascii_lowercase();
    assert!(h.contains("content-type: application/json"), "{h}");

    // Nothing new: no upload. A new feed file: it and the listing only.
    let r = rt.block_on(p.publish(&g1, &mut state, &settings(), 2_000));
    assert!(r.error.is_none(), "{:?}", r.error);
    assert!(r.uploaded.is_empty(), "{:?}", r.uploaded);
    let g2 = add_feed(&e.dir, b"Sig.B:0:*:62\n");
    let r = rt.block_on(p.publish(&g2, &mut state, &settings(), 3_000));
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.uploaded, ["ss/a.ndb", "feeds.json"]);
    assert_eq!(e.get("ss/a.ndb").1, b"Sig.B:0:*:62\n");
}

/// The same order rules on a `file://` target (runs without SeaweedFS): feed files
/// before `feeds.json`, unchanged ones not written again, even with a lost record.
#[test]
fn file_targets_get_feed_files_before_their_listing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    let out = tmp.path().join("out");
    let spec: TargetSpec = format!("file://{}", out.display()).parse().unwrap();
    let rt = rt();
    let mut state = TargetState::default();
    generation(&dir, 3, 2);
    let g1 = add_feed(&dir, b"Sig.A:0:*:61\n");
    let (store, prefix, s3) = spec.open(&[]).unwrap();
    let mut p = Publisher::new(store, prefix, s3);
    let r = rt.block_on(p.publish(&g1, &mut state, &settings(), 1));
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(position(&r.uploaded, "feeds.json"), r.uploaded.len() - 1);
    assert!(position(&r.uploaded, "ss/a.ndb.sig") < r.uploaded.len() - 1);
    for f in &g1.files {
        assert_eq!(
            std::fs::read(out.join(&f.name)).unwrap(),
            std::fs::read(&f.path).unwrap(),
            "{}",
            f.name
        );
    }
    let r = rt.block_on(p.publish(&g1, &mut TargetState::default(), &settings(), 2));
    assert_eq!(r.counters.puts, 0, "{r:?}");
}
