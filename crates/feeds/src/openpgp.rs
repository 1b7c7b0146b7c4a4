//! Detached OpenPGP signatures (`<file>.sig`, binary or armored) checked against a
//! feed's configured public keys, under the feed's digest policy.
//!
//! Packet parsing and the cryptography are rPGP's (the `pgp` crate); this module
//! decides what is trusted: which keys (only the configured ones, primary keys and
//! signing subkeys whose binding signature verifies), which digests (the policy), and
//! how a refusal is reported (unknown key, digest not allowed, bad signature,
//! malformed). Key expiry and revocation are not evaluated: a feed's keys are trust
//! anchors chosen by the operator (SaneSecurity's key from 2009 has no expiry).

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::Path;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{PublicKey, PublicSubkey, Signature};
use pgp::types::{KeyDetails, PublicParams};
use rsa::traits::PublicKeyParts as _;

use crate::Error;

/// The largest `.sig` file read (a SaneSecurity signature is about 72 bytes; an armored
/// RSA-4096 one under 1 KiB).
pub const MAX_SIGNATURE_SIZE: u64 = 64 * 1024;

/// The largest key file read.
pub const MAX_KEY_FILE_SIZE: u64 = 1024 * 1024;

/// Signatures tried per `.sig` file (gpg writes one per `-u` key).
const MAX_SIGNATURES: usize = 16;

/// A digest algorithm an OpenPGP signature may use, as named in `openpgp_digests`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Digest {
    /// SHA-1 (collision-detecting implementation). SaneSecurity's DSA-1024 key signs
    /// with it; allow it per feed, explicitly.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Digest {
    fn from_pgp(h: HashAlgorithm) -> Option<Digest> {
        Some(match h {
            HashAlgorithm::Sha1 => Digest::Sha1,
            HashAlgorithm::Sha224 => Digest::Sha224,
            HashAlgorithm::Sha256 => Digest::Sha256,
            HashAlgorithm::Sha384 => Digest::Sha384,
            HashAlgorithm::Sha512 => Digest::Sha512,
            _ => return None,
        })
    }

    /// The name used in configuration and reports (`sha1`, `sha256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha1 => "sha1",
            Digest::Sha224 => "sha224",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
            Digest::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The digests a feed's signatures may use. The default accepts SHA-256, SHA-384 and
/// SHA-512 only; SHA-1 must be allowed explicitly, per feed.
///
/// ```
/// use feeds::{Digest, DigestPolicy};
/// assert!(!DigestPolicy::default().allows(Digest::Sha1));
/// assert!(DigestPolicy::new([Digest::Sha1, Digest::Sha256]).allows(Digest::Sha1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPolicy(BTreeSet<Digest>);

impl Default for DigestPolicy {
    fn default() -> Self {
        DigestPolicy::new([Digest::Sha256, Digest::Sha384, Digest::Sha512])
    }
}

impl DigestPolicy {
    /// A policy allowing exactly these digests.
    pub fn new(allowed: impl IntoIterator<Item = Digest>) -> DigestPolicy {
        DigestPolicy(allowed.into_iter().collect())
    }

    /// Whether `d` is allowed.
    pub fn allows(&self, d: Digest) -> bool {
        self.0.contains(&d)
    }

    /// The allowed digests, comma-separated (for messages).
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|d| d.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What a good signature proved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureInfo {
    /// Fingerprint (upper-case hex) of the key that made it: the primary key of a
    /// configured certificate, or one of its signing subkeys.
    pub key: String,
    /// The key's algorithm and size, e.g. `DSA-1024`, `RSA-2048`, `EdDSA`.
    pub key_type: String,
    /// The signature's digest.
    pub digest: Digest,
}

/// One key that may verify signatures.
#[derive(Debug, Clone)]
enum Verifier {
    Primary(PublicKey),
    Sub(PublicSubkey),
}

#[derive(Debug, Clone)]
struct Candidate {
    fingerprint: String,
    key_id: [u8; 8],
    verifier: Verifier,
}

/// Public keys trusted for a feed: OpenPGP certificates, armored or binary, each with
/// its primary key and its signing subkeys.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    certs: Vec<CertInfo>,
    candidates: Vec<Candidate>,
}

/// A certificate in a [`KeyRing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The primary key's fingerprint (upper-case hex, no spaces).
    pub fingerprint: String,
    /// The primary key's algorithm and size (`DSA-1024`, `RSA-2048`, ...).
    pub key_type: String,
    /// The first user id, if any.
    pub user_id: Option<String>,
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn key_type(params: &PublicParams) -> String {
    match params {
        PublicParams::DSA(p) => format!("DSA-{}", p.key.components().p().bits()),
        PublicParams::RSA(p) => format!("RSA-{}", p.key.n().bits()),
        PublicParams::EdDSALegacy(_) | PublicParams::Ed25519(_) => "EdDSA".into(),
        PublicParams::ECDSA(_) => "ECDSA".into(),
        _ => "other".into(),
    }
}

impl KeyRing {
    /// Parses one or more certificates (transferable public keys), ASCII-armored or
    /// binary. Subkeys whose binding signature does not verify are ignored.
    ///
    /// # Errors
    /// A message saying why nothing usable was found (the caller names the file).
    pub fn from_bytes(bytes: &[u8]) -> Result<KeyRing, String> {
        let mut ring = KeyRing::default();
        // Armored files may hold several blocks (keys exported one after the other);
        // rPGP reads one block per call.
        const BEGIN: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
        let starts: Vec<usize> = (0..bytes.len())
            .filter(|&i| bytes[i..].starts_with(BEGIN))
            .collect();
        let parts: Vec<&[u8]> = if starts.len() > 1 {
            starts
                .iter()
                .enumerate()
                .map(|(n, &s)| &bytes[s..starts.get(n + 1).copied().unwrap_or(bytes.len())])
                .collect()
        } else {
            vec![bytes]
        };
        for part in parts {
            let (iter, _) = SignedPublicKey::from_reader_many(part).map_err(|e| e.to_string())?;
            for key in iter.take(64) {
                let key = key.map_err(|e| e.to_string())?;
                key.verify_bindings()
                    .map_err(|e| format!("self-signature does not verify: {e}"))?;
                ring.add_cert(key);
            }
        }
        if ring.certs.is_empty() {
            return Err("no public key found".into());
        }
        Ok(ring)
    }

    fn add_cert(&mut self, key: SignedPublicKey) {
        let fp = hex_upper(key.fingerprint().as_bytes());
        self.certs.push(CertInfo {
            fingerprint: fp.clone(),
            key_type: key_type(key.primary_key.public_params()),
            user_id: key
                .details
                .users
                .first()
                .map(|u| String::from_utf8_lossy(u.id.id()).into_owned()),
        });
        self.candidates.push(Candidate {
            fingerprint: fp,
            key_id: key_id_bytes(&key.primary_key),
            verifier: Verifier::Primary(key.primary_key.clone()),
        });
        for sub in &key.public_subkeys {
            let signs = sub.signatures.iter().any(|s| s.key_flags().sign());
            if signs && sub.verify_bindings(&key.primary_key).is_ok() {
                self.candidates.push(Candidate {
                    fingerprint: hex_upper(sub.key.fingerprint().as_bytes()),
                    key_id: key_id_bytes(&sub.key),
                    verifier: Verifier::Sub(sub.key.clone()),
                });
            }
        }
    }

    /// Adds every certificate of `other`.
    pub fn extend(&mut self, other: KeyRing) {
        self.certs.extend(other.certs);
        self.candidates.extend(other.candidates);
    }

    /// The certificates, in the order they were added.
    pub fn certs(&self) -> &[CertInfo] {
        &self.certs
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    fn describe(&self) -> String {
        self.certs
            .iter()
            .map(|c| c.fingerprint.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Verifies the detached signature `sig` (the bytes of `<file>.sig`) over the
    /// contents of `path`, for the file named `file` in messages.
    ///
    /// # Errors
    /// [`Error::MalformedSignature`], [`Error::DigestNotAllowed`],
    /// [`Error::UnknownKey`], [`Error::BadSignature`]; [`Error::Io`] reading `path`.
    pub fn verify_file(
        &self,
        file: &str,
        path: &Path,
        sig: &[u8],
        policy: &DigestPolicy,
    ) -> Result<SignatureInfo, Error> {
        self.verify_with(file, sig, policy, &mut || {
            std::fs::File::open(path)
                .map(|f| Box::new(std::io::BufReader::new(f)) as Box<dyn Read>)
                .map_err(|e| Error::io(path, e))
        })
    }

    /// [`KeyRing::verify_file`] over bytes in memory.
    ///
    /// # Errors
    /// As [`KeyRing::verify_file`] (no I/O error).
    pub fn verify_bytes(
        &self,
        file: &str,
        data: &[u8],
        sig: &[u8],
        policy: &DigestPolicy,
    ) -> Result<SignatureInfo, Error> {
        self.verify_with(file, sig, policy, &mut || {
            Ok(Box::new(data) as Box<dyn Read>)
        })
    }

    fn verify_with<'d>(
        &self,
        file: &str,
        sig: &[u8],
        policy: &DigestPolicy,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + 'd>, Error>,
    ) -> Result<SignatureInfo, Error> {
        let sigs = parse_signatures(file, sig)?;
        let mut first_err = None;
        for s in &sigs {
            match self.verify_one(file, s, policy, open) {
                Ok(info) => return Ok(info),
                Err(e @ Error::Io { .. }) => return Err(e),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| Error::MalformedSignature {
            file: file.to_owned(),
            reason: "no signature packet".into(),
        }))
    }

    fn verify_one<'d>(
        &self,
        file: &str,
        s: &Signature,
        policy: &DigestPolicy,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + 'd>, Error>,
    ) -> Result<SignatureInfo, Error> {
        let hash = s.hash_alg().ok_or_else(|| Error::MalformedSignature {
            file: file.to_owned(),
            reason: format!("unsupported signature version {:?}", s.version()),
        })?;
        let known = Digest::from_pgp(hash);
        let Some(digest) = known.filter(|d| policy.allows(*d)) else {
            return Err(Error::DigestNotAllowed {
                file: file.to_owned(),
                digest: known.map_or_else(|| hash.to_string(), |d| d.name().to_owned()),
                allowed: policy.describe(),
            });
        };
        let ids: Vec<[u8; 8]> = s
            .issuer_key_id()
            .iter()
            .filter_map(|k| <[u8; 8]>::try_from(k.as_ref()).ok())
            .collect();
        let fps: Vec<String> = s
            .issuer_fingerprint()
            .iter()
            .map(|f| hex_upper(f.as_bytes()))
            .collect();
        let named = |c: &Candidate| {
            (ids.is_empty() && fps.is_empty())
                || ids.contains(&c.key_id)
                || fps.contains(&c.fingerprint)
        };
        let mut tried = None;
        for c in self.candidates.iter().filter(|c| named(c)) {
            let reader = open()?;
            let r = match &c.verifier {
                Verifier::Primary(k) => s.verify(k, reader),
                Verifier::Sub(k) => s.verify(k, reader),
            };
            match r {
                Ok(()) => {
                    let params = match &c.verifier {
                        Verifier::Primary(k) => k.public_params(),
                        Verifier::Sub(k) => k.public_params(),
                    };
                    return Ok(SignatureInfo {
                        key: c.fingerprint.clone(),
                        key_type: key_type(params),
                        digest,
                    });
                }
                Err(e) => {
                    tried.get_or_insert(Error::BadSignature {
                        file: file.to_owned(),
                        key: c.fingerprint.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Err(tried.unwrap_or_else(|| {
            let mut issuers: Vec<String> = fps;
            issuers.extend(ids.iter().map(|i| hex_upper(i)));
            Error::UnknownKey {
                file: file.to_owned(),
                issuers: if issuers.is_empty() {
                    "not named".into()
                } else {
                    issuers.join(", ")
                },
                configured: self.describe(),
            }
        }))
    }
}

fn key_id_bytes(k: &impl KeyDetails) -> [u8; 8] {
    let id = k.legacy_key_id();
    <[u8; 8]>::try_from(id.as_ref()).unwrap_or([0; 8])
}

/// Parses a `.sig` file: one or more OpenPGP signature packets, binary or armored.
fn parse_signatures(file: &str, sig: &[u8]) -> Result<Vec<Signature>, Error> {
    let bad = |reason: String| Error::MalformedSignature {
        file: file.to_owned(),
        reason,
    };
    if sig.len() as u64 > MAX_SIGNATURE_SIZE {
        return Err(bad(format!("larger than {MAX_SIGNATURE_SIZE} bytes")));
    }
    if sig.is_empty() {
        return Err(bad("empty".into()));
    }
    let (iter, _) = DetachedSignature::from_reader_many(sig).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for s in iter.take(MAX_SIGNATURES) {
        out.push(s.map_err(|e| bad(e.to_string()))?.signature);
    }
    if out.is_empty() {
        return Err(bad("no signature packet".into()));
    }
    Ok(out)
}
