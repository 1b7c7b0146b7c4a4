//! The command line: options, configuration precedence, exit codes, TLS.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod util;

use std::process::Command;

use util::{BIN, Server, get, plain_mirror};

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
    let root = ureq::tls::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder().tls_config(tls).build().into();
    let mut r = agent
        .get(&format!("https://{}/test-5.cdiff", s.addr))
        .header("Range", "bytes=0-9")
        .call()
        .unwrap();
    assert_eq!(r.status(), 206);
    let body = r.body_mut().read_to_vec().unwrap();
    assert_eq!(
        body,
        std::fs::read(d.path().join("test-5.cdiff")).unwrap()[..10]
    );
    // A body of several read chunks goes through the copying (non-sendfile) path.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(d.path().join("big.cvd"), &big).unwrap();
    let mut r = agent
        .get(&format!("https://{}/big.cvd", s.addr))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .unwrap();
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
