//! `packaging/grafana/clamav-mirror.json` and `packaging/prometheus/alerts.yml`: the
//! rules pass `promtool check rules`, and every metric either names exists in the
//! `/metrics` of a running mirror (synced from an upstream, with push state).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::util::{Server, fixture};

fn packaging(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(rel)
}

/// Metric names (ours: `sigserver_*`, `clamav_mirror_*`) in a PromQL text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut rest = text;
    while let Some(i) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !is_name(c)).unwrap_or(tail.len());
        let word = &tail[..end];
        if word.starts_with("sigserver_") || word.starts_with("clamav_mirror_") {
            out.insert(word.to_owned());
        }
        rest = &tail[end..];
    }
    out
}

/// Every PromQL expression of the dashboard (`targets[].expr`, template queries).
fn dashboard_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| dashboard_exprs(x, out)),
        _ => {}
    }
}

/// Sample names in a Prometheus exposition.
fn exported(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn alert_rules_pass_promtool() {
    let Some(promtool) = testkit::tools::require("promtool") else {
        return;
    };
    let out = std::process::Command::new(promtool)
        .args(["check", "rules"])
        .arg(packaging("prometheus/alerts.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_metric_in_the_dashboard_and_alerts_is_exported_by_a_running_mirror() {
    // A mirror synced for real, then served with push state (announcements,
    // downstream results, a propagation observation) as a pushing mirror has.
    let up_dir = crate::util::official_upstream_dir();
    let upstream = Server::start(up_dir.path(), &[]);
    let mirror = tempfile::tempdir().unwrap();
    let root = fixture("clamav-test-root.crt");
    let mut syncer = Server::start(
        mirror.path(),
        &[
            "--sync",
            "--upstream",
            &format!("http://{}", upstream.addr),
            "--db",
            "test",
            "--no-dns",
            "--sign-root",
            root.to_str().unwrap(),
        ],
    );
    let line = syncer.log.wait_for("sync f").unwrap();
    assert!(line.starts_with("inished"), "{}", syncer.log.text());
    syncer.sigterm();
    syncer.wait();
    let mut p = push::state::PushState::read(mirror.path())
        .unwrap()
        .unwrap_or_default();
    for (k, m) in [
        ("accepted", &mut p.notices),
        ("sync", &mut p.notice_actions),
        ("push", &mut p.syncs),
    ] {
        m.insert(k.into(), 1);
    }
    let ann = push::state::Announcement {
        version: 7,
        sender: "origin".into(),
        since: 1,
    };
    p.announced.insert("test".into(), ann.clone());
    p.unconfirmed.insert("test".into(), ann);
    p.downstreams.insert(
        "http://127.0.0.1:1/push".into(),
        push::state::DownstreamState {
            last_success: Some(1),
            delivered: 1,
            ..Default::default()
        },
    );
    p.propagation.observe(2.0);
    p.store(mirror.path()).unwrap();
    let s = Server::start(mirror.path(), &[]);
    // Clients have been served.
    assert_eq!(crate::util::get(s.addr, "/test.cvd", "").status, 200);
    let have = exported(&s.metrics());

    let dash: serde_json::Value =
        serde_json::from_slice(&std::fs::read(packaging("grafana/clamav-mirror.json")).unwrap())
            .unwrap();
    let mut exprs = Vec::new();
    dashboard_exprs(&dash, &mut exprs);
    let alerts = std::fs::read_to_string(packaging("prometheus/alerts.yml")).unwrap();
    for (what, names) in [
        (
            "dashboard",
            exprs.iter().flat_map(|e| metric_names(e)).collect(),
        ),
        ("alerts", metric_names(&alerts)),
    ] {
        let names: BTreeSet<String> = names;
        assert!(names.len() >= 5, "{what}: too few metrics found: {names:?}");
        let missing: Vec<&String> = names.difference(&have).collect();
        assert!(
            missing.is_empty(),
            "{what} names metrics /metrics does not export: {missing:?}\nexported: {have:?}"
        );
    }
}

#[test]
fn metric_name_extraction_finds_only_our_names() {
    let n = metric_names(
        "rate(sigserver_requests_total{kind=\"cvd\"}[5m]) / clamav_mirror_x_bucket + up",
    );
    assert_eq!(
        n.into_iter().collect::<Vec<_>>(),
        ["clamav_mirror_x_bucket", "sigserver_requests_total"]
    );
}
