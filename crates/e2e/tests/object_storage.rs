//! Publishing to object storage, end to end: upstream simulator → `sigupdate sync
//! --publish s3://mirror/clamav` → a real SeaweedFS (`testkit::s3`) → real `freshclam`
//! clients (Debian's 1.4 and ClamAV 1.5.3 in strict mode) updating straight from the
//! bucket's HTTP endpoint after each publish; and an unreachable store, which leaves
//! the local mirror published and the target lagging in `status` and `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::{Binaries, Freshclam, Sigserver, SyncOptions};
use testkit::s3::SeaweedFs;
use testkit::upstream::{History, Upstream};

const VERIFY_TIME: i64 = 1_767_225_600;
const BUCKET: &str = "mirror";
const PREFIX: &str = "clamav";

fn opts(upstream: &str, target: &str, env: Vec<(String, String)>) -> SyncOptions {
    SyncOptions {
        upstreams: vec![upstream.to_owned()],
        dbs: vec!["test".to_owned()],
        sign_roots: vec![e2e::official_vectors().join("clamav-test-root.crt")],
        verify_time: Some(VERIFY_TIME),
        extra_args: vec![
            "--publish".into(),
            target.into(),
            "--publish-retry-secs=1".into(),
        ],
        env,
        ..SyncOptions::default()
    }
}

fn sync_ok(bins: &Binaries, dir: &Path, o: &SyncOptions) -> e2e::RunOutput {
    let out = e2e::sync(bins, dir, o).unwrap();
    assert_eq!(out.code, Some(0), "sigupdate sync\n{}", out.stderr);
    out
}

fn status_json(bins: &Binaries, dir: &Path) -> serde_json::Value {
    let out = Command::new(&bins.sigupdate)
        .args(["status", "--json", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The bucket's objects under the prefix as a client sees them (anonymous GET), for
/// the files of `DIR/current`.
fn bucket_matches_current(weed: &SeaweedFs, dir: &Path) {
    for e in std::fs::read_dir(dir.join("current")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let (status, body) = testkit::s3::request(
            weed.addr(),
            "GET",
            &format!("/{BUCKET}/{PREFIX}/{name}"),
            &[],
            b"",
        )
        .unwrap();
        assert!(status.contains(" 200"), "{name}: {status}");
        assert_eq!(
            body,
            std::fs::read(e.path()).unwrap(),
            "{name} differs in the bucket"
        );
    }
}

/// Every available freshclam updates `test` from the bucket: 1.4 from `from` (holding
/// that release) through cdiffs, strict 1.5.3 from empty; both reach `want`.
fn clients_update_from_bucket(tmp: &Path, history: &History, mirror: &str, from: u32, want: u32) {
    let certs = testkit::tools::test_root_certs_dir(tmp).unwrap();
    for client in testkit::tools::clamav_versions("freshclam", &certs) {
        let strict = client.certs.is_some();
        let root: PathBuf = tmp.join(format!("fc-{}-{want}", client.version));
        let fc = Freshclam::for_client(&client, &root, mirror).unwrap();
        let start = (!strict && from < want).then_some(from);
        if let Some(v) = start {
            fc.install("test.cvd", history.release(v).unwrap().cvd())
                .unwrap();
        }
        let out = fc.update("test").unwrap();
        let note = client.note();
        assert_eq!(
            (out.code, fc.version("test")),
            (Some(0), Some(want)),
            "freshclam {} (strict: {strict}) from {start:?} via {mirror}{note}\n{}\n{}",
            client.version,
            out.stdout,
            out.stderr
        );
        let cdiffs = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("> GET ") && l.contains(".cdiff "))
            .count();
        if let Some(v) = start {
            assert_eq!(
                cdiffs as u32,
                want - v,
                "cdiffs fetched from the bucket\n{}",
                out.stdout
            );
        }
        println!(
            "checked: freshclam {}{} from {} reached test {want} from the bucket ({cdiffs} cdiffs)",
            client.version,
            if strict { " strict" } else { "" },
            start.map_or_else(|| "empty".to_owned(), |v| format!("v{v}"))
        );
    }
}

#[test]
fn freshclam_updates_from_the_bucket_after_each_publish() {
    let Some(weed) = SeaweedFs::start().unwrap() else {
        return;
    };
    weed.create_bucket(BUCKET).unwrap();
    let bins = Binaries::build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    let history = History::official(&e2e::official_vectors()).unwrap();
    let mut upstream = Upstream::builder()
        .database(history.clone(), 1)
        .start()
        .unwrap();
    let env: Vec<(String, String)> = weed
        .aws_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let target = format!("s3://{BUCKET}/{PREFIX}");
    let mirror = format!("{}/{BUCKET}/{PREFIX}", weed.endpoint());
    let mut held = 1;
    for version in [1u32, 3, 6] {
        upstream.publish("test", version).unwrap();
        sync_ok(
            &bins,
            &dir,
            &opts(&upstream.base_url(), &target, env.clone()),
        );
        bucket_matches_current(&weed, &dir);
        let st = status_json(&bins, &dir);
        let t = &st["targets"][&target];
        assert_eq!(t["lagging"], false, "{st}");
        assert_eq!(t["versions"]["test"], version, "{st}");
        println!("checked: sync published test {version} locally and to {target}");
        clients_update_from_bucket(tmp.path(), &history, &mirror, held, version);
        held = version;
    }
    // Nothing new: the next sync sends nothing.
    sync_ok(
        &bins,
        &dir,
        &opts(&upstream.base_url(), &target, env.clone()),
    );
    let st = status_json(&bins, &dir);
    assert_eq!(st["targets"][&target]["last_run"]["puts"], 0, "{st}");
    println!("checked: a sync with nothing new made 0 PUTs");
}

#[test]
fn an_unreachable_store_leaves_the_local_mirror_published_and_the_target_lagging() {
    let bins = Binaries::build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mirror");
    let history = History::official(&e2e::official_vectors()).unwrap();
    let upstream = Upstream::builder().database(history, 2).start().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = vec![
        (
            "AWS_ENDPOINT_URL".to_owned(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("AWS_ALLOW_HTTP".to_owned(), "true".to_owned()),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "k".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "s".to_owned()),
    ];
    let target = "s3://mirror/clamav";
    let out = sync_ok(&bins, &dir, &opts(&upstream.base_url(), target, env));
    assert!(out.stderr.contains("left lagging"), "{}", out.stderr);
    assert_eq!(e2e::file_version(&dir.join("current/test.cvd")), Some(2));
    let st = status_json(&bins, &dir);
    let t = &st["targets"][target];
    assert_eq!(t["lagging"], true, "{st}");
    assert_eq!(t["consecutive_failures"], 1, "{st}");
    assert!(t["last_error"].as_str().unwrap().contains("LIST"), "{st}");
    let text = Command::new(&bins.sigupdate)
        .args(["status", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("target {target}: LAGGING")),
        "{text}"
    );
    let server = Sigserver::start(&bins, &dir, &[]).unwrap();
    assert_eq!(
        server
            .metric("sigserver_target_lagging", &format!("target=\"{target}\""))
            .unwrap(),
        Some(1.0)
    );
    println!(
        "checked: unreachable store: exit 0, local v2 published, status and /metrics show the target lagging"
    );
}
