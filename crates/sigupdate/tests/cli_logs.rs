//! Logs for services: plain text without terminal colours when stderr is not a
//! terminal (the journal, container logs), JSON lines with SIGUPDATE_LOG_FORMAT=json.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use crate::official_sync::official_sync_from;

/// A sync against an upstream that refuses connections; its stderr.
fn failed_sync_log(json: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = official_sync_from(dir.path(), &["http://127.0.0.1:1".to_owned()]);
    if json {
        cmd.env("SIGUPDATE_LOG_FORMAT", "json");
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "upstream unreachable");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn text_logs_have_no_colour_codes_off_a_terminal() {
    let log = failed_sync_log(false);
    assert!(log.contains("WARN") || log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in {log:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let log = failed_sync_log(true);
    let objects: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!objects.is_empty(), "no JSON lines in {log}");
    for o in &objects {
        assert!(o["level"].is_string() && o["timestamp"].is_string(), "{o}");
    }
    assert!(!log.contains('\u{1b}'), "escape codes in {log:?}");
}
