//! Configuration precedence of the `sigupdate` process (default < file < environment <
//! flag) for a value and for booleans in both directions, as `sigupdate config` prints
//! it, and one real sync whose behaviour follows the printed configuration.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::official_sync::sigupdate;
use crate::support::*;
use testkit::config::{Precedence, parse_printed};

/// Runs `sigupdate config` with a file (if `file` is not empty), variables and flags.
fn config(
    tmp: &Path,
    file: &str,
    env: &[(&str, &str)],
    flags: &[&str],
) -> BTreeMap<String, (String, String)> {
    let mut c = sigupdate();
    c.args(["config", "--dir", "/m"]);
    if !file.is_empty() {
        let path = tmp.join("sigupdate.toml");
        std::fs::write(&path, file).unwrap();
        c.arg("--config").arg(&path);
    }
    c.envs(env.iter().copied()).args(flags);
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{file:?} {env:?} {flags:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_printed(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

#[test]
fn every_layer_overrides_the_ones_below_booleans_in_both_directions() {
    let tmp = tempfile::tempdir().unwrap();
    let file_src = format!("file {}", tmp.path().join("sigupdate.toml").display());
    // (file, environment, flags, key, value, source: "default" | "file" | "env VAR" | "flag --x")
    #[rustfmt::skip]
    let cases: &[Precedence<'_>] = &[
        // a value
        ("", &[], &[], "keep-cdiffs", "30", "default"),
        ("keep-cdiffs = 5", &[], &[], "keep-cdiffs", "5", "file"),
        ("keep-cdiffs = 5", &[("SIGUPDATE_KEEP_CDIFFS", "7")], &[], "keep-cdiffs", "7", "env SIGUPDATE_KEEP_CDIFFS"),
        ("keep-cdiffs = 5", &[("SIGUPDATE_KEEP_CDIFFS", "7")], &["--keep-cdiffs", "9"], "keep-cdiffs", "9", "flag --keep-cdiffs"),
        ("keep-cdiffs = 5", &[], &["--keep-cdiffs=9"], "keep-cdiffs", "9", "flag --keep-cdiffs"),
        ("", &[("SIGUPDATE_KEEP_CDIFFS", "7")], &[], "keep-cdiffs", "7", "env SIGUPDATE_KEEP_CDIFFS"),
        // a list
        ("upstream = [\"http://file\"]", &[("SIGUPDATE_UPSTREAM", "http://e1/, http://e2")], &[], "upstream", "[\"http://e1\", \"http://e2\"]", "env SIGUPDATE_UPSTREAM"),
        ("upstream = [\"http://file\"]", &[("SIGUPDATE_UPSTREAM", "http://e1")], &["--upstream", "http://f1", "--upstream", "http://f2"], "upstream", "[\"http://f1\", \"http://f2\"]", "flag --upstream"),
        // a boolean whose flag sets it: no-dns
        ("", &[], &[], "no-dns", "false", "default"),
        ("no-dns = true", &[], &[], "no-dns", "true", "file"),
        ("no-dns = true", &[("SIGUPDATE_NO_DNS", "false")], &[], "no-dns", "false", "env SIGUPDATE_NO_DNS"),
        ("no-dns = true", &[], &["--no-dns=false"], "no-dns", "false", "flag --no-dns"),
        ("no-dns = true", &[], &["--no-dns", "off"], "no-dns", "false", "flag --no-dns"),
        ("", &[("SIGUPDATE_NO_DNS", "true")], &["--no-dns=false"], "no-dns", "false", "flag --no-dns"),
        ("no-dns = false", &[], &["--no-dns"], "no-dns", "true", "flag --no-dns"),
        ("no-dns = false", &[("SIGUPDATE_NO_DNS", "yes")], &[], "no-dns", "true", "env SIGUPDATE_NO_DNS"),
        ("", &[("SIGUPDATE_NO_DNS", "0")], &["--no-dns"], "no-dns", "true", "flag --no-dns"),
        // a boolean with a negation flag: bootstrap-cdiffs
        ("", &[], &[], "bootstrap-cdiffs", "true", "default"),
        ("bootstrap-cdiffs = false", &[], &[], "bootstrap-cdiffs", "false", "file"),
        ("bootstrap-cdiffs = false", &[("SIGUPDATE_BOOTSTRAP_CDIFFS", "true")], &[], "bootstrap-cdiffs", "true", "env SIGUPDATE_BOOTSTRAP_CDIFFS"),
        ("bootstrap-cdiffs = false", &[], &["--bootstrap-cdiffs"], "bootstrap-cdiffs", "true", "flag --bootstrap-cdiffs"),
        ("bootstrap-cdiffs = false", &[], &["--no-bootstrap-cdiffs=false"], "bootstrap-cdiffs", "true", "flag --no-bootstrap-cdiffs"),
        ("", &[("SIGUPDATE_BOOTSTRAP_CDIFFS", "false")], &["--bootstrap-cdiffs=true"], "bootstrap-cdiffs", "true", "flag --bootstrap-cdiffs"),
        ("bootstrap-cdiffs = true", &[], &["--no-bootstrap-cdiffs"], "bootstrap-cdiffs", "false", "flag --no-bootstrap-cdiffs"),
        ("", &[("SIGUPDATE_BOOTSTRAP_CDIFFS", "true")], &["--no-bootstrap-cdiffs"], "bootstrap-cdiffs", "false", "flag --no-bootstrap-cdiffs"),
        ("", &[], &["--no-bootstrap-cdiffs", "--bootstrap-cdiffs"], "bootstrap-cdiffs", "true", "flag --bootstrap-cdiffs"),
        // watch's own settings and a custom database
        ("interval-secs = 60", &[("SIGUPDATE_INTERVAL_SECS", "120")], &[], "interval-secs", "120", "env SIGUPDATE_INTERVAL_SECS"),
        ("interval-secs = 60", &[], &["--interval-secs", "30"], "interval-secs", "30", "flag --interval-secs"),
        ("[custom.my_db]\nsign = true", &[("SIGUPDATE_CUSTOM__my_db__SIGN", "false")], &[], "custom.my_db.sign", "false", "env SIGUPDATE_CUSTOM__my_db__SIGN"),
        ("[custom.my_db]\nsign = true", &[], &[], "custom.my_db.sign", "true", "file"),
    ];
    for (file, env, flags, key, value, source) in cases {
        let got = config(tmp.path(), file, env, flags);
        let (v, s) = got
            .get(*key)
            .unwrap_or_else(|| panic!("{key} not printed: {got:?}"));
        let source = if *source == "file" {
            file_src.as_str()
        } else {
            source
        };
        assert_eq!(
            (v.as_str(), s.as_str()),
            (*value, source),
            "{file:?} {env:?} {flags:?}"
        );
    }
}

#[test]
fn unknown_keys_variables_and_bad_values_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "dri = \"/x\"\n").unwrap();
    let run = |c: &mut Command| {
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(sigupdate().args(["sync", "--config"]).arg(&cfg));
    assert!(err.contains("c.toml") && err.contains("dri"), "{err}");
    for (var, value) in [
        ("SIGUPDATE_UPSTREAMZ", "x"),
        ("SIGUPDATE_CUSTOM__my_db__COLOR", "x"),
        ("SIGUPDATE_CUSTOM__nodelimiter", "x"),
        ("SIGUPDATE_KEEP_CDIFFS", "lots"),
        ("SIGUPDATE_NO_DNS", "maybe"),
        ("SIGUPDATE_CUSTOM__x__SIGN", "maybe"),
    ] {
        let err = run(sigupdate().args(["config", "--dir", "/m"]).env(var, value));
        assert!(err.contains(var), "{var}: {err}");
    }
    let err = run(sigupdate().args(["config", "--dir", "/m", "--db", "../x"]));
    assert!(err.contains("../x"), "{err}");
    let err = run(sigupdate().args(["config"]));
    assert!(err.contains("no mirror directory"), "{err}");
}

/// A file, variables and flags together: the printed sources, and a real sync that
/// does what they say (directory from the environment over the file, bootstrap
/// backfill turned back on by the environment over the file, the keep count from a
/// flag over both).
#[test]
fn a_real_sync_follows_the_printed_configuration() {
    let up = tempfile::tempdir().unwrap();
    arrange_official(up.path(), 6, true);
    let server = serve(up.path());
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("sigupdate.toml");
    let file_dir = tmp.path().join("from-file");
    let env_dir = tmp.path().join("from-env");
    std::fs::write(
        &cfg,
        format!(
            "dir = {file_dir:?}\nupstream = [{:?}]\ndb = [\"test\"]\nno-dns = true\n\
             bootstrap-cdiffs = false\nkeep-cdiffs = 2\nretries = 0\nsign-root = [{:?}]\n\
             verify-time = 1767225600\n",
            server.base_url(),
            fixtures().join("clamav-test-root.crt"),
        ),
    )
    .unwrap();
    let with_layers = |sub: &str| {
        let mut c = sigupdate();
        c.arg(sub)
            .arg("--config")
            .arg(&cfg)
            .env("SIGUPDATE_DIR", &env_dir)
            .env("SIGUPDATE_BOOTSTRAP_CDIFFS", "true")
            .env("SIGUPDATE_KEEP_CDIFFS", "5")
            .args(["--keep-cdiffs", "3"]);
        c
    };
    let out = with_layers("config").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed = parse_printed(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let file_src = format!("file {}", cfg.display());
    assert_eq!(
        printed["dir"],
        (format!("{env_dir:?}"), "env SIGUPDATE_DIR".to_owned())
    );
    assert_eq!(
        printed["bootstrap-cdiffs"],
        (
            "true".to_owned(),
            "env SIGUPDATE_BOOTSTRAP_CDIFFS".to_owned()
        )
    );
    assert_eq!(
        printed["keep-cdiffs"],
        ("3".to_owned(), "flag --keep-cdiffs".to_owned())
    );
    assert_eq!(printed["no-dns"], ("true".to_owned(), file_src.clone()));
    assert_eq!(printed["verify-time"], ("1767225600".to_owned(), file_src));

    let out = with_layers("sync").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!file_dir.exists(), "the file's directory was used");
    // Bootstrap on, three cdiffs kept: 4, 5, 6 published next to test.cvd v6.
    assert_eq!(check_snapshot(&tree(&env_dir)).unwrap(), (6, vec![4, 5, 6]));
}

#[test]
fn publish_targets_come_from_tables_variables_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let file = "[[publish]]\nurl = \"s3://b/p\"\n\n[[publish]]\nurl = \"file:///srv/x\"\n";
    let c = config(tmp.path(), file, &[], &[]);
    assert_eq!(
        c["publish"].0, "[{ url = \"s3://b/p\" }, { url = \"file:///srv/x\" }]",
        "{c:?}"
    );
    assert!(c["publish"].1.starts_with("file "), "{c:?}");
    assert_eq!(
        c["publish-prune-grace-secs"],
        ("3600".into(), "default".into())
    );
    let c = config(
        tmp.path(),
        file,
        &[("SIGUPDATE_PUBLISH", "s3://e/1,s3://e/2")],
        &[],
    );
    assert_eq!(
        c["publish"].0,
        "[{ url = \"s3://e/1\" }, { url = \"s3://e/2\" }]"
    );
    let c = config(
        tmp.path(),
        file,
        &[],
        &["--publish", "s3://f", "--publish-retry-secs=7"],
    );
    assert_eq!(
        c["publish"],
        ("[{ url = \"s3://f\" }]".into(), "flag --publish".into())
    );
    assert_eq!(
        c["publish-retry-secs"],
        ("7".into(), "flag --publish-retry-secs".into())
    );
    // a bad URL is refused, naming it
    let out = sigupdate()
        .args(["config", "--dir", "/m", "--publish", "http://nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://nope"));
}
