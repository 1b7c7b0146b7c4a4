//! `sync_feed` against the feed simulator: staging, incremental conditional requests,
//! min_interval, failover, rate limiting, verify modes.

use std::time::{Duration, SystemTime};

use feeds::{ErrorClass, FileOutcome, Verification};
use testkit::feeds::{FeedSim, Signing, SimKey};

use crate::support::{Mirror, feed, list, ndb, q};

/// The SaneSecurity-like feed: DSA-1024 key, SHA-1 allowed.
pub fn ss_feed(base: &str, files: &[&str], extra: &str) -> feeds::Feed {
    let files: Vec<String> = files.iter().map(|f| q(f)).collect();
    feed(&format!(
        "name = \"ss\"\nurl = {}\nfiles = [{}]\nverify = \"openpgp\"\nkeys = [{}]\nopenpgp_digests = [\"sha1\", \"sha256\"]\n{extra}",
        q(base),
        files.join(", "),
        q(&SimKey::Dsa1024.public_key_path().to_string_lossy())
    ))
}

#[test]
fn first_sync_stages_every_good_file_with_its_signature() {
    let sim = FeedSim::start("/ss");
    sim.publish("junk.ndb", &ndb("Junk", "6a756e6b"), SimKey::Dsa1024);
    sim.publish(
        "phish.ndb",
        &ndb("Phish", "7068697368"),
        Signing {
            key: SimKey::Dsa1024,
            digest: testkit::feeds::SimDigest::Sha1,
            armored: true,
        },
    );
    let f = ss_feed(&sim.base_url(), &["junk.ndb", "phish.ndb"], "");
    let mut m = Mirror::new();
    let r = m.sync(&f);
    assert!(r.due && !r.unverified && r.worst().is_none(), "{r:#?}");
    assert!(r.changed());
    for file in &r.files {
        assert_eq!(file.outcome, FileOutcome::Updated, "{file:#?}");
        assert_eq!(
            file.verification,
            Some(Verification::Openpgp {
                key: SimKey::Dsa1024.fingerprint().into(),
                key_type: "DSA-1024".into(),
                digest: feeds::Digest::Sha1
            })
        );
        assert_eq!(
            file.companion.as_deref(),
            Some(format!("{}.sig", file.file).as_str())
        );
        assert!(file.etag.is_some() && file.last_modified.is_some());
        assert_eq!(m.read(&f, &file.file), sim.content(&file.file));
        assert_eq!(file.size, Some(sim.content(&file.file).len() as u64));
    }
    assert_eq!(
        list(&m.published(&f)),
        ["junk.ndb", "junk.ndb.sig", "phish.ndb", "phish.ndb.sig"]
    );
    // Nothing is left in the work directory but nothing secret either.
    assert!(list(&m.work(&f)).is_empty(), "{:?}", list(&m.work(&f)));
    // The upstream's Last-Modified is the staged file's mtime.
    let mtime = std::fs::metadata(m.published(&f).join("junk.ndb"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(Some(mtime), r.files[0].last_modified);
}

#[test]
fn unchanged_files_cost_only_conditional_requests() {
    let sim = FeedSim::start("/ss");
    sim.publish("a.ndb", &ndb("A", "61"), SimKey::Dsa1024);
    sim.publish("b.ndb", &ndb("B", "62"), SimKey::Dsa1024);
    let f = ss_feed(&sim.base_url(), &["a.ndb", "b.ndb"], "");
    let mut m = Mirror::new();
    m.sync(&f);
    sim.reset_stats();
    let r = m.sync(&f);
    for file in &r.files {
        assert_eq!(file.outcome, FileOutcome::Unchanged, "{file:#?}");
        assert!(file.verification.is_some() && file.sha256.is_some());
        assert_eq!(file.downloaded, 0);
    }
    let s = sim.stats();
    for name in ["a.ndb", "b.ndb"] {
        assert_eq!(s.requests(name), 1, "{name}");
        assert_eq!(s.not_modified(name), 1, "{name}");
        assert_eq!(s.requests(&format!("{name}.sig")), 0, "{name}.sig");
    }
    assert_eq!(s.total_body_bytes(), 0);
    // The request carried both validators.
    let req = &s.raw().log()[0];
    assert!(req.header("if-none-match").is_some() && req.header("if-modified-since").is_some());
    assert_eq!(
        list(&m.published(&f)),
        ["a.ndb", "a.ndb.sig", "b.ndb", "b.ndb.sig"]
    );
    // A new version of one file: one download of it and its signature; the other 304.
    sim.replace("b.ndb", &ndb("B2", "6232"));
    sim.reset_stats();
    let r = m.sync(&f);
    assert_eq!(r.files[0].outcome, FileOutcome::Unchanged);
    assert_eq!(r.files[1].outcome, FileOutcome::Updated);
    assert_eq!(m.read(&f, "b.ndb"), ndb("B2", "6232"));
    let s = sim.stats();
    assert_eq!((s.not_modified("a.ndb"), s.requests("b.ndb.sig")), (1, 1));
    assert_eq!(
        r.files[1].downloaded,
        s.body_bytes("b.ndb") + s.body_bytes("b.ndb.sig")
    );
}

#[test]
fn min_interval_is_respected_and_not_due_keeps_everything() {
    let sim = FeedSim::start("/ss");
    sim.publish("a.ndb", &ndb("A", "61"), SimKey::Dsa1024);
    let f = ss_feed(&sim.base_url(), &["a.ndb"], "min_interval_secs = 3600");
    let mut m = Mirror::new();
    let t0 = SystemTime::now();
    m.sync_at(&f, t0);
    sim.replace("a.ndb", &ndb("A2", "6132"));
    sim.reset_stats();
    let r = m.sync_at(&f, t0 + Duration::from_secs(3599));
    assert!(!r.due);
    assert_eq!(r.files[0].outcome, FileOutcome::NotDue);
    assert_eq!(
        r.next_due,
        Some(
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(
                    t0.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 3600
                )
        )
    );
    assert_eq!(sim.stats().total_requests(), 0, "not due: nothing is asked");
    assert_eq!(
        m.read(&f, "a.ndb"),
        ndb("A", "61"),
        "the last good copy is staged"
    );
    let r = m.sync_at(&f, t0 + Duration::from_secs(3600));
    assert!(r.due);
    assert_eq!(r.files[0].outcome, FileOutcome::Updated);
    assert_eq!(m.read(&f, "a.ndb"), ndb("A2", "6132"));
}

#[test]
fn failover_takes_file_and_signature_from_the_same_upstream() {
    let sim = FeedSim::start("/ss");
    sim.publish("a.ndb", &ndb("A", "61"), SimKey::Dsa1024);
    // The first URL's server answers 404 for everything.
    let empty = testkit::http::TestServer::start();
    let f = feed(&format!(
        "name = \"ss\"\nurl = [{}, {}]\nfiles = [\"a.ndb\"]\nverify = \"openpgp\"\nkeys = [{}]\nopenpgp_digests = [\"sha1\"]",
        q(&empty.url("/ss")),
        q(&sim.base_url()),
        q(&SimKey::Dsa1024.public_key_path().to_string_lossy())
    ));
    let mut m = Mirror::new();
    let r = m.sync(&f);
    assert_eq!(r.files[0].outcome, FileOutcome::Updated, "{r:#?}");
    assert_eq!(empty.stats().requests("/ss/a.ndb"), 1);
    assert_eq!(empty.stats().requests("/ss/a.ndb.sig"), 0);
    assert_eq!(sim.stats().requests("a.ndb.sig"), 1);
}

#[test]
fn rate_limiting_keeps_the_last_good_copy_and_then_sends_nothing() {
    let sim = FeedSim::start("/ss");
    sim.publish("a.ndb", &ndb("A", "61"), SimKey::Dsa1024);
    let f = ss_feed(&sim.base_url(), &["a.ndb"], "");
    let mut m = Mirror::new();
    m.sync(&f);
    sim.replace("a.ndb", &ndb("A2", "6132"));
    sim.rate_limit(None, 600, 1);
    let r = m.sync(&f);
    let file = &r.files[0];
    assert_eq!(file.outcome, FileOutcome::KeptLastGood);
    assert_eq!(r.worst(), Some(ErrorClass::RateLimited));
    assert!(matches!(
        file.error,
        Some(feeds::Error::Fetch {
            failure: feeds::FetchFailure::RateLimited,
            until: Some(_),
            ..
        })
    ));
    assert_eq!(m.read(&f, "a.ndb"), ndb("A", "61"));
    // The cool-down (fetch's, per host) holds: the next sync asks nothing.
    sim.reset_stats();
    let r = m.sync(&f);
    assert_eq!(r.files[0].outcome, FileOutcome::KeptLastGood);
    assert_eq!(sim.stats().total_requests(), 0);
}

#[test]
fn sidecar_feeds_stage_the_sidecar_and_unverified_feeds_say_so() {
    let sim = FeedSim::start("/uh");
    sim.publish("urlhaus.ndb", &ndb("U", "75"), SimKey::Rsa2048);
    for (mode, companion) in [
        ("sha256", Some("urlhaus.ndb.sha256")),
        ("md5", Some("urlhaus.ndb.md5")),
        ("none", None),
    ] {
        let f = feed(&format!(
            "name = \"uh\"\nurl = {}\nfiles = [\"urlhaus.ndb\"]\nverify = {}",
            q(&sim.base_url()),
            q(mode)
        ));
        let mut m = Mirror::new();
        let r = m.sync(&f);
        let file = &r.files[0];
        assert_eq!(file.outcome, FileOutcome::Updated, "{mode}: {file:#?}");
        assert_eq!(file.companion.as_deref(), companion, "{mode}");
        assert_eq!(r.unverified, mode == "none");
        assert_eq!(file.unverified(), mode == "none");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json.contains("\"unverified\":true"),
            mode == "none",
            "{json}"
        );
    }
}

#[test]
fn a_file_that_left_the_configuration_is_neither_staged_nor_remembered() {
    let sim = FeedSim::start("/ss");
    sim.publish("a.ndb", &ndb("A", "61"), SimKey::Dsa1024);
    sim.publish("b.ndb", &ndb("B", "62"), SimKey::Dsa1024);
    let mut m = Mirror::new();
    m.sync(&ss_feed(&sim.base_url(), &["a.ndb", "b.ndb"], ""));
    let f = ss_feed(&sim.base_url(), &["a.ndb"], "");
    m.sync(&f);
    assert_eq!(list(&m.published(&f)), ["a.ndb", "a.ndb.sig"]);
    assert_eq!(m.state.files.keys().collect::<Vec<_>>(), ["a.ndb"]);
}

#[test]
fn a_lost_last_good_copy_is_downloaded_again_not_trusted_to_a_304() {
    let sim = FeedSim::start("/ss");
    sim.publish("a.ndb", &ndb("A", "61"), SimKey::Dsa1024);
    let f = ss_feed(&sim.base_url(), &["a.ndb"], "");
    let mut m = Mirror::new();
    m.sync(&f);
    // The published copy differs from what the state describes.
    std::fs::remove_file(m.published(&f).join("a.ndb")).unwrap();
    std::fs::write(m.published(&f).join("a.ndb"), b"damaged").unwrap();
    sim.reset_stats();
    let r = m.sync(&f);
    // Downloaded whole and verified again; the same bytes as the state describes.
    assert_eq!(r.files[0].outcome, FileOutcome::Unchanged, "{r:#?}");
    assert!(r.files[0].downloaded > 0);
    assert_eq!(sim.stats().not_modified("a.ndb"), 0);
    assert_eq!(m.read(&f, "a.ndb"), ndb("A", "61"));
}

#[test]
fn a_server_ignoring_validators_costs_a_download_but_is_no_change() {
    let sim = FeedSim::start("/ss");
    sim.publish("a.ndb", &ndb("A", "61"), SimKey::Dsa1024);
    let f = ss_feed(&sim.base_url(), &["a.ndb"], "");
    let mut m = Mirror::new();
    m.sync(&f);
    sim.server().set_fault(
        testkit::http::Scope::All,
        testkit::http::Fault::IgnoreConditional,
    );
    sim.reset_stats();
    let r = m.sync(&f);
    assert_eq!(r.files[0].outcome, FileOutcome::Unchanged, "{r:#?}");
    assert!(!r.changed());
    assert!(r.files[0].downloaded > 0);
    assert_eq!(sim.stats().not_modified("a.ndb"), 0);
    assert_eq!(m.read(&f, "a.ndb"), ndb("A", "61"));
}
