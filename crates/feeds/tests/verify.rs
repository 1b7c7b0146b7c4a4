//! Detached signatures: GnuPG-made and rPGP-made, every key type, the digest policy,
//! and each typed refusal.

use feeds::{Digest, DigestPolicy, Error, KeyRing};
use testkit::feeds::{SimDigest, SimKey, sign, testdata_feeds};

fn ring(keys: &[SimKey]) -> KeyRing {
    let mut r = KeyRing::default();
    for k in keys {
        r.extend(KeyRing::from_bytes(&std::fs::read(k.public_key_path()).unwrap()).unwrap());
    }
    r
}

fn sha1_too() -> DigestPolicy {
    DigestPolicy::new([Digest::Sha1, Digest::Sha256])
}

#[test]
fn gnupg_signatures_verify_binary_dsa_sha1_and_armored_rsa_sha256() {
    let dir = testdata_feeds();
    let data = std::fs::read(dir.join("gpg-signed.ndb")).unwrap();
    let bin = std::fs::read(dir.join("gpg-signed.ndb.sig")).unwrap();
    let asc = std::fs::read(dir.join("gpg-signed.ndb.asc")).unwrap();
    let r = ring(&[SimKey::Dsa1024, SimKey::Rsa2048]);
    let info = r
        .verify_bytes("gpg-signed.ndb", &data, &bin, &sha1_too())
        .unwrap();
    assert_eq!(info.key, SimKey::Dsa1024.fingerprint());
    assert_eq!(info.key_type, "DSA-1024");
    assert_eq!(info.digest, Digest::Sha1);
    let info = r
        .verify_bytes("gpg-signed.ndb", &data, &asc, &DigestPolicy::default())
        .unwrap();
    assert_eq!(info.key, SimKey::Rsa2048.fingerprint());
    assert_eq!(info.digest, Digest::Sha256);
    // From a file too (the streaming path the sync uses).
    let info = r
        .verify_file(
            "gpg-signed.ndb",
            &dir.join("gpg-signed.ndb"),
            &bin,
            &sha1_too(),
        )
        .unwrap();
    assert_eq!(info.digest, Digest::Sha1);
}

#[test]
fn sha1_is_refused_by_the_default_policy_naming_the_digest() {
    let dir = testdata_feeds();
    let data = std::fs::read(dir.join("gpg-signed.ndb")).unwrap();
    let bin = std::fs::read(dir.join("gpg-signed.ndb.sig")).unwrap();
    let e = ring(&[SimKey::Dsa1024])
        .verify_bytes("gpg-signed.ndb", &data, &bin, &DigestPolicy::default())
        .unwrap_err();
    assert!(matches!(e, Error::DigestNotAllowed { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("digest sha1 not allowed") && msg.contains("sha256"),
        "{msg}"
    );
}

#[test]
fn every_key_type_and_digest_made_by_rpgp_verifies_binary_and_armored() {
    let data = b"Feeds.Test.Any:0:*:616e79\n";
    let all = DigestPolicy::new([Digest::Sha1, Digest::Sha256, Digest::Sha512]);
    let r = ring(&[SimKey::Dsa1024, SimKey::Rsa2048, SimKey::Ed25519]);
    for key in [SimKey::Dsa1024, SimKey::Rsa2048, SimKey::Ed25519] {
        for (digest, want) in [
            (SimDigest::Sha1, Digest::Sha1),
            (SimDigest::Sha256, Digest::Sha256),
            (SimDigest::Sha512, Digest::Sha512),
        ] {
            if key == SimKey::Ed25519 && digest == SimDigest::Sha1 {
                continue; // EdDSA wants at least 256-bit digests
            }
            for armored in [false, true] {
                let sig = sign(key, digest, data, armored);
                let info = r
                    .verify_bytes("any.ndb", data, &sig, &all)
                    .unwrap_or_else(|e| {
                        panic!("{key:?} {digest:?} armored={armored}: {}", e.chain())
                    });
                assert_eq!((info.key.as_str(), info.digest), (key.fingerprint(), want));
            }
        }
    }
}

#[test]
fn a_signature_by_an_unconfigured_key_is_an_unknown_key_naming_the_issuer() {
    let data = b"x\n";
    let sig = sign(SimKey::Stranger, SimDigest::Sha256, data, false);
    let e = ring(&[SimKey::Rsa2048])
        .verify_bytes("x.ndb", data, &sig, &DigestPolicy::default())
        .unwrap_err();
    assert!(matches!(e, Error::UnknownKey { .. }), "{e:?}");
    let msg = e.to_string();
    // The issuer (fingerprint subpacket, and the key id = its last 16 hex digits).
    assert!(msg.contains(SimKey::Stranger.fingerprint()), "{msg}");
    assert!(msg.contains(SimKey::Rsa2048.fingerprint()), "{msg}");
}

#[test]
fn changed_content_is_a_bad_signature_naming_the_key() {
    let sig = sign(SimKey::Dsa1024, SimDigest::Sha1, b"good\n", false);
    let e = ring(&[SimKey::Dsa1024])
        .verify_bytes("x.ndb", b"evil\n", &sig, &sha1_too())
        .unwrap_err();
    assert!(matches!(e, Error::BadSignature { .. }), "{e:?}");
    assert!(e.to_string().contains(SimKey::Dsa1024.fingerprint()), "{e}");
    // One flipped bit in the signature itself is refused too.
    let mut bad = sign(SimKey::Rsa2048, SimDigest::Sha256, b"good\n", false);
    let n = bad.len();
    bad[n - 3] ^= 0x01;
    let e = ring(&[SimKey::Rsa2048])
        .verify_bytes("x.ndb", b"good\n", &bad, &DigestPolicy::default())
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::BadSignature { .. } | Error::MalformedSignature { .. }
        ),
        "{e:?}"
    );
}

#[test]
fn garbage_empty_and_oversized_signatures_are_malformed() {
    let r = ring(&[SimKey::Rsa2048]);
    let p = DigestPolicy::default();
    for sig in [
        Vec::new(),
        b"not a signature".to_vec(),
        b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n".to_vec(),
        vec![0x88; 70_000],
        // A public key where a signature belongs.
        std::fs::read(SimKey::Rsa2048.public_key_path()).unwrap(),
    ] {
        let e = r.verify_bytes("x.ndb", b"x", &sig, &p).unwrap_err();
        assert!(
            matches!(e, Error::MalformedSignature { .. }),
            "{} bytes: {e:?}",
            sig.len()
        );
    }
}

#[test]
fn two_signatures_in_one_file_verify_when_one_is_by_a_configured_key() {
    let data = b"two\n";
    let mut sig = sign(SimKey::Stranger, SimDigest::Sha256, data, false);
    sig.extend(sign(SimKey::Rsa2048, SimDigest::Sha256, data, false));
    let info = ring(&[SimKey::Rsa2048])
        .verify_bytes("two.ndb", data, &sig, &DigestPolicy::default())
        .unwrap();
    assert_eq!(info.key, SimKey::Rsa2048.fingerprint());
}
