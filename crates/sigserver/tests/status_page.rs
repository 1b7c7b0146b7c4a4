//! `/status` and `/status.json`: the data, escaping and secrets, the admin-only flag,
//! and the page in a real headless Chromium (found through `testkit::tools`), down to
//! the network view of a three-tier setup with one mirror stopped.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{Server, fixture, get, head};
use mirror_core::status::{DatabaseStatus, MirrorStatus};

/// Upper bound on waiting for a condition (a guard against hangs, not a timing check).
const GUARD: Duration = Duration::from_secs(60);

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not after {GUARD:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json(s: &Server, path: &str) -> serde_json::Value {
    let r = get(s.addr, path, "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_slice(&r.body).unwrap()
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sigserver --sync` of `mirror` from `upstream` named `name`, with `extra` flags,
/// once its first sync finished.
fn syncing(mirror: &Path, upstream: &str, name: &str, extra: &[&str]) -> Server {
    let root = fixture("clamav-test-root.crt");
    let mut args = vec![
        "--sync",
        "--upstream",
        upstream,
        "--db",
        "test",
        "--no-dns",
        "--sign-root",
        root.to_str().unwrap(),
        "--mirror-name",
        name,
        "--status-poll",
        "1",
    ];
    args.extend_from_slice(extra);
    let s = Server::start(mirror, &args);
    let line = s.log.wait_for("sync f").unwrap();
    assert!(
        line.starts_with("inished"),
        "sync failed: {line}\n{}",
        s.log.text()
    );
    s
}

/// Runs headless Chromium on `url` with `mode` (`--dump-dom` or
/// `--screenshot=<file>`); `None` when Chromium is not installed (outside CI).
fn chromium(url: &str, mode: &str) -> Option<(String, String)> {
    let bin = testkit::tools::require("chromium")?;
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1100,1400",
            "--hide-scrollbars",
            "--timeout=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(mode)
        .arg(url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed:\n{stderr}");
    Some((String::from_utf8_lossy(&out.stdout).into_owned(), stderr))
}

/// Console errors and uncaught exceptions Chromium logged for the page.
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect()
}

#[test]
fn status_json_and_page_show_each_database_of_a_synced_mirror() {
    let up_dir = crate::util::official_upstream_dir();
    let upstream = Server::start(up_dir.path(), &[]);
    let mirror = tempfile::tempdir().unwrap();
    let up_url = format!("http://{}", upstream.addr);
    let s = syncing(mirror.path(), &up_url, "m1", &[]);

    let doc = json(&s, "/status.json");
    assert_eq!(doc["format"], 1);
    assert_eq!(doc["mirror"], "m1");
    assert_eq!(doc["ready"]["ready"], true, "{doc:#}");
    let db = &doc["databases"]["test"];
    assert_eq!(db["version"], 6, "{doc:#}");
    assert!(db["build_time"].as_i64().unwrap() > 1_000_000_000);
    assert_eq!(db["cvd_signed"], true);
    assert_eq!(db["cdiffs"], serde_json::json!([2, 3, 4, 5, 6]));
    // Backfilled from empty: signature-verified, not chain-proven.
    assert_eq!(db["cdiffs_unproven"], serde_json::json!([2, 3, 4, 5, 6]));
    assert_eq!(db["cdiffs_signed"], 5);
    assert_eq!(doc["upstreams"][0]["url"], up_url.as_str());
    assert_eq!(doc["upstreams"][0]["served_last_sync"], true);
    assert_eq!(db["trace"]["version"], 6);
    assert_eq!(db["newest_known"], 6);
    assert_eq!(db["newest_source"], "upstream (manifest or headers)");
    // Polled, not pushed: no origin time.
    assert!(db["trace"]["propagation_ms"].is_null(), "{doc:#}");

    // A Retry-After cool-down of the upstream (fetch's cooldown.json) is shown.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    std::fs::write(
        mirror.path().join("cooldown.json"),
        format!(
            "{{\"version\":1,\"cooldowns\":{{\"127.0.0.1:{}\":{until}}}}}",
            upstream.addr.port()
        ),
    )
    .unwrap();
    wait_until("the cool-down shown", || {
        json(&s, "/status.json")["upstreams"][0]["cooldown_until"] == until
    });

    let page = get(s.addr, "/status", "");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let h = head(s.addr, "/status", "");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());

    // In a real browser: it renders, without console errors, with the version.
    let Some((dom, log)) = chromium(&s.url("/status"), "--dump-dom") else {
        return;
    };
    assert!(console_errors(&log).is_empty(), "{log}");
    assert!(
        dom.contains("<td class=\"db\">test</td><td class=\"version\">6</td>"),
        "{dom}"
    );
    assert!(dom.contains("m1 status"), "{dom}");
    assert!(dom.contains("<strong class=\"ok\">Ready</strong>"), "{dom}");
}

#[test]
fn names_with_html_are_text_and_secrets_never_appear() {
    let d = tempfile::tempdir().unwrap();
    let mut st = MirrorStatus {
        last_attempt: Some(1),
        last_error: Some("GET https://user:hunter2@up.example/x?token=tok123 failed".into()),
        ..Default::default()
    };
    st.databases.insert(
        "<b id=\"evil\">x</b>".into(),
        DatabaseStatus {
            published_version: Some(7),
            ..Default::default()
        },
    );
    st.store(d.path()).unwrap();
    let mut p = push::state::PushState::default();
    p.downstreams.insert(
        "http://dl:pw-s3cret@127.0.0.1:1/push?key=k3y<img id=\"evil2\" src=x>".into(),
        push::state::DownstreamState {
            last_error: Some("<script>document.title='owned'</script>".into()),
            consecutive_failures: 2,
            ..Default::default()
        },
    );
    p.announced.insert(
        "<b id=\"evil\">x</b>".into(),
        push::state::Announcement {
            version: 8,
            sender: "origin".into(),
            since: 1_700_000_000,
        },
    );
    p.store(d.path()).unwrap();
    let s = Server::start(d.path(), &[]);
    let doc = json(&s, "/status.json");
    let db = &doc["databases"]["<b id=\"evil\">x</b>"];
    assert_eq!(db["version"], 7, "{doc:#}");
    assert_eq!(db["newest_known"], 8);
    assert_eq!(db["newest_source"], "notice from origin");
    assert_eq!(db["behind_since"], 1_700_000_000);
    assert_eq!(doc["downstreams"][0]["consecutive_failures"], 2);
    for path in ["/status", "/status.json"] {
        let body = String::from_utf8(get(s.addr, path, "").body).unwrap();
        for secret in ["hunter2", "tok123", "pw-s3cret", "k3y"] {
            assert!(!body.contains(secret), "{secret} in {path}:\n{body}");
        }
    }
    let html = String::from_utf8(get(s.addr, "/status", "").body).unwrap();
    assert!(
        html.contains("&lt;b id=&quot;evil&quot;&gt;x&lt;/b&gt;"),
        "{html}"
    );
    assert!(!html.contains("<b id="), "{html}");

    let Some((dom, log)) = chromium(&s.url("/status"), "--dump-dom") else {
        return;
    };
    assert!(console_errors(&log).is_empty(), "{log}");
    // Shown as text: no element was made from the names, no script ran.
    assert!(!dom.contains("<b id="), "{dom}");
    assert!(!dom.contains("<img"), "{dom}");
    assert!(!dom.contains("owned</title>"), "{dom}");
    assert!(dom.contains("&lt;b id=\"evil\"&gt;x&lt;/b&gt;"), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;document.title='owned'&lt;/script&gt;"),
        "{dom}"
    );
}

#[test]
fn status_admin_only_moves_the_pages_to_the_admin_listener() {
    let d = crate::util::plain_mirror();
    let s = Server::start(
        d.path(),
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--status-admin-only",
            "true",
        ],
    );
    let line = s.log.wait_for("admin listener on ").unwrap();
    let admin: std::net::SocketAddr = line
        .split(|c: char| c.is_whitespace() || c == '"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(get(s.addr, "/status", "").status, 404);
    assert_eq!(get(s.addr, "/status.json", "").status, 404);
    assert_eq!(get(admin, "/status", "").status, 200);
    assert_eq!(get(admin, "/status.json", "").status, 200);
    assert_eq!(get(admin, "/metrics", "").status, 200);
    // The admin listener serves no database files; the public one does.
    let name = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.ends_with(".cvd"))
        .unwrap();
    assert_eq!(get(admin, &format!("/{name}"), "").status, 404);
    assert_eq!(get(s.addr, &format!("/{name}"), "").status, 200);
}

/// Origin → tier 1 → {tier 2a → tier 3, tier 2b}; tier 3 is then stopped and
/// tier 2b too: tier 1's page shows the whole tree, the stopped mirrors unreachable.
#[test]
fn network_tree_of_three_tiers_shows_a_stopped_mirror_unreachable() {
    let up_dir = crate::util::official_upstream_dir();
    let origin = Server::start(up_dir.path(), &[]);
    let (p1, p2a, p2b, p3) = (free_port(), free_port(), free_port(), free_port());
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    let listen = |p: u16| format!("127.0.0.1:{p}");
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (l1, l2a, l2b, l3) = (listen(p1), listen(p2a), listen(p2b), listen(p3));
    let (u2a, u2b, u3) = (url(p2a), url(p2b), url(p3));
    let tier1 = syncing(
        dirs[0].path(),
        &format!("http://{}", origin.addr),
        "tier1",
        &[
            "--listen",
            &l1,
            "--status-downstream",
            &u2a,
            "--status-downstream",
            &u2b,
        ],
    );
    let tier2a = syncing(
        dirs[1].path(),
        &url(p1),
        "tier2a",
        &["--listen", &l2a, "--status-downstream", &u3],
    );
    let mut tier2b = syncing(dirs[2].path(), &url(p1), "tier2b", &["--listen", &l2b]);
    let mut tier3 = syncing(dirs[3].path(), &url(p2a), "tier3", &["--listen", &l3]);

    let node_states = |s: &Server| -> Vec<(String, String)> {
        fn walk(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
            for n in v.as_array().into_iter().flatten() {
                out.push((
                    n["url"].as_str().unwrap_or("").to_owned(),
                    n["state"].as_str().unwrap_or("").to_owned(),
                ));
                walk(&n["children"], out);
            }
        }
        let mut out = Vec::new();
        walk(&json(s, "/status.json")["network"], &mut out);
        out
    };
    let status_url = |u: &str| format!("{u}/status.json");
    let state_of = |s: &Server, u: &str| {
        node_states(s)
            .into_iter()
            .find(|(url, _)| *url == status_url(u))
            .map(|(_, st)| st)
    };
    wait_until("the whole tree current at tier 1", || {
        [&u2a, &u2b, &u3]
            .iter()
            .all(|u| state_of(&tier1, u).as_deref() == Some("current"))
    });

    tier3.sigterm();
    tier3.wait();
    tier2b.sigterm();
    tier2b.wait();
    wait_until("tier 3 unreachable at tier 2a", || {
        state_of(&tier2a, &u3).as_deref() == Some("unreachable")
    });
    wait_until("tier 3 and tier 2b unreachable at tier 1", || {
        state_of(&tier1, &u3).as_deref() == Some("unreachable")
            && state_of(&tier1, &u2b).as_deref() == Some("unreachable")
    });
    assert_eq!(state_of(&tier1, &u2a).as_deref(), Some("current"));

    let Some((dom, log)) = chromium(&tier1.url("/status"), "--dump-dom") else {
        return;
    };
    assert!(console_errors(&log).is_empty(), "{log}");
    let li = |state: &str, name: &str| {
        format!("<li data-state=\"{state}\"><span class=\"node {state}\">{name}</span>")
    };
    assert!(dom.contains(&li("current", "tier2a")), "{dom}");
    // Stopped mirrors keep the name they last reported.
    assert!(dom.contains(&li("unreachable", "tier3")), "{dom}");
    assert!(dom.contains(&li("unreachable", "tier2b")), "{dom}");
    assert_eq!(
        dom.matches("data-state=\"unreachable\"").count(),
        2,
        "{dom}"
    );
    // tier 3 sits under tier 2a.
    let at_2a = dom.find(">tier2a<").unwrap();
    let at_3 = dom.find(">tier3<").unwrap();
    assert!(at_3 > at_2a, "{dom}");

    // A screenshot of the page (kept as docs/status.png when asked).
    let shot_dir = tempfile::tempdir().unwrap();
    let shot = shot_dir.path().join("status.png");
    chromium(
        &tier1.url("/status"),
        &format!("--screenshot={}", shot.display()),
    )
    .unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    if let Some(out) = std::env::var_os("STATUS_SCREENSHOT_OUT") {
        std::fs::write(out, &png).unwrap();
    }
}

/// A directory whose sigserver reports `test` at `version` (its `status.json`).
fn reporting(version: u32) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let mut st = MirrorStatus::default();
    st.databases.insert(
        "test".into(),
        DatabaseStatus {
            published_version: Some(version),
            ..Default::default()
        },
    );
    st.store(d.path()).unwrap();
    d
}

#[test]
fn network_view_colours_downstreams_by_how_far_behind() {
    let up_dir = crate::util::official_upstream_dir();
    let origin = Server::start(up_dir.path(), &[]);
    let (same, one, two) = (reporting(6), reporting(5), reporting(4));
    let servers: Vec<Server> = [&same, &one, &two]
        .iter()
        .map(|d| Server::start(d.path(), &[]))
        .collect();
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("http://{}", s.addr))
        .collect();
    let mut args = Vec::new();
    for u in &urls {
        args.extend(["--status-downstream", u.as_str()]);
    }
    let mirror = tempfile::tempdir().unwrap();
    let tier1 = syncing(
        mirror.path(),
        &format!("http://{}", origin.addr),
        "tier1",
        &args,
    );
    let states = || -> Vec<String> {
        let doc = json(&tier1, "/status.json");
        urls.iter()
            .map(|u| {
                doc["network"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|n| n["url"] == format!("{u}/status.json").as_str())
                    .map(|n| n["state"].as_str().unwrap().to_owned())
                    .unwrap_or_default()
            })
            .collect()
    };
    wait_until("every downstream polled", || {
        states().iter().all(|s| s != "unreachable" && !s.is_empty())
    });
    // Versions 6, 5 and 4 against this mirror's 6, published moments ago (within the
    // default 600 s lag).
    assert_eq!(states(), ["current", "behind_one", "behind_long"]);

    let Some((dom, log)) = chromium(&tier1.url("/status"), "--dump-dom") else {
        return;
    };
    assert!(console_errors(&log).is_empty(), "{log}");
    for (u, state) in urls.iter().zip(["current", "behind_one", "behind_long"]) {
        let at = dom.find(&format!("{u}/status.json")).unwrap();
        let li = dom[..at].rfind("<li data-state=").unwrap();
        assert!(
            dom[li..at].contains(&format!("class=\"node {state}\"")),
            "{u}: {}",
            &dom[li..at]
        );
    }
}

/// A downstream that accepts and never answers: `/status` answers while the poll of it
/// is still waiting (the network is never on a client's request path), and the poll
/// ends with a time-out of its own.
#[test]
fn a_hanging_downstream_never_holds_up_the_status_page() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_url = format!("http://{}", hole.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in hole.incoming() {
            if tx.send(s.unwrap()).is_err() {
                break;
            }
        }
    });
    let d = crate::util::plain_mirror();
    let s = Server::start(
        d.path(),
        &["--status-downstream", &hole_url, "--status-poll", "1"],
    );
    let held = rx.recv_timeout(GUARD).unwrap();
    let doc = json(&s, "/status.json");
    // The poll is still waiting on the held connection: the peer has not closed it.
    held.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match std::io::Read::read(&mut &held, &mut buf) {
            Ok(0) => panic!("the poller gave up before /status answered"),
            Ok(_) => continue, // its request head, read away
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let node = &doc["network"][0];
    assert_eq!(node["state"], "unreachable", "{doc:#}");
    assert_eq!(node["error"], "not polled yet", "{doc:#}");
    // The poll itself is bounded: it ends in a time-out.
    wait_until("the hanging downstream timed out", || {
        let e = json(&s, "/status.json")["network"][0]["error"].to_string();
        e.contains("imeout") || e.contains("timed out")
    });
    drop(held);
}

/// A loopback HTTP server answering every request with `200` and `body`.
fn fake_downstream(body: Vec<u8>) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match std::io::Read::read(&mut s, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = std::io::Write::write_all(
                &mut s,
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = std::io::Write::write_all(&mut s, &body);
        }
    });
    url
}

/// What downstreams answer is bounded in size and shown as text.
#[test]
fn downstream_answers_are_bounded_and_escaped() {
    let huge = fake_downstream(vec![b' '; 2 << 20]);
    let hostile = fake_downstream(
        br#"{"format":1,"mirror":"<img id=\"x\" src=x onerror=alert(1)>","databases":{"<i>db</i>":{"version":6}},
            "network":[{"url":"http://u:pw-s3cret@h/status.json","mirror":"<b>deep</b>","state":"current","versions":{}}]}"#
            .to_vec(),
    );
    let d = crate::util::plain_mirror();
    let s = Server::start(
        d.path(),
        &[
            "--status-downstream",
            &huge,
            "--status-downstream",
            &hostile,
            "--status-poll",
            "1",
        ],
    );
    let node = |u: &str| {
        let doc = json(&s, "/status.json");
        doc["network"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["url"] == format!("{u}/status.json").as_str())
            .cloned()
            .unwrap()
    };
    wait_until("both polled", || {
        node(&huge)["error"] != "not polled yet" && node(&hostile)["error"] != "not polled yet"
    });
    let big = node(&huge);
    assert_eq!(big["state"], "unreachable");
    assert!(
        big["error"].as_str().unwrap().contains("larger than"),
        "{big}"
    );
    let h = node(&hostile);
    assert!(h["error"].is_null(), "{h}");
    assert_eq!(h["children"][0]["url"], "http://…@h/status.json");
    let html = String::from_utf8(get(s.addr, "/status", "").body).unwrap();
    assert!(!html.contains("pw-s3cret"));
    assert!(!html.contains("<img id"), "{html}");
    assert!(!html.contains("<b>deep"), "{html}");
    assert!(html.contains("&lt;img id=&quot;x&quot;"), "{html}");

    let Some((dom, log)) = chromium(&s.url("/status"), "--dump-dom") else {
        return;
    };
    assert!(console_errors(&log).is_empty(), "{log}");
    assert!(!dom.contains("<img"), "{dom}");
    assert!(!dom.contains("<b>deep"), "{dom}");
    assert!(dom.contains("&lt;b&gt;deep&lt;/b&gt;"), "{dom}");
}
