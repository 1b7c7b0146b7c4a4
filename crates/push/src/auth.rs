//! Authentication of notices: HMAC-SHA256 with a secret shared by sender and receiver.
//!
//! A notice travels with three headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Push-Sender` | the sender's name (selects the secret) |
//! | `X-Push-Timestamp` | Unix seconds when it was signed |
//! | `X-Push-Signature` | `v1=` and the hex HMAC-SHA256 of `v1:<sender>:<timestamp>:<body>` |
//!
//! The MAC covers the sender, the timestamp and the body, so none of them can be
//! changed or moved to another notice; the receiver compares MACs in constant time
//! (`hmac`'s `verify_slice`), refuses timestamps outside its replay window and
//! remembers the MACs it accepted for as long as they are inside it.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

/// Header naming the sender.
pub const SENDER_HEADER: &str = "X-Push-Sender";
/// Header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Push-Timestamp";
/// Header carrying the MAC.
pub const SIGNATURE_HEADER: &str = "X-Push-Signature";

/// Shortest secret accepted (bytes).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret file read.
const MAX_SECRET_LEN: usize = 4096;

type HmacSha256 = Hmac<Sha256>;

/// A shared secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from bytes (at least [`MIN_SECRET_LEN`]).
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(Error::Secret(format!(
                "{} bytes, at least {MIN_SECRET_LEN} expected",
                bytes.len()
            )));
        }
        Ok(Secret(bytes.to_vec()))
    }

    /// Reads a secret file (its content without surrounding whitespace; at least
    /// [`MIN_SECRET_LEN`] bytes, e.g. `openssl rand -hex 32 > FILE`).
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::SecretFile {
            path: path.to_owned(),
            source: e,
        })?;
        if bytes.len() > MAX_SECRET_LEN {
            return Err(Error::Secret(format!(
                "{}: larger than {MAX_SECRET_LEN} bytes",
                path.display()
            )));
        }
        let trimmed = bytes.trim_ascii();
        Secret::new(trimmed).map_err(|e| Error::Secret(format!("{}: {e}", path.display())))
    }

    fn mac(&self, sender: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        m.update(b"v1:");
        m.update(sender.as_bytes());
        m.update(b":");
        m.update(timestamp.to_string().as_bytes());
        m.update(b":");
        m.update(body);
        m
    }

    /// The `X-Push-Signature` value for a notice.
    pub fn sign(&self, sender: &str, timestamp: u64, body: &[u8]) -> String {
        let tag = self.mac(sender, timestamp, body).finalize().into_bytes();
        format!("v1={}", cvd_format::hex(&tag))
    }

    /// Checks a `X-Push-Signature` value in constant time; returns the raw MAC (what
    /// the replay cache remembers) when it matches.
    pub fn verify(
        &self,
        sender: &str,
        timestamp: u64,
        body: &[u8],
        signature: &str,
    ) -> Result<[u8; 32], Error> {
        let hex = signature
            .trim()
            .strip_prefix("v1=")
            .ok_or(Error::BadSignature)?;
        let tag = parse_hex32(hex).ok_or(Error::BadSignature)?;
        self.mac(sender, timestamp, body)
            .verify_slice(&tag)
            .map_err(|_| Error::BadSignature)?;
        Ok(tag)
    }
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_every_field_is_covered() {
        let k = Secret::new(b"0123456789abcdef0123").unwrap();
        let sig = k.sign("tier1", 1000, b"{}");
        assert!(k.verify("tier1", 1000, b"{}", &sig).is_ok());
        assert!(k.verify("tier2", 1000, b"{}", &sig).is_err());
        assert!(k.verify("tier1", 1001, b"{}", &sig).is_err());
        assert!(k.verify("tier1", 1000, b"{ }", &sig).is_err());
        let other = Secret::new(b"another secret of 24 b!").unwrap();
        assert!(other.verify("tier1", 1000, b"{}", &sig).is_err());
        assert!(k.verify("tier1", 1000, b"{}", "v1=zz").is_err());
        assert!(k.verify("tier1", 1000, b"{}", &sig[3..]).is_err());
        assert!(Secret::new(b"short").is_err());
    }

    #[test]
    fn secret_file_is_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "  0123456789abcdef0123\n").unwrap();
        let k = Secret::from_file(&p).unwrap();
        let sig = k.sign("a", 1, b"x");
        assert!(
            Secret::new(b"0123456789abcdef0123")
                .unwrap()
                .verify("a", 1, b"x", &sig)
                .is_ok()
        );
        std::fs::write(&p, "short\n").unwrap();
        let e = Secret::from_file(&p).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(Secret::from_file(&dir.path().join("none")).is_err());
    }
}
