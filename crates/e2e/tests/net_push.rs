//! Push notices sent with the cascade (`push::cascade`) to a real receiver
//! (`sigserver --sync`): from a syncing `sigserver` after its publish and from
//! `sigupdate notify`, through a real proxy with basic auth (Debian's squid,
//! `testkit::proxy`; a wrong password fails naming the proxy and `407` and delivers
//! nothing), and to a receiver serving HTTPS with a private CA's certificate
//! (`testkit::tls`): refused without `--ca-cert`, delivered with it.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use e2e::{Binaries, Sigserver};
use testkit::proxy::{PROXY_PASSWORD, PROXY_USER, Proxy};
use testkit::tls::TestPki;
use testkit::upstream::{History, Upstream};

const VERIFY_TIME: &str = "1767225600";

struct Receiver {
    _dir: tempfile::TempDir,
    _keys: tempfile::TempDir,
    key: PathBuf,
    _upstream: Upstream,
    server: Sigserver,
}

/// The official `test` database at 3 upstream.
fn upstream() -> Upstream {
    let history = History::official(&e2e::official_vectors()).unwrap();
    Upstream::builder().database(history, 3).start().unwrap()
}

/// `sigserver --dir DIR --sync` of the official `test` database from `upstream`
/// (hourly polls: only notices explain a quick update), plus `extra`.
fn syncing_sigserver(bins: &Binaries, dir: &Path, upstream: &str, extra: &[&str]) -> Sigserver {
    let root = e2e::official_vectors().join("clamav-test-root.crt");
    let mut args = vec![
        "--sync",
        "--sync-interval",
        "3600",
        "--upstream",
        upstream,
        "--db",
        "test",
        "--no-dns",
        "--sign-root",
        root.to_str().unwrap(),
        "--verify-time",
        VERIFY_TIME,
    ];
    args.extend_from_slice(extra);
    Sigserver::start(bins, dir, &args).unwrap()
}

/// A syncing `sigserver` taking notices from `sender` (its secret in [`Receiver::key`])
/// on its own listener, plus `extra` (e.g. TLS).
fn receiver(bins: &Binaries, sender: &str, extra: &[&str]) -> Receiver {
    let upstream = upstream();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("sender.key");
    std::fs::write(&key, "sender secret: 0123456789abcdef\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let allowed = format!("{sender}={}", key.display());
    let mut args = vec!["--push-sender", &allowed];
    args.extend_from_slice(extra);
    let server = syncing_sigserver(bins, dir.path(), &upstream.base_url(), &args);
    Receiver {
        _dir: dir,
        _keys: keys,
        key,
        _upstream: upstream,
        server,
    }
}

/// `sigupdate notify --to TO` as `origin` announcing `test` at `version` (retried for
/// 2 s), with `extra` arguments and `env`, and no proxy setting from the caller's
/// environment.
fn notify(
    bins: &Binaries,
    to: &str,
    key: &Path,
    version: u32,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(&bins.sigupdate);
    cmd.args(["notify", "--to", to, "--name", "origin", "--key"])
        .arg(key)
        .args(["--db", &format!("test={version}"), "--give-up-secs", "2"])
        .args(extra);
    for k in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The receiver's `POST /push` records and their statuses.
fn pushes(server: &Sigserver) -> Vec<u16> {
    server
        .access_log()
        .iter()
        .filter(|a| a.method == "POST" && a.path == "/push")
        .map(|a| a.status)
        .collect()
}

fn wait_for_push(server: &Sigserver) -> Vec<u16> {
    testkit::wait::until_some("the receiver's POST /push", Duration::from_secs(10), || {
        let p = pushes(server);
        (!p.is_empty()).then_some(p)
    })
}

#[test]
fn a_push_notice_goes_through_the_proxy_without_and_with_auth_and_a_wrong_password_delivers_nothing()
 {
    let Some(proxy) = Proxy::start_with_auth().unwrap() else {
        return;
    };
    let bins = Binaries::build().unwrap();
    let r = receiver(&bins, "origin", &[]);
    let to = format!("{}/push", r.server.url());

    // a wrong password first: nothing may reach the receiver (the first notice it takes
    // is then the one through the proxy without authentication)
    let wrong = "Wr0ng-proxy-pa55word";
    let out = notify(
        &bins,
        &to,
        &r.key,
        3,
        &["--proxy", &proxy.url_with_password(wrong)],
        &[],
    );
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("407"), "the status is named: {t}");
    assert!(
        t.contains(&proxy.addr().to_string()),
        "the proxy is named: {t}"
    );
    assert!(!t.contains(wrong), "the password must not be printed: {t}");
    let refused = proxy.wait_for("the refused notice", Duration::from_secs(10), |e| {
        e.method == "POST" && e.url == to && e.status == 407
    });
    assert_eq!(refused.user.as_deref(), Some(PROXY_USER));
    assert_eq!(pushes(&r.server), Vec::<u16>::new());
    println!(
        "checked: notice with a wrong proxy password: exit {:?}, nothing delivered",
        out.status.code()
    );

    // through a proxy without authentication
    let Some(plain) = Proxy::start().unwrap() else {
        return;
    };
    let out = notify(&bins, &to, &r.key, 3, &["--proxy", &plain.url()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(wait_for_push(&r.server), [202]);
    let e = plain.wait_for("the notice", Duration::from_secs(10), |e| {
        e.method == "POST" && e.url == to && e.status == 202
    });
    assert_eq!(e.user, None);
    println!("checked: notice through squid without auth: POST {to} -> 202");

    // the right one: delivered through the proxy, as its user
    let out = notify(&bins, &to, &r.key, 3, &["--proxy", &proxy.url()], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(!t.contains(PROXY_PASSWORD), "{t}");
    testkit::wait::until("the second notice", Duration::from_secs(10), || {
        pushes(&r.server) == [202, 202]
    });
    let e = proxy.wait_for("the notice", Duration::from_secs(10), |e| {
        e.method == "POST" && e.url == to && e.status == 202
    });
    assert_eq!(e.user.as_deref(), Some(PROXY_USER));
    println!("checked: notice through squid with basic auth: POST {to} -> 202");
}

#[test]
fn an_https_push_target_with_a_private_ca_is_refused_without_ca_cert_and_accepted_with_it() {
    let bins = Binaries::build().unwrap();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path()).unwrap();
    let r = receiver(
        &bins,
        "origin",
        &[
            "--tls-cert",
            pki.server_cert_file.to_str().unwrap(),
            "--tls-key",
            pki.server_key_file.to_str().unwrap(),
        ],
    );
    let to = format!("https://localhost:{}/push", r.server.addr().port());
    let unknown = ["unknown issuer", "unknownissuer", "not trusted"];
    for extra in [
        vec![],
        vec!["--ca-cert", pki.other_ca_file.to_str().unwrap()],
    ] {
        let out = notify(&bins, &to, &r.key, 3, &extra, &[]);
        let t = text(&out);
        assert_ne!(out.status.code(), Some(0), "{t}");
        assert!(t.contains("localhost"), "the host is named: {t}");
        let lower = t.to_lowercase();
        assert!(
            unknown.iter().any(|p| lower.contains(p)),
            "the problem is named: {t}"
        );
        println!(
            "checked: HTTPS push target, {}: {}",
            if extra.is_empty() {
                "no --ca-cert"
            } else {
                "an unrelated CA"
            },
            t.lines()
                .find(|l| unknown.iter().any(|p| l.to_lowercase().contains(p)))
                .unwrap_or_default()
                .trim()
        );
    }
    assert_eq!(pushes(&r.server), Vec::<u16>::new());
    let out = notify(
        &bins,
        &to,
        &r.key,
        3,
        &["--ca-cert", pki.ca_file.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(wait_for_push(&r.server), [202]);
    println!("checked: HTTPS push target with --ca-cert: delivered (202)");
}

#[test]
fn a_syncing_sigserver_cascades_its_publish_through_the_proxy() {
    let Some(proxy) = Proxy::start_with_auth().unwrap() else {
        return;
    };
    let bins = Binaries::build().unwrap();
    // tier 2: takes notices from tier1
    let tier2 = receiver(&bins, "tier1", &[]);
    let to = format!("{}/push", tier2.server.url());
    // tier 1: syncs through the proxy and notifies tier 2 after its publish, through
    // the proxy too; the origin tells it about version 4
    let mut up = upstream();
    let keys = tempfile::tempdir().unwrap();
    let origin_key = keys.path().join("origin.key");
    std::fs::write(&origin_key, "origin secret: 0123456789abcdef\n").unwrap();
    let t1_dir = tempfile::tempdir().unwrap();
    let tier1 = syncing_sigserver(
        &bins,
        t1_dir.path(),
        &up.base_url(),
        &[
            "--mirror-name",
            "tier1",
            "--push-sender",
            &format!("origin={}", origin_key.display()),
            "--push-downstream",
            &format!("{to}={}", tier2.key.display()),
            "--proxy",
            &proxy.url(),
        ],
    );
    testkit::wait::until("tier 1's first publish", Duration::from_secs(60), || {
        push::settings::published_versions(t1_dir.path()).get("test") == Some(&3)
    });
    up.advance().unwrap();
    let out = notify(
        &bins,
        &format!("{}/push", tier1.url()),
        &origin_key,
        4,
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    testkit::wait::until("tier 1 at version 4", Duration::from_secs(60), || {
        push::settings::published_versions(t1_dir.path()).get("test") == Some(&4)
    });
    // tier 1 fetched through the proxy, as its user
    let fetched = proxy.wait_for("tier 1's download", Duration::from_secs(10), |e| {
        e.method == "GET" && e.url.starts_with(&up.base_url()) && e.status == 200
    });
    assert_eq!(fetched.user.as_deref(), Some(PROXY_USER));
    // and its cascade reached tier 2 through the proxy
    let sent = proxy.wait_for("tier 1's notice to tier 2", Duration::from_secs(30), |e| {
        e.method == "POST" && e.url == to && e.status == 202
    });
    assert_eq!(sent.user.as_deref(), Some(PROXY_USER));
    assert!(wait_for_push(&tier2.server).contains(&202));
    assert!(
        !tier1.log_lines().iter().any(|l| l.contains(PROXY_PASSWORD)),
        "tier 1 must not log the proxy password"
    );
    println!("checked: tier 1 synced and cascaded to tier 2 through squid: POST {to} -> 202");
}

#[test]
fn a_syncing_sigserver_cascades_to_an_https_downstream_only_with_its_ca() {
    let bins = Binaries::build().unwrap();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path()).unwrap();
    let tier2 = receiver(
        &bins,
        "tier1",
        &[
            "--tls-cert",
            pki.server_cert_file.to_str().unwrap(),
            "--tls-key",
            pki.server_key_file.to_str().unwrap(),
        ],
    );
    let to = format!("https://localhost:{}/push", tier2.server.addr().port());
    let downstream = format!("{to}={}", tier2.key.display());
    let mut up = upstream();
    let keys = tempfile::tempdir().unwrap();
    let origin_key = keys.path().join("origin.key");
    std::fs::write(&origin_key, "origin secret: 0123456789abcdef\n").unwrap();
    let origin = format!("origin={}", origin_key.display());
    let ca = pki.ca_file.to_str().unwrap();
    // without --ca-cert, then with it: each tier 1 is told about the next version and
    // cascades its publish to tier 2
    for (with_ca, version) in [(false, 4u32), (true, 5)] {
        let dir = tempfile::tempdir().unwrap();
        let mut extra = vec![
            "--mirror-name",
            "tier1",
            "--push-sender",
            &origin,
            "--push-downstream",
            &downstream,
        ];
        if with_ca {
            extra.extend(["--ca-cert", ca]);
        }
        let tier1 = syncing_sigserver(&bins, dir.path(), &up.base_url(), &extra);
        let held = version - 1;
        testkit::wait::until("tier 1's first publish", Duration::from_secs(60), || {
            push::settings::published_versions(dir.path()).get("test") == Some(&held)
        });
        up.advance().unwrap();
        let out = notify(
            &bins,
            &format!("{}/push", tier1.url()),
            &origin_key,
            version,
            &[],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        testkit::wait::until("tier 1's publish", Duration::from_secs(60), || {
            push::settings::published_versions(dir.path()).get("test") == Some(&version)
        });
        if with_ca {
            let p = wait_for_push(&tier2.server);
            assert!(p.contains(&202), "{p:?}");
            println!("checked: cascade to an HTTPS downstream with --ca-cert: delivered (202)");
        } else {
            let line = testkit::wait::until_some(
                "tier 1's refused cascade in its log",
                Duration::from_secs(30),
                || {
                    tier1
                        .log_lines()
                        .into_iter()
                        .find(|l| l.contains("not trusted") && l.contains("localhost"))
                },
            );
            assert_eq!(pushes(&tier2.server), Vec::<u16>::new());
            println!("checked: cascade to an HTTPS downstream without --ca-cert: {line}");
        }
    }
}
