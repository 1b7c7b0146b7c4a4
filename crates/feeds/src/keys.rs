//! Vendored trust anchors: public keys of feed providers (a public key is not a secret;
//! see `keys/README.md` for where each comes from).

use crate::KeyRing;

/// SaneSecurity's signing key (armored): DSA-1024 from 2009, fingerprint
/// `4E02 5A1C BA90 A065 3F38 D2D8 D691 DED9 31EA 4D9E`, as shipped by Debian's
/// `clamav-unofficial-sigs` package (`usr/share/clamav-unofficial-sigs/publickey.gpg`).
/// Configure it as `keys = ["builtin:sanesecurity"]`.
pub const SANESECURITY: &[u8] = include_bytes!("../keys/sanesecurity.asc");

/// SaneSecurity's key fingerprint (upper-case hex, no spaces).
pub const SANESECURITY_FINGERPRINT: &str = "4E025A1CBA90A0653F38D2D8D691DED931EA4D9E";

/// The built-in keys by the name used after `builtin:`.
pub const BUILTIN: &[(&str, &[u8])] = &[("sanesecurity", SANESECURITY)];

/// The bytes of the built-in key `name`.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// SaneSecurity's key as a [`KeyRing`].
///
/// ```
/// let ring = feeds::keys::sanesecurity();
/// assert_eq!(ring.certs()[0].fingerprint, feeds::keys::SANESECURITY_FINGERPRINT);
/// ```
pub fn sanesecurity() -> KeyRing {
    // The vendored bytes are a fixed input checked by the tests; an empty ring would
    // verify nothing (fail closed).
    KeyRing::from_bytes(SANESECURITY).unwrap_or_default()
}
