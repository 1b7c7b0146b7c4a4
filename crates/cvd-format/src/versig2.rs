//! "versig2": RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt over a SHA-256
//! digest, with the signature written in ClamAV's custom base64 (spec §1).
//!
//! Used for the `.info` `DSIG` line and (by the `cdiff` crate) for `.cdiff` files.
//!
//! # Why verification decodes EMSA-PSS itself
//!
//! ClamAV's verifier (`cli_versig2`) assumes a 2048-bit modulus: it treats the encoded
//! message as `emBits = 8 * 256 - 1` bits and clears only the top bit. The official
//! INFO and CDIFF moduli are 2047 bits, for which RFC 8017 says `emBits = 2046`, so a
//! standard verifier (the `rsa` crate's `pss::VerifyingKey`) rejects any official
//! signature whose second-highest encoded bit happens to be set — `test-5.cvd`'s
//! `test.info` is one. We therefore run the RSA public operation with the `rsa` crate
//! (`hazmat::rsa_encrypt`) and decode EMSA-PSS (RFC 8017 §9.1.2) with `emBits =
//! 8k - 1`, where `k` is the modulus size in bytes, exactly as the reference does —
//! and stricter than it in one respect: the padding string before the `0x01` separator
//! must be all zero (the reference only searches for the `0x01`). Signing uses the
//! `rsa` crate's standard PSS signer, whose output both verifiers accept.

use rsa::BigUint;
use rsa::pss;
use rsa::signature::SignatureEncoding;
use rsa::signature::hazmat::RandomizedPrehashSigner;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use crate::clamb64;
use crate::error::{Error, Result};
use crate::keys::{PublicKey, SigningKey};

/// PSS salt length used by ClamAV.
pub const SALT_LEN: usize = 32;

const HASH_LEN: usize = 32;

/// MGF1 with SHA-256 (RFC 8017 §B.2.1).
fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + HASH_LEN);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// Checks a versig2 signature (`sig_text`, custom base64) of `digest` (a SHA-256).
///
/// On failure the error is [`Error::SignatureText`] for malformed text and
/// [`Error::InfoSignature`] (with an empty name) for a signature that does not verify;
/// callers that know what was signed rewrap it.
///
/// ```
/// use cvd_format::{versig2, SigningKey};
/// use sha2::Digest;
/// let key = SigningKey::generate(2048)?;
/// let digest: [u8; 32] = sha2::Sha256::digest(b"hello").into();
/// let sig = versig2::sign(&key, &digest)?;
/// versig2::verify(&key.public_key(), &digest, &sig)?;
/// let other: [u8; 32] = sha2::Sha256::digest(b"hullo").into();
/// assert!(versig2::verify(&key.public_key(), &other, &sig).is_err());
/// # Ok::<(), cvd_format::Error>(())
/// ```
pub fn verify(key: &PublicKey, digest: &[u8; 32], sig_text: &str) -> Result<()> {
    let fail = |reason: &str| Error::InfoSignature {
        name: String::new(),
        reason: reason.into(),
    };
    let c = BigUint::from_bytes_be(&clamb64::decode(sig_text)?);
    let rsa = key.rsa();
    if &c >= rsa.n() {
        return Err(fail(
            "signature integer is not smaller than the key modulus",
        ));
    }
    let k = key.size();
    if k < HASH_LEN + SALT_LEN + 2 {
        return Err(fail("key too small for RSA-PSS with SHA-256"));
    }
    let m = rsa::hazmat::rsa_encrypt(rsa, &c).map_err(|e| fail(&e.to_string()))?;
    let m = m.to_bytes_be();
    let mut em = vec![0u8; k];
    // m < n, so it fits in k bytes.
    em[k - m.len()..].copy_from_slice(&m);
    if em[k - 1] != 0xbc {
        return Err(fail("encoded message does not end in 0xbc"));
    }
    if em[0] & 0x80 != 0 {
        return Err(fail("encoded message has its top bit set"));
    }
    let db_len = k - HASH_LEN - 1;
    let (masked_db, rest) = em.split_at(db_len);
    let h = &rest[..HASH_LEN];
    let mut db: Vec<u8> = masked_db
        .iter()
        .zip(mgf1(h, db_len))
        .map(|(a, b)| a ^ b)
        .collect();
    db[0] &= 0x7f;
    let sep = db_len - SALT_LEN - 1;
    if db[..sep].iter().any(|&b| b != 0) || db[sep] != 0x01 {
        return Err(fail(
            "RSA-PSS padding is malformed (wrong key or signature)",
        ));
    }
    let salt = &db[sep + 1..];
    let mut hasher = Sha256::new();
    hasher.update([0u8; 8]);
    hasher.update(digest);
    hasher.update(salt);
    if hasher.finalize().as_slice() != h {
        return Err(fail(
            "RSA-PSS hash mismatch (wrong digest, key or signature)",
        ));
    }
    Ok(())
}

/// Signs `digest` (a SHA-256) with RSA-PSS and returns the custom-base64 text.
pub fn sign(key: &SigningKey, digest: &[u8; 32]) -> Result<String> {
    let signer = pss::SigningKey::<Sha256>::new_with_salt_len(key.rsa().clone(), SALT_LEN);
    let sig = signer
        .sign_prehash_with_rng(&mut rsa::rand_core::OsRng, digest)
        .map_err(|err| Error::Key {
            reason: format!("RSA-PSS signing failed: {err}"),
        })?;
    Ok(clamb64::encode(
        &sig.to_bytes(),
        clamb64::digits_for_bits(key.public_key().bits()),
    ))
}
