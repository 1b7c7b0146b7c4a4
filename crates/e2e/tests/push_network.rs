//! Push notices through real processes on `127.0.0.1`: the upstream simulator (the
//! origin) → tier 1 (`sigserver --sync`, one process) → tier 2 (`sigupdate watch`
//! syncing plus a `sigserver` serving: two processes). Polls are an hour apart, so
//! only the notices can explain a propagation. Then the faults: forged, stale,
//! replayed, malformed and oversized notices, a lying notice, a flood. One cascade runs
//! over `[::1]` with a key per pair of tiers.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{Binaries, Child, Sigserver};
use push::auth::Secret;
use push::notice::Notice;
use push::state::PushState;
use testkit::upstream::{History, Upstream};
use testkit::wait::until as wait_until;

const VERIFY_TIME: &str = "1767225600";

fn root() -> PathBuf {
    e2e::official_vectors().join("clamav-test-root.crt")
}

fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A free TCP port on `ip`.
fn free_port_on(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sigupdate notify` as the origin: `test` is at `version`, told to `to`.
fn notify_as_origin(bins: &Binaries, to: &str, key: &Path, version: u32) {
    let out = Command::new(&bins.sigupdate)
        .args(["notify", "--to", to, "--name", "origin", "--key"])
        .arg(key)
        .args(["--db", &format!("test={version}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sigserver --sync` of the official `test` database from `upstream` (hourly polls,
/// so that only notices explain a quick update), plus `extra` (name, push settings).
fn syncing_sigserver(bins: &Binaries, dir: &Path, upstream: &str, extra: &[&str]) -> Sigserver {
    let root = root();
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

fn published_version(dir: &Path) -> Option<u32> {
    push::settings::published_versions(dir).get("test").copied()
}

fn push_state(dir: &Path) -> PushState {
    PushState::read(dir).unwrap().unwrap_or_default()
}

fn count(m: &BTreeMap<String, u64>, k: &str) -> u64 {
    m.get(k).copied().unwrap_or(0)
}

/// One raw `POST /push`; returns the status and body.
fn post(addr: SocketAddr, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST /push HTTP/1.1\r\nHost: m\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signed notice from `sender` announcing `test` at `version`.
fn signed(
    secret: &Secret,
    sender: &str,
    version: u32,
    ts: u64,
) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let n = Notice::new(
        sender,
        None,
        BTreeMap::from([("test".to_owned(), version)]),
        Vec::new(),
        push::hub::now_ms(),
        push::hub::now_ms(),
    );
    let body = n.to_bytes();
    let headers = vec![
        ("X-Push-Sender", sender.to_owned()),
        ("X-Push-Timestamp", ts.to_string()),
        ("X-Push-Signature", secret.sign(sender, ts, &body)),
    ];
    (headers, body)
}

struct Tiers {
    _keys: tempfile::TempDir,
    origin_key: PathBuf,
    t1_dir: tempfile::TempDir,
    t2_dir: tempfile::TempDir,
    tier1: Sigserver,
    _watch: Child,
    tier2: Sigserver,
}

fn start_tiers(bins: &Binaries, up: &Upstream) -> Tiers {
    let keys = tempfile::tempdir().unwrap();
    let origin_key = keys.path().join("origin.key");
    let t1_key = keys.path().join("tier1.key");
    std::fs::write(&origin_key, "origin secret: 0123456789abcdef\n").unwrap();
    std::fs::write(&t1_key, "tier1 secret: fedcba9876543210\n").unwrap();
    let t1_dir = tempfile::tempdir().unwrap();
    let t2_dir = tempfile::tempdir().unwrap();
    let p2 = free_port();
    let tier1 = syncing_sigserver(
        bins,
        t1_dir.path(),
        &up.base_url(),
        &[
            "--mirror-name",
            "tier1",
            "--push-sender",
            &format!("origin={}", origin_key.display()),
            "--push-downstream",
            &format!("http://127.0.0.1:{p2}/push"),
            "--push-key",
            t1_key.to_str().unwrap(),
        ],
    );
    wait_until("tier 1's first publish", Duration::from_secs(60), || {
        published_version(t1_dir.path()).is_some()
    });
    let watch = tier2_watch(bins, t2_dir.path(), &tier1.url(), p2, &t1_key, "tier2");
    wait_until("tier 2's first publish", Duration::from_secs(60), || {
        published_version(t2_dir.path()).is_some()
    });
    let tier2 = Sigserver::start(bins, t2_dir.path(), &[]).unwrap();
    Tiers {
        _keys: keys,
        origin_key,
        t1_dir,
        t2_dir,
        tier1,
        _watch: watch,
        tier2,
    }
}

#[test]
fn a_notice_cascades_through_two_tiers_and_every_bad_notice_is_refused() {
    let bins = Binaries::build().unwrap();
    let history = History::official(&e2e::official_vectors()).unwrap();
    let mut up = Upstream::builder().database(history, 3).start().unwrap();
    let t = start_tiers(&bins, &up);
    assert_eq!(published_version(t.t1_dir.path()), Some(3));
    assert_eq!(published_version(t.t2_dir.path()), Some(3));

    // 1. The origin publishes 4 and notifies tier 1 (the `notify` subcommand).
    up.advance().unwrap();
    notify_as_origin(&bins, &format!("{}/push", t.tier1.url()), &t.origin_key, 4);
    wait_until("version 4 at tier 2", Duration::from_secs(60), || {
        published_version(t.t2_dir.path()) == Some(4)
    });
    println!("pushed: version 4 reached tier 2 with hourly polls");
    // The trace names the way: origin → tier1 → tier2, in order of time.
    let trace: serde_json::Value =
        serde_json::from_str(&t.tier2.get("/trace").unwrap().text()).unwrap();
    let db = &trace["databases"]["test"];
    assert_eq!(db["version"], 4, "{trace}");
    let hops: Vec<&str> = db["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["mirror"].as_str().unwrap())
        .collect();
    assert_eq!(hops, ["origin", "tier1", "tier2"], "{trace}");
    let times: Vec<u64> = db["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["published_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{trace}");
    assert!(
        db["fetched_from"]
            .as_str()
            .unwrap()
            .starts_with(&t.tier1.url())
    );
    // Counted on both tiers; tier 1 delivered to tier 2; tier 2's histogram has it.
    let s1 = push_state(t.t1_dir.path());
    assert_eq!(count(&s1.notices, "accepted"), 1);
    assert_eq!(count(&s1.syncs, "push"), 1);
    // Tier 1's first publish (version 3, at start) was announced too, before tier 2
    // listened: retried until delivered, and taken there as already published.
    let ds = s1.downstreams.values().next().expect("a downstream state");
    assert!(ds.delivered >= 1 && ds.given_up == 0, "{s1:?}");
    // (Its push state is written right after the publish.)
    wait_until(
        "tier 2's propagation record",
        Duration::from_secs(10),
        || push_state(t.t2_dir.path()).propagation.count == 1,
    );
    let s2 = push_state(t.t2_dir.path());
    // (Tier 2 may have taken the announcement of 3 while its own first sync ran.)
    assert!((1..=2).contains(&count(&s2.syncs, "push")), "{s2:?}");
    assert_eq!(s2.propagation.count, 1);
    let m = t.tier2.get("/metrics").unwrap().text();
    assert!(
        m.contains("clamav_mirror_propagation_seconds_count 1"),
        "{m}"
    );
    assert!(
        m.contains("clamav_mirror_push_notice_actions_total{action=\"sync\"}"),
        "{m}"
    );

    // 2. Bad notices: refused with their statuses, counted, and no sync starts.
    let addr = t.tier1.addr();
    let origin = Secret::from_file(&t.origin_key).unwrap();
    let guessed = Secret::new(b"a guessed secret 0123456789").unwrap();
    let now = now_secs();
    let (h, b) = signed(&guessed, "origin", 5, now);
    assert_eq!(post(addr, &h, &b).0, 401, "forged");
    let (h, b) = signed(&origin, "origin", 5, now - 3600);
    assert_eq!(post(addr, &h, &b).0, 401, "stale");
    let (h, b) = signed(&origin, "stranger", 5, now);
    assert_eq!(post(addr, &h, &b).0, 401, "unknown sender");
    assert_eq!(post(addr, &[], b"{}").0, 401, "unsigned");
    let junk = b"{\"format\":1,\"id\":\"x\"}".to_vec();
    let hj = vec![
        ("X-Push-Sender", "origin".to_owned()),
        ("X-Push-Timestamp", now.to_string()),
        ("X-Push-Signature", origin.sign("origin", now, &junk)),
    ];
    assert_eq!(post(addr, &hj, &junk).0, 400, "malformed");
    let big = vec![b' '; 100_000];
    assert_eq!(post(addr, &hj, &big).0, 413, "oversized");
    // A valid notice for what is published costs nothing; its replay is refused.
    let (h, b) = signed(&origin, "origin", 4, now);
    let (code, text) = post(addr, &h, &b);
    assert_eq!((code, text.trim()), (202, "accepted: already_published"));
    assert_eq!(post(addr, &h, &b).0, 401, "replayed");
    let counted = [
        ("unauthenticated", 3),
        ("stale", 1),
        ("malformed", 1),
        ("too_large", 1),
        ("replayed", 1),
        ("accepted", 2),
    ];
    // The state file is written at most once a second: wait until it counts them all.
    wait_until(
        "tier 1's state to count every notice",
        Duration::from_secs(10),
        || {
            let s = push_state(t.t1_dir.path());
            counted.iter().all(|(o, n)| count(&s.notices, o) >= *n)
        },
    );
    let s1 = push_state(t.t1_dir.path());
    assert_eq!(
        count(&s1.syncs, "push"),
        1,
        "no sync for refused notices: {s1:?}"
    );
    for (outcome, n) in counted {
        assert_eq!(count(&s1.notices, outcome), n, "{outcome}: {s1:?}");
    }

    // 3. A lying notice (version 9): one sync, no publish, no retry, visible.
    up.reset_stats();
    let (h, b) = signed(&origin, "origin", 9, now_secs());
    assert_eq!(post(addr, &h, &b), (202, "accepted: sync\n".to_owned()));
    wait_until("the lying notice's sync", Duration::from_secs(60), || {
        push_state(t.t1_dir.path()).unconfirmed.contains_key("test")
    });
    let (h, b) = signed(&origin, "origin", 9, now_secs());
    assert_eq!(
        post(addr, &h, &b),
        (202, "accepted: unconfirmed\n".to_owned())
    );
    wait_until(
        "tier 1's state to count the repeated lie",
        Duration::from_secs(10),
        || count(&push_state(t.t1_dir.path()).notices, "accepted") >= 4,
    );
    let s1 = push_state(t.t1_dir.path());
    assert_eq!(count(&s1.notices, "accepted"), 4, "{s1:?}");
    assert_eq!(count(&s1.notice_actions, "unconfirmed"), 1, "{s1:?}");
    assert_eq!(count(&s1.syncs, "push"), 2, "{s1:?}");
    assert_eq!(s1.unconfirmed["test"].version, 9);
    assert_eq!(published_version(t.t1_dir.path()), Some(4));
    // Bounded work: one version check, nothing downloaded.
    assert_eq!(up.stats().requests("/test.cvd"), 0, "{:?}", up.stats());
    let status = Command::new(&bins.sigupdate)
        .args(["status", "--dir"])
        .arg(t.t1_dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("test: version 9 announced by origin was not found upstream"),
        "{text}"
    );
    let ready = t.tier1.get("/ready").unwrap();
    assert_eq!(
        ready.status,
        200,
        "a lie does not take a mirror out: {}",
        ready.text()
    );
    let m = t.tier1.get("/metrics").unwrap().text();
    assert!(
        m.contains("clamav_mirror_push_unconfirmed_version{db=\"test\",sender=\"origin\"} 9"),
        "{m}"
    );

    // 4. A flood of 1,000 valid notices for a real new version: at most two syncs.
    up.advance().unwrap();
    let mut codes: BTreeMap<u16, u32> = BTreeMap::new();
    for i in 0..1000u64 {
        // Distinct timestamps inside the window make distinct MACs.
        let (h, b) = signed(&origin, "origin", 5, now_secs() - (i % 200));
        *codes.entry(post(addr, &h, &b).0).or_default() += 1;
    }
    println!("flood of 1000 notices: answers {codes:?}");
    assert_eq!(codes.values().sum::<u32>(), 1000);
    assert!(codes.keys().all(|c| *c == 202 || *c == 429), "{codes:?}");
    wait_until("version 5 at tier 2", Duration::from_secs(60), || {
        published_version(t.t2_dir.path()) == Some(5)
    });
    // Tier 2 has 5: tier 1's flood syncs have begun (a queued one begins as the first
    // ends, before its cascade reaches tier 2). A marker refused after this moment
    // proves that the state file read next was written after them.
    let stale_before = count(&push_state(t.t1_dir.path()).notices, "stale");
    let (h, b) = signed(&origin, "origin", 5, now_secs() - 3600);
    assert_eq!(post(addr, &h, &b).0, 401, "stale marker");
    wait_until(
        "tier 1's state to count the marker",
        Duration::from_secs(10),
        || count(&push_state(t.t1_dir.path()).notices, "stale") > stale_before,
    );
    let s1 = push_state(t.t1_dir.path());
    let flood_syncs = count(&s1.syncs, "push") - 2;
    println!("flood: {flood_syncs} sync(s) at tier 1");
    assert!((1..=2).contains(&flood_syncs), "{s1:?}");
    assert_eq!(up.stats().requests("/test.cvd"), 1, "{:?}", up.stats());
}

/// `sigupdate watch` for a tier-2 mirror of `upstream`, taking notices from `tier1`
/// on `127.0.0.1:port`; hourly polls.
fn tier2_watch(
    bins: &Binaries,
    dir: &Path,
    upstream: &str,
    port: u16,
    key: &Path,
    name: &str,
) -> Child {
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    tier2_watch_on(bins, dir, upstream, listen, key, name)
}

/// [`tier2_watch`] taking notices on `listen`.
fn tier2_watch_on(
    bins: &Binaries,
    dir: &Path,
    upstream: &str,
    listen: SocketAddr,
    key: &Path,
    name: &str,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.with_extension("log"))
        .unwrap();
    let mut cmd = Command::new(&bins.sigupdate);
    cmd.args(["watch", "--dir"])
        .arg(dir)
        .args(["--upstream", upstream, "--db", "test", "--no-dns"])
        .args([
            "--sign-root",
            root().to_str().unwrap(),
            "--verify-time",
            VERIFY_TIME,
        ])
        .args([
            "--interval-secs",
            "3600",
            "--jitter-secs",
            "0",
            "--mirror-name",
            name,
        ])
        .args(["--push-listen", &listen.to_string()])
        .arg("--push-sender")
        .arg(format!("tier1={}", key.display()))
        .env("SIGUPDATE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    Child::spawn(name, &mut cmd).unwrap()
}

#[test]
fn a_dead_or_hung_downstream_delays_no_sibling_and_a_restarted_tier_completes_its_cascade() {
    let bins = Binaries::build().unwrap();
    let history = History::official(&e2e::official_vectors()).unwrap();
    let mut up = Upstream::builder().database(history, 3).start().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let origin_key = keys.path().join("origin.key");
    let t1_key = keys.path().join("tier1.key");
    std::fs::write(&origin_key, "origin secret: 0123456789abcdef\n").unwrap();
    std::fs::write(&t1_key, "tier1 secret: fedcba9876543210\n").unwrap();
    // A downstream that accepts connections and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}/push", hung.local_addr().unwrap());
    let (pa, pb, p1) = (free_port(), free_port(), free_port());
    let t1_url = format!("http://127.0.0.1:{p1}");
    let dirs = tempfile::tempdir().unwrap();
    let (d1, da, db) = (
        dirs.path().join("t1"),
        dirs.path().join("t2a"),
        dirs.path().join("t2b"),
    );
    for d in [&d1, &da, &db] {
        std::fs::create_dir_all(d).unwrap();
    }
    let up_url = up.base_url();
    let start_t1 = || {
        syncing_sigserver(
            &bins,
            &d1,
            &up_url,
            &[
                "--listen",
                &format!("127.0.0.1:{p1}"),
                "--mirror-name",
                "tier1",
                "--push-sender",
                &format!("origin={}", origin_key.display()),
                "--push-downstream",
                &format!("http://127.0.0.1:{pa}/push,{hung_url},http://127.0.0.1:{pb}/push"),
                "--push-key",
                t1_key.to_str().unwrap(),
            ],
        )
    };
    let notify = |v: u32| {
        let origin = Secret::from_file(&origin_key).unwrap();
        let (h, b) = signed(&origin, "origin", v, now_secs());
        let addr: SocketAddr = format!("127.0.0.1:{p1}").parse().unwrap();
        assert_eq!(post(addr, &h, &b).0, 202);
    };
    let tier1 = start_t1();
    wait_until("tier 1 at 3", Duration::from_secs(60), || {
        published_version(&d1) == Some(3)
    });
    let _a = tier2_watch(&bins, &da, &t1_url, pa, &t1_key, "t2a");
    let b = tier2_watch(&bins, &db, &t1_url, pb, &t1_key, "t2b");
    wait_until("tier 2 at 3", Duration::from_secs(60), || {
        published_version(&da) == Some(3) && published_version(&db) == Some(3)
    });

    // 1. t2b is down during a push; the hung downstream holds its connection open.
    drop(b);
    up.advance().unwrap();
    notify(4);
    wait_until("t2a at 4", Duration::from_secs(60), || {
        published_version(&da) == Some(4)
    });
    // t2a has it while tier 1's notice to the hung downstream is still unanswered: the
    // downstreams are notified in parallel, so neither the dead nor the hung one
    // delays a sibling.
    hung.set_nonblocking(true).unwrap();
    let held = hung.accept();
    assert!(
        held.is_ok(),
        "tier 1 has a notice pending at the hung downstream"
    );
    assert_eq!(
        published_version(&db),
        Some(3),
        "t2b was down and still holds 3"
    );
    let pb_url = format!("http://127.0.0.1:{pb}/push");
    wait_until(
        "tier 1's failure to notify t2b",
        Duration::from_secs(10),
        || {
            push_state(&d1)
                .downstreams
                .get(&pb_url)
                .is_some_and(|d| d.consecutive_failures >= 1)
        },
    );
    let s1 = push_state(&d1);
    let dead = &s1.downstreams[&pb_url];
    let status = Command::new(&bins.sigupdate)
        .args(["status", "--dir"])
        .arg(&d1)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!("downstream http://127.0.0.1:{pb}/push: FAILING")),
        "{text}"
    );
    assert!(
        text.contains(&format!("downstream http://127.0.0.1:{pa}/push: ok")),
        "{text}"
    );
    println!("checked: a dead and a hung downstream did not delay t2a");

    // 2. t2b restarts: its start sync catches up.
    let b = tier2_watch(&bins, &db, &t1_url, pb, &t1_key, "t2b");
    wait_until("t2b at 4 after restart", Duration::from_secs(60), || {
        published_version(&db) == Some(4)
    });
    println!("checked: t2b caught up at its start");

    // 3. Tier 1 is killed in the middle of its cascade (t2b down again, the notice to
    // it retried), t2b comes back while tier 1 is down (its start sync fails, the next
    // poll is an hour away), then tier 1 restarts: its start announces what it holds
    // and t2b updates from that notice.
    drop(b);
    up.advance().unwrap();
    notify(5);
    wait_until("tier 1 at 5", Duration::from_secs(60), || {
        published_version(&d1) == Some(5)
    });
    wait_until("tier 1 retrying t2b", Duration::from_secs(30), || {
        push_state(&d1).downstreams[&format!("http://127.0.0.1:{pb}/push")].failed_attempts
            > dead.failed_attempts
    });
    drop(tier1); // SIGKILL mid-cascade
    let _b = tier2_watch(&bins, &db, &t1_url, pb, &t1_key, "t2b");
    wait_until("t2b's failed start sync", Duration::from_secs(60), || {
        mirror_core::status::MirrorStatus::load(&db).is_ok_and(|s| s.last_error.is_some())
    });
    assert_eq!(published_version(&db), Some(4));
    let cvd_gets = up.stats().requests("/test.cvd");
    let _tier1 = start_t1();
    wait_until(
        "t2b at 5 after tier 1's restart",
        Duration::from_secs(60),
        || published_version(&db) == Some(5),
    );
    // push.json is flushed by the hub once a second: wait for the notice to be in it.
    wait_until(
        "t2b's push.json records the notice that synced it",
        Duration::from_secs(10),
        || count(&push_state(&db).notice_actions, "sync") >= 1,
    );
    // The restarted tier 1 downloaded nothing again from its upstream.
    assert_eq!(up.stats().requests("/test.cvd"), cvd_gets);
    println!("checked: a tier killed mid-cascade completes it when it restarts");
}

/// The top tier's upstream (the official CDN) never pushes: `--dns-watch-secs` asks
/// the version TXT record (here served by a `sigserver --dns-listen` over a directory
/// the test updates) and syncs as soon as it changes, with no HTTP request to the CDN
/// between syncs.
#[test]
fn the_top_tier_follows_the_version_record_and_its_http_traffic_does_not_grow() {
    let bins = Binaries::build().unwrap();
    let keys = testkit::upstream::PublisherKeys::test();
    let history = History::synthetic("daily", 3, &keys).unwrap();
    let mut up = Upstream::builder().database(history, 1).start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("daily-keys.pem");
    std::fs::write(&key_file, keys.public_pem().unwrap()).unwrap();
    let env = vec![
        (
            "SIGUPDATE_CUSTOM__daily__KEYS".to_owned(),
            key_file.display().to_string(),
        ),
        (
            "SIGUPDATE_CUSTOM__daily__SIGN".to_owned(),
            "false".to_owned(),
        ),
    ];
    // The record's publisher: a mirror of the CDN whose sigserver answers the record.
    let rec = tmp.path().join("record");
    let opts = e2e::SyncOptions {
        upstreams: vec![up.base_url()],
        dbs: vec!["daily".to_owned()],
        env: env.clone(),
        ..e2e::SyncOptions::default()
    };
    assert_eq!(e2e::sync(&bins, &rec, &opts).unwrap().code, Some(0));
    let dp = free_port();
    let dns = Sigserver::start(
        &bins,
        &rec,
        &[
            "--dns-listen",
            &format!("127.0.0.1:{dp}"),
            "--dns-zone",
            "current.cvd.test",
        ],
    )
    .unwrap();
    // The top tier: DNS versions, checked every second; polls an hour apart.
    let top = tmp.path().join("top");
    let log = std::fs::File::create(tmp.path().join("top.log")).unwrap();
    let mut cmd = Command::new(&bins.sigupdate);
    cmd.args(["watch", "--dir"])
        .arg(&top)
        .args(["--upstream", &up.base_url(), "--db", "daily"])
        .args([
            "--dns-server",
            &format!("127.0.0.1:{dp}"),
            "--dns-name",
            "current.cvd.test",
        ])
        .args([
            "--dns-watch-secs",
            "1",
            "--interval-secs",
            "3600",
            "--jitter-secs",
            "0",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("SIGUPDATE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let _watch = Child::spawn("sigupdate watch", &mut cmd).unwrap();
    let version = |d: &Path| push::settings::published_versions(d).get("daily").copied();
    wait_until("the top tier at 1", Duration::from_secs(60), || {
        version(&top) == Some(1)
    });
    // The record's server counts the top tier's checks (one a second): waiting for
    // three of them, not for three seconds, shows the watcher at work.
    let answered = || {
        ["udp", "tcp"]
            .iter()
            .map(|t| {
                dns.metric(
                    "sigserver_dns_queries_total",
                    &format!("transport=\"{t}\",outcome=\"answered\""),
                )
                .unwrap()
                .unwrap_or(0.0)
            })
            .sum::<f64>()
    };
    let three_checks = |what: &str| {
        let from = answered();
        wait_until(what, Duration::from_secs(30), || answered() >= from + 3.0);
    };
    // Quiet: no HTTP request to the CDN while the record says nothing new.
    up.reset_stats();
    three_checks("three checks of the unchanged record");
    assert_eq!(up.stats().total_requests(), 0, "{:?}", up.stats());
    // The CDN publishes 2, the record follows; the top tier syncs within seconds.
    let dns_syncs = count(&push_state(&top).syncs, "dns");
    up.advance().unwrap();
    assert_eq!(e2e::sync(&bins, &rec, &opts).unwrap().code, Some(0));
    up.reset_stats();
    wait_until("the top tier at 2", Duration::from_secs(60), || {
        version(&top) == Some(2)
    });
    let one_sync = up.stats().total_requests();
    assert!(one_sync > 0);
    three_checks("three checks of the record after the sync");
    assert_eq!(
        up.stats().total_requests(),
        one_sync,
        "no HTTP between syncs: {:?}",
        up.stats()
    );
    let s = push_state(&top);
    assert_eq!(count(&s.syncs, "dns"), dns_syncs + 1, "{s:?}");
    println!(
        "checked: the record's change started one sync ({one_sync} HTTP requests), and nothing else reached the CDN"
    );
}

/// `/ready` answers 503 naming the database when a version upstream announced (in its
/// manifest and in a notice) is not published within `--ready-lag`; `/health` stays
/// 200; publishing it makes the mirror ready again.
#[test]
fn a_mirror_provably_behind_is_not_ready() {
    let bins = Binaries::build().unwrap();
    let history = History::official(&e2e::official_vectors()).unwrap();
    let mut up = Upstream::builder().database(history, 3).start().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let origin_key = keys.path().join("origin.key");
    std::fs::write(&origin_key, "origin secret: 0123456789abcdef\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = syncing_sigserver(
        &bins,
        dir.path(),
        &up.base_url(),
        &[
            "--push-sender",
            &format!("origin={}", origin_key.display()),
            "--ready-lag",
            "2",
        ],
    );
    wait_until("the first publish", Duration::from_secs(60), || {
        published_version(dir.path()) == Some(3)
    });
    let origin = Secret::from_file(&origin_key).unwrap();
    let pushes = || count(&push_state(dir.path()).syncs, "push");
    // Upstream announces 4 but serves a damaged test.cvd: the mirror keeps 3.
    up.advance().unwrap();
    up.misbehave(testkit::upstream::Misbehaviour::Tamper {
        file: "test.cvd".into(),
    })
    .unwrap();
    let (h, b) = signed(&origin, "origin", 4, now_secs());
    assert_eq!(post(m.addr(), &h, &b).0, 202);
    wait_until("the failed sync", Duration::from_secs(60), || pushes() == 1);
    assert_eq!(published_version(dir.path()), Some(3));
    wait_until("the lag to pass", Duration::from_secs(30), || {
        m.get("/ready").unwrap().status == 503
    });
    let ready = m.get("/ready").unwrap().text();
    assert!(
        ready.contains("behind: test:")
            && ready.contains("version 4")
            && ready.contains("serving version 3"),
        "{ready}"
    );
    assert_eq!(m.get("/health").unwrap().status, 200);
    println!("checked: {}", ready.trim());
    // Upstream mends; the next notice brings 4 and the mirror is ready again.
    up.behave().unwrap();
    let (h, b) = signed(&origin, "origin", 4, now_secs());
    assert_eq!(post(m.addr(), &h, &b).0, 202);
    wait_until("version 4", Duration::from_secs(60), || {
        published_version(dir.path()) == Some(4)
    });
    wait_until("ready again", Duration::from_secs(10), || {
        m.get("/ready").unwrap().status == 200
    });
}

#[test]
fn a_notice_crosses_two_tiers_over_ipv6_with_a_key_per_pair() {
    let bins = Binaries::build().unwrap();
    let history = History::official(&e2e::official_vectors()).unwrap();
    let mut up = Upstream::builder().database(history, 3).start().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let origin_key = keys.path().join("origin-tier1.key");
    let pair_key = keys.path().join("tier1-tier2.key");
    let other_key = keys.path().join("tier1-shared.key");
    std::fs::write(&origin_key, "origin -> tier1: 0123456789abcdef\n").unwrap();
    std::fs::write(&pair_key, "tier1 -> tier2: fedcba9876543210\n").unwrap();
    std::fs::write(&other_key, "tier1, all others: 00112233445566\n").unwrap();
    let (t1_dir, t2_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (p1, p2) = (free_port_on("::1"), free_port_on("::1"));
    // Tier 1 takes notices on [::1] only and signs for tier 2 with the key of that
    // pair (its push_key, for other downstreams, is not what tier 2 knows).
    let tier1 = syncing_sigserver(
        &bins,
        t1_dir.path(),
        &up.base_url(),
        &[
            "--listen",
            "[::1]:0",
            "--push-listen",
            &format!("[::1]:{p1}"),
            "--mirror-name",
            "tier1",
            "--push-sender",
            &format!("origin={}", origin_key.display()),
            "--push-downstream",
            &format!("http://[::1]:{p2}/push={}", pair_key.display()),
            "--push-key",
            other_key.to_str().unwrap(),
        ],
    );
    wait_until("tier 1's first publish", Duration::from_secs(60), || {
        published_version(t1_dir.path()).is_some()
    });
    let _watch = tier2_watch_on(
        &bins,
        t2_dir.path(),
        &tier1.url(),
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, p2)),
        &pair_key,
        "tier2",
    );
    wait_until("tier 2's first publish", Duration::from_secs(60), || {
        published_version(t2_dir.path()).is_some()
    });

    // The origin publishes 4 and notifies tier 1 over [::1]; the notice goes on to
    // tier 2 over [::1]; polls are an hour apart.
    up.advance().unwrap();
    notify_as_origin(&bins, &format!("http://[::1]:{p1}/push"), &origin_key, 4);
    wait_until("version 4 at tier 2", Duration::from_secs(60), || {
        published_version(t2_dir.path()) == Some(4)
    });
    wait_until(
        "tier 2 counts the accepted notice",
        Duration::from_secs(10),
        || count(&push_state(t2_dir.path()).notices, "accepted") >= 1,
    );
    let s2 = push_state(t2_dir.path());
    assert_eq!(count(&s2.notices, "unauthenticated"), 0, "{s2:?}");
}
