//! The chain-consistency check end to end with a private publisher's keys: a served
//! `.cvd` that the published cdiffs do not reproduce is reported with the first
//! differing file and line (the 2013 incident).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use cdiff::chain::{self, ChainOptions, Consistency, PatchInput};
use cvd_format::{CvdBuilder, KeySet, SigningKey, SigningKeys};

fn cvd(version: u32, hdb: &str, key: &SigningKey) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    CvdBuilder::new("priv", version)
        .flevel(90)
        .builder("tests")
        .sign_time(Some(1_700_000_000 + i64::from(version)))
        .member("COPYING", b"private test database\n".to_vec())
        .member("priv.hdb", hdb.as_bytes().to_vec())
        .member("priv.ndb", b"Sig.A:0:*:414243\n".to_vec())
        .write_cvd(&mut out, &SigningKeys::single(key.clone()))
        .unwrap();
    out.into_inner()
}

#[test]
fn hand_built_cvd_that_patches_do_not_reproduce_is_caught() {
    let key = SigningKey::generate(2048).unwrap();
    let opts = ChainOptions::new().keys(KeySet::single(key.public_key()));
    let v1 = cvd(1, "aaaa:1:One\nbbbb:2:Two\n", &key);
    let v2 = cvd(2, "aaaa:1:One\ncccc:3:Three\n", &key);
    // a different, equally well-signed version 2 (e.g. rebuilt by hand)
    let v2_other = cvd(2, "aaaa:1:One\ncccc:3:Tree\n", &key);

    let (_, _, old) = chain::read_base(v1.as_slice(), &opts).unwrap();
    let (_, _, new) = chain::read_base(v2.as_slice(), &opts).unwrap();
    let patch = cdiff::generate::cdiff(&old, &new, 2, &key).unwrap();
    let patches = [PatchInput::new("priv-2.cdiff", patch)];

    let ok = chain::check(v2.as_slice(), v1.as_slice(), &patches, &opts).unwrap();
    assert_eq!(ok, Consistency::Consistent { version: 2 });

    let bad = chain::check(v2_other.as_slice(), v1.as_slice(), &patches, &opts).unwrap();
    let Consistency::Differs(d) = bad else {
        panic!("expected a difference, got {bad:?}")
    };
    assert_eq!((d.file.as_str(), d.line), ("priv.hdb", Some(2)), "{d}");
    assert!(d.to_string().contains("Tree"), "{d}");

    // the target must be a signed .cvd
    let dir = tempfile::tempdir().unwrap();
    let cld = dir.path().join("priv.cld");
    chain::apply(v1.as_slice(), &patches, &opts)
        .unwrap()
        .write_cld(&cld, &opts)
        .unwrap();
    let err = chain::check(
        std::fs::read(&cld).unwrap().as_slice(),
        v1.as_slice(),
        &patches,
        &opts,
    )
    .unwrap_err();
    assert!(err.is_verification_failure(), "{err}");
}

#[test]
fn check_from_a_verification_report_agrees_with_the_full_check() {
    let key = SigningKey::generate(2048).unwrap();
    let keys = KeySet::single(key.public_key());
    let opts = ChainOptions::new().keys(keys.clone());
    let v1 = cvd(1, "aaaa:1:One\nbbbb:2:Two\n", &key);
    let v2 = cvd(2, "aaaa:1:One\ncccc:3:Three\n", &key);
    // Equally well-signed versions 2 that differ: same length, and one byte shorter.
    let v2_other = cvd(2, "aaaa:1:One\ncccc:3:Thr3e\n", &key);
    let v2_shorter = cvd(2, "aaaa:1:One\ncccc:3:Tree\n", &key);
    let (_, _, old) = chain::read_base(v1.as_slice(), &opts).unwrap();
    let (_, _, new) = chain::read_base(v2.as_slice(), &opts).unwrap();
    let patches = [PatchInput::new(
        "priv-2.cdiff",
        cdiff::generate::cdiff(&old, &new, 2, &key).unwrap(),
    )];
    let verify = |bytes: &[u8]| {
        let vopts = cvd_format::VerifyOptions::new()
            .keys(keys.clone())
            .require_signed(true);
        cvd_format::verify_reader(bytes, &vopts).unwrap()
    };

    let ok = chain::check_verified(&verify(&v2), v1.as_slice(), &patches, &opts).unwrap();
    assert_eq!(ok, Consistency::Consistent { version: 2 });

    let bad = chain::check_verified(&verify(&v2_other), v1.as_slice(), &patches, &opts).unwrap();
    let Consistency::Differs(d) = bad else {
        panic!("expected a difference, got {bad:?}")
    };
    // Found by SHA-256, so the member is named but not the line.
    assert_eq!((d.file.as_str(), d.line), ("priv.hdb", None), "{d}");
    assert!(d.reason.contains("SHA-256"), "{d}");
    let bad = chain::check_verified(&verify(&v2_shorter), v1.as_slice(), &patches, &opts).unwrap();
    let Consistency::Differs(d) = bad else {
        panic!("expected a difference, got {bad:?}")
    };
    assert_eq!(d.file, "priv.hdb", "{d}");
    assert!(d.reason.contains("24 bytes, the target 23"), "{d}");

    // A report of another version, or of an unsigned container, is not a proof.
    let v1_report = verify(&v1);
    let older = chain::check_verified(&v1_report, v1.as_slice(), &patches, &opts).unwrap();
    assert!(matches!(older, Consistency::Differs(_)), "{older:?}");
    let mut unsigned = verify(&v2);
    unsigned.checks.legacy_signature = cvd_format::CheckStatus::NotPresent;
    let err = chain::check_verified(&unsigned, v1.as_slice(), &patches, &opts).unwrap_err();
    assert!(err.is_verification_failure(), "{err}");
}
