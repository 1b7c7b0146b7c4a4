//! The legacy CVD signature (header field 7): textbook RSA over the body's MD5.
//!
//! The signature text decodes (custom base64, [`crate::clamb64`]) to an integer `c`;
//! `m = c^e mod n` must fit in 16 bytes and, left-padded to 16 bytes, equal the MD5 of
//! the body. There is no padding scheme: this is exactly what ClamAV does, and why the
//! raw RSA primitives of the `rsa` crate's `hazmat` module are used here.

use rsa::BigUint;
use rsa::traits::PublicKeyParts;

use crate::clamb64;
use crate::error::{Error, Result};
use crate::keys::{PublicKey, SigningKey};

/// Checks that `dsig` is a valid legacy signature of `md5` under `key`.
///
/// ```
/// use cvd_format::{legacy, SigningKey};
/// let key = SigningKey::generate(1024)?;
/// let md5 = [7u8; 16];
/// let dsig = legacy::sign_md5(&key, &md5)?;
/// legacy::verify_dsig(&key.public_key(), &dsig, &md5)?;
/// assert!(legacy::verify_dsig(&key.public_key(), &dsig, &[8u8; 16]).is_err());
/// # Ok::<(), cvd_format::Error>(())
/// ```
pub fn verify_dsig(key: &PublicKey, dsig: &str, md5: &[u8; 16]) -> Result<()> {
    let m = recover_md5(key, dsig)?;
    if &m != md5 {
        return Err(Error::LegacySignature {
            reason: format!(
                "signature is over MD5 {}, not {}",
                crate::hex(&m),
                crate::hex(md5)
            ),
        });
    }
    Ok(())
}

/// Recovers the 16-byte message (the signed MD5) from a legacy signature.
pub fn recover_md5(key: &PublicKey, dsig: &str) -> Result<[u8; 16]> {
    let c = BigUint::from_bytes_be(&clamb64::decode(dsig)?);
    let rsa = key.rsa();
    if &c >= rsa.n() {
        return Err(Error::LegacySignature {
            reason: "signature integer is not smaller than the key modulus".into(),
        });
    }
    let m = rsa::hazmat::rsa_encrypt(rsa, &c).map_err(|err| Error::LegacySignature {
        reason: err.to_string(),
    })?;
    let bytes = m.to_bytes_be();
    if bytes.len() > 16 {
        return Err(Error::LegacySignature {
            reason: "signed value does not fit in 16 bytes (wrong key or forged signature)".into(),
        });
    }
    let mut out = [0u8; 16];
    out[16 - bytes.len()..].copy_from_slice(&bytes);
    Ok(out)
}

/// Signs `md5` with `key`, returning the header field 7 text.
pub fn sign_md5(key: &SigningKey, md5: &[u8; 16]) -> Result<String> {
    let rsa = key.rsa();
    let m = BigUint::from_bytes_be(md5);
    let c = rsa::hazmat::rsa_decrypt_and_check(rsa, Some(&mut rsa::rand_core::OsRng), &m).map_err(
        |err| Error::Key {
            reason: format!("RSA signing failed: {err}"),
        },
    )?;
    Ok(clamb64::encode(
        &c.to_bytes_be(),
        clamb64::digits_for_bits(rsa.n().bits()),
    ))
}
