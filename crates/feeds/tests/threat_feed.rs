//! One fixture per attack on a feed: nothing bad is staged, the last good copy is kept
//! (or nothing, on a first sync), other files go on, and the report says why.

use feeds::{Error, ErrorClass, FileOutcome};
use testkit::feeds::{FeedSim, Signing, SimDigest, SimKey};

use crate::support::{Mirror, feed, ndb, q};
use crate::sync::ss_feed;

/// A feed with `a.ndb` (attacked) and `b.ndb` (fine) synced once; returns the mirror.
fn synced(sim: &FeedSim, f: &feeds::Feed) -> Mirror {
    sim.publish("a.ndb", &ndb("A", "61616161"), SimKey::Dsa1024);
    sim.publish("b.ndb", &ndb("B", "62626262"), SimKey::Dsa1024);
    let mut m = Mirror::new();
    let r = m.sync(f);
    assert!(
        r.files.iter().all(|x| x.outcome == FileOutcome::Updated),
        "{r:#?}"
    );
    m
}

/// After the attack on `a.ndb` (and a good update of `b.ndb`): `a.ndb` kept, `b.ndb`
/// updated; returns `a.ndb`'s error.
fn after_attack(sim: &FeedSim, f: &feeds::Feed, m: &mut Mirror) -> Error {
    let last_good = m.read(f, "a.ndb");
    sim.replace("b.ndb", &ndb("B2", "62326232"));
    let mut r = m.sync(f);
    assert_eq!(r.files[1].outcome, FileOutcome::Updated, "{r:#?}");
    assert_eq!(m.read(f, "b.ndb"), ndb("B2", "62326232"));
    assert_eq!(r.files[0].outcome, FileOutcome::KeptLastGood, "{r:#?}");
    assert_eq!(m.read(f, "a.ndb"), last_good, "the last good copy");
    assert_eq!(r.worst(), r.files[0].error.as_ref().map(Error::class));
    // The served pair still verifies: the kept file with its own signature.
    let sig = m.read(f, "a.ndb.sig");
    f.keys()
        .verify_bytes("a.ndb", &m.read(f, "a.ndb"), &sig, f.digests())
        .unwrap();
    // Nothing of the refused version lingers in the work directory.
    assert!(!m.work(f).join("a.ndb").exists());
    r.files.swap_remove(0).error.unwrap()
}

#[test]
fn a_tampered_file_is_refused_as_a_bad_signature() {
    let sim = FeedSim::start("/ss");
    let f = ss_feed(&sim.base_url(), &["a.ndb", "b.ndb"], "");
    let mut m = synced(&sim, &f);
    sim.tamper("a.ndb", &ndb("Evil", "6576696c"));
    let e = after_attack(&sim, &f, &mut m);
    assert!(matches!(e, Error::BadSignature { .. }), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Verification);
}

#[test]
fn a_signature_by_another_key_is_refused_as_an_unknown_key() {
    let sim = FeedSim::start("/ss");
    let f = ss_feed(&sim.base_url(), &["a.ndb", "b.ndb"], "");
    let mut m = synced(&sim, &f);
    sim.publish_signed_by("a.ndb", &ndb("Evil", "6576696c"), SimKey::Stranger);
    let e = after_attack(&sim, &f, &mut m);
    assert!(matches!(e, Error::UnknownKey { .. }), "{e:?}");
    assert!(
        e.to_string().contains(SimKey::Stranger.fingerprint()),
        "{e}"
    );
}

#[test]
fn a_missing_signature_is_refused() {
    let sim = FeedSim::start("/ss");
    let f = ss_feed(&sim.base_url(), &["a.ndb", "b.ndb"], "");
    let mut m = synced(&sim, &f);
    sim.replace("a.ndb", &ndb("A2", "61326132"));
    sim.drop_signature("a.ndb");
    let e = after_attack(&sim, &f, &mut m);
    assert!(matches!(e, Error::MissingSignature { .. }), "{e:?}");
    assert!(e.to_string().contains("/ss/a.ndb.sig"), "{e}");
}

#[test]
fn sha1_under_the_default_policy_is_refused_while_sha256_by_the_same_key_passes() {
    let sim = FeedSim::start("/rsa");
    sim.publish("a.ndb", &ndb("A", "61616161"), SimKey::Rsa2048);
    sim.publish("b.ndb", &ndb("B", "62626262"), SimKey::Rsa2048);
    let f = feed(&format!(
        "name = \"rsa\"\nurl = {}\nfiles = [\"a.ndb\", \"b.ndb\"]\nverify = \"openpgp\"\nkeys = [{}]",
        q(&sim.base_url()),
        q(&SimKey::Rsa2048.public_key_path().to_string_lossy())
    ));
    let mut m = Mirror::new();
    assert!(m.sync(&f).worst().is_none());
    sim.publish(
        "a.ndb",
        &ndb("A2", "61326132"),
        Signing {
            key: SimKey::Rsa2048,
            digest: SimDigest::Sha1,
            armored: false,
        },
    );
    sim.replace("b.ndb", &ndb("B2", "62326232"));
    let r = m.sync(&f);
    assert!(
        matches!(r.files[0].error, Some(Error::DigestNotAllowed { .. })),
        "{r:#?}"
    );
    assert_eq!(r.files[0].outcome, FileOutcome::KeptLastGood);
    assert_eq!(m.read(&f, "a.ndb"), ndb("A", "61616161"));
    assert_eq!(r.files[1].outcome, FileOutcome::Updated);
}

#[test]
fn a_wrong_sidecar_is_refused_for_sha256_and_md5() {
    for mode in ["sha256", "md5"] {
        let sim = FeedSim::start("/sc");
        let f = feed(&format!(
            "name = \"sc\"\nurl = {}\nfiles = [\"a.ndb\", \"b.ndb\"]\nverify = {}",
            q(&sim.base_url()),
            q(mode)
        ));
        let mut m = synced(&sim, &f);
        sim.replace("a.ndb", &ndb("A2", "61326132"));
        sim.wrong_sidecars("a.ndb");
        let e = after_attack_sidecar(&sim, &f, &mut m);
        assert!(matches!(e, Error::SidecarMismatch { .. }), "{mode}: {e:?}");
        assert!(e.to_string().contains(mode), "{e}");
    }
}

/// [`after_attack`] for sidecar feeds (the kept pair is checked by digest).
fn after_attack_sidecar(sim: &FeedSim, f: &feeds::Feed, m: &mut Mirror) -> Error {
    sim.replace("b.ndb", &ndb("B2", "62326232"));
    let mut r = m.sync(f);
    assert_eq!(r.files[1].outcome, FileOutcome::Updated, "{r:#?}");
    assert_eq!(r.files[0].outcome, FileOutcome::KeptLastGood, "{r:#?}");
    assert_eq!(m.read(f, "a.ndb"), ndb("A", "61616161"));
    let companion = f.verify().companion("a.ndb").unwrap();
    let alg = f.verify().sidecar().unwrap();
    let listed = feeds::parse_sidecar(alg, "a.ndb", &m.read(f, &companion)).unwrap();
    if alg == feeds::SidecarAlgorithm::Sha256 {
        assert_eq!(Some(&listed), r.files[0].sha256.as_ref());
    }
    r.files.swap_remove(0).error.unwrap()
}

#[test]
fn a_bad_file_on_the_first_sync_stages_nothing_for_it_but_the_others_go_on() {
    let sim = FeedSim::start("/ss");
    sim.publish("a.ndb", &ndb("A", "61616161"), SimKey::Dsa1024);
    sim.publish("b.ndb", &ndb("B", "62626262"), SimKey::Dsa1024);
    sim.tamper("a.ndb", &ndb("Evil", "6576696c"));
    let f = ss_feed(&sim.base_url(), &["a.ndb", "b.ndb"], "");
    let mut m = Mirror::new();
    let r = m.sync(&f);
    assert_eq!(r.files[0].outcome, FileOutcome::Failed);
    assert!(!r.files[0].staged() && r.files[0].verification.is_none());
    assert_eq!(r.files[1].outcome, FileOutcome::Updated);
    assert_eq!(
        crate::support::list(&m.published(&f)),
        ["b.ndb", "b.ndb.sig"]
    );
    assert!(!m.state.files.contains_key("a.ndb"));
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let sim = FeedSim::start("/ss");
    let f = ss_feed(&sim.base_url(), &["a.ndb", "b.ndb"], "max_file_size = 64");
    let mut m = synced(&sim, &f);
    sim.replace("a.ndb", &[b'x'; 65]);
    let e = after_attack(&sim, &f, &mut m);
    assert!(
        matches!(
            e,
            Error::Fetch {
                failure: feeds::FetchFailure::TooLarge,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_validly_signed_broken_ndb_is_stopped_by_the_load_check() {
    let Some(clamscan) = testkit::tools::require("clamscan") else {
        return;
    };
    let sim = FeedSim::start("/ss");
    let f = ss_feed(&sim.base_url(), &["a.ndb", "b.ndb"], "load_check = true");
    let mut m = synced(&sim, &f);
    m.checker = feeds::LoadChecker::with_tool(Some(clamscan));
    sim.replace("a.ndb", &ndb("A1", "61316131"));
    let r = m.sync(&f);
    assert_eq!(r.files[0].outcome, FileOutcome::Updated, "{r:#?}");
    assert_eq!(r.files[0].load_check, feeds::LoadCheck::Passed, "{r:#?}");
    sim.replace("a.ndb", b"Broken.Sig:0:*:zz66\n");
    let e = after_attack(&sim, &f, &mut m);
    let Error::LoadCheck { message, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("Malformed database"), "{message}");
}
