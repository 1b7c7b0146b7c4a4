//! The vendored SaneSecurity key and the test keys: they parse and are what they say.

use feeds::KeyRing;
use testkit::feeds::SimKey;

use crate::support::{feed, q};

#[test]
fn vendored_sanesecurity_key_is_dsa1024_with_the_published_fingerprint() {
    let ring = feeds::keys::sanesecurity();
    assert_eq!(ring.certs().len(), 1);
    let cert = &ring.certs()[0];
    // The fingerprint as SaneSecurity and the issue print it.
    let published = "4E02 5A1C BA90 A065 3F38 D2D8 D691 DED9 31EA 4D9E".replace(' ', "");
    assert_eq!(cert.fingerprint, published);
    assert_eq!(cert.fingerprint, feeds::keys::SANESECURITY_FINGERPRINT);
    assert_eq!(cert.key_type, "DSA-1024");
    assert!(
        cert.user_id
            .as_deref()
            .unwrap_or("")
            .contains("Sanesecurity"),
        "{cert:?}"
    );
    // The file is the armored key as Debian ships it.
    assert!(feeds::keys::SANESECURITY.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
}

#[test]
fn builtin_key_is_usable_from_the_configuration() {
    let f = feed(
        r#"name = "sanesecurity"
url = "https://example.org/ss"
files = ["junk.ndb"]
verify = "openpgp"
keys = ["builtin:sanesecurity"]
openpgp_digests = ["sha1", "sha256"]"#,
    );
    assert_eq!(
        f.keys().certs()[0].fingerprint,
        feeds::keys::SANESECURITY_FINGERPRINT
    );
    let e = crate::support::config_error(
        r#"[[feed]]
name = "x"
url = "https://example.org/x"
files = ["a.ndb"]
verify = "openpgp"
keys = ["builtin:nobody"]"#,
    );
    assert!(
        e.contains("\"x\"") && e.contains("keys") && e.contains("nobody"),
        "{e}"
    );
}

#[test]
fn test_keys_parse_armored_and_binary_with_their_gnupg_fingerprints() {
    for (key, ty) in [
        (SimKey::Dsa1024, "DSA-1024"),
        (SimKey::Rsa2048, "RSA-2048"),
        (SimKey::Ed25519, "EdDSA"),
        (SimKey::Stranger, "RSA-2048"),
    ] {
        let armored = std::fs::read(key.public_key_path()).unwrap();
        let ring = KeyRing::from_bytes(&armored).unwrap();
        assert_eq!(ring.certs()[0].fingerprint, key.fingerprint(), "{key:?}");
        assert_eq!(ring.certs()[0].key_type, ty, "{key:?}");
        // The same key, binary (dearmored by rPGP).
        use pgp::composed::{Deserializable, SignedPublicKey};
        use pgp::ser::Serialize;
        let (k, _) = SignedPublicKey::from_armor_single(&armored[..]).unwrap();
        let binary = k.to_bytes().unwrap();
        assert_ne!(binary[0], b'-');
        let ring = KeyRing::from_bytes(&binary).unwrap();
        assert_eq!(
            ring.certs()[0].fingerprint,
            key.fingerprint(),
            "{key:?} binary"
        );
    }
}

#[test]
fn several_keys_in_one_file_are_all_trusted() {
    let mut both = std::fs::read(SimKey::Dsa1024.public_key_path()).unwrap();
    both.extend(std::fs::read(SimKey::Rsa2048.public_key_path()).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("both.asc");
    std::fs::write(&path, &both).unwrap();
    let f = feed(&format!(
        "name = \"two\"\nurl = \"https://example.org/two\"\nfiles = [\"a.ndb\"]\nverify = \"openpgp\"\nkeys = [{}]",
        q(&path.to_string_lossy())
    ));
    let fps: Vec<&str> = f
        .keys()
        .certs()
        .iter()
        .map(|c| c.fingerprint.as_str())
        .collect();
    assert_eq!(
        fps,
        [SimKey::Dsa1024.fingerprint(), SimKey::Rsa2048.fingerprint()]
    );
}
