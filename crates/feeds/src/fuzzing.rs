//! Entry points of the `cargo fuzz` targets (feature `fuzzing`; not an API).

use std::sync::OnceLock;

use crate::{Digest, DigestPolicy, KeyRing, SidecarAlgorithm, parse_sidecar};

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(crate::keys::sanesecurity)
}

/// `feed_sig`: the first byte chooses the parser. Even: the input (after it) is a
/// `.sig` file checked over fixed content against the vendored key with every digest
/// allowed: it never verifies (nobody here holds SaneSecurity's secret key) and never
/// panics. Odd: the input is a sidecar, for both algorithms; what parses is hex of
/// the right length and parses again, the same, in `sha256sum` form.
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
        let r = ring().verify_bytes("fuzz.ndb", b"fuzzed content\n", rest, &all);
        assert!(r.is_err(), "a forged signature verified");
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
