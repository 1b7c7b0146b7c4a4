//! The command line: options, configuration precedence, exit codes, TLS.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

use crate::util::{BIN, Server, fixture, get, plain_mirror};

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn help_explains_every_option() {
    let (code, out) = run(&["--help"]);
    assert_eq!(code, Some(0));
    for opt in [
        "--dir",
        "--listen",
        "--config",
        "--tls-cert",
        "--tls-key",
        "--max-connections",
        "--max-header-bytes",
        "--header-timeout",
        "--idle-timeout",
        "--ready-max-age",
        "--shutdown-timeout",
        "--rate-limit",
        "--rate-burst",
        "--access-log",
        "--log-format",
        "--http2",
        "--workers",
        "--chunk-bytes",
        "--cache-bytes",
        "--cache-max-file",
        "--sync",
        "--sync-interval",
        "--upstream",
        "--db",
        "--no-dns",
        "--sign-root",
        "Exit codes",
    ] {
        assert!(out.contains(opt), "--help lacks {opt}:\n{out}");
    }
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    let missing = d.path().join("missing");
    let file = d.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let bad_toml = d.path().join("bad.toml");
    std::fs::write(&bad_toml, "listen = 5\n").unwrap();
    for args in [
        vec!["--listen", "127.0.0.1:0"],
        vec!["--dir", dir],
        vec!["--dir", dir, "--listen", "not-an-address"],
        vec!["--dir", dir, "--listen", "127.0.0.1:0", "--bogus"],
        vec![
            "--dir",
            missing.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        vec!["--dir", file.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        vec![
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--config",
            bad_toml.to_str().unwrap(),
        ],
        vec![
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--config",
            missing.to_str().unwrap(),
        ],
        vec![
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--max-header-bytes",
            "10",
        ],
        vec![
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            file.to_str().unwrap(),
        ],
        vec![
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            file.to_str().unwrap(),
            "--tls-key",
            file.to_str().unwrap(),
        ],
        vec!["--dir", dir, "--listen", "127.0.0.1:0", "--sync"],
    ] {
        let (code, out) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {out}");
        assert!(!out.trim().is_empty(), "{args:?}: no message");
    }
    let (_, out) = run(&["--dir", dir, "--listen", "127.0.0.1:0", "--sync"]);
    assert!(out.contains("--upstream"), "{out}");
}

#[test]
fn cannot_bind_exits_1() {
    let d = plain_mirror();
    let s = Server::start(d.path(), &[]);
    let taken = s.addr.to_string();
    let (code, out) = run(&["--dir", d.path().to_str().unwrap(), "--listen", &taken]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&taken), "{out}");
}

/// Three directories whose `dns.txt` tells which one is served.
fn dirs() -> Vec<tempfile::TempDir> {
    (0..3)
        .map(|i| {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(d.path().join("dns.txt"), format!("dir{i}")).unwrap();
            d
        })
        .collect()
}

#[test]
fn flags_override_environment_override_file() {
    let ds = dirs();
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("sigserver.toml");
    std::fs::write(
        &conf,
        format!(
            "dir = {:?}\nlisten = [\"127.0.0.1:0\"]\naccess_log = false\n",
            ds[0].path()
        ),
    )
    .unwrap();
    let served = |cmd: &mut Command| {
        let s = Server::spawn(cmd, 1);
        String::from_utf8(get(s.addr, "/dns.txt", "").body).unwrap()
    };
    // File only (dir and listen both from the file).
    assert_eq!(served(Command::new(BIN).arg("--config").arg(&conf)), "dir0");
    // Environment beats the file.
    assert_eq!(
        served(
            Command::new(BIN)
                .arg("--config")
                .arg(&conf)
                .env("SIGSERVER_DIR", ds[1].path())
        ),
        "dir1"
    );
    // The flag beats both.
    assert_eq!(
        served(
            Command::new(BIN)
                .arg("--config")
                .arg(&conf)
                .env("SIGSERVER_DIR", ds[1].path())
                .arg("--dir")
                .arg(ds[2].path())
        ),
        "dir2"
    );
    // The config file turned the access log off.
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(&conf);
    let s = Server::spawn(&mut cmd, 1);
    let _ = get(s.addr, "/dns.txt", "");
    let _ = get(s.addr, "/health", "");
    assert!(
        !s.log.text().contains("sigserver::access"),
        "{}",
        s.log.text()
    );
}

#[test]
fn tls_serves_https_with_the_given_certificate() {
    if testkit::tools::require("openssl").is_none() {
        return;
    }
    let d = plain_mirror();
    let t = tempfile::tempdir().unwrap();
    let (cert, key) = (t.path().join("cert.pem"), t.path().join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl req failed");
    let s = Server::start(
        d.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    // The workspace's HTTP stack trusting the server's certificate (`--ca-cert`).
    let agent = fetch::HttpSettings {
        ca_certs: vec![cert.clone()],
        ..fetch::HttpSettings::default()
    }
    .blocking_builder(true)
    .unwrap()
    .build()
    .unwrap();
    let r = agent
        .get(format!("https://{}/test-5.cdiff", s.addr))
        .header("Range", "bytes=0-9")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    let body = r.bytes().unwrap().to_vec();
    assert_eq!(
        body,
        std::fs::read(d.path().join("test-5.cdiff")).unwrap()[..10]
    );
    // fetch (upstream downloads): refused without the CA, in plain words; accepted
    // with it.
    let url = format!("https://{}/test-5.cdiff", s.addr);
    let none = fetch::Conditional::none();
    let plain = fetch::Client::builder()
        .no_proxy()
        .retries(0)
        .build()
        .unwrap();
    let e = plain.fetch_range(&url, 0..10, &none).unwrap_err();
    assert!(matches!(e, fetch::Error::Tls { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("certificate of 127.0.0.1 is not trusted (unknown issuer)")
            && msg.contains("--ca-cert"),
        "{msg}"
    );
    let trusting = fetch::Client::builder()
        .no_proxy()
        .ca_cert(&cert)
        .build()
        .unwrap();
    assert_eq!(
        trusting.fetch_range(&url, 0..10, &none).unwrap().unwrap(),
        std::fs::read(d.path().join("test-5.cdiff")).unwrap()[..10]
    );
    // A body of several read chunks goes through the copying (non-sendfile) path.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(d.path().join("big.cvd"), &big).unwrap();
    let r = agent
        .get(format!("https://{}/big.cvd", s.addr))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.bytes().unwrap().to_vec();
    assert!(body == big, "TLS body differs");
    // ALPN h2: HTTP/2 over TLS (curl), same bytes.
    let Some(curl) = testkit::tools::require("curl") else {
        return;
    };
    let curl = Command::new(curl)
        .args([
            "-sS",
            "--http2",
            "-o",
            "-",
            "-w",
            "%{http_version}",
            "--cacert",
        ])
        .arg(&cert)
        .arg(format!("https://{}/big.cvd", s.addr))
        .output();
    match curl {
        Ok(o) if o.status.success() => {
            let (data, version) = o.stdout.split_at(o.stdout.len() - 1);
            assert_eq!(version, b"2", "curl did not negotiate h2");
            assert!(data == big.as_slice(), "HTTP/2 body differs");
        }
        other => testkit::tools::unavailable(
            "curl with HTTP/2 over TLS",
            &format!("curl failed: {other:?}"),
        ),
    }
    // Plain HTTP on the TLS port is not served.
    let plain = std::panic::catch_unwind(|| get(s.addr, "/test.cvd", ""));
    assert!(plain.map_or(true, |r| r.status != 200));
}

/// `sigserver --print-config` with a file, variables and flags: key → (value, source).
fn print_config(
    file: &str,
    env: &[(&str, &str)],
    flags: &[&str],
) -> std::collections::BTreeMap<String, (String, String)> {
    let d = tempfile::tempdir().unwrap();
    let mut c = Command::new(BIN);
    c.args(["--dir", "/srv", "--print-config"]);
    if !file.is_empty() {
        let path = d.path().join("sigserver.toml");
        std::fs::write(&path, file).unwrap();
        c.arg("--config").arg(&path);
    }
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SIGSERVER_")) {
        c.env_remove(k);
    }
    let out = c.envs(env.iter().copied()).args(flags).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{file:?} {env:?} {flags:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    testkit::config::parse_printed(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

#[test]
fn every_layer_overrides_the_ones_below_booleans_in_both_directions() {
    // (file, environment, flags, key, value, source; "file" stands for the file's path)
    #[rustfmt::skip]
    let cases: &[testkit::config::Precedence<'_>] = &[
        ("", &[], &[], "max_connections", "10000", "default"),
        ("max_connections = 5", &[], &[], "max_connections", "5", "file"),
        ("max_connections = 5", &[("SIGSERVER_MAX_CONNECTIONS", "7")], &[], "max_connections", "7", "env SIGSERVER_MAX_CONNECTIONS"),
        ("max_connections = 5", &[("SIGSERVER_MAX_CONNECTIONS", "7")], &["--max-connections", "9"], "max_connections", "9", "flag --max-connections"),
        ("", &[("SIGSERVER_LISTEN", "127.0.0.1:1,[::1]:2")], &[], "listen", "[\"127.0.0.1:1\", \"[::1]:2\"]", "env SIGSERVER_LISTEN"),
        // --sync: a flag that takes an optional value, and its negation --no-sync
        ("", &[], &[], "sync", "false", "default"),
        ("sync = true", &[], &[], "sync", "true", "file"),
        ("sync = true", &[("SIGSERVER_SYNC", "false")], &[], "sync", "false", "env SIGSERVER_SYNC"),
        ("sync = true", &[], &["--sync=false"], "sync", "false", "flag --sync"),
        ("sync = true", &[], &["--no-sync"], "sync", "false", "flag --no-sync"),
        ("sync = true", &[], &["--sync", "no"], "sync", "false", "flag --sync"),
        ("http2 = false", &[], &["--http2"], "http2", "true", "flag --http2"),
        ("", &[("SIGSERVER_SYNC", "true")], &["--sync=false"], "sync", "false", "flag --sync"),
        ("sync = false", &[], &["--sync"], "sync", "true", "flag --sync"),
        ("sync = false", &[("SIGSERVER_SYNC", "1")], &[], "sync", "true", "env SIGSERVER_SYNC"),
        ("", &[("SIGSERVER_SYNC", "false")], &["--sync"], "sync", "true", "flag --sync"),
        // no_dns, a mirror setting shared with sigupdate
        ("no_dns = true", &[], &[], "no_dns", "true", "file"),
        ("no_dns = true", &[("SIGSERVER_NO_DNS", "false")], &[], "no_dns", "false", "env SIGSERVER_NO_DNS"),
        ("no_dns = true", &[], &["--no-dns=false"], "no_dns", "false", "flag --no-dns"),
        ("", &[("SIGSERVER_NO_DNS", "true")], &["--no-dns=false"], "no_dns", "false", "flag --no-dns"),
        ("no_dns = false", &[], &["--no-dns"], "no_dns", "true", "flag --no-dns"),
        // a boolean that always takes a value
        ("http2 = false", &[], &["--http2", "true"], "http2", "true", "flag --http2"),
        ("http2 = true", &[("SIGSERVER_HTTP2", "false")], &[], "http2", "false", "env SIGSERVER_HTTP2"),
        ("bootstrap_cdiffs = false", &[], &["--bootstrap-cdiffs"], "bootstrap_cdiffs", "true", "flag --bootstrap-cdiffs"),
    ];
    for (file, env, flags, key, value, source) in cases {
        let got = print_config(file, env, flags);
        let (v, s) = got
            .get(*key)
            .unwrap_or_else(|| panic!("{key} not printed: {got:?}"));
        if *source == "file" {
            assert!(
                s.starts_with("file ") && s.ends_with("sigserver.toml"),
                "{s}"
            );
        } else {
            assert_eq!(s, source, "{file:?} {env:?} {flags:?}");
        }
        assert_eq!(v, value, "{file:?} {env:?} {flags:?}");
    }
}

#[test]
fn unknown_keys_and_variables_are_named() {
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("s.toml");
    std::fs::write(&conf, "lisen = []\n").unwrap();
    let out = Command::new(BIN)
        .args(["--dir", "/srv", "--print-config", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("s.toml") && err.contains("lisen"), "{err}");
    for (var, value) in [
        ("SIGSERVER_LISEN", "x"),
        ("SIGSERVER_WORKERS", "many"),
        ("SIGSERVER_SYNC", "maybe"),
    ] {
        let out = Command::new(BIN)
            .args(["--dir", "/srv", "--print-config"])
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert!(err.contains(var), "{var}: {err}");
    }
}

/// A file, variables and flags together: the printed sources, and a real in-process
/// sync that does what they say (`--sync` over `SIGSERVER_SYNC=false` over
/// `sync = false`; two cdiffs kept from the environment over five in the file).
#[test]
fn the_server_follows_its_printed_configuration() {
    let up_dir = crate::util::official_upstream_dir();
    let upstream = Server::start(up_dir.path(), &[]);
    let mirror = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    let conf = etc.path().join("sigserver.toml");
    std::fs::write(
        &conf,
        format!(
            "dir = {:?}\nsync = false\nupstream = [\"http://{}\"]\ndb = [\"test\"]\n\
             no_dns = true\nkeep_cdiffs = 5\nretries = 0\nsign_root = [{:?}]\n\
             verify_time = 1767225600\n",
            mirror.path(),
            upstream.addr,
            fixture("clamav-test-root.crt"),
        ),
    )
    .unwrap();
    let layered = || {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(&conf)
            .env("SIGSERVER_SYNC", "false")
            .env("SIGSERVER_KEEP_CDIFFS", "2")
            .env("SIGSERVER_LISTEN", "127.0.0.1:0")
            .arg("--sync");
        c
    };
    let out = layered().arg("--print-config").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "sync = true    # flag --sync\n".to_owned(),
        "keep_cdiffs = 2    # env SIGSERVER_KEEP_CDIFFS\n".to_owned(),
        format!("no_dns = true    # file {}\n", conf.display()),
        "listen = [\"127.0.0.1:0\"]    # env SIGSERVER_LISTEN\n".to_owned(),
    ] {
        assert!(text.contains(&line), "{line}in\n{text}");
    }

    let s = Server::spawn(&mut layered(), 1);
    let line = s.log.wait_for("sync f").unwrap();
    assert!(
        line.starts_with("inished"),
        "sync failed: {line}\n{}",
        s.log.text()
    );
    assert_eq!(get(s.addr, "/test.cvd", "").status, 200);
    // Two cdiffs kept (bootstrap backfill down to the keep count): 5 and 6, not 4.
    assert_eq!(get(s.addr, "/test-6.cdiff", "").status, 200);
    assert_eq!(get(s.addr, "/test-5.cdiff", "").status, 200);
    assert_eq!(get(s.addr, "/test-4.cdiff", "").status, 404);
}

/// `behind_redirect` (issue 23): off by default; file key, `SIGSERVER_BEHIND_REDIRECT`
/// and `--behind-redirect` in the usual order.
#[test]
fn behind_redirect_is_layered_like_every_setting() {
    let none = print_config("", &[], &[]);
    assert_eq!(
        none["behind_redirect"],
        ("(not set)".to_owned(), "default".to_owned())
    );
    let file = "behind_redirect = \"http://file.example\"\n";
    let (v, src) = &print_config(file, &[], &[])["behind_redirect"];
    assert!(
        v.contains("http://file.example") && src.starts_with("file "),
        "{v} {src}"
    );
    let env = [("SIGSERVER_BEHIND_REDIRECT", "http://env.example")];
    let (v, src) = &print_config(file, &env, &[])["behind_redirect"];
    assert!(
        v.contains("http://env.example") && src.contains("SIGSERVER_BEHIND_REDIRECT"),
        "{v} {src}"
    );
    let (v, src) =
        &print_config(file, &env, &["--behind-redirect", "http://flag.example"])["behind_redirect"];
    assert!(
        v.contains("http://flag.example") && src.contains("--behind-redirect"),
        "{v} {src}"
    );
}
