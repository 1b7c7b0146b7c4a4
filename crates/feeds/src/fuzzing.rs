//! Entry points of the `cargo fuzz` targets (feature `fuzzing`; not an API).

use std::sync::OnceLock;

use crate::{Digest, DigestPolicy, KeyRing, SidecarAlgorithm, parse_sidecar};

/// The content the committed seeds sign (`testdata/feeds/gpg-signed.ndb`).
const SIGNED: &[u8] = include_bytes!("../../../testdata/feeds/gpg-signed.ndb");

/// SaneSecurity's key and the TEST-ONLY DSA-1024 and RSA-2048 keys whose GnuPG-made
/// signatures over [`SIGNED`] are the seeds.
fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let mut r = crate::keys::sanesecurity();
        for k in [
            &include_bytes!("../../../testdata/feeds/dsa.pub.asc")[..],
            &include_bytes!("../../../testdata/feeds/rsa.pub.asc")[..],
        ] {
            r.extend(KeyRing::from_bytes(k).unwrap_or_default());
        }
        r
    })
}

/// `feed_sig`: the first byte chooses the parser.
///
/// Even: the rest is a `.sig` file (binary or armored) checked over the seeds' content
/// with every digest allowed: never a panic; what verifies names one of the ring's
/// keys, and the same signature never verifies over other content.
///
/// Odd: the rest is a sidecar, for both algorithms; what parses is lower-case hex of the
/// right length and parses again, the same, in `sha256sum` form.
pub fn feed_sig(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel % 2 == 0 {
        let all = DigestPolicy::new([
            Digest::Sha1,
            Digest::Sha224,
            Digest::Sha256,
            Digest::Sha384,
            Digest::Sha512,
        ]);
        if let Ok(info) = ring().verify_bytes("fuzz.ndb", SIGNED, rest, &all) {
            assert!(
                ring().certs().iter().any(|c| c.fingerprint == info.key),
                "verified by a key outside the ring"
            );
            let mut other = SIGNED.to_vec();
            other.push(b'\n');
            assert!(
                ring().verify_bytes("fuzz.ndb", &other, rest, &all).is_err(),
                "a signature verified over other content"
            );
        }
    } else {
        for alg in [SidecarAlgorithm::Sha256, SidecarAlgorithm::Md5] {
            if let Ok(hex) = parse_sidecar(alg, "fuzz.ndb", rest) {
                let len = if alg == SidecarAlgorithm::Sha256 {
                    64
                } else {
                    32
                };
                assert_eq!(hex.len(), len);
                assert!(
                    hex.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                );
                let again = parse_sidecar(alg, "fuzz.ndb", format!("{hex}  fuzz.ndb\n").as_bytes());
                assert_eq!(again.ok().as_deref(), Some(hex.as_str()));
            }
        }
    }
}
