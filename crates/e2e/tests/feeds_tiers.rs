//! A third-party feed through two tiers of real processes on `127.0.0.1`: the feed
//! simulator (`testkit::feeds`) → tier 1 (`sigserver --sync` with a `[[feed]]` in its
//! configuration file) → tier 2 (`sigupdate watch` whose `[[feed]]` points at tier 1's
//! `/<feed>` with the same key, re-verifying the `.sig` tier 1 serves, plus a
//! `sigserver` serving). Polls are an hour apart: a feed change at the origin reaches
//! tier 2 only through the push notice naming the feed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{Binaries, Child, Sigserver};
use push::auth::Secret;
use push::notice::Notice;
use testkit::feeds::{FeedSim, SimKey};
use testkit::upstream::{History, Upstream};
use testkit::wait::until as wait_until;

const VERIFY_TIME: &str = "1767225600";
const JUNK_1: &[u8] = b"Junk.Tier.1:0:*:6a756e6b2d6f6e65\n";
const JUNK_2: &[u8] = b"Junk.Tier.2:0:*:6a756e6b2d74776f\n";

fn feed_toml(url: &str) -> String {
    format!(
        "[[feed]]\nname = \"ss\"\nurl = \"{url}\"\nfiles = [\"junk.ndb\"]\nverify = \"openpgp\"\n\
         keys = [{key:?}]\nopenpgp_digests = [\"sha1\"]\n",
        key = SimKey::Dsa1024.public_key_path(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn feed_file(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(dir.join("current/ss/junk.ndb")).ok()
}

/// One signed `POST /push` of `notice` from `sender`; returns the status.
fn post_notice(addr: SocketAddr, secret: &Secret, sender: &str, notice: &Notice) -> u16 {
    let body = notice.to_bytes();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /push HTTP/1.1\r\nHost: m\r\nContent-Length: {}\r\nX-Push-Sender: {sender}\r\n\
         X-Push-Timestamp: {ts}\r\nX-Push-Signature: {}\r\nConnection: close\r\n\r\n",
        body.len(),
        secret.sign(sender, ts, &body)
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_feed_change_at_the_origin_reaches_tier_2_by_push() {
    let bins = Binaries::build().unwrap();
    let history = History::official(&e2e::official_vectors()).unwrap();
    let up = Upstream::builder().database(history, 3).start().unwrap();
    let sim = FeedSim::start("/ss");
    sim.publish("junk.ndb", JUNK_1, SimKey::Dsa1024);

    let keys = tempfile::tempdir().unwrap();
    let origin_key = keys.path().join("origin.key");
    let t1_key = keys.path().join("tier1.key");
    std::fs::write(&origin_key, "origin secret: 0123456789abcdef\n").unwrap();
    std::fs::write(&t1_key, "tier1 secret: fedcba9876543210\n").unwrap();
    let t1_conf = keys.path().join("tier1.toml");
    std::fs::write(&t1_conf, feed_toml(&sim.base_url())).unwrap();
    let t1_dir = tempfile::tempdir().unwrap();
    let t2_dir = tempfile::tempdir().unwrap();
    let root = e2e::official_vectors().join("clamav-test-root.crt");
    let p2 = free_port();
    let tier1 = Sigserver::start(
        &bins,
        t1_dir.path(),
        &[
            "--config",
            t1_conf.to_str().unwrap(),
            "--sync",
            "--sync-interval",
            "3600",
            "--upstream",
            &up.base_url(),
            "--db",
            "test",
            "--no-dns",
            "--sign-root",
            root.to_str().unwrap(),
            "--verify-time",
            VERIFY_TIME,
            "--mirror-name",
            "tier1",
            "--push-sender",
            &format!("origin={}", origin_key.display()),
            "--push-downstream",
            &format!("http://127.0.0.1:{p2}/push"),
            "--push-key",
            t1_key.to_str().unwrap(),
        ],
    )
    .unwrap();
    wait_until("the feed at tier 1", Duration::from_secs(60), || {
        feed_file(t1_dir.path()).as_deref() == Some(JUNK_1)
    });

    // Tier 2: the same [[feed]], its URL tier 1's /ss, the same key.
    let t2_conf = keys.path().join("tier2.toml");
    std::fs::write(&t2_conf, feed_toml(&format!("{}/ss", tier1.url()))).unwrap();
    let log = std::fs::File::create(t2_dir.path().with_extension("log")).unwrap();
    let _watch = Child::spawn(
        "tier2",
        Command::new(&bins.sigupdate)
            .args(["watch", "--config"])
            .arg(&t2_conf)
            .arg("--dir")
            .arg(t2_dir.path())
            .args(["--upstream", &tier1.url(), "--db", "test", "--no-dns"])
            .args(["--sign-root", root.to_str().unwrap()])
            .args(["--verify-time", VERIFY_TIME])
            .args(["--interval-secs", "3600", "--jitter-secs", "0"])
            .args(["--mirror-name", "tier2"])
            .args(["--push-listen", &format!("127.0.0.1:{p2}")])
            .arg("--push-sender")
            .arg(format!("tier1={}", t1_key.display()))
            .env("SIGUPDATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log),
    )
    .unwrap();
    wait_until("the feed at tier 2", Duration::from_secs(60), || {
        feed_file(t2_dir.path()).as_deref() == Some(JUNK_1)
    });
    // Tier 2 re-verified the signature tier 1 serves beside the file.
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t2_dir.path().join("current/feeds.json")).unwrap())
            .unwrap();
    assert_eq!(
        listing["feeds"]["ss"]["files"]["junk.ndb"]["verification"]["key"],
        SimKey::Dsa1024.fingerprint(),
        "{listing}"
    );
    let tier2 = Sigserver::start(&bins, t2_dir.path(), &[]).unwrap();

    // The feed changes at the origin; a notice naming the feed wakes tier 1, whose
    // cascade names it to tier 2 (both poll hourly).
    sim.replace("junk.ndb", JUNK_2);
    let secret = Secret::from_file(&origin_key).unwrap();
    let notice = Notice::new(
        "origin",
        None,
        BTreeMap::new(),
        Vec::new(),
        push::hub::now_ms(),
        push::hub::now_ms(),
    )
    .with_feeds(BTreeMap::from([("ss".to_owned(), "00".repeat(16))]));
    let addr: SocketAddr = tier1.url().trim_start_matches("http://").parse().unwrap();
    assert_eq!(post_notice(addr, &secret, "origin", &notice), 202);
    wait_until(
        "the new feed file at tier 2",
        Duration::from_secs(60),
        || feed_file(t2_dir.path()).as_deref() == Some(JUNK_2),
    );
    assert_eq!(feed_file(t1_dir.path()).as_deref(), Some(JUNK_2));
    let served = tier2.get("/ss/junk.ndb").unwrap();
    assert_eq!(served.text(), String::from_utf8_lossy(JUNK_2));
    // Tier 2 synced because of the notice, not a poll (the hub writes push.json at
    // most once a second: wait for it).
    wait_until(
        "tier 2's push.json to record the notice's sync",
        Duration::from_secs(30),
        || {
            push::state::PushState::read(t2_dir.path())
                .ok()
                .flatten()
                .is_some_and(|s| s.notice_actions.get("sync").copied().unwrap_or(0) >= 1)
        },
    );
}
