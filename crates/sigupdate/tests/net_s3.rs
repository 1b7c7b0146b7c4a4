//! `sigupdate sync --publish s3://…` to a real SeaweedFS (`testkit::s3`) through a
//! real proxy with basic auth (every S3 request in the proxy's log, as its user; a
//! wrong password leaves the bucket as it was), and to SeaweedFS serving S3 over TLS
//! with a private CA's certificate: refused without `--ca-cert` (the target is left
//! lagging, the bucket empty), accepted with it.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::net_proxy::{output_text, upstream_at, without_proxy_env};
use crate::official_sync::{official_sync, sigupdate};
use crate::support::*;
use testkit::proxy::{PROXY_USER, Proxy};
use testkit::s3::SeaweedFs;
use testkit::tls::TestPki;

const BUCKET: &str = "mirror";
const PREFIX: &str = "clamav";

fn target(bucket: &str) -> String {
    format!("s3://{bucket}/{PREFIX}")
}

/// `sigupdate sync` of `upstream` into `mirror`, published to `bucket` of `weed`,
/// with `extra` arguments and no proxy setting from the caller's environment.
fn sync_publish(
    mirror: &Path,
    upstream: &str,
    weed: &SeaweedFs,
    bucket: &str,
    extra: &[&str],
) -> Output {
    let mut cmd = official_sync(mirror, upstream);
    without_proxy_env(&mut cmd)
        .env_remove("SSL_CERT_FILE")
        .env_remove("AWS_ALLOW_HTTP")
        .args(["--publish", &target(bucket), "--publish-retry-secs", "1"])
        .args(extra);
    for (k, v) in weed.aws_env() {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn target_status(mirror: &Path, bucket: &str) -> serde_json::Value {
    let out = sigupdate()
        .args(["status", "--json", "--dir"])
        .arg(mirror)
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    st["targets"][&target(bucket)].clone()
}

/// The object `name` under the prefix of `bucket`, as the store serves it (`None`:
/// not there).
fn object(weed: &SeaweedFs, bucket: &str, name: &str) -> Option<Vec<u8>> {
    let (status, body) = weed
        .request("GET", &format!("/{bucket}/{PREFIX}/{name}"), &[], b"")
        .unwrap();
    status.contains(" 200").then_some(body)
}

fn official(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

#[test]
fn an_s3_publish_goes_through_the_proxy_and_a_wrong_password_publishes_nothing() {
    let Some(weed) = SeaweedFs::start().unwrap() else {
        return;
    };
    // a proxy without authentication, to a bucket of its own
    let Some(plain) = Proxy::start().unwrap() else {
        return;
    };
    let bucket = "plain-proxy";
    weed.create_bucket(bucket).unwrap();
    let (_up, server) = upstream_at(4);
    let mirror = tempfile::tempdir().unwrap();
    let out = sync_publish(
        mirror.path(),
        &server.base_url(),
        &weed,
        bucket,
        &["--proxy", &plain.url()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(target_status(mirror.path(), bucket)["lagging"], false);
    assert_eq!(
        object(&weed, bucket, "test.cvd"),
        Some(official("test-4.cvd"))
    );
    let s3_base = format!("{}/{bucket}/", weed.endpoint());
    let put = plain.wait_for("a PUT to the bucket", Duration::from_secs(10), |e| {
        e.method == "PUT" && e.url.starts_with(&s3_base) && e.url.ends_with("/test.cvd")
    });
    assert!(
        put.user.is_none() && (200..300).contains(&put.status),
        "{put:?}"
    );
    println!(
        "checked: S3 publish through squid without auth: PUT {} -> {}",
        put.url, put.status
    );

    // with basic authentication
    let Some(proxy) = Proxy::start_with_auth().unwrap() else {
        return;
    };
    weed.create_bucket(BUCKET).unwrap();
    let (up, server) = upstream_at(4);
    let mirror = tempfile::tempdir().unwrap();
    let out = sync_publish(
        mirror.path(),
        &server.base_url(),
        &weed,
        BUCKET,
        &["--proxy", &proxy.url()],
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let t = target_status(mirror.path(), BUCKET);
    assert_eq!(t["lagging"], false, "{t}\n{text}");
    assert_eq!(
        object(&weed, BUCKET, "test.cvd"),
        Some(official("test-4.cvd"))
    );
    // the S3 requests went through the proxy, as its user
    let s3_base = format!("{}/", weed.endpoint());
    let put = proxy.wait_for("a PUT to the bucket", Duration::from_secs(10), |e| {
        e.method == "PUT" && e.url.starts_with(&s3_base) && e.url.ends_with("/test.cvd")
    });
    assert_eq!(put.user.as_deref(), Some(PROXY_USER));
    assert!((200..300).contains(&put.status), "{put:?}");
    println!(
        "checked: S3 publish through squid with basic auth: {} {} -> {}",
        put.method, put.url, put.status
    );

    // a wrong password: the sync fails and the bucket keeps version 4
    arrange_official(up.path(), 6, true);
    let wrong = "Wr0ng-proxy-pa55word";
    let out = sync_publish(
        mirror.path(),
        &server.base_url(),
        &weed,
        BUCKET,
        &["--proxy", &proxy.url_with_password(wrong)],
    );
    let text = output_text(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert_eq!(
        object(&weed, BUCKET, "test.cvd"),
        Some(official("test-4.cvd"))
    );
    assert_eq!(check_snapshot(&tree(mirror.path())).unwrap().0, 4);
    let t = target_status(mirror.path(), BUCKET);
    assert!(!t.to_string().contains(wrong), "{t}");
    // the bucket still holds the generation the mirror publishes (4): not lagging, but
    // the attempt failed, and says why
    assert_eq!(t["consecutive_failures"], 1, "{t}");
    let error = t["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("407"), "the proxy's 407 is named: {t}");
    assert!(
        error.contains(&proxy.addr().to_string()),
        "the proxy is named: {t}"
    );
    // in plain words, not the proxy's HTML error page (several times over)
    assert!(
        !error.to_lowercase().contains("<html") && error.len() < 700,
        "a plain message: {t}"
    );
    println!(
        "checked: wrong proxy password: exit {:?}, bucket still at 4",
        out.status.code()
    );
}

#[test]
fn seaweedfs_over_tls_with_a_private_ca_is_refused_without_ca_cert_and_accepted_with_it() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path()).unwrap();
    let Some(weed) = SeaweedFs::start_tls(&pki.server).unwrap() else {
        return;
    };
    weed.create_bucket(BUCKET).unwrap();
    assert!(weed.endpoint().starts_with("https://"));
    let (_up, server) = upstream_at(6);
    let mirror = tempfile::tempdir().unwrap();

    // the system's roots only: the local mirror is published, the target is not
    let out = sync_publish(mirror.path(), &server.base_url(), &weed, BUCKET, &[]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(check_snapshot(&tree(mirror.path())).unwrap().0, 6);
    let t = target_status(mirror.path(), BUCKET);
    assert_eq!(t["lagging"], true, "{t}\n{text}");
    let error = t["last_error"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        error.contains("not trusted (unknown issuer)") && error.contains("--ca-cert"),
        "the certificate problem is named in plain words: {t}"
    );
    assert!(
        error.contains(&weed.addr().to_string()),
        "the store is named: {t}"
    );
    assert_eq!(object(&weed, BUCKET, "test.cvd"), None);
    println!(
        "checked: S3 over TLS without --ca-cert: lagging, {}",
        t["last_error"]
    );

    // with the private CA: published
    let out = sync_publish(
        mirror.path(),
        &server.base_url(),
        &weed,
        BUCKET,
        &["--ca-cert", pki.ca_file.to_str().unwrap()],
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let t = target_status(mirror.path(), BUCKET);
    assert_eq!(t["lagging"], false, "{t}\n{text}");
    assert_eq!(
        object(&weed, BUCKET, "test.cvd"),
        Some(official("test-6.cvd"))
    );
    println!("checked: S3 over TLS with --ca-cert: published test 6");
}
