//! `SIGHUP`: the configuration file is read again and the live settings change
//! without closing connections; settings that need a restart are reported and kept.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::net::TcpStream;

use crate::util::{Server, plain_mirror, read_head};

/// One `HEAD /test.cvd` on a kept-alive connection; the status code.
fn head_on(conn: &mut TcpStream) -> u16 {
    conn.write_all(b"HEAD /test.cvd HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    read_head(conn).status
}

#[test]
fn sighup_applies_live_settings_and_keeps_connections() {
    let mirror = plain_mirror();
    let cfg = mirror.path().join("sigserver.toml");
    std::fs::write(&cfg, "access_log = false\nworkers = 1\n").unwrap();
    let server = Server::start(mirror.path(), &["--config", cfg.to_str().unwrap()]);
    let mut conn = testkit::net::connect(server.addr).unwrap();
    for _ in 0..3 {
        assert_eq!(head_on(&mut conn), 200);
    }
    assert!(!server.log.text().contains("sigserver::access"));

    // Turn on the access log and a strict rate limit; change a restart-only setting.
    std::fs::write(
        &cfg,
        "access_log = true\nrate_limit = 0.001\nrate_burst = 2\nworkers = 2\n",
    )
    .unwrap();
    server.hup();
    let applied = server.log.wait_for("configuration reloaded").unwrap();
    for key in ["access_log", "rate_limit"] {
        assert!(applied.contains(key), "{key} not applied: {applied}");
    }
    let restart = server
        .log
        .wait_for("only take effect after a restart")
        .unwrap();
    assert!(restart.contains("workers"), "{restart}");

    // The connection opened before the reload still works, under the new settings:
    // the burst of 2, then 429 (which closes the connection).
    assert_eq!(head_on(&mut conn), 200);
    assert_eq!(head_on(&mut conn), 200);
    assert_eq!(head_on(&mut conn), 429);
    server.log.wait_for("HEAD").unwrap();
    let mut conn = testkit::net::connect(server.addr).unwrap();

    // A broken file keeps the running configuration (still limited) and the process.
    std::fs::write(&cfg, "rate_limit = \"fast\"\n").unwrap();
    server.hup();
    server.log.wait_for("configuration reload failed").unwrap();
    let mut limited = testkit::net::connect(server.addr).unwrap();
    assert_eq!(head_on(&mut limited), 429);

    // Limit off again: a connection opened while limited is served.
    std::fs::write(&cfg, "access_log = false\nworkers = 1\n").unwrap();
    // Counted before the signal: the reload may be logged before this thread looks.
    let reloads = server.log.text().matches("configuration reloaded").count();
    server.hup();
    let guard = std::time::Instant::now();
    while server.log.text().matches("configuration reloaded").count() == reloads {
        assert!(
            guard.elapsed() < crate::util::WAIT_GUARD,
            "no second reload logged:\n{}",
            server.log.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(head_on(&mut conn), 200);
}
