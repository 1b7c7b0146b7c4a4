//! `sigupdate sync` from an HTTPS upstream whose certificate a private CA issued
//! (`testkit::tls`): refused without `--ca-cert` and with an unrelated CA (the error
//! says the issuer is unknown and names the host), accepted with it (flag or
//! `SIGUPDATE_CA_CERT`); a certificate for another name is refused as a name
//! mismatch; and the same upstream through a real proxy with basic auth (`CONNECT`),
//! by `--proxy`, by `HTTPS_PROXY` and by the configuration file's keys (a wrong
//! password on the tunnel fails naming the proxy and `407`).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::net_proxy::{output_text, without_proxy_env};
use crate::official_sync::official_sync;
use crate::support::*;
use testkit::http::TestServer;
use testkit::proxy::{PROXY_PASSWORD, PROXY_USER, Proxy};
use testkit::tls::TestPki;

struct Https {
    pki: TestPki,
    _pki_dir: tempfile::TempDir,
    _up: tempfile::TempDir,
    server: TestServer,
}

/// The official `test` database at 6 over HTTPS, presenting the private CA's
/// certificate for the loopback names, or (`wrong_name`) one for another name.
fn https_upstream(wrong_name: bool) -> Https {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path()).unwrap();
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), 6, true);
    let cert = if wrong_name {
        &pki.wrong_name
    } else {
        &pki.server
    };
    let server = TestServer::start_dir_tls(up.path(), cert);
    Https {
        pki,
        _pki_dir: pki_dir,
        _up: up,
        server,
    }
}

fn sync(mirror: &Path, upstream: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = official_sync(mirror, upstream);
    without_proxy_env(&mut cmd)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_synced(out: &Output, mirror: &Path) {
    assert_eq!(out.status.code(), Some(0), "{}", output_text(out));
    assert_eq!(check_snapshot(&tree(mirror)).unwrap().0, 6);
}

/// A refused sync: non-zero, nothing published, and the output names the host and
/// says what is wrong with the certificate (`problem`: the lower-case phrases that
/// may say it).
fn assert_refused(out: &Output, mirror: &Path, host: &str, problem: &[&str]) -> String {
    let text = output_text(out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(tree(mirror).is_empty(), "nothing may be published");
    assert!(text.contains(host), "the host {host} is named: {text}");
    let lower = text.to_lowercase();
    assert!(
        problem.iter().any(|p| lower.contains(p)),
        "the problem ({problem:?}) is named: {text}"
    );
    text.lines()
        .find(|l| problem.iter().any(|p| l.to_lowercase().contains(p)))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

const UNKNOWN_ISSUER: [&str; 3] = ["unknown issuer", "unknownissuer", "not trusted"];
const NAME_MISMATCH: [&str; 3] = ["not valid for name", "name mismatch", "notvalidforname"];

#[test]
fn an_https_upstream_with_a_private_ca_is_refused_without_ca_cert_and_accepted_with_it() {
    let h = https_upstream(false);
    let url = h.server.base_url_as("localhost");
    let ca = h.pki.ca_file.to_str().unwrap();
    let other = h.pki.other_ca_file.to_str().unwrap();

    // the system's roots only: refused
    let mirror = tempfile::tempdir().unwrap();
    let out = sync(mirror.path(), &url, &[], &[]);
    let line = assert_refused(&out, mirror.path(), "localhost", &UNKNOWN_ISSUER);
    println!("checked: without --ca-cert: {line}");
    // an unrelated CA does not help
    let out = sync(mirror.path(), &url, &["--ca-cert", other], &[]);
    let line = assert_refused(&out, mirror.path(), "localhost", &UNKNOWN_ISSUER);
    println!("checked: with an unrelated CA: {line}");
    // no request got through, and the server saw the client refuse its certificate
    assert_eq!(h.server.stats().total_requests(), 0);
    let failures = h.server.stats().tls_failures().to_vec();
    assert!(
        failures.iter().any(|f| f.contains("UnknownCA")),
        "{failures:?}"
    );

    // the private CA: accepted (the unrelated one beside it changes nothing)
    let out = sync(
        mirror.path(),
        &url,
        &["--ca-cert", other, "--ca-cert", ca],
        &[],
    );
    assert_synced(&out, mirror.path());
    // by the environment, on a fresh mirror, over the address (an IP subjectAltName)
    let mirror = tempfile::tempdir().unwrap();
    let out = sync(
        mirror.path(),
        &h.server.base_url(),
        &[],
        &[("SIGUPDATE_CA_CERT", ca)],
    );
    assert_synced(&out, mirror.path());
    println!("checked: --ca-cert and SIGUPDATE_CA_CERT: synced test 6 over HTTPS");
}

#[test]
fn a_certificate_for_another_name_is_refused_as_a_name_mismatch() {
    let h = https_upstream(true);
    let url = h.server.base_url_as("localhost");
    let mirror = tempfile::tempdir().unwrap();
    let out = sync(
        mirror.path(),
        &url,
        &["--ca-cert", h.pki.ca_file.to_str().unwrap()],
        &[],
    );
    let line = assert_refused(&out, mirror.path(), "localhost", &NAME_MISMATCH);
    assert_eq!(h.server.stats().total_requests(), 0);
    println!("checked: wrong name: {line}");
}

#[test]
fn an_https_upstream_through_the_proxy_with_the_private_ca() {
    let Some(proxy) = Proxy::start_with_auth().unwrap() else {
        return;
    };
    let h = https_upstream(false);
    let url = h.server.base_url();
    let ca = h.pki.ca_file.to_str().unwrap();
    let tunnel = h.server.addr().to_string();
    // --proxy
    let mirror = tempfile::tempdir().unwrap();
    let out = sync(
        mirror.path(),
        &url,
        &["--proxy", &proxy.url(), "--ca-cert", ca],
        &[],
    );
    assert_synced(&out, mirror.path());
    assert!(!output_text(&out).contains(PROXY_PASSWORD));
    let served = h.server.stats().total_requests();
    assert!(served > 0);
    let connect = proxy.wait_for("the CONNECT tunnel", Duration::from_secs(10), |e| {
        e.method == "CONNECT" && e.url == tunnel && e.status == 200
    });
    assert_eq!(connect.user.as_deref(), Some(PROXY_USER));
    println!("checked: --proxy with auth: HTTPS sync through CONNECT {tunnel}");
    // HTTPS_PROXY from the environment (credentials in its URL), to a second upstream
    // (its own tunnel in the proxy's log)
    let h2 = https_upstream(false);
    let tunnel2 = h2.server.addr().to_string();
    let mirror = tempfile::tempdir().unwrap();
    let out = sync(
        mirror.path(),
        &h2.server.base_url(),
        &["--ca-cert", h2.pki.ca_file.to_str().unwrap()],
        &[("HTTPS_PROXY", &proxy.url())],
    );
    assert_synced(&out, mirror.path());
    proxy.wait_for("the second CONNECT tunnel", Duration::from_secs(10), |e| {
        e.method == "CONNECT" && e.url == tunnel2 && e.status == 200
    });
    println!("checked: HTTPS_PROXY honoured for an HTTPS upstream");
    // the file keys proxy and ca-cert, to a third upstream
    let h3 = https_upstream(false);
    let tunnel3 = h3.server.addr().to_string();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("sigupdate.toml");
    std::fs::write(
        &cfg,
        format!(
            "proxy = \"{}\"\nca-cert = [\"{}\"]\n",
            proxy.url(),
            h3.pki.ca_file.display()
        ),
    )
    .unwrap();
    let mirror = tempfile::tempdir().unwrap();
    let out = sync(
        mirror.path(),
        &h3.server.base_url(),
        &["--config", cfg.to_str().unwrap()],
        &[],
    );
    assert_synced(&out, mirror.path());
    proxy.wait_for("the third CONNECT tunnel", Duration::from_secs(10), |e| {
        e.method == "CONNECT" && e.url == tunnel3 && e.status == 200
    });
    println!("checked: the file keys proxy and ca-cert");
    // a wrong password on the tunnel: refused by the proxy, named plainly
    let wrong = "Wr0ng-proxy-pa55word";
    let mirror = tempfile::tempdir().unwrap();
    let out = sync(
        mirror.path(),
        &url,
        &["--proxy", &proxy.url_with_password(wrong), "--ca-cert", ca],
        &[],
    );
    let text = output_text(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(tree(mirror.path()).is_empty());
    assert!(
        text.contains("407") && text.contains(&proxy.addr().to_string()),
        "the proxy and its 407 are named: {text}"
    );
    assert!(!text.contains(wrong), "{text}");
    proxy.wait_for("the refused CONNECT", Duration::from_secs(10), |e| {
        e.method == "CONNECT" && e.status == 407
    });
    println!(
        "checked: wrong password on the CONNECT tunnel: {}",
        text.lines()
            .find(|l| l.contains("407"))
            .unwrap_or_default()
            .trim()
    );
}
