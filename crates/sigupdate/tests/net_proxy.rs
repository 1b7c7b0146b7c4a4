//! `sigupdate sync` through a real forward proxy (Debian's squid, started per test by
//! `testkit::proxy`), without and with basic authentication: the upstream sees every
//! request arrive with the proxy's `Via`, and the proxy's access log holds them; a
//! wrong password fails naming the proxy and `407`, without printing the password,
//! and publishes nothing; the standard environment variables (`HTTP_PROXY`,
//! `NO_PROXY`), `SIGUPDATE_PROXY` and the `no-proxy` setting (flag, variable, file key)
//! are honoured. (HTTPS through the proxy, with
//! `CONNECT`, is in `net_tls`.)
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::official_sync::official_sync;
use crate::support::*;
use testkit::http::TestServer;
use testkit::proxy::{PROXY_PASSWORD, PROXY_USER, Proxy};

/// Every proxy variable the standard environment knows, in both spellings.
pub const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// `cmd` without any proxy setting from the caller's environment.
pub fn without_proxy_env(cmd: &mut Command) -> &mut Command {
    for k in PROXY_VARS {
        cmd.env_remove(k);
    }
    cmd
}

/// The official `test` database at version `n`, served over plain HTTP.
pub fn upstream_at(n: u32) -> (tempfile::TempDir, TestServer) {
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), n, true);
    let server = serve(up.path());
    (up, server)
}

/// Everything the process printed.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `sigupdate sync` of `upstream` into `mirror` with `extra` arguments and
/// environment, and no other proxy setting.
fn sync(mirror: &Path, upstream: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = official_sync(mirror, upstream);
    without_proxy_env(&mut cmd).args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_synced(out: &Output, mirror: &Path, version: u32) {
    assert_eq!(out.status.code(), Some(0), "{}", output_text(out));
    assert_eq!(check_snapshot(&tree(mirror)).unwrap().0, version);
}

/// Every request the upstream saw came through `proxy`: its `Via` names it. Returns
/// how many there were.
fn all_via(server: &TestServer, proxy: &Proxy) -> usize {
    let stats = server.stats();
    let log = stats.log();
    assert!(!log.is_empty(), "the upstream saw no request");
    for r in log {
        let via = r.header("via").unwrap_or_default();
        assert!(
            via.contains(proxy.via_name()),
            "{} {} arrived without the proxy's Via ({:?}): {:?}",
            r.method,
            r.path,
            proxy.via_name(),
            r.headers
        );
    }
    log.len()
}

/// One way to give a setting: its name, the arguments and the environment.
type Way<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);

/// The requests the proxy forwarded to `server` (not those it refused).
fn forwarded_to(proxy: &Proxy, server: &TestServer) -> Vec<testkit::proxy::ProxyLogEntry> {
    let base = format!("{}/", server.base_url());
    proxy
        .log()
        .into_iter()
        .filter(|e| e.url.starts_with(&base) && e.status != 407)
        .collect()
}

#[test]
fn a_sync_goes_through_the_proxy_without_and_with_basic_auth() {
    for auth in [false, true] {
        let proxy = if auth {
            Proxy::start_with_auth()
        } else {
            Proxy::start()
        };
        let Some(proxy) = proxy.unwrap() else {
            return;
        };
        let (_up, server) = upstream_at(6);
        let mirror = tempfile::tempdir().unwrap();
        let out = sync(
            mirror.path(),
            &server.base_url(),
            &["--proxy", &proxy.url()],
            &[],
        );
        assert_synced(&out, mirror.path(), 6);
        let seen = all_via(&server, &proxy);
        // squid logs a request when it ends: wait until it has logged every one
        testkit::wait::until(
            "the proxy's log of every request",
            Duration::from_secs(10),
            || forwarded_to(&proxy, &server).len() >= seen,
        );
        let forwarded = forwarded_to(&proxy, &server);
        assert!(
            forwarded
                .iter()
                .any(|e| e.method == "GET" && e.url == server.url("/test.cvd")),
            "{forwarded:#?}"
        );
        let want_user = auth.then(|| PROXY_USER.to_owned());
        assert!(
            forwarded.iter().all(|e| e.user == want_user),
            "{forwarded:#?}"
        );
        assert!(!output_text(&out).contains(PROXY_PASSWORD));
        println!(
            "checked: sync through squid ({}): {seen} requests, each with Via {:?} and in the proxy's log",
            if auth { "basic auth" } else { "no auth" },
            proxy.via_name()
        );
    }
}

#[test]
fn a_wrong_proxy_password_fails_naming_the_proxy_and_407_and_publishes_nothing() {
    let Some(proxy) = Proxy::start_with_auth().unwrap() else {
        return;
    };
    let (up, server) = upstream_at(4);
    let mirror = tempfile::tempdir().unwrap();
    let out = sync(
        mirror.path(),
        &server.base_url(),
        &["--proxy", &proxy.url()],
        &[],
    );
    assert_synced(&out, mirror.path(), 4);
    let before = tree(mirror.path());
    arrange_official(up.path(), 6, true);
    server.reset_stats();

    let wrong = "Wr0ng-proxy-pa55word";
    let out = sync(
        mirror.path(),
        &server.base_url(),
        &["--proxy", &proxy.url_with_password(wrong)],
        &[],
    );
    let text = output_text(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("407"), "the status is named: {text}");
    assert!(
        text.contains(&proxy.addr().to_string()),
        "the proxy is named: {text}"
    );
    assert!(
        !text.contains(wrong),
        "the password must not be printed: {text}"
    );
    // nothing reached the upstream, nothing was published
    assert_eq!(server.stats().total_requests(), 0);
    assert_eq!(tree(mirror.path()), before);
    let status = std::fs::read_to_string(mirror.path().join("status.json")).unwrap_or_default();
    assert!(
        !status.contains(wrong),
        "status.json must not hold it: {status}"
    );
    let refused = proxy.wait_for("a refused request", Duration::from_secs(10), |e| {
        e.status == 407
    });
    assert_eq!(refused.user.as_deref(), Some(PROXY_USER));
    println!(
        "checked: wrong proxy password: exit {:?}, {}",
        out.status.code(),
        text.lines()
            .find(|l| l.contains("407"))
            .unwrap_or_default()
            .trim()
    );
}

#[test]
fn the_proxy_environment_is_honoured_and_no_proxy_bypasses_it() {
    let Some(proxy) = Proxy::start().unwrap() else {
        return;
    };
    let (_up, server) = upstream_at(6);
    // HTTP_PROXY (and its lower-case spelling) for a plain-HTTP upstream
    for var in ["HTTP_PROXY", "http_proxy"] {
        let mirror = tempfile::tempdir().unwrap();
        server.reset_stats();
        let out = sync(
            mirror.path(),
            &server.base_url(),
            &[],
            &[(var, &proxy.url())],
        );
        assert_synced(&out, mirror.path(), 6);
        all_via(&server, &proxy);
        println!("checked: {var} honoured");
    }
    // SIGUPDATE_PROXY, the setting's own variable
    let mirror = tempfile::tempdir().unwrap();
    server.reset_stats();
    let out = sync(
        mirror.path(),
        &server.base_url(),
        &[],
        &[("SIGUPDATE_PROXY", &proxy.url())],
    );
    assert_synced(&out, mirror.path(), 6);
    all_via(&server, &proxy);
    println!("checked: SIGUPDATE_PROXY honoured");
    // NO_PROXY naming the upstream's host: straight to it, past the proxy (a second
    // upstream, so that no late line of the proxy's log about the first can count)
    for var in ["NO_PROXY", "no_proxy"] {
        let (_up, server) = upstream_at(6);
        let mirror = tempfile::tempdir().unwrap();
        let out = sync(
            mirror.path(),
            &server.base_url(),
            &[],
            &[("HTTP_PROXY", &proxy.url()), (var, "127.0.0.1")],
        );
        assert_synced(&out, mirror.path(), 6);
        let stats = server.stats();
        assert!(stats.total_requests() > 0);
        assert!(
            stats.log().iter().all(|r| r.header("via").is_none()),
            "{:?}",
            stats.log()
        );
        assert_eq!(forwarded_to(&proxy, &server), [], "{:#?}", proxy.log());
        println!("checked: {var}=127.0.0.1 bypasses HTTP_PROXY");
    }
    // the no-proxy setting beside --proxy: flag, variable and file key
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("sigupdate.toml");
    std::fs::write(
        &cfg,
        format!("proxy = \"{}\"\nno-proxy = \"127.0.0.1\"\n", proxy.url()),
    )
    .unwrap();
    let url = proxy.url();
    let ways: [Way; 3] = [
        (
            "--no-proxy",
            vec!["--proxy", &url, "--no-proxy", "127.0.0.1"],
            vec![],
        ),
        (
            "SIGUPDATE_NO_PROXY",
            vec!["--proxy", &url],
            vec![("SIGUPDATE_NO_PROXY", "127.0.0.1")],
        ),
        (
            "the file's no-proxy",
            vec!["--config", cfg.to_str().unwrap()],
            vec![],
        ),
    ];
    for (way, args, env) in ways {
        let (_up, server) = upstream_at(6);
        let mirror = tempfile::tempdir().unwrap();
        let out = sync(mirror.path(), &server.base_url(), &args, &env);
        assert_synced(&out, mirror.path(), 6);
        let stats = server.stats();
        assert!(
            stats.log().iter().all(|r| r.header("via").is_none()),
            "{way}: {:?}",
            stats.log()
        );
        assert_eq!(forwarded_to(&proxy, &server), [], "{way}");
        println!("checked: {way} bypasses the proxy");
    }
}
